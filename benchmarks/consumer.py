"""A team's own function using the library (issue 14), as ``run.py`` benchmarks it.

The client is built at module level, as the README tells consumers to, so the cold import here
is ``import okta_bridge`` + ``Client.from_env()``; each call is one ``client.get`` of the
configured endpoint's path. The code comes from the same packaged directory as the bridge's:
the layer holds the same files under ``python/``.
"""

from __future__ import annotations

import os
from typing import Any

from okta_bridge import Client

client = Client.from_env()
PATH = os.environ["CONSUMER_PATH"]


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    items = client.get(PATH, context=context).json()
    return {"statusCode": 200, "count": len(items) if isinstance(items, list | dict) else 0}

"""The physical limit: a bare keep-alive HTTPS GET of the same API with a valid token.

The token is fetched once at import (not timed by the warm calls); each call is one GET on a
kept-alive urllib3 connection, verified TLS, JSON decoded. Nothing a real bridge must do (policy,
logging, error mapping, deadlines) is here: it is what no implementation can beat.
"""

from __future__ import annotations

import json
import os
from typing import Any

import urllib3

_pool = urllib3.PoolManager(ca_certs=os.environ["BRIDGE_CA_BUNDLE"])
_api = os.environ["FLOOR_API_URL"]
_answer = _pool.request(
    "POST",
    os.environ["FLOOR_TOKEN_URL"],
    fields={
        "grant_type": "client_credentials",
        "scope": "api.access",
        "client_id": os.environ["FLOOR_CLIENT_ID"],
        "client_secret": os.environ["FLOOR_CLIENT_SECRET"],
    },
    encode_multipart=False,
)
_headers = {"Authorization": "Bearer " + json.loads(_answer.data)["access_token"]}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """One GET, nothing else."""
    response = _pool.request("GET", _api, headers=_headers)
    return {"statusCode": response.status, "body": json.loads(response.data)}

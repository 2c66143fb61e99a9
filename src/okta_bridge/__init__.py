"""okta-bridge: read Okta-protected internal JSON APIs from AWS Lambda.

The library's public face (the names in ``__all__``)::

    from okta_bridge import Client

    client = Client.from_env()          # BRIDGE_* as for the bridge function

    def handler(event, context):
        return client.get("/v1/items", params={"page": "2"}, context=context).json()

``Client`` and ``Response`` are loaded on first use (PEP 562), so importing a submodule (the
bridge's or the rotation function's handler) does not pay for them; errors are the classes of
``okta_bridge.errors``, each with ``code``, ``stage``, ``hint`` and ``status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from okta_bridge.errors import (
    BridgeError,
    ConfigError,
    NetworkError,
    RequestError,
    SecretError,
    TlsError,
    TokenError,
    UpstreamError,
)

if TYPE_CHECKING:
    from okta_bridge.client import Client, Response

__version__ = "0.1.0"
__all__ = [
    "BridgeError",
    "Client",
    "ConfigError",
    "NetworkError",
    "RequestError",
    "Response",
    "SecretError",
    "TlsError",
    "TokenError",
    "UpstreamError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in ("Client", "Response"):
        from okta_bridge import client  # noqa: PLC0415 - on first use: see the docstring

        return getattr(client, name)
    raise AttributeError(f"module 'okta_bridge' has no attribute {name!r}")

"""Where the local Okta org answers: its authorization servers' URLs, known once it listens.

Why a class apart: the model knows no URL, yet the token endpoints, the Management API and the
discovery documents all name them; each receives this one object from ``OktaServer``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["OrgUrls"]


class OrgUrls:
    """The URLs of an org served at ``base_url()`` (read on each use: the port comes at start)."""

    def __init__(self, base_url: Callable[[], str], auth_server_id: str) -> None:
        self._base_url = base_url
        self.auth_server_id = auth_server_id

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``: the org, and the org authorization server's issuer."""
        return self._base_url()

    @property
    def issuer(self) -> str:
        """``https://127.0.0.1:PORT/oauth2/{auth_server_id}``, the ``iss`` of every token."""
        return f"{self.base_url}/oauth2/{self.auth_server_id}"

    @property
    def token_url(self) -> str:
        """The token endpoint; also the only ``aud`` accepted in client assertions."""
        return f"{self.issuer}/v1/token"

    @property
    def jwks_url(self) -> str:
        """The public signing keys."""
        return f"{self.issuer}/v1/keys"

    @property
    def org_token_url(self) -> str:
        """The org authorization server's token endpoint (issuer ``base_url``): Management API
        tokens, and the only ``aud`` accepted in client assertions sent there."""
        return f"{self.base_url}/oauth2/v1/token"

"""What the local Okta org holds, and the base class its server's parts share.

``OktaOrg`` owns the org's URLs, its apps and users, the tokens and secrets it has issued, the
rate-limit windows and the one lock, ``_state``, that guards all of them. ``OktaServer`` and each
of its parts (client authentication, token endpoints, app credentials, users, Management API)
derive from it, so every part reads the same state under the same lock.
"""

from __future__ import annotations

import hmac
import math
import secrets
import ssl
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from okta_bridge_dev.emulators.dpop_proofs import ReplayCache
from okta_bridge_dev.emulators.servers import TLSServer

__all__ = [
    "ACTIVE",
    "INACTIVE",
    "AppKey",
    "AppSecret",
    "Client",
    "ClientKey",
    "Credential",
    "ManagementToken",
    "MissingProofError",
    "OktaOrg",
    "RateWindow",
    "User",
    "equal",
    "is_okta_scope",
    "iso",
    "okta_id",
]

RATE_LIMIT_WINDOW = 60
NOMINAL_RATE_LIMIT = 10_000
"""What ``X-Rate-Limit-Limit`` reports while a limit is None (no limit enforced)."""

ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"

MissingProofError = Literal["invalid_dpop_proof", "invalid_grant"]
"""How a token endpoint refuses a request without the proof its app requires: Okta's
``invalid_dpop_proof``, or ``invalid_grant`` as a generic RFC 9449 server (oidc-provider) does."""

_ID_ALPHABET = string.ascii_letters + string.digits


# -- what an app and a user hold -------------------------------------------------------------


@dataclass(frozen=True)
class ClientKey:
    kid: str
    kty: str
    crv: str | None
    key: Any  # a cryptography public key


@dataclass(eq=False)
class Credential:
    """One entry of an app's secret or key list; mutated only under ``OktaOrg._state``."""

    id: str
    status: str
    created: float
    last_updated: float


@dataclass(eq=False)
class AppSecret(Credential):
    value: str = field(repr=False)


@dataclass(eq=False)
class AppKey(Credential):
    jwk: dict[str, Any]  # the public members as registered, kid included
    key: ClientKey


@dataclass(eq=False)
class Client:
    client_id: str
    auth_method: str
    scopes: frozenset[str]
    users: frozenset[str]  # logins assigned to the app: the password grant is enabled for them
    secrets: list[AppSecret]
    keys: list[AppKey]
    # "Require Demonstrating Proof of Possession (DPoP) header in token requests".
    dpop_bound_access_tokens: bool = False


@dataclass(eq=False)
class User:
    id: str
    login: str
    password: str = field(repr=False)
    provider_type: str
    provider_name: str
    created: float
    password_changed: float
    last_updated: float


@dataclass(frozen=True)
class ManagementToken:
    client_id: str
    scopes: frozenset[str]
    expires: float
    jkt: str | None = None  # the DPoP key thumbprint the token is bound to


@dataclass
class RateWindow:
    end: float = 0.0
    used: int = 0


def okta_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def iso(moment: float) -> str:
    """``2026-11-24T18:00:00.000Z``."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"
    )


def equal(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def is_okta_scope(scope: str) -> bool:
    return scope.startswith("okta.")


class OktaOrg(TLSServer):
    """The org's state and URLs, guarded by ``_state``; ``OktaServer`` adds the routes."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        auth_server_id: str,
        audience: str,
        token_lifetime: int,
        host: str,
        port: int,
    ) -> None:
        super().__init__(ssl_context, host=host, port=port)
        self.auth_server_id = auth_server_id
        self.audience = audience
        self.token_lifetime = token_lifetime
        self.rate_limit: int | None = None
        self.management_rate_limit: int | None = None
        self.issued_tokens: list[str] = []
        self.issued_secrets: list[str] = []
        self._state = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._users: dict[str, User] = {}
        self._management_tokens: dict[str, ManagementToken] = {}
        self._denied: set[str] = set()
        self._used_jtis: dict[tuple[str, str], float] = {}
        self._signing_keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self._token_window = RateWindow()
        self._management_window = RateWindow()
        # DPoP (okta_dpop): settings a test may change, the proofs seen, the nonces.
        self.new_apps_require_dpop = True
        self.missing_proof_error: MissingProofError = "invalid_dpop_proof"
        self.dpop_counts: Counter[str] = Counter()
        self.dpop_replay = ReplayCache()
        self._initial_dpop_nonce = self._dpop_nonce = secrets.token_urlsafe(24)
        self._previous_dpop_nonce: str | None = None

    # -- URLs ------------------------------------------------------------------------------

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

    # -- rate limits -----------------------------------------------------------------------

    def reset_rate_limit(self) -> None:
        """Start fresh rate-limit windows with the next request."""
        with self._state:
            self._token_window = RateWindow()
            self._management_window = RateWindow()

    def _count_against_rate_limit(self, *, management: bool) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._state:
            window = self._management_window if management else self._token_window
            if now >= window.end:
                window.end, window.used = now + RATE_LIMIT_WINDOW, 0
            window.used += 1
            limit = self.management_rate_limit if management else self.rate_limit
            reported = limit if limit is not None else NOMINAL_RATE_LIMIT
            headers = {
                "X-Rate-Limit-Limit": str(reported),
                "X-Rate-Limit-Remaining": str(max(reported - window.used, 0)),
                "X-Rate-Limit-Reset": str(math.ceil(window.end)),
            }
            return headers, limit is None or window.used <= limit

"""TokenProvider: one Okta access token per token lifetime per execution environment.

The token is cached until a refresh moment before its expiry (a leeway plus jitter, so many
environments do not refresh at once). Refresh is single flight: concurrent callers wait for the one
request in progress. If Okta refuses the credentials (``invalid_client``, or ``invalid_grant`` for a
service account's password), or KMS the key they name (disabled or deleted by a rotation), the
secret is re-read once (it was probably rotated; see ``SecretStore.reload``) and the request
repeated once. If a refresh fails while the old token is
still valid, the old token keeps serving.

Okta's token rate limit is shared by every app of the org, so an environment spends it sparingly:
at most ``BRIDGE_TOKEN_BUDGET_PER_MINUTE`` token requests in any 60 seconds (beyond that
``TOKEN_BUDGET_EXHAUSTED``, or the current token while it is still usable), and the API's 401 is
answered with a new token only for a token older than ``BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeGuard

from okta_bridge import metrics
from okta_bridge.auth.access_token import AccessToken
from okta_bridge.auth.dpop import Dpop
from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.errors import BridgeError, NetworkError, SigningError, TokenError
from okta_bridge.logs import get_logger
from okta_bridge.secret.credentials import Credentials
from okta_bridge.secret.store import SecretStore
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline

log = get_logger("tokens")


class SharedTokens(Protocol):
    """The fleet's token cache (``okta_bridge.fleet.cache``), when ``BRIDGE_TOKEN_CACHE`` is set."""

    def obtain(
        self,
        credentials: Credentials,
        held: AccessToken | None,
        mint: Callable[[], tuple[AccessToken, Credentials]],
        deadline: Deadline,
    ) -> AccessToken:
        """The fleet's token, or one ``mint`` asks Okta for (the cache never raises its own)."""
        ...

    def drop(self, token: AccessToken, min_age: float, deadline: Deadline) -> None:
        """The API refused ``token``: remove it for the fleet too."""
        ...

    def clear(self) -> None:
        """Forget per-environment state (SnapStart restore)."""
        ...


class MintBudget:
    """At most ``per_minute`` token requests (HTTP attempts) in any 60 seconds; thread-safe, as
    the bridge and diagnose spend from the same one."""

    WINDOW = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()

    def take(self) -> None:
        """Spend one request, or raise ``TOKEN_BUDGET_EXHAUSTED`` saying when one is free."""
        with self._lock:
            now = self._clock()
            while self._sent and self._sent[0] <= now - self.WINDOW:
                self._sent.popleft()
            if len(self._sent) >= self._per_minute:
                wait = self._sent[0] + self.WINDOW - now
                raise TokenError(
                    "TOKEN_BUDGET_EXHAUSTED",
                    f"This environment already sent {self._per_minute} token requests to Okta "
                    f"in the last minute (BRIDGE_TOKEN_BUDGET_PER_MINUTE); the next is allowed "
                    f"in {math.ceil(wait)} s.",
                    retry_after=wait,
                )
            self._sent.append(now)

    def clear(self) -> None:
        """Forget what was spent (SnapStart restore: a new environment)."""
        with self._lock:
            self._sent.clear()


class TokenProvider:
    """Gets, caches and refreshes the access token; thread-safe."""

    def __init__(
        self,
        secrets: SecretStore,
        http: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_token: Callable[[str], None] | None = None,
        budget_per_minute: int = 10,
        refresh_min_age: float = 60.0,
        dpop_mode: str = "auto",
        shared: SharedTokens | None = None,
    ) -> None:
        self._secrets = secrets
        self._shared = shared
        self._clock = clock
        self._endpoint = TokenEndpoint(
            http,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            on_token=on_token,
            dpop_mode=dpop_mode,
        )
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        # Whose token the cached one is, when DPoP (or not) was learned for it in ``auto``.
        self._learned_for: tuple[str, str] | None = None
        self.budget = MintBudget(budget_per_minute, clock)
        self.refresh_min_age = refresh_min_age

    @property
    def requests(self) -> int:
        """Token requests sent to Okta by this environment."""
        return self._endpoint.requests

    @property
    def dpop(self) -> Dpop:
        """The DPoP state the tokens are bound with (the API's proofs use the same key)."""
        return self._endpoint.dpop

    def get(self, deadline: Deadline) -> AccessToken:
        """A usable token: the cached one, or one fresh request shared by concurrent callers."""
        token = self._get(deadline)
        metrics.token_used(token.expires_at - self._clock())
        return token

    def _get(self, deadline: Deadline) -> AccessToken:
        token = self._token
        if self._fresh(token):
            return token
        if not self._lock.acquire(timeout=max(deadline.remaining(), 0.001)):
            raise NetworkError(
                "TOKEN_TIMEOUT", "Timed out waiting for a token refresh in progress."
            )
        try:
            token = self._token
            now = self._clock()
            if self._fresh(token):
                return token
            try:
                self._token = self._fetch(deadline, token)
            except BridgeError as exc:
                if self._usable(token):
                    log.warning(
                        "token refresh failed; the current token keeps serving",
                        extra={"code": exc.code, "expires_in_s": round(token.expires_at - now)},
                    )
                    return token
                raise
            return self._token
        finally:
            self._lock.release()

    def _fresh(self, token: AccessToken | None) -> TypeGuard[AccessToken]:
        """Before its refresh moment, and bound to no key but the environment's."""
        return (
            token is not None
            and self._clock() < token.refresh_at
            and not token.bound_elsewhere(self.dpop)
        )

    def _usable(self, token: AccessToken | None) -> TypeGuard[AccessToken]:
        """Still safe to send, if not fresh: the fallback while a refresh fails."""
        return (
            token is not None
            and token.usable(self._clock())
            and not token.bound_elsewhere(self.dpop)
        )

    def will_request(self) -> bool:
        """Whether the next ``get`` will ask Okta (no token, or its refresh moment passed)."""
        return not self._fresh(self._token)

    def dpop_unsupported(self, token: AccessToken, deadline: Deadline | None = None) -> None:
        """The API does not take ``token``'s DPoP binding. If DPoP was learned (``auto``), not
        configured, forget it, so a spurious refusal at Okta cannot pin the environment to DPoP;
        and drop the token once it is older than the refresh minimum age (as for any 401), so at
        most one token a minute is spent finding out again. A fleet's token was learned by the
        environment that minted it: any environment holding it drops it (for the fleet too)."""
        if token.scheme != "DPoP":
            return
        learned = self._learned_for
        if learned is None and token.shared is not None:
            credentials = self._secrets.current(deadline)
            if self._endpoint.auto(credentials):
                learned = (credentials.client_id, credentials.token_url)
        if learned is None:
            return
        self.dpop.unlearn(*learned)
        log.warning("the API does not take DPoP-bound tokens; DPoP is no longer assumed")
        if self.age(token) >= self.refresh_min_age:
            self.invalidate(token, deadline)

    def age(self, token: AccessToken) -> float:
        """Seconds since ``token`` was requested."""
        return self._clock() - token.issued_at

    def invalidate(self, token: AccessToken, deadline: Deadline | None = None) -> None:
        """Drop ``token`` (the API refused it) unless it was already replaced; and from the
        shared cache, when it came from there and is old enough there too."""
        with self._lock:
            if self._token is token:
                self._token = None
        if self._shared is not None and token.shared is not None and deadline is not None:
            self._shared.drop(token, self.refresh_min_age, deadline)

    def clear(self) -> None:
        """Forget the cached token and Okta's last raw answer, which holds it too (SnapStart,
        tests)."""
        with self._lock:
            self._token = None
            self._endpoint.last_response = None
            self.budget.clear()
        if self._shared is not None:
            self._shared.clear()

    def reseed(self) -> None:
        """New seed for the refresh jitter (after a SnapStart restore)."""
        self._endpoint.reseed()

    def _fetch(self, deadline: Deadline, held: AccessToken | None) -> AccessToken:
        """A new token: the fleet's, when the shared cache is on, else one this environment
        asks Okta for."""
        credentials = self._secrets.fresh(deadline)
        if self._shared is None:
            return self._mint(credentials, deadline)[0]
        return self._shared.obtain(
            credentials,
            held,
            lambda: self._mint(credentials, deadline, own_key=True),
            deadline,
        )

    def _mint(
        self, credentials: Credentials, deadline: Deadline, *, own_key: bool = False
    ) -> tuple[AccessToken, Credentials]:
        """A token from Okta, and the credentials that got it: when Okta refuses them (rotated),
        the secret is re-read once and the request repeated. ``own_key``: a DPoP-bound token
        gets a proof key of its own, to share with the fleet."""
        try:
            return self._request(credentials, deadline, own_key=own_key), credentials
        except (TokenError, SigningError) as exc:
            if not _credentials_refused(exc, credentials):
                raise
            if isinstance(exc, SigningError):
                log.warning(
                    "KMS refused the key; re-reading the secret once", extra={"code": exc.code}
                )
            else:
                log.warning("Okta refused the credentials; re-reading the secret once")
            reread = self._secrets.reload(stale=credentials, deadline=deadline)
            if reread == credentials:
                raise
            return self._request(reread, deadline, own_key=own_key), reread

    def _request(
        self, credentials: Credentials, deadline: Deadline, *, own_key: bool = False
    ) -> AccessToken:
        token = self._endpoint.request(
            credentials, deadline, spend=self.budget.take, own_key=own_key
        )
        auto = self._endpoint.auto(credentials)
        self._learned_for = (credentials.client_id, credentials.token_url) if auto else None
        return token


def _credentials_refused(exc: TokenError | SigningError, credentials: Credentials) -> bool:
    """Okta refused the credentials themselves: they were probably rotated.

    ``invalid_client`` for the app's secret or key; ``invalid_grant`` for a service account's
    password (the password grant reports a wrong password that way); a KMS key that a rotation
    disabled or deleted (``KMS_KEY_DISABLED``, ``KMS_KEY_NOT_FOUND``) once the new one is current.
    """
    if exc.code == "TOKEN_REJECTED" or exc.code in SigningError.KEY_UNUSABLE:
        return True
    return exc.code == "TOKEN_GRANT_INVALID" and credentials.grant_type == "password"

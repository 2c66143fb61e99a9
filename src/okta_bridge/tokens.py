"""TokenProvider: one Okta access token per token lifetime per execution environment.

The token is cached until a refresh moment before its expiry (a leeway plus jitter, so many
environments do not refresh at once). Refresh is single flight: concurrent callers wait for the one
request in progress. If Okta refuses the credentials (``invalid_client``, or ``invalid_grant`` for a
service account's password) the secret is re-read once (it was probably rotated; see
``SecretStore.reload``) and the request repeated once. If a refresh fails while the old token is
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
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from okta_bridge import metrics, tracing
from okta_bridge.client_auth import authenticate
from okta_bridge.credentials import Credentials
from okta_bridge.dpop import DPOP, Dpop, ProofSigner
from okta_bridge.errors import BridgeError, NetworkError, TokenError
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.secrets import SecretStore
from okta_bridge.transport import (
    Deadline,
    HttpClient,
    HttpResponse,
    ResponseTooLarge,
    Target,
    retry_after_seconds,
)

TOKEN_TARGET = Target("Okta token endpoint", "TOKEN_UNREACHABLE", "TOKEN_TIMEOUT")
MAX_TOKEN_RESPONSE = 65_536
# RFC 6749 makes expires_in optional; without it assume a short life rather than guess long.
DEFAULT_LIFETIME = 300
# Stop using a token this long before it expires: clocks drift and the API call takes time.
EXPIRY_SAFETY = 10.0

_OAUTH_ERRORS = {
    "invalid_client": "TOKEN_REJECTED",
    "invalid_scope": "TOKEN_SCOPE_INVALID",
    "access_denied": "TOKEN_ACCESS_DENIED",
    "unauthorized_client": "TOKEN_ACCESS_DENIED",
    "invalid_grant": "TOKEN_GRANT_INVALID",
    "mfa_required": "TOKEN_MFA_REQUIRED",
}

# What a proof-less request gets from an RFC 9449 server that is not Okta and requires DPoP (panva's
# oidc-provider: invalid_grant): with discovery metadata advertising DPoP, worth one proofed try.
_GENERIC_DPOP_REFUSALS = frozenset({"invalid_grant", "invalid_request", "unauthorized_client"})
# Okta's DPoP refusals (and its SDKs' key-binding ones), by whether a proof was sent.
_DPOP_ERRORS = {
    "invalid_dpop_proof": "TOKEN_DPOP_REJECTED",
    "use_dpop_nonce": "TOKEN_DPOP_NONCE_LOOP",
    "invalid_dpop_key_binding": "TOKEN_DPOP_REJECTED",
    "invalid_dpop_jkt": "TOKEN_DPOP_REJECTED",
}

log = get_logger("tokens")


def _oauth_error(response: HttpResponse) -> str:
    """The OAuth ``error`` of an answer, or ""."""
    if response.status < 400:
        return ""
    body = response.json_object()
    return str(body.get("error", ""))[:60] if body else ""


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the monotonic times at which it was issued, should be refreshed and
    must no longer be used."""

    value: str = field(repr=False)
    expires_at: float
    refresh_at: float
    lifetime: float
    scopes: tuple[str, ...] = ()
    scheme: str = "Bearer"  # "DPoP" for a token bound to the environment's DPoP key

    @property
    def issued_at(self) -> float:
        """When the request that got it started (monotonic)."""
        return self.expires_at - self.lifetime

    def usable(self, now: float) -> bool:
        """Still safe to send."""
        return now < self.expires_at - EXPIRY_SAFETY


class TokenEndpoint:
    """One token request for given credentials, judged the way Okta answers; no caching.

    The bridge's ``TokenProvider`` caches what this returns; the rotation function uses it as is
    to test a pending credential and to get Management API tokens.
    """

    def __init__(
        self,
        http: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_token: Callable[[str], None] | None = None,
        dpop_mode: str = "auto",
        dpop: Dpop = DPOP,
    ) -> None:
        self._http = http
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._on_token = on_token
        self._dpop_mode = dpop_mode
        self.dpop = dpop
        self.requests = 0
        # The last answer Okta gave (its status, rate-limit headers, OAuth error) and how DPoP
        # went (a proof sent, a nonce round, a switch to DPoP), for diagnose.
        self.last_response: HttpResponse | None = None
        self.last_dpop: dict[str, bool] = {}

    def request(
        self,
        credentials: Credentials,
        deadline: Deadline,
        *,
        spend: Callable[[], None] | None = None,
    ) -> AccessToken:
        """Ask Okta for a token with ``credentials``; raises ``TokenError`` with Okta's reason.

        ``spend`` is called before every attempt (retries included) and may refuse it by
        raising: the environment's token budget counts what reaches Okta, not what was meant.
        """
        metrics.token_request()
        attributes = {
            "server.address": urllib.parse.urlsplit(credentials.token_url).hostname or "",
            "oauth.grant_type": credentials.grant_type,
            "oauth.client_auth_method": credentials.auth_method,
        }
        with tracing.span(tracing.TOKEN_REQUEST, attributes) as span:
            try:
                return self._request(credentials, deadline, span, spend)
            except BridgeError as exc:
                metrics.token_failed(exc)
                raise

    def _request(
        self,
        credentials: Credentials,
        deadline: Deadline,
        span: tracing.Span,
        spend: Callable[[], None] | None,
    ) -> AccessToken:
        form = {"grant_type": credentials.grant_type, "scope": " ".join(credentials.scopes)}
        if credentials.username is not None:
            form["username"] = credentials.username
            form["password"] = credentials.password or ""

        def prepare() -> tuple[dict[str, str], bytes]:
            if spend is not None:
                spend()
            # A fresh client authentication per attempt: a used jti is never sent again.
            auth = authenticate(credentials, self._wall_clock())
            return auth.headers, urllib.parse.urlencode({**form, **auth.form}).encode()

        self.requests += 1
        started = self._clock()
        wanted = self._wants_dpop(credentials)
        # auto: as learned in this environment (at first without a proof), switching to DPoP
        # when the token endpoint refuses a request for want of one (also after learning
        # otherwise: an admin may turn the app's DPoP on at any time).
        auto = self._dpop_mode == "auto" and credentials.dpop is None
        proofed, switched, nonce_asked = bool(wanted), False, False
        while True:
            response = self._send(credentials, deadline, prepare, proofed=proofed)
            error = _oauth_error(response)
            if proofed and error == "use_dpop_nonce" and not nonce_asked:
                # The server wants its nonce in the proof (Okta always does at first): exactly
                # one more request, which now carries it.
                nonce_asked = True
                metrics.token_request()  # one more request reaches Okta
                continue
            undecided = auto and not proofed and not switched
            if undecided and self._dpop_needed(credentials, response, error, deadline):
                log.info("the token endpoint requires DPoP; asking again with a proof")
                proofed = switched = True
                metrics.token_request()
                continue
            break
        if auto and response.status == 200:
            self.dpop.learn(credentials.client_id, credentials.token_url, required=proofed)
        self.last_dpop = {"proof": proofed, "nonce_round": nonce_asked, "switched": switched}
        self.last_response = response
        span.set("http.response.status_code", response.status)
        span.set("okta_bridge.attempts", response.attempts)
        span.set("okta_bridge.dpop", bool(proofed))
        token = self._judge(response, started, proofed=bool(proofed))
        log.info(
            "token issued",
            extra={
                "client_id": credentials.client_id,
                "grant_type": credentials.grant_type,
                "auth_method": credentials.auth_method,
                "token_scheme": token.scheme,
                "expires_in_s": round(token.lifetime),
                "scopes": list(token.scopes),
                "attempts": response.attempts,
                "rate_limit_remaining": response.header("x-rate-limit-remaining"),
                "ms": round((self._clock() - started) * 1000),
            },
        )
        return token

    def _send(
        self,
        credentials: Credentials,
        deadline: Deadline,
        prepare: Callable[[], tuple[dict[str, str], bytes]],
        *,
        proofed: bool,
    ) -> HttpResponse:
        try:
            return self._http.request(
                "POST",
                credentials.token_url,
                target=TOKEN_TARGET,
                deadline=deadline,
                headers={
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                prepare=prepare,
                signer=ProofSigner(self.dpop) if proofed else None,
                max_bytes=MAX_TOKEN_RESPONSE,
            )
        except ResponseTooLarge:
            raise TokenError(
                "TOKEN_INVALID_RESPONSE", "Okta's token answer is too large."
            ) from None

    def _wants_dpop(self, credentials: Credentials) -> bool | None:
        """Whether to send a proof first: the secret's ``dpop`` (each app's own truth, so one
        function can hold apps that differ: the admin app's org may lack DPoP for its Management
        API), else ``BRIDGE_DPOP=on|off``, else what this environment learned; None when
        ``auto`` has learned nothing yet."""
        if credentials.dpop is not None:
            return credentials.dpop
        if self._dpop_mode != "auto":
            return self._dpop_mode == "on"
        return self.dpop.required(credentials.client_id, credentials.token_url)

    def _dpop_needed(
        self, credentials: Credentials, response: HttpResponse, error: str, deadline: Deadline
    ) -> bool:
        """Whether a proof-less request was refused for want of a proof.

        Okta says so (``invalid_dpop_proof``). Another RFC 9449 server may answer a generic
        error (panva's oidc-provider: ``invalid_grant``); that is worth one proofed try, once per
        client and environment, when the server's discovery metadata lists DPoP and the grant is
        client credentials (for the password grant ``invalid_grant`` means a wrong password).
        """
        if response.status not in (400, 401):
            return False
        if error == "invalid_dpop_proof":
            return True
        if error not in _GENERIC_DPOP_REFUSALS or credentials.grant_type == "password":
            return False
        if not self.dpop.first_probe(credentials.client_id, credentials.token_url):
            return False
        return self.dpop.server_supports(response.url, self._http, deadline)

    def _judge(self, response: HttpResponse, started: float, *, proofed: bool) -> AccessToken:
        if response.status == 200:
            return self._parse_token(response, started, proofed=proofed)
        body = response.json_object()
        oauth_error = str(body.get("error", "")) if body else ""
        # Redacted before it is cut: a credential Okta echoes must not survive as a prefix.
        description = REDACTOR.text(str(body.get("error_description", "")))[:300] if body else ""
        if response.status == 429:
            raise TokenError(
                "TOKEN_RATE_LIMITED",
                f"Okta rate limited the token request (HTTP 429, {response.attempts} attempts).",
                retry_after=retry_after_seconds(response, now=self._wall_clock),
            )
        if oauth_error in _DPOP_ERRORS:
            code = _DPOP_ERRORS[oauth_error] if proofed else "TOKEN_DPOP_REQUIRED"
            raise TokenError(
                code,
                f"Okta refused the token request: {oauth_error}: {description}".rstrip(": ")
                + (
                    "" if proofed else " (no DPoP proof was sent: BRIDGE_DPOP or the secret's dpop)"
                ),
            )
        if oauth_error:
            code = _OAUTH_ERRORS.get(oauth_error, "TOKEN_ENDPOINT_ERROR")
            raise TokenError(
                code, f"Okta refused the token request: {oauth_error}: {description}".rstrip(": ")
            )
        if response.status >= 500:
            raise TokenError(
                "TOKEN_ENDPOINT_ERROR",
                f"Okta's token endpoint failed with HTTP {response.status} "
                f"after {response.attempts} attempts.",
            )
        raise TokenError(
            "TOKEN_INVALID_RESPONSE",
            f"Unexpected HTTP {response.status} from the token endpoint; is the token URL right?",
        )

    def _parse_token(self, response: HttpResponse, started: float, *, proofed: bool) -> AccessToken:
        body = response.json_object()
        if body is None:
            raise TokenError("TOKEN_INVALID_RESPONSE", "Okta's token answer is not a JSON object.")
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise TokenError("TOKEN_INVALID_RESPONSE", "Okta's token answer has no access_token.")
        if self._on_token is not None:
            self._on_token(value)
        token_type = body.get("token_type")
        kind = token_type.lower() if isinstance(token_type, str) else ""
        # A proof may still get a Bearer token (a server that does not bind); a DPoP token
        # without a proof would be bound to no key this environment holds.
        if kind not in ("bearer", "dpop") or (kind == "dpop" and not proofed):
            raise TokenError(
                "TOKEN_INVALID_RESPONSE",
                f"Okta issued a {str(token_type)[:20]!r} token to a request "
                f"{'with' if proofed else 'without'} a DPoP proof; the bridge uses Bearer and "
                "DPoP tokens.",
            )
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            log.warning("token answer without a valid expires_in; assuming 300 s")
            lifetime = DEFAULT_LIFETIME
        scope = body.get("scope")
        scopes = tuple(scope.split()) if isinstance(scope, str) else ()
        expires_at = started + float(lifetime)
        return AccessToken(
            value=value,
            expires_at=expires_at,
            refresh_at=self._refresh_moment(started, float(lifetime)),
            lifetime=float(lifetime),
            scopes=scopes,
            scheme="DPoP" if kind == "dpop" else "Bearer",
        )

    def _refresh_moment(self, issued: float, lifetime: float) -> float:
        """A moment drawn at random in the token's last tenth (at most 5 minutes early), and at
        least a fifth of that window before expiry, so a failed refresh can fall back."""
        window = min(300.0, max(lifetime * 0.1, min(30.0, lifetime / 4)))
        return issued + lifetime - self._rng.uniform(window / 5, window)

    def reseed(self) -> None:
        """A fresh seed from ``os.urandom``: after a SnapStart restore every environment would
        otherwise draw the snapshot's refresh moments, and refresh in step."""
        self._rng.seed()


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
    ) -> None:
        self._secrets = secrets
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
        if token is not None and self._clock() < token.refresh_at:
            return token
        if not self._lock.acquire(timeout=max(deadline.remaining(), 0.001)):
            raise NetworkError(
                "TOKEN_TIMEOUT", "Timed out waiting for a token refresh in progress."
            )
        try:
            token = self._token
            now = self._clock()
            if token is not None and now < token.refresh_at:
                return token
            try:
                self._token = self._fetch(deadline)
            except BridgeError as exc:
                if token is not None and token.usable(self._clock()):
                    log.warning(
                        "token refresh failed; the current token keeps serving",
                        extra={"code": exc.code, "expires_in_s": round(token.expires_at - now)},
                    )
                    return token
                raise
            return self._token
        finally:
            self._lock.release()

    def will_request(self) -> bool:
        """Whether the next ``get`` will ask Okta (no token, or its refresh moment passed)."""
        token = self._token
        return token is None or self._clock() >= token.refresh_at

    def age(self, token: AccessToken) -> float:
        """Seconds since ``token`` was requested."""
        return self._clock() - token.issued_at

    def invalidate(self, token: AccessToken) -> None:
        """Drop ``token`` (the API refused it) unless it was already replaced."""
        with self._lock:
            if self._token is token:
                self._token = None

    def clear(self) -> None:
        """Forget the cached token and Okta's last raw answer, which holds it too (SnapStart,
        tests)."""
        with self._lock:
            self._token = None
            self._endpoint.last_response = None
            self.budget.clear()

    def reseed(self) -> None:
        """New seed for the refresh jitter (after a SnapStart restore)."""
        self._endpoint.reseed()

    def _fetch(self, deadline: Deadline) -> AccessToken:
        credentials = self._secrets.fresh(deadline)
        try:
            return self._request(credentials, deadline)
        except TokenError as exc:
            if not _credentials_refused(exc, credentials):
                raise
            log.warning("Okta refused the credentials; re-reading the secret once")
            reread = self._secrets.reload(stale=credentials, deadline=deadline)
            if reread == credentials:
                raise
            return self._request(reread, deadline)

    def _request(self, credentials: Credentials, deadline: Deadline) -> AccessToken:
        return self._endpoint.request(credentials, deadline, spend=self.budget.take)


def _credentials_refused(exc: TokenError, credentials: Credentials) -> bool:
    """Okta refused the credentials themselves: they were probably rotated.

    ``invalid_client`` for the app's secret or key; ``invalid_grant`` for a service account's
    password (the password grant reports a wrong password that way).
    """
    if exc.code == "TOKEN_REJECTED":
        return True
    return exc.code == "TOKEN_GRANT_INVALID" and credentials.grant_type == "password"

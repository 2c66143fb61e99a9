"""TokenEndpoint: one token request to Okta, and what its answer means.

It builds the grant (client authentication, DPoP proof and nonce round), classifies Okta's refusals
into stable error codes (``TOKEN_REJECTED``, ``TOKEN_DPOP_REQUIRED``, ...) and parses the token. The
cache, the single flight and the budget that decide *when* to call it are in ``tokens``.
"""

from __future__ import annotations

import random
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from okta_bridge import metrics, tracing
from okta_bridge.auth.access_token import AccessToken, refresh_window
from okta_bridge.auth.client_auth import KEYS, AssertionSigner, authenticate
from okta_bridge.auth.dpop import DPOP, Dpop, ProofKey, ProofSigner
from okta_bridge.errors import BridgeError, TokenError
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import (
    HttpResponse,
    ResponseTooLarge,
    Target,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from okta_bridge.auth.kms_signing import KmsSigner

log = get_logger("tokens")

TOKEN_TARGET = Target("Okta token endpoint", "TOKEN_UNREACHABLE", "TOKEN_TIMEOUT")

MAX_TOKEN_RESPONSE = 65_536

# RFC 6749 makes expires_in optional; without it assume a short life rather than guess long.
DEFAULT_LIFETIME = 300


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


# RFC 6750 2.1's b64token. Okta's access tokens are JWTs, hundreds of characters; the floor keeps
# a short word (a server's choice) out of the redactor, where it would blank that word in logs.
B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]{16,}=*")


def _oauth_error(response: HttpResponse) -> str:
    """The OAuth ``error`` of an answer, or ""."""
    if response.status < 400:
        return ""
    body = response.json_object()
    return str(body.get("error", ""))[:60] if body else ""


def _definite(response: HttpResponse) -> bool:
    """Whether the token endpoint decided (a token, or an OAuth error it chose to answer)
    rather than failed to answer now (a 5xx, a 408, a 429)."""
    return response.status == 200 or (
        400 <= response.status < 500
        and response.status not in (408, 429)
        and bool(_oauth_error(response))
    )


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
        self._kms: KmsSigner | None = None
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
        own_key: bool = False,
    ) -> AccessToken:
        """Ask Okta for a token with ``credentials``; raises ``TokenError`` with Okta's reason.

        ``own_key`` binds a DPoP-bound token to a proof key made for it alone, which the token
        carries (the shared cache hands both to the fleet), not to the environment's key.

        ``spend`` is called before every attempt (retries included) and may refuse it by
        raising: the environment's token budget counts attempts, not what was meant (an attempt
        whose kms:Sign failed counts too, so the budget also bounds KMS calls in an outage).
        """
        metrics.token_request()
        attributes = {
            "server.address": urllib.parse.urlsplit(credentials.token_url).hostname or "",
            "oauth.grant_type": credentials.grant_type,
            "oauth.client_auth_method": credentials.auth_method,
        }
        with tracing.span(tracing.TOKEN_REQUEST, attributes) as span:
            try:
                return self._request(credentials, deadline, span, spend, own_key=own_key)
            except BridgeError as exc:
                metrics.token_failed(exc)
                raise

    def _request(
        self,
        credentials: Credentials,
        deadline: Deadline,
        span: tracing.Span,
        spend: Callable[[], None] | None,
        *,
        own_key: bool = False,
    ) -> AccessToken:
        form = {"grant_type": credentials.grant_type, "scope": " ".join(credentials.scopes)}
        if credentials.username is not None:
            form["username"] = credentials.username
            form["password"] = credentials.password or ""

        def prepare() -> tuple[dict[str, str], bytes]:
            if spend is not None:
                spend()
            # A fresh client authentication per attempt: a used jti is never sent again (and,
            # for a key held in KMS, one kms:Sign per attempt).
            auth = authenticate(credentials, self._wall_clock(), sign=self._kms_sign(deadline))
            return auth.headers, urllib.parse.urlencode({**form, **auth.form}).encode()

        self.requests += 1
        started = self._clock()
        wanted = self._wants_dpop(credentials)
        if self._slow_to_prepare(credentials, wanted):
            # Work comes before the request is sent (cryptography imported and the DPoP key made,
            # a PEM key parsed, a kms:Sign): the connection to Okta (TCP, TLS, a proxy's tunnel)
            # opens meanwhile on a thread, instead of after it.
            self._http.preconnect(credentials.token_url, tls=None, deadline=deadline)
        # auto: as learned in this environment (at first without a proof), switching to DPoP
        # when the token endpoint refuses a request for want of one (also after learning
        # otherwise: an admin may turn the app's DPoP on at any time).
        auto = self.auto(credentials)
        proofed, switched, nonce_asked = bool(wanted), False, False
        while True:
            signer = ProofSigner(self.dpop, own_key=own_key) if proofed else None
            response = self._send(credentials, deadline, prepare, signer=signer)
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
        if switched and _definite(response):
            # The one proofed try is spent only by an answer (a token or an OAuth refusal): a
            # reset, a timeout or an exhausted budget raised above, a 5xx or a 429 is no answer.
            self.dpop.mark_probed(credentials.client_id, credentials.token_url)
        self.last_dpop = {"proof": proofed, "nonce_round": nonce_asked, "switched": switched}
        self.last_response = response
        span.set("http.response.status_code", response.status)
        span.set("okta_bridge.attempts", response.attempts)
        span.set("okta_bridge.dpop", bool(proofed))
        bound_to = signer.thumbprint if signer is not None else None
        key = signer.own_key if signer is not None else None
        token = self._judge(response, started, proofed=bool(proofed), bound_to=bound_to, key=key)
        if auto:  # learned from a token the bridge accepted, never from a refusal
            self.dpop.learn(credentials.client_id, credentials.token_url, required=proofed)
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

    def _kms_sign(self, deadline: Deadline) -> AssertionSigner:
        """Signs with the credentials' KMS key inside ``deadline``; the KMS client is made on
        first use, so that clients without a KMS key never import or build it."""

        def sign(credentials: Credentials, signing_input: bytes) -> bytes:
            if self._kms is None:
                from okta_bridge.auth.kms_signing import KmsSigner  # noqa: PLC0415

                self._kms = KmsSigner(self._http.settings, self._http)
            key = credentials.kms_key_id or ""
            return self._kms.sign(key, signing_input, credentials.key_algorithm, deadline)

        return sign

    def _send(
        self,
        credentials: Credentials,
        deadline: Deadline,
        prepare: Callable[[], tuple[dict[str, str], bytes]],
        *,
        signer: ProofSigner | None,
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
                signer=signer,
                max_bytes=MAX_TOKEN_RESPONSE,
            )
        except ResponseTooLarge:
            raise TokenError(
                "TOKEN_INVALID_RESPONSE", "Okta's token answer is too large."
            ) from None

    def auto(self, credentials: Credentials) -> bool:
        """Whether DPoP is learned for these credentials (``auto``), not configured."""
        return self._dpop_mode == "auto" and credentials.dpop is None

    def _slow_to_prepare(self, credentials: Credentials, wanted: bool | None) -> bool:
        """Whether this request costs more than microseconds to prepare: the environment's first
        DPoP proof (its key), a PEM key not parsed yet, or any KMS-signed assertion."""
        if wanted and not self.dpop.has_key:
            return True
        if credentials.kms_key_id is not None:
            return True
        return credentials.private_key is not None and credentials.private_key not in KEYS

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
        if self.dpop.probed(credentials.client_id, credentials.token_url):
            return False
        supported = self.dpop.server_supports(response.url, self._http, deadline)
        return bool(supported)  # None: the metadata could not be read; ask next time

    def _judge(
        self,
        response: HttpResponse,
        started: float,
        *,
        proofed: bool,
        bound_to: str | None,
        key: ProofKey | None = None,
    ) -> AccessToken:
        if response.status == 200:
            return self._parse_token(response, started, proofed=proofed, bound_to=bound_to, key=key)
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

    def _parse_token(
        self,
        response: HttpResponse,
        started: float,
        *,
        proofed: bool,
        bound_to: str | None,
        key: ProofKey | None,
    ) -> AccessToken:
        body = response.json_object()
        if body is None:
            raise TokenError("TOKEN_INVALID_RESPONSE", "Okta's token answer is not a JSON object.")
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise TokenError("TOKEN_INVALID_RESPONSE", "Okta's token answer has no access_token.")
        if not B64TOKEN.fullmatch(value):
            # Not sendable in an Authorization header (RFC 6750 2.1, RFC 9449 7.1); and never
            # registered with the redactor: the server would choose what the logs lose.
            raise TokenError(
                "TOKEN_INVALID_RESPONSE",
                "Okta's access_token is not a token (RFC 6750 b64token, 16 characters or more).",
            )
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
        if self._on_token is not None:
            self._on_token(value)  # only a token the bridge accepted
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
            bound_to=bound_to if kind == "dpop" else None,
            key=key if kind == "dpop" else None,
        )

    def _refresh_moment(self, issued: float, lifetime: float) -> float:
        """A moment drawn at random in the token's last tenth (at most 5 minutes early), and at
        least a fifth of that window before expiry, so a failed refresh can fall back."""
        window = refresh_window(lifetime)
        return issued + lifetime - self._rng.uniform(window / 5, window)

    def reseed(self) -> None:
        """A fresh seed from ``os.urandom``: after a SnapStart restore every environment would
        otherwise draw the snapshot's refresh moments, and refresh in step."""
        self._rng.seed()

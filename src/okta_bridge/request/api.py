"""The internal API call: a request with the access token that refreshes it once on a 401.

The bridge function and the library (``okta_bridge.client``) send through the same code.
A write is retried only when it surely never reached the API, unless the caller gave an
idempotency key (sent as ``Idempotency-Key``): then the API can recognise a repeat.

A 401 costs a new token only when it can help and the environment can afford it: not for an
``insufficient_scope`` challenge (a new token has the same scopes), and not when the token was
minted moments ago (``BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS``), so an allowed path that always
answers 401 cannot make the bridge mint a token per call against Okta's shared rate limit.
Redirects stay on the configured origin and must lead to a path the same policy allows.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

from okta_bridge import metrics, tracing
from okta_bridge.auth.access_token import AccessToken
from okta_bridge.auth.challenges import challenge_error, challenges
from okta_bridge.auth.dpop import Dpop, ProofSigner
from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.errors import UpstreamError
from okta_bridge.logs import get_logger
from okta_bridge.request.events import ApiResult
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import (
    BodySink,
    HttpResponse,
    Redirect,
    RedirectRefused,
    ResponseTooLarge,
    Target,
    retry_after_seconds,
)
from okta_bridge.transport.tls import TlsPolicy

API_TARGET = Target("internal API", "UPSTREAM_UNREACHABLE", "UPSTREAM_TIMEOUT")

_STATUS_CODES = {401: "UPSTREAM_UNAUTHORIZED", 403: "UPSTREAM_FORBIDDEN", 404: "UPSTREAM_NOT_FOUND"}

log = get_logger("api")


class Outgoing(NamedTuple):
    """What a call sends besides the token: its method, and for a write the body. (Named
    tuples here, not dataclasses: this module is on the handler's cold import.)"""

    method: str = "GET"
    body: bytes | None = None
    content_type: str | None = None
    idempotency_key: str | None = None
    max_answer: int | None = None  # a tighter cap on the answer's bytes than the configured one
    sink: BodySink | None = None  # takes a success's body as it arrives (S3 delivery)

    @property
    def idempotent(self) -> bool:
        """Safe to repeat after an ambiguous failure (a reset after the request left)."""
        return self.method in ("GET", "HEAD") or self.idempotency_key is not None

    def __repr__(self) -> str:  # the body stays out of reprs (a caller's data)
        size = "none" if self.body is None else f"{len(self.body)} bytes"
        return f"Outgoing(method={self.method!r}, body={size})"

    def headers(self) -> dict[str, str]:
        extra = {"Content-Type": self.content_type} if self.content_type else {}
        if self.idempotency_key is not None:
            extra["Idempotency-Key"] = self.idempotency_key
        return extra


GET = Outgoing()


class Exchange(NamedTuple):
    """The API's last answer to one call, and what it took."""

    response: HttpResponse
    attempts: int
    elapsed_ms: int


class InternalApi:
    """Reads JSON from the internal API with the current access token."""

    def __init__(
        self,
        tokens: TokenProvider,
        http: HttpClient,
        *,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._http = http
        self._max_bytes = max_bytes
        self._clock = clock
        self._wall_clock = wall_clock
        self.requests = 0

    def exchange(
        self,
        url: str,
        outgoing: Outgoing,
        *,
        request_id: str,
        deadline: Deadline,
        tls: TlsPolicy | None = None,
        redirect: Redirect | None = None,
    ) -> Exchange:
        """Send ``outgoing`` to ``url``; on a 401 that a new token can cure, drop the token,
        fetch a new one and try exactly once more (a refused request was not acted on, so a
        write may be sent again). ``redirect`` checks a same-origin redirect (None: none
        followed). The answer is not judged: any status comes back."""
        started = self._clock()
        if self._tokens.will_request():
            # A token request is coming (cold start, refresh): open the API connection meanwhile.
            self._http.preconnect(url, tls=tls, deadline=deadline)

        def send(token: AccessToken) -> HttpResponse:
            return self._send(
                url, outgoing, token, request_id, deadline, tls=tls, redirect=redirect
            )

        token = self._tokens.get(deadline)
        response = send(token)
        attempts = response.attempts
        if response.status == 401 and wants_its_nonce(response, token):
            # The API's own DPoP nonce, now remembered: exactly one more request carrying it.
            response = send(token)
            attempts += response.attempts
        if response.status == 401:
            try:
                refuse_dpop_failure(response, token)
            except UpstreamError as exc:
                if exc.code == "UPSTREAM_DPOP_UNSUPPORTED":
                    self._tokens.dpop_unsupported(token, deadline)
                raise
        if response.status == 401 and self._refresh_helps(response, token):
            log.warning("the API refused the token; refreshing it once")
            self._tokens.invalidate(token, deadline)
            token = self._tokens.get(deadline)
            response = send(token)
            attempts += response.attempts
        return Exchange(response, attempts, round((self._clock() - started) * 1000))

    def _refresh_helps(self, response: HttpResponse, token: AccessToken) -> bool:
        if challenge_error(response, token.scheme) == "insufficient_scope":
            log.warning("the API wants another scope; a new token would not have it")
            return False
        age = self._tokens.age(token)
        if age < self._tokens.refresh_min_age:
            log.warning(
                "the API refused a token minted moments ago; not minting another",
                extra={"token_age_s": round(age, 1), "min_age_s": self._tokens.refresh_min_age},
            )
            return False
        return True

    def _send(
        self,
        url: str,
        outgoing: Outgoing,
        token: AccessToken,
        request_id: str,
        deadline: Deadline,
        *,
        tls: TlsPolicy | None,
        redirect: Redirect | None,
    ) -> HttpResponse:
        """One API request, counted, timed and traced."""
        self.requests += 1
        started = self._clock()
        status: int | None = None
        parts = urllib.parse.urlsplit(url)
        attributes = {
            "http.request.method": outgoing.method,
            "server.address": parts.hostname or "",
            "url.path": parts.path,
        }
        try:
            with tracing.span(tracing.API_CALL, attributes) as span:
                response = send(
                    self._http,
                    url,
                    outgoing,
                    token=token,
                    dpop=self._tokens.dpop,
                    request_id=request_id,
                    deadline=deadline,
                    max_bytes=min(self._max_bytes, outgoing.max_answer or self._max_bytes),
                    tls=tls,
                    redirect=redirect,
                )
                status = response.status
                span.set("http.response.status_code", status)
                span.set("okta_bridge.attempts", response.attempts)
                return response
        finally:
            metrics.upstream_call(status, (self._clock() - started) * 1000)


def send(
    http: HttpClient,
    url: str,
    outgoing: Outgoing,
    *,
    token: AccessToken,
    dpop: Dpop,
    request_id: str,
    deadline: Deadline,
    max_bytes: int,
    tls: TlsPolicy | None,
    redirect: Redirect | None,
) -> HttpResponse:
    """One request to the API with ``token`` (retries as ``outgoing`` allows, redirects within
    the origin when ``redirect`` checks them), sizes and redirects mapped to ``UpstreamError``;
    the bridge, the library and diagnose's probe call the API this one way.
    A DPoP-bound token goes as ``Authorization: DPoP`` with a fresh proof (``ath``, the API's
    nonce) on every request sent, and is never downgraded to Bearer."""
    try:
        return http.request(
            outgoing.method,
            url,
            target=API_TARGET,
            deadline=deadline,
            headers={
                "Authorization": f"{token.scheme} {token.value}",
                "Accept": "application/json",
                "X-Request-ID": request_id,
                **outgoing.headers(),
            },
            body=outgoing.body,
            max_bytes=max_bytes,
            redirect=redirect,
            tls=tls,
            idempotent=outgoing.idempotent,
            signer=(
                ProofSigner(dpop, token.value, key=token.key) if token.scheme == "DPoP" else None
            ),
            sink=outgoing.sink,
        )
    except ResponseTooLarge as exc:
        raise UpstreamError(
            "UPSTREAM_TOO_LARGE", f"The API's answer is over {exc.limit} bytes."
        ) from None
    except RedirectRefused as exc:
        raise UpstreamError("UPSTREAM_REDIRECT", f"Refused a redirect: {exc}.") from None


def judge(
    response: HttpResponse,
    attempts: int,
    elapsed_ms: int,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> ApiResult:
    """The API's answer as the bridge's result, or the ``UpstreamError`` for its status."""
    refuse_failure(response, attempts, wall_clock=wall_clock)
    text, data = decode_json(response.body)
    return ApiResult(response.status, data, text, attempts, elapsed_ms)


def refuse_failure(
    response: HttpResponse, attempts: int, *, wall_clock: Callable[[], float] = time.time
) -> None:
    """Raise the ``UpstreamError`` for a status that is not a success (2xx)."""
    status = response.status
    if 200 <= status < 300:
        return
    where = f"HTTP {status} from the API after {attempts} attempt(s)"
    challenge = challenge_error(response) if status in (401, 403) else None
    if challenge:
        where += f" ({challenge[:40]})"
    if status in _STATUS_CODES:
        raise UpstreamError(_STATUS_CODES[status], f"{where}.")
    if status == 429:
        raise UpstreamError(
            "UPSTREAM_RATE_LIMITED",
            f"{where}.",
            retry_after=retry_after_seconds(response, now=wall_clock),
        )
    if 300 <= status < 400:
        raise UpstreamError("UPSTREAM_REDIRECT", f"{where} (redirect not followed).")
    if status < 500:
        raise UpstreamError("UPSTREAM_CLIENT_ERROR", f"{where}.")
    raise UpstreamError("UPSTREAM_ERROR", f"{where}.")


def decode_json(body: bytes) -> tuple[str, object]:
    """The body as text and as JSON (no NaN, bounded nesting), or ``UPSTREAM_NOT_JSON``."""
    if not body.strip():
        return "", None
    try:
        text = body.decode("utf-8")
        return text, json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise UpstreamError("UPSTREAM_NOT_JSON", "The API's answer is not valid UTF-8.") from None
    except ValueError:
        raise UpstreamError("UPSTREAM_NOT_JSON", "The API's answer is not JSON.") from None
    except RecursionError:
        # json's parser recurses per nesting level; Python's limit (about 1,000) is the bound.
        raise UpstreamError(
            "UPSTREAM_NOT_JSON", "The API's answer is JSON nested too deeply to parse."
        ) from None


def _refuse_constant(name: str) -> object:
    """NaN and Infinity are not JSON (RFC 8259 6): Python would parse them and pass them on."""
    raise ValueError(f"{name} is not JSON")


def wants_its_nonce(response: HttpResponse, token: AccessToken) -> bool:
    """A DPoP 401 whose challenge asks for the nonce the answer carries (RFC 9449 9)."""
    if token.scheme != "DPoP" or not response.header("dpop-nonce"):
        return False
    dpop = challenges(response.header("www-authenticate") or "").get("dpop", {})
    return dpop.get("error") == "use_dpop_nonce"


def refuse_dpop_failure(response: HttpResponse, token: AccessToken) -> None:
    """A 401 to a DPoP-bound token that a new token cannot cure: the API's gateway does not
    know DPoP (its challenges name only other schemes), or it refused the proof itself."""
    if token.scheme != "DPoP":
        return
    header = response.header("www-authenticate")
    if not header:
        return  # no challenge: nothing to tell; the usual 401 rules apply
    found = challenges(header)
    if not found:
        return  # a challenge that does not parse says nothing, not "no DPoP"
    if "dpop" not in found:
        schemes = ", ".join(sorted(found)) or "none"
        raise UpstreamError(
            "UPSTREAM_DPOP_UNSUPPORTED",
            f"The API answered 401 to a DPoP-bound token with a challenge for {schemes[:60]} "
            "only: its gateway does not validate DPoP.",
        )
    error = found["dpop"].get("error", "")
    if error in ("invalid_dpop_proof", "use_dpop_nonce"):
        raise UpstreamError(
            "UPSTREAM_DPOP_REJECTED",
            f"The API refused the DPoP proof ({error}"
            + (", again after its nonce" if error == "use_dpop_nonce" else "")
            + ").",
        )

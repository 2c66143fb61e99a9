"""The internal API call: a bearer GET that refreshes the token once on a 401."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable

from okta_bridge import metrics, tracing
from okta_bridge.errors import UpstreamError
from okta_bridge.events import ApiResult
from okta_bridge.logs import get_logger
from okta_bridge.tls import TlsPolicy
from okta_bridge.tokens import TokenProvider
from okta_bridge.transport import (
    Deadline,
    HttpClient,
    HttpResponse,
    RedirectRefused,
    ResponseTooLarge,
    Target,
    retry_after_seconds,
)

API_TARGET = Target("internal API", "UPSTREAM_UNREACHABLE", "UPSTREAM_TIMEOUT")

_STATUS_CODES = {401: "UPSTREAM_UNAUTHORIZED", 403: "UPSTREAM_FORBIDDEN", 404: "UPSTREAM_NOT_FOUND"}

log = get_logger("api")


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

    def get(
        self, url: str, *, request_id: str, deadline: Deadline, tls: TlsPolicy | None = None
    ) -> ApiResult:
        """GET ``url``; on a 401 drop the token, fetch a new one and try exactly once more."""
        started = self._clock()
        if self._tokens.will_request():
            # A token request is coming (cold start, refresh): open the API connection meanwhile.
            self._http.preconnect(url, tls=tls, deadline=deadline)
        token = self._tokens.get(deadline)
        response = self._send(url, token.value, request_id, deadline, tls)
        attempts = response.attempts
        if response.status == 401:
            log.warning("the API refused the token; refreshing it once")
            self._tokens.invalidate(token)
            token = self._tokens.get(deadline)
            response = self._send(url, token.value, request_id, deadline, tls)
            attempts += response.attempts
        elapsed_ms = round((self._clock() - started) * 1000)
        return self._judge(response, attempts, elapsed_ms)

    def _send(
        self, url: str, token: str, request_id: str, deadline: Deadline, tls: TlsPolicy | None
    ) -> HttpResponse:
        """One API request, counted, timed and traced."""
        self.requests += 1
        started = self._clock()
        status: int | None = None
        parts = urllib.parse.urlsplit(url)
        attributes = {
            "http.request.method": "GET",
            "server.address": parts.hostname or "",
            "url.path": parts.path,
        }
        try:
            with tracing.span(tracing.API_CALL, attributes) as span:
                response = self._get_once(url, token, request_id, deadline, tls)
                status = response.status
                span.set("http.response.status_code", status)
                span.set("okta_bridge.attempts", response.attempts)
                return response
        finally:
            metrics.upstream_call(status, (self._clock() - started) * 1000)

    def _get_once(
        self, url: str, token: str, request_id: str, deadline: Deadline, tls: TlsPolicy | None
    ) -> HttpResponse:
        return get(
            self._http,
            url,
            token=token,
            request_id=request_id,
            deadline=deadline,
            max_bytes=self._max_bytes,
            tls=tls,
        )

    def _judge(self, response: HttpResponse, attempts: int, elapsed_ms: int) -> ApiResult:
        return judge(response, attempts, elapsed_ms, wall_clock=self._wall_clock)


def get(
    http: HttpClient,
    url: str,
    *,
    token: str,
    request_id: str,
    deadline: Deadline,
    max_bytes: int,
    tls: TlsPolicy | None,
) -> HttpResponse:
    """One bearer GET of the API (retries, redirects within the origin), sizes and redirects
    mapped to ``UpstreamError``; the bridge and diagnose call the API the same way."""
    try:
        return http.request(
            "GET",
            url,
            target=API_TARGET,
            deadline=deadline,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "X-Request-ID": request_id,
            },
            max_bytes=max_bytes,
            follow_redirects=True,
            tls=tls,
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
    status = response.status
    if 200 <= status < 300:
        text, data = _decode_json(response.body)
        return ApiResult(status, data, text, attempts, elapsed_ms)
    where = f"HTTP {status} from the API after {attempts} attempt(s)"
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


def _decode_json(body: bytes) -> tuple[str, object]:
    if not body.strip():
        return "", None
    try:
        text = body.decode("utf-8")
        return text, json.loads(text)
    except UnicodeDecodeError:
        raise UpstreamError("UPSTREAM_NOT_JSON", "The API's answer is not valid UTF-8.") from None
    except ValueError:
        raise UpstreamError("UPSTREAM_NOT_JSON", "The API's answer is not JSON.") from None

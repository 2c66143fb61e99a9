"""The hardened HTTP client shared by the token, API, secret and Okta admin calls.

``HttpClient.request`` is one logical request: it picks a pool (``pool``), bounds every wait by the
invocation's ``Deadline`` (``deadline``), and decides what a failure means (``errors``):

- Retries of idempotent calls on connection errors, 429, 502, 503 and 504: exponential backoff with
  full jitter, or the server's ``Retry-After`` / Okta's ``X-Rate-Limit-Reset`` when given, and never
  past the deadline.
- Non-idempotent requests (``idempotent=False``) are retried only when they surely never left:
  the connection could not be made (DNS, refused, connect timeout, the proxy's CONNECT), or the
  server answered 429. After a reset, a read timeout or a 5xx the caller must look the result up.
- Redirects are followed only when the caller asks, only within the origin of the request (a
  ``Location`` on another origin is refused before anything is sent there), only to https, at
  most a few, and each new URL is first passed to the caller's check (the bridge's path policy).
- A response size cap. TLS is always verified; there is no switch to turn verification off.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import NamedTuple

import urllib3

from okta_bridge import metrics
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError
from okta_bridge.logs import get_logger
from okta_bridge.records import Record
from okta_bridge.transport.deadline import (
    WATCHDOG,
    Deadline,
    DeadlineHit,
    Watch,
    discard,
    read_body,
    watching,
)
from okta_bridge.transport.errors import Transient, classify
from okta_bridge.transport.message import (
    BodySink,
    HttpResponse,
    Redirect,
    RedirectRefused,
    ResponseTooLarge,
    Signer,
    Target,
    retry_after_seconds,
)
from okta_bridge.transport.pool import Pools
from okta_bridge.transport.tls import TlsPolicy

RETRY_STATUSES = frozenset({429, 502, 503, 504})


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


MAX_REDIRECTS = 3


# The least time worth starting an attempt with; below it the deadline has effectively passed.
_MIN_ATTEMPT = 0.05


log = get_logger("transport")


class _Call(NamedTuple):
    """What stays the same across the attempts and redirects of one request."""

    target: Target
    deadline: Deadline
    max_bytes: int
    redirect: Redirect | None
    idempotent: bool = True
    tls: TlsPolicy | None = None
    signer: Signer | None = None
    sink: BodySink | None = None


class RetryPolicy(Record):
    """Exponential backoff with full jitter, bounded by attempts and the deadline. (Mutable, so
    a ``Record`` rather than a named tuple; see ``okta_bridge.records``.)"""

    _FIELDS = ("max_retries", "base", "cap", "rng")
    __slots__ = _FIELDS

    def __init__(
        self,
        max_retries: int = 2,
        base: float = 0.1,
        cap: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.base = base
        self.cap = cap
        self.rng = random.Random() if rng is None else rng  # noqa: S311 - jitter, not security

    __hash__ = None  # type: ignore[assignment] # mutable and compared by value, as before

    def backoff(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)] (AWS architecture blog)."""
        return self.rng.uniform(0, min(self.cap, self.base * 2**retry))

    def reseed(self) -> None:
        """A fresh seed from ``os.urandom``: after a SnapStart restore every environment would
        otherwise draw the backoffs of the snapshot's generator, in step."""
        self.rng.seed()


class HttpClient:
    """One pooled, verified HTTPS client for the whole execution environment."""

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._pools = Pools(settings)
        self._retry = retry or RetryPolicy(max_retries=settings.max_retries)
        self._sleep = sleep
        self._wall_clock = wall_clock

    @property
    def settings(self) -> Settings:
        """The settings this client was made with (another AWS client on it needs the region)."""
        return self._settings

    def request(
        self,
        method: str,
        url: str,
        *,
        target: Target,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        body: bytes | memoryview | None = None,
        prepare: Callable[[], tuple[dict[str, str], bytes | memoryview]] | None = None,
        max_bytes: int,
        redirect: Redirect | None = None,
        tls: TlsPolicy | None = None,
        retry_when: Callable[[HttpResponse], bool] | None = None,
        idempotent: bool = True,
        signer: Signer | None = None,
        sink: BodySink | None = None,
    ) -> HttpResponse:
        """Send with retries; return the last response (the caller judges its status).

        ``retry_when`` marks more answers as transient than 429/502/503/504 (Secrets Manager
        throttles with a 400); they are retried under the same policy and deadline.
        A ``body`` may be a ``memoryview`` (an S3 part sent from its buffer, not a copy).
        ``prepare`` builds extra headers and the body anew for each attempt (a fresh client
        assertion each time, since Okta consumes its ``jti`` even when the request fails).
        ``redirect`` makes same-origin redirects followed, each new URL checked by it first.
        ``idempotent=False`` retries only what surely never reached the server (see above).
        ``signer`` adds headers to every request sent and sees every answer (DPoP).
        ``sink`` takes the body of the answers it accepts as it arrives (``BodySink``).
        Raises ``NetworkError``/``TlsError`` when no response was had, ``ResponseTooLarge`` and
        ``RedirectRefused``.
        """
        call = _Call(target, deadline, max_bytes, redirect, idempotent, tls, signer, sink)
        attempt = 0
        while True:
            attempt += 1
            attempt_headers, payload = dict(headers or {}), body
            if prepare is not None:
                extra, payload = prepare()
                attempt_headers.update(extra)
            try:
                response = self._send_following(call, method, url, attempt_headers, payload)
            except Transient as exc:
                repeatable = idempotent or exc.unsent
                if not repeatable or not self._may_retry(attempt, None, deadline, target):
                    raise exc.error from exc.__cause__
                delay = self._retry.backoff(attempt - 1)
                self._log_retry(target, attempt, exc.error.code, delay)
            else:
                response = HttpResponse(
                    response.status, response.headers, response.body, response.url, attempt,
                    attempt - 1,
                )  # fmt: skip
                transient = response.status in RETRY_STATUSES or (
                    retry_when is not None and retry_when(response)
                )
                if not transient or not (idempotent or response.status == 429):
                    return response
                wait = retry_after_seconds(response, now=self._wall_clock)
                if not self._may_retry(attempt, wait, deadline, target):
                    return response
                delay = wait if wait is not None else self._retry.backoff(attempt - 1)
                self._log_retry(target, attempt, f"HTTP {response.status}", delay)
            metrics.retry()
            self._sleep(delay)

    def _may_retry(
        self, attempt: int, wait: float | None, deadline: Deadline, target: Target
    ) -> bool:
        if attempt > self._retry.max_retries:
            return False
        needed = (wait or 0.0) + _MIN_ATTEMPT
        if deadline.remaining() <= needed:
            log.info(
                "retry skipped: deadline",
                extra={"target": target.label, "wait_s": wait, "remaining_s": deadline.remaining()},
            )
            return False
        return True

    @staticmethod
    def _log_retry(target: Target, attempt: int, reason: str, delay: float) -> None:
        log.warning(
            "retrying",
            extra={"target": target.label, "attempt": attempt, "reason": reason,
                   "delay_ms": round(delay * 1000)},
        )  # fmt: skip

    def _send_following(
        self,
        call: _Call,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | memoryview | None,
    ) -> HttpResponse:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send_once(call, method, url, headers, body, tls=call.tls)
            location = response.header("location")
            if not (call.redirect and response.status in REDIRECT_STATUSES and location):
                return response
            try:
                url = urllib.parse.urljoin(url, location.strip())
                target_origin = _origin(url)
            except ValueError:  # a bad port or IPv6 literal
                raise RedirectRefused("redirect to a URL that does not parse") from None
            if target_origin[0] != "https":
                raise RedirectRefused("redirect to a non-https URL")
            if target_origin != origin:
                # Never anywhere but the configured origin: an open redirect in the API must not
                # become a way into other hosts (SSRF), with or without our token.
                host, port = target_origin[1], target_origin[2]
                raise RedirectRefused(f"redirect to another origin ({host[:100]}:{port})")
            url = call.redirect(url)
            if response.status == 303:
                method, body = "GET", None
        raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects")

    def _send_once(
        self,
        call: _Call,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | memoryview | None,
        *,
        tls: TlsPolicy | None,
    ) -> HttpResponse:
        target, deadline = call.target, call.deadline
        if deadline.remaining() < _MIN_ATTEMPT:
            raise target.error_class(
                target.timeout_code, f"No time left before calling the {target.label}."
            )
        host = urllib.parse.urlsplit(url).hostname or ""
        manager = self._pools.manager_for(host, tls)
        if call.signer is not None:
            headers = {**headers, **call.signer.headers(method, url)}
        timeout = urllib3.Timeout(
            connect=deadline.cap(self._settings.connect_timeout),
            read=deadline.cap(self._settings.read_timeout),
        )
        late = target.error_class(
            target.timeout_code,
            f"The {target.label} at {host} did not finish its answer before the deadline.",
        )
        watch = Watch(time.monotonic() + deadline.remaining())
        try:
            try:
                with watching(watch):
                    raw = manager.request(
                        method,
                        url,
                        headers=headers,
                        # A memoryview is sent as it is (urllib3 takes any buffer; its hints
                        # name only bytes): an S3 part leaves its buffer without a copy.
                        body=body,  # type: ignore[arg-type]
                        timeout=timeout,
                        redirect=False,
                        preload_content=False,
                        retries=False,
                    )
            except Exception as exc:
                if watch.fired:
                    raise late from None
                raise classify(exc, target, host) from exc
            # One value per name, a repeated field's lines joined with ", " (RFC 9110 5.3): two
            # WWW-Authenticate lines are both read, a repeated DPoP-Nonce is no longer one nonce.
            response_headers = {name.lower(): raw.headers[name] for name in raw.headers}
            sink = call.sink
            if sink is not None and not sink.accepts(raw.status, response_headers):
                sink = None
            try:
                data = read_body(raw, deadline, call.max_bytes, self._settings.read_timeout, sink)
            except (ResponseTooLarge, BridgeError):  # a cap, or the sink's own failure
                discard(raw)
                raise
            except DeadlineHit:
                discard(raw)
                raise late from None
            except Exception as exc:
                discard(raw)
                if watch.fired:
                    raise late from None
                raise classify(exc, target, host) from exc
        finally:
            WATCHDOG.disarm(watch)
        if watch.fired:  # the socket was shut mid-body: what was read may look complete
            discard(raw)
            raise late
        raw.release_conn()
        if call.signer is not None:
            call.signer.seen(url, response_headers)
        return HttpResponse(raw.status, response_headers, data, url, 1)

    def preconnect(
        self, url: str, *, tls: TlsPolicy | None, deadline: Deadline
    ) -> threading.Thread:
        """Open one pooled connection to ``url``'s origin ahead of the request (``Pools``)."""
        return self._pools.preconnect(url, tls=tls, deadline=deadline)

    def close(self) -> None:
        """Close pooled connections; the next request opens new ones (``Pools.close``)."""
        self._pools.close()

    def idle_connections(self) -> int:
        """Open connections waiting in the pools (SnapStart tests: none in a snapshot)."""
        return self._pools.idle_connections()

    def reseed(self) -> None:
        """New seed for the retry jitter (after a SnapStart restore)."""
        self._retry.reseed()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or 443

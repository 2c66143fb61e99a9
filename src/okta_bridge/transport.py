"""The hardened HTTP client shared by the token and API calls.

- TLS is always verified (1.2 minimum): the system store plus an optional extra CA bundle. There is
  no switch to turn verification off.
- One pool with keep-alive per environment; ``HTTPS_PROXY``/``NO_PROXY`` honoured (the proxy sees
  a CONNECT tunnel only, TLS stays end to end).
- Every wait is bounded by the invocation's ``Deadline``: connect, each read of the body (so a
  body that trickles is cut), retry sleeps.
- Retries of idempotent calls on connection errors, 429, 502, 503 and 504: exponential backoff with
  full jitter, or the server's ``Retry-After`` / Okta's ``X-Rate-Limit-Reset`` when given, and never
  past the deadline.
- A response size cap. Redirects are followed only when the caller asks, only within the origin
  of the request (a ``Location`` on another origin is refused before anything is sent there),
  only to https, at most a few, and each new URL is first passed to the caller's check (the
  bridge's path policy).
- Non-idempotent requests (``idempotent=False``) are retried only when they surely never left:
  the connection could not be made (DNS, refused, connect timeout, the proxy's CONNECT), or the
  server answered 429. After a reset, a read timeout or a 5xx the caller must look the result up.
- A watchdog bounds the wait for a response's head by the deadline too: a server that trickles
  its status line and headers a byte at a time is cut when the deadline passes.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import math
import random
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import urllib3
from urllib3 import exceptions as u3e
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from okta_bridge import metrics
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError, NetworkError, TlsError
from okta_bridge.logs import get_logger
from okta_bridge.tls import PinMismatchError, TlsPolicy, load_client_certificate, pinned

USER_AGENT = "okta-bridge/0.1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
MAX_RETRY_AFTER = 86_400.0
_READ_CHUNK = 65_536
# After a session ticket, how long the socket must stay quiet before the next one is not awaited.
_TICKET_QUIET = 0.02
# The least time worth starting an attempt with; below it the deadline has effectively passed.
_MIN_ATTEMPT = 0.05

log = get_logger("transport")


class Deadline:
    """An absolute point in time every wait of one invocation must respect."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + max(0.0, seconds)

    @classmethod
    def from_context(cls, context: Any, settings: Settings) -> Deadline:
        """Lambda's remaining time minus the margin; the configured default without a context."""
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining_ms):
            return cls(float(remaining_ms()) / 1000 - settings.deadline_margin)
        return cls(settings.default_deadline)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())

    def cap(self, timeout: float) -> float:
        """``timeout`` shortened to what is left (at least a sliver, so sockets never block)."""
        return max(0.001, min(timeout, self.remaining()))


@dataclass(frozen=True)
class Target:
    """Who is being called, for error codes and messages that name the right hop."""

    label: str
    unreachable_code: str
    timeout_code: str
    error_class: type[BridgeError] = NetworkError


@dataclass(frozen=True)
class HttpResponse:
    """A fully read response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    attempts: int
    retries: int = 0

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name.lower())

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one (an error page, say)."""
        return json_object(self.body)


def json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` parsed as a JSON object; None for anything else (no exception)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class Signer(Protocol):
    """Per-request headers and per-answer bookkeeping (DPoP: a fresh proof for every request
    sent, each attempt and each redirect hop; the nonce of every answer kept)."""

    def headers(self, method: str, url: str) -> Mapping[str, str]:
        """Headers to add to this one request."""
        ...

    def seen(self, url: str, headers: Mapping[str, str]) -> None:
        """An answer from ``url`` arrived with these (lower-case) headers."""
        ...


Redirect = Callable[[str], str]
"""Checks a same-origin https redirect's URL and returns the URL to request (a canonical form),
or raises ``RedirectRefused``."""


@dataclass(frozen=True)
class _Call:
    """What stays the same across the attempts and redirects of one request."""

    target: Target
    deadline: Deadline
    max_bytes: int
    redirect: Redirect | None
    idempotent: bool = True
    tls: TlsPolicy | None = None
    signer: Signer | None = None


class ResponseTooLarge(Exception):
    """The body exceeded the cap; callers map it to their own error code."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response larger than {limit} bytes")
        self.limit = limit


class RedirectRefused(Exception):
    """A redirect to another origin, to plain http, to a path the caller's check refuses, or too
    many of them; nothing was sent to where it pointed."""


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and the deadline."""

    max_retries: int = 2
    base: float = 0.1
    cap: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)] (AWS architecture blog)."""
        return self.rng.uniform(0, min(self.cap, self.base * 2**retry))

    def reseed(self) -> None:
        """A fresh seed from ``os.urandom``: after a SnapStart restore every environment would
        otherwise draw the backoffs of the snapshot's generator, in step."""
        self.rng.seed()


def build_ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verified TLS 1.2+: the system store, plus the enterprise CA bundle when given."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ssl.get_default_verify_paths().cafile is None and context.cert_store_stats()["x509_ca"] == 0:
        _load_fallback_roots(context)
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def _load_fallback_roots(context: ssl.SSLContext) -> None:
    # Some minimal images have no system store; botocore ships Mozilla's roots.
    try:
        import botocore  # noqa: PLC0415
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return
    bundle = Path(botocore.__file__).parent / "cacert.pem"
    if bundle.is_file():  # pragma: no branch
        context.load_verify_locations(cafile=str(bundle))


def retry_after_seconds(
    response: HttpResponse, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds or HTTP-date) on any answer,
    Okta's ``X-Rate-Limit-Reset`` (epoch seconds) on a 429."""
    value = response.header("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return _bounded(float(value))
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            when = None
        if when is not None and when.tzinfo is not None:
            return _bounded(when.timestamp() - now())
    reset = response.header("x-rate-limit-reset")
    if response.status == 429 and reset and reset.strip().isdigit():
        return _bounded(float(reset) - now())
    return None


def _bounded(seconds: float) -> float:
    """A wait between 0 and a day: a server's 400-digit number must not become infinity."""
    return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else MAX_RETRY_AFTER


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
        self._context = build_ssl_context(settings.ca_bundle)
        self._retry = retry or RetryPolicy(max_retries=settings.max_retries)
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        # One pool manager per (TLS policy, proxied): pinned or client-certificate connections
        # never share a pool with plain ones.
        self._managers: dict[tuple[TlsPolicy | None, bool], urllib3.PoolManager] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        target: Target,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        prepare: Callable[[], tuple[dict[str, str], bytes]] | None = None,
        max_bytes: int,
        redirect: Redirect | None = None,
        tls: TlsPolicy | None = None,
        retry_when: Callable[[HttpResponse], bool] | None = None,
        idempotent: bool = True,
        signer: Signer | None = None,
    ) -> HttpResponse:
        """Send with retries; return the last response (the caller judges its status).

        ``retry_when`` marks more answers as transient than 429/502/503/504 (Secrets Manager
        throttles with a 400); they are retried under the same policy and deadline.
        ``prepare`` builds extra headers and the body anew for each attempt (a fresh client
        assertion each time, since Okta consumes its ``jti`` even when the request fails).
        ``redirect`` makes same-origin redirects followed, each new URL checked by it first.
        ``idempotent=False`` retries only what surely never reached the server (see above).
        ``signer`` adds headers to every request sent and sees every answer (DPoP).
        Raises ``NetworkError``/``TlsError`` when no response was had, ``ResponseTooLarge`` and
        ``RedirectRefused``.
        """
        call = _Call(target, deadline, max_bytes, redirect, idempotent, tls, signer)
        attempt = 0
        while True:
            attempt += 1
            attempt_headers, payload = dict(headers or {}), body
            if prepare is not None:
                extra, payload = prepare()
                attempt_headers.update(extra)
            try:
                response = self._send_following(call, method, url, attempt_headers, payload)
            except _Transient as exc:
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
        self, call: _Call, method: str, url: str, headers: dict[str, str], body: bytes | None
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
        body: bytes | None,
        *,
        tls: TlsPolicy | None,
    ) -> HttpResponse:
        target, deadline = call.target, call.deadline
        if deadline.remaining() < _MIN_ATTEMPT:
            raise target.error_class(
                target.timeout_code, f"No time left before calling the {target.label}."
            )
        host = urllib.parse.urlsplit(url).hostname or ""
        manager = self._manager_for(host, tls)
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
        watch = _Watch(time.monotonic() + deadline.remaining())
        try:
            try:
                with _watching(watch):
                    raw = manager.request(
                        method,
                        url,
                        headers=headers,
                        body=body,
                        timeout=timeout,
                        redirect=False,
                        preload_content=False,
                        retries=False,
                    )
            except Exception as exc:
                if watch.fired:
                    raise late from None
                raise _classify(exc, target, host) from exc
            try:
                data = _read_body(raw, deadline, call.max_bytes, self._settings.read_timeout)
            except ResponseTooLarge:
                _discard(raw)
                raise
            except _DeadlineHit:
                _discard(raw)
                raise late from None
            except Exception as exc:
                _discard(raw)
                if watch.fired:
                    raise late from None
                raise _classify(exc, target, host) from exc
        finally:
            _WATCHDOG.disarm(watch)
        if watch.fired:  # the socket was shut mid-body: what was read may look complete
            _discard(raw)
            raise late
        raw.release_conn()
        response_headers = {k.lower(): v for k, v in raw.headers.items()}
        if call.signer is not None:
            call.signer.seen(url, response_headers)
        return HttpResponse(raw.status, response_headers, data, url, 1)

    def _manager_for(self, host: str, tls: TlsPolicy | None) -> urllib3.PoolManager:
        proxied = self._settings.proxy.applies_to(host)
        key = (None if tls is None or tls.plain else tls, proxied)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = self._build_manager(key[0], proxied)
                self._managers[key] = manager
            return manager

    def _build_manager(self, tls: TlsPolicy | None, proxied: bool) -> urllib3.PoolManager:
        context = self._context
        if tls is not None:
            context = build_ssl_context(self._settings.ca_bundle)
            load_client_certificate(context, tls)
        args: dict[str, Any] = {
            "ssl_context": context,
            "maxsize": 10,
            "retries": False,
            "headers": {"User-Agent": USER_AGENT},
        }
        manager = (
            urllib3.ProxyManager(self._settings.proxy.https_proxy or "", **args)
            if proxied
            else urllib3.PoolManager(num_pools=4, **args)
        )
        pool = _WatchedPool if tls is None or not tls.pins else _pinned_pool(tls.pins)
        manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": pool}
        return manager

    def preconnect(
        self, url: str, *, tls: TlsPolicy | None, deadline: Deadline
    ) -> threading.Thread:
        """Open one pooled connection to ``url``'s origin (TCP, proxy tunnel, TLS) on a thread.

        Used on a cold start while the token request is in flight, so the API call that follows
        finds its connection ready instead of paying the handshakes after the token. A failure is
        ignored here: the request itself meets it and reports it. urllib3 has no public call for
        this; ``_get_conn``/``_put_conn`` are its pool's own checkout and return (pinned in the
        lock, and a test would notice a change).
        """
        host = urllib.parse.urlsplit(url).hostname or ""
        manager = self._manager_for(host, tls)
        timeout = deadline.cap(self._settings.connect_timeout)

        def connect() -> None:
            pool: Any = None
            connection: Any = None
            try:
                pool = manager.connection_from_url(url)
                connection = pool._get_conn(timeout=timeout)
                if connection.sock is None:
                    connection.timeout = timeout
                    connection.connect()
                    _settle(connection.sock, timeout)
            except Exception as exc:  # noqa: BLE001 - the request reports what matters
                log.debug("preconnect failed", extra={"error": type(exc).__name__})
                if connection is not None:
                    connection.close()
            finally:
                if pool is not None and connection is not None:
                    pool._put_conn(connection)

        thread = threading.Thread(target=connect, name="preconnect", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Close pooled connections and forget the pools (keyed by TLS policy, which may carry
        an mTLS client key); the next request opens new ones. SnapStart: a restored snapshot's
        sockets are dead, and a snapshot must not hold a key."""
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def idle_connections(self) -> int:
        """Open connections waiting in the pools (SnapStart tests: none in a snapshot)."""
        with self._lock:
            managers = list(self._managers.values())
        count = 0
        for manager in managers:
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                queue = getattr(pool, "pool", None)
                if queue is not None:
                    count += sum(1 for conn in list(queue.queue) if getattr(conn, "sock", None))
        return count

    def reseed(self) -> None:
        """New seed for the retry jitter (after a SnapStart restore)."""
        self._retry.reseed()


def _settle(sock: Any, timeout: float) -> None:
    """Let TLS 1.3's session tickets arrive and be processed on a fresh, idle connection.

    The server sends them (two, by default) after the handshake; while one is unread, the socket
    is readable and urllib3 takes the idle connection for a dropped one and opens another. Each
    non-blocking read processes what has arrived and finds no application data; the loop ends
    once the socket stays quiet for a moment (anything else means the connection is unusable,
    and it is closed).
    """
    if not isinstance(sock, ssl.SSLSocket) or sock.version() != "TLSv1.3":
        return
    end = time.monotonic() + min(timeout, 0.5)
    wait = min(timeout, 0.5)  # the first ticket comes a round trip after the handshake
    previous = sock.gettimeout()
    try:
        while True:
            readable, _, _ = select.select([sock], [], [], max(0.0, wait))
            if not readable:
                return
            sock.setblocking(False)
            try:
                data = sock.recv(1)
            except ssl.SSLWantReadError:
                data = None  # only tickets
            finally:
                sock.settimeout(previous)
            if data is not None:
                raise ConnectionError(
                    f"unexpected {'data' if data else 'close'} on an idle connection"
                )
            wait = min(_TICKET_QUIET, end - time.monotonic())
    finally:
        sock.settimeout(previous)


class _Transient(Exception):
    """A failure worth another attempt (connection refused, reset, timeout); ``unsent`` when the
    request surely never reached the server (so even a non-idempotent one may be retried)."""

    def __init__(self, error: BridgeError, *, unsent: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.unsent = unsent


class _Watch:
    """One request's wait for its answer: when it must end, and whether it was cut."""

    def __init__(self, end: float) -> None:
        self.end = end
        self.fired = False
        self.sock: socket.socket | None = None


_WATCHED: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar(
    "okta_bridge_watch", default=None
)


class _Watchdog:
    """Shuts down the socket of a request whose answer has not fully arrived by its deadline.

    urllib3's read timeout bounds each socket read, and one ``read1`` may make many (a chunk-size
    line or trailers trickled a byte at a time, a gzip stream of empty blocks), so a hostile
    server could hold a request far past the invocation's deadline, in the response head or in
    the body. The connection arms the watch once its request is sent; the transport disarms it
    once the whole body is read. One daemon thread per process sleeps until the earliest armed
    deadline; it is woken only when a request with an earlier deadline arms, so back-to-back
    requests cost a lock each and no wake-up.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: set[_Watch] = set()
        self._wake_at = float("inf")
        self._thread: threading.Thread | None = None

    def arm(self, watch: _Watch) -> None:
        with self._cond:
            self._armed.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="head-watch", daemon=True)
                self._thread.start()
            if watch.end < self._wake_at:
                self._wake_at = watch.end
                self._cond.notify()

    def disarm(self, watch: _Watch) -> None:
        with self._cond:
            self._armed.discard(watch)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for watch in [w for w in self._armed if w.end <= now]:
                    self._armed.discard(watch)
                    watch.fired = True
                    if watch.sock is not None:
                        with contextlib.suppress(OSError):
                            watch.sock.shutdown(socket.SHUT_RDWR)
                self._wake_at = min((w.end for w in self._armed), default=float("inf"))
                self._cond.wait(None if self._wake_at == float("inf") else self._wake_at - now)


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def _watching(watch: _Watch) -> Iterator[None]:
    """Let the connection that sends this request arm ``watch`` (the caller disarms it)."""
    token = _WATCHED.set(watch)
    try:
        yield
    finally:
        _WATCHED.reset(token)


class _WatchedConnection(HTTPSConnection):
    """urllib3's HTTPS connection, its answer (head and body) bounded by the deadline."""

    def getresponse(self) -> Any:  # urllib3.response.HTTPResponse
        watch = _WATCHED.get()
        if watch is None or self.sock is None:
            return super().getresponse()
        watch.sock = self.sock
        _WATCHDOG.arm(watch)  # stays armed while the body is read
        response = super().getresponse()
        if watch.fired:  # the cut head may still parse (http.client stops at the EOF)
            response.close()
            raise TimeoutError("the response head did not arrive before the deadline")
        return response


class _WatchedPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedConnection


def _pinned_pool(pins: frozenset[bytes]) -> type[HTTPSConnectionPool]:
    class PinnedPool(HTTPSConnectionPool):
        ConnectionCls = pinned(_WatchedConnection, pins)

    return PinnedPool


class _DeadlineHit(Exception):
    """The invocation's deadline passed while a body was still arriving."""


def _read_body(
    raw: urllib3.BaseHTTPResponse, deadline: Deadline, max_bytes: int, read_timeout: float
) -> bytes:
    """Read the whole body in chunks, re-arming the socket timeout from the deadline each time."""
    length = raw.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise ResponseTooLarge(max_bytes)
    chunks: list[bytes] = []
    total = 0
    while True:
        if deadline.remaining() <= 0:
            raise _DeadlineHit
        # Look the socket up each time: urllib3 returns the connection to the pool as soon as
        # the body is complete, after which it may be closed or serving another thread.
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(deadline.cap(read_timeout))
        chunk = raw.read1(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise ResponseTooLarge(max_bytes)
        chunks.append(chunk)


def _discard(raw: urllib3.BaseHTTPResponse) -> None:
    # A half-read connection must not go back to the pool.
    raw.close()
    raw.release_conn()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or 443


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and urllib3's wrapped ``reason``s."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        reason = getattr(item, "reason", None)
        todo.extend([item.__cause__, item.__context__])
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return seen


_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED
# X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH (an IP in the URL)
_NAME_MISMATCH = frozenset({62, 63, 64})


def tls_error(error: ssl.SSLCertVerificationError, host: str) -> TlsError:
    """A failed certificate verification as the bridge reports it (the transport and diagnose)."""
    code = getattr(error, "verify_code", None)
    detail = str(getattr(error, "verify_message", "") or error)
    if code == _EXPIRED or "expired" in detail.lower():
        return TlsError("TLS_CERT_EXPIRED", f"The certificate of {host} has expired.")
    if code in _NAME_MISMATCH or "match" in detail.lower():
        return TlsError(
            "TLS_HOSTNAME_MISMATCH", f"The certificate presented by {host} is not valid for {host}."
        )
    return TlsError(
        "TLS_UNTRUSTED",
        f"The certificate chain of {host} is not trusted ({detail}); "
        "is its root CA in BRIDGE_CA_BUNDLE?",
    )


def _classify(exc: Exception, target: Target, host: str) -> Exception:
    """Translate a urllib3/ssl/socket failure into a bridge error (wrapped if retryable)."""
    chain = _chain(exc)
    if any(isinstance(item, PinMismatchError) for item in chain):
        return TlsError(
            "TLS_PIN_MISMATCH",
            f"The public key of {host} matches none of BRIDGE_API_PINS.",
        )
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return tls_error(item, host)
    if any(isinstance(item, u3e.ProxyError) for item in chain):
        return _Transient(
            target.error_class(
                target.unreachable_code, f"The HTTPS proxy failed to reach the {target.label}."
            ),
            unsent=True,  # the tunnel failed before any byte of the request
        )
    if any(isinstance(item, ssl.SSLError | u3e.SSLError) for item in chain):
        reason = next(
            (str(i.reason or type(i).__name__) for i in chain if isinstance(i, ssl.SSLError)),
            "SSLError",
        )
        return TlsError("TLS_HANDSHAKE_FAILED", f"The TLS handshake with {host} failed ({reason}).")
    fail = target.error_class
    # These three fail before a connection exists: nothing was sent.
    if isinstance(exc, u3e.NameResolutionError):
        return _Transient(
            fail(target.unreachable_code, f"DNS could not resolve {host}."), unsent=True
        )
    if isinstance(exc, u3e.NewConnectionError):
        return _Transient(
            fail(target.unreachable_code, f"Could not connect to the {target.label} at {host}."),
            unsent=True,
        )
    if isinstance(exc, u3e.ConnectTimeoutError):
        return _Transient(
            fail(target.timeout_code, f"Connecting to the {target.label} at {host} timed out."),
            unsent=True,
        )
    if isinstance(exc, u3e.ReadTimeoutError | TimeoutError):
        return _Transient(
            fail(target.timeout_code, f"The {target.label} at {host} did not answer in time.")
        )
    if isinstance(exc, u3e.HTTPError | OSError):
        return _Transient(
            fail(
                target.unreachable_code,
                f"The connection to the {target.label} at {host} failed ({type(exc).__name__}).",
            )
        )
    return exc

"""Every wait of one invocation bounded by its deadline.

``Deadline`` is the invocation's end (Lambda's remaining time minus the margin). urllib3's read
timeout bounds each socket read only, and one ``read1`` may make many (a chunk-size line or
trailers trickled a byte at a time, a gzip stream of empty blocks), so a hostile server could
hold a request far past it: a watchdog shuts the socket of an answer (head or body) still
arriving when the deadline passes, and bodies are read in chunks that re-arm the socket timeout
from what is left.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.util.wait import wait_for_read

from okta_bridge.config import Settings
from okta_bridge.transport.message import BodySink, ResponseTooLarge
from okta_bridge.transport.tls import pinned

_READ_CHUNK = 65_536


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


class Watch:
    """One request's wait for its answer: when it must end, and whether it was cut."""

    def __init__(self, end: float) -> None:
        self.end = end
        self.fired = False
        self.sock: socket.socket | None = None


WATCHED: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "okta_bridge_watch", default=None
)


class Watchdog:
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
        self._armed: set[Watch] = set()
        self._wake_at = float("inf")
        self._thread: threading.Thread | None = None

    def arm(self, watch: Watch) -> None:
        with self._cond:
            self._armed.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="head-watch", daemon=True)
                self._thread.start()
            if watch.end < self._wake_at:
                self._wake_at = watch.end
                self._cond.notify()

    def disarm(self, watch: Watch) -> None:
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


WATCHDOG = Watchdog()


@contextlib.contextmanager
def watching(watch: Watch) -> Iterator[None]:
    """Let the connection that sends this request arm ``watch`` (the caller disarms it)."""
    token = WATCHED.set(watch)
    try:
        yield
    finally:
        WATCHED.reset(token)


# Records a TLS 1.3 server may send an idle connection and no request asked for: its session
# tickets (two by default in OpenSSL). More than this many, and the connection is not kept.
_IDLE_RECORDS = 4


class WatchedConnection(HTTPSConnection):
    """urllib3's HTTPS connection, its answer (head and body) bounded by the deadline."""

    @property
    def is_connected(self) -> bool:
        """Whether an idle connection can carry a request: urllib3 takes any readable idle
        socket for a dropped one, but on TLS 1.3 a fresh one is readable with the session
        tickets the server sends after the handshake. Those are processed here, without
        waiting; only data or the end of the stream mean the connection is gone. So a
        connection opened ahead of its request (``Pools.preconnect``) is used as soon as its
        handshake is done, whenever its tickets arrive."""
        sock = self.sock
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            # Application data already decrypted in OpenSSL's buffer, where the socket does not
            # show it: bytes no request asked for (an answer sent ahead of its request).
            return False
        if not wait_for_read(sock, timeout=0.0):
            return True
        if not isinstance(sock, ssl.SSLSocket):
            return False
        previous = sock.gettimeout()
        sock.setblocking(False)
        try:
            return _only_tickets(sock)
        except OSError:  # ssl.SSLError included: a reset, a TLS alert
            return False
        finally:
            sock.settimeout(previous)

    def getresponse(self) -> Any:  # urllib3.response.HTTPResponse
        watch = WATCHED.get()
        if watch is None or self.sock is None:
            return super().getresponse()
        watch.sock = self.sock
        WATCHDOG.arm(watch)  # stays armed while the body is read
        response = super().getresponse()
        if watch.fired:  # the cut head may still parse (http.client stops at the EOF)
            response.close()
            raise TimeoutError("the response head did not arrive before the deadline")
        return response


def _only_tickets(sock: ssl.SSLSocket) -> bool:
    """Read a readable, non-blocking idle socket: True if what it held was records with nothing
    for the application. Each read processes one such record (OpenSSL may already hold the next
    ones in its own buffer, where the socket no longer shows them), so it reads a few times
    rather than until the socket looks quiet."""
    for _ in range(_IDLE_RECORDS):
        try:
            sock.recv(1)  # data or b"" (the end): either way, not a usable connection
        except ssl.SSLWantReadError:  # a record with nothing for the application, or nothing
            continue
        return False
    return True


class WatchedPool(HTTPSConnectionPool):
    ConnectionCls = WatchedConnection


def pinned_pool(pins: frozenset[bytes]) -> type[HTTPSConnectionPool]:
    class PinnedPool(HTTPSConnectionPool):
        ConnectionCls = pinned(WatchedConnection, pins)

    return PinnedPool


class DeadlineHit(Exception):
    """The invocation's deadline passed while a body was still arriving."""


def read_body(
    raw: urllib3.BaseHTTPResponse,
    deadline: Deadline,
    max_bytes: int,
    read_timeout: float,
    sink: BodySink | None = None,
) -> bytes:
    """Read the whole body in chunks, re-arming the socket timeout from the deadline each time.
    With a ``sink`` the chunks go to it as they arrive (its own cap applies, not ``max_bytes``)
    and nothing is kept."""
    length = raw.headers.get("content-length", "")
    if sink is None and length.isdigit() and int(length) > max_bytes:
        raise ResponseTooLarge(max_bytes)
    chunks: list[bytes] = []
    total = 0
    while True:
        if deadline.remaining() <= 0:
            raise DeadlineHit
        # Look the socket up each time: urllib3 returns the connection to the pool as soon as
        # the body is complete, after which it may be closed or serving another thread.
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(deadline.cap(read_timeout))
        chunk = raw.read1(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        if sink is not None:
            sink.write(chunk)
            continue
        total += len(chunk)
        if total > max_bytes:
            raise ResponseTooLarge(max_bytes)
        chunks.append(chunk)


def discard(raw: urllib3.BaseHTTPResponse) -> None:
    # A half-read connection must not go back to the pool.
    raw.close()
    raw.release_conn()


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.monotonic()`` reading), to a tenth."""
    return round((time.monotonic() - started) * 1000, 1)

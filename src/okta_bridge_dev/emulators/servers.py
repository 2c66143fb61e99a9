"""Shared base of the local HTTPS servers: real TLS, keep-alive, counters and fault injection.

``TLSServer`` wraps the stdlib ``ThreadingHTTPServer`` so a test can reach every failure a pooled
HTTPS client meets in production (slow peers, resets before and during the body, trickled bodies,
overridden answers) without mocks. Subclasses only map a request to a ``Route``; faults, counting
and recording live here so they apply to every route alike.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import dataclasses
import json
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "ConnectionTracker",
    "Fault",
    "RecordedRequest",
    "Response",
    "Route",
    "TLSServer",
]

MAX_BODY_BYTES = 1 << 20
"""Requests with a larger body get 413: the bridge never sends more than a few KiB."""

IDLE_TIMEOUT = 30.0
"""Seconds an idle kept-alive connection (or a TLS handshake) may last before it is dropped."""

STOP_TIMEOUT = 5.0
"""Upper bound for ``stop()`` to wait for connection threads after their sockets were shut down."""

_SEND_DRAIN_TIMEOUT = 1.0


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` requests whose path starts with ``match``
    (and whose method is ``method``, when given).

    ``status`` and ``body`` replace the normal answer's; ``headers`` are added to it (replacing
    same-named ones). The route's handler only runs when the answer still needs part of its normal
    response, so a fault with both ``status`` and ``body`` has no side effects (no token issued).
    ``delay`` waits before answering, ``reset`` answers nothing and aborts with a TCP RST,
    ``reset_mid_body`` sends the head and half the body under a larger Content-Length and then
    aborts, ``trickle_interval`` sends the body one byte per interval.
    """

    match: str = ""
    method: str | None = None  # only requests with this method (any when None)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    times: int = 1
    delay: float = 0.0
    reset: bool = False
    reset_mid_body: bool = False
    trickle_interval: float | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("Fault.times must be at least 1")
        if self.delay < 0:
            raise ValueError("Fault.delay must not be negative")
        if self.trickle_interval is not None and self.trickle_interval <= 0:
            raise ValueError("Fault.trickle_interval must be positive")
        if sum((self.reset, self.reset_mid_body, self.trickle_interval is not None)) > 1:
            raise ValueError("choose one of reset, reset_mid_body and trickle_interval")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("Fault.status must be an HTTP status code")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it; header names are lower-case.

    ``path`` is the stdlib's reading of the target (``urlsplit``, after ``http.server`` collapsed
    a leading ``//``); ``raw_target`` is the request-target exactly as it stood on the request
    line (each byte one ISO-8859-1 character), for tests that must see what a server that
    normalises paths itself would have routed.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw_target: str = ""

    @property
    def raw_path(self) -> str:
        """``raw_target`` up to its first ``?``: the path as sent, not decoded or normalised."""
        return self.raw_target.partition("?")[0]

    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded`` (empty if it is not UTF-8)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
        return parse_qs(text, keep_blank_values=True)


@dataclass(frozen=True)
class Response:
    """What a route answers; the base class adds Content-Length, Date and Server."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON answer with ``Content-Type: application/json``."""
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, merged, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


@dataclass(frozen=True)
class Route:
    """A route's name (the key in ``TLSServer.counts``) and the function answering it."""

    name: str
    handler: Callable[[RecordedRequest], Response]


class ConnectionTracker:
    """Open connections and the threads serving them, so ``stop()`` can wake and join them.

    Threads stay tracked until joined (dead ones are pruned as new ones arrive): dropping a
    thread when it finishes its connection would leave a window where it is still alive but no
    longer joined. Once closed, the tracker refuses new connections, shutting them down at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False

    def add(self, sock: socket.socket, thread: threading.Thread) -> bool:
        """Track a connection; False (and the socket is shut down) if the server is stopping."""
        with self._lock:
            if not self._closed:
                self._threads = {t for t in self._threads if t.is_alive()}
                self._sockets.add(sock)
                self._threads.add(thread)
                return True
        _shutdown_socket(sock)
        return False

    def discard(self, sock: socket.socket) -> None:
        """Forget a finished connection's socket (its thread is joined by ``join``)."""
        with self._lock:
            self._sockets.discard(sock)

    def close_all(self) -> None:
        """Refuse new connections and shut every open one down so blocked reads return at once."""
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown_socket(sock)

    def join(self, timeout: float) -> list[threading.Thread]:
        """Join the tracked threads within ``timeout`` seconds; return the ones still alive."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = [t for t in self._threads if t is not threading.current_thread()]
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]


def _shutdown_socket(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object under the
    # feet of the thread still reading from it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``extra``, matching names case-insensitively."""
    overridden = {name.lower() for name in extra}
    merged = {k: v for k, v in base.items() if k.lower() not in overridden}
    merged.update(extra)
    return merged


def _pending_send_bytes(sock: socket.socket) -> int:
    """Bytes not yet acknowledged by the peer (Linux/BSD TIOCOUTQ); 0 where unsupported."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only; the servers still work without it
        import termios  # noqa: PLC0415

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (ImportError, AttributeError, OSError):
        return 0
    return int(struct.unpack("i", raw)[0])


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with tracked daemon threads and TLS handshakes off the accept loop."""

    daemon_threads = True
    block_on_close = False  # stop() joins through the tracker, with a bound

    def __init__(self, address: tuple[str, int], owner: TLSServer) -> None:
        self.owner = owner
        self.tracker = ConnectionTracker()
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN: a reverse DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if not isinstance(request, socket.socket):
            return
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{self.owner.thread_name}:conn",
            daemon=True,
        )
        if self.tracker.add(request, thread):
            thread.start()
        else:
            self.close_request(request)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            self.tracker.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Record instead of printing a traceback to stderr; tests can assert ``errors`` is empty.
        error = sys.exc_info()[1]
        if error is not None:
            self.owner.record_error(error)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request at a time, lets the owner answer it, applies the owner's faults."""

    protocol_version = "HTTP/1.1"
    server_version = "okta-bridge-dev"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Head and body are separate writes: with Nagle on, the body would wait for the client's
    # delayed ACK (~40 ms per response), and trickled bytes would be coalesced.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def handle(self) -> None:
        connection = self.connection
        try:
            if isinstance(connection, ssl.SSLSocket):
                connection.do_handshake()
                self.server.owner.note_handshake()
            super().handle()
        except (OSError, ValueError):
            # Handshake refused, peer gone, idle timeout, or our own abort: nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log on stderr."""

    def version_string(self) -> str:
        """``Server: okta-bridge-dev`` (no Python version)."""
        return self.server_version

    def _dispatch(self) -> None:
        request = self._read_request()
        if request is not None:
            self._serve(request)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815

    def _read_request(self) -> RecordedRequest | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reject(411, "length_required", "Send a Content-Length, not a chunked body.")
            return None
        raw_length = self.headers.get("Content-Length", "0").strip()
        if not raw_length.isdigit():
            self._reject(400, "invalid_request", "Content-Length is not a number.")
            return None
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            self._reject(413, "request_too_large", "The request body is too large.")
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return None
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        target = urlsplit(self.path)
        return RecordedRequest(
            method=self.command,
            path=target.path,
            query=parse_qs(target.query, keep_blank_values=True),
            headers=headers,
            body=body,
            raw_target=self._raw_target(),
        )

    def _raw_target(self) -> str:
        """The request-target as sent: ``self.path`` may already be rewritten (a leading ``//``
        is collapsed), so split the request line the way ``parse_request`` did."""
        words = self.requestline.split()
        return words[1] if len(words) >= 2 else self.path

    def _reject(self, status: int, error: str, description: str) -> None:
        """Answer a request the server cannot even read, then close the connection."""
        self.close_connection = True
        self._send(
            Response.json(
                status,
                {"error": error, "error_description": description},
                {"Connection": "close"},
            )
        )

    def _serve(self, request: RecordedRequest) -> None:
        owner = self.server.owner
        route = owner.resolve(request)
        fault = owner.observe(route.name, request)
        wait = owner.added_latency + (fault.delay if fault else 0.0)
        if wait > 0 and self.server.stopping.wait(wait):
            self._abort()
            return
        if fault is not None and fault.reset:
            self._abort()
            return
        response = owner.answer(route, request, fault)
        if fault is not None and fault.reset_mid_body:
            self._send_truncated(response)
        else:
            self._send(response, trickle=fault.trickle_interval if fault else None)

    def _write_head(self, response: Response, content_length: int) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def _send(self, response: Response, *, trickle: float | None = None) -> None:
        # HEAD answers carry the Content-Length of the body they do not send (RFC 9110 9.3.2).
        body = b"" if self.command == "HEAD" else response.body
        self._write_head(response, len(response.body))
        if trickle is None:
            self.wfile.write(body)
            return
        for index in range(len(body)):
            if index and self.server.stopping.wait(trickle):
                self._abort()
                return
            self.wfile.write(body[index : index + 1])

    def _send_truncated(self, response: Response) -> None:
        sent = response.body[: len(response.body) // 2]
        self._write_head(response, max(len(response.body), len(sent) + 1))
        self.wfile.write(sent)
        self._wait_until_delivered()
        self._abort()

    def _wait_until_delivered(self) -> None:
        """A RST discards unsent data: give the kernel a bounded moment to deliver what we wrote."""
        deadline = time.monotonic() + _SEND_DRAIN_TIMEOUT
        while _pending_send_bytes(self.connection) and time.monotonic() < deadline:
            if self.server.stopping.wait(0.001):
                return

    def _abort(self) -> None:
        """Close with SO_LINGER 0: the peer sees a TCP RST (ECONNRESET), not an orderly FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()  # drop makefile()'s reference so close() really closes now
            self.connection.close()


class Lifecycle(abc.ABC):
    """``start()``/``stop()`` and the context-manager protocol that calls them."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Start serving; return self."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop and release every thread and socket."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class TLSServer(Lifecycle):
    """An HTTPS server on a daemon thread; subclasses implement ``route``.

    Thread-safe: counters, recorded requests, errors and faults are guarded by one lock, and
    ``counts`` / ``requests`` are the same objects for the server's lifetime (clear, never replace).
    ``start()`` after ``stop()`` serves again on the same port.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._ssl_context = ssl_context
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self.added_latency: float = 0.0
        self.handshake_times: list[float] = []
        self._handshake = threading.Condition()

    def note_handshake(self) -> None:
        """A client completed a TLS handshake (a new connection)."""
        with self._handshake:
            self.handshake_times.append(time.monotonic())
            self._handshake.notify_all()

    def wait_for_handshakes(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` handshakes have completed (bounded); False on timeout."""
        with self._handshake:
            return self._handshake.wait_for(lambda: len(self.handshake_times) >= count, timeout)

    # -- what subclasses provide -------------------------------------------------------------

    @abc.abstractmethod
    def route(self, request: RecordedRequest) -> Route:
        """Map a request to its route; must not raise (unknown paths get a "not_found" route)."""

    def handle(self, request: RecordedRequest) -> Response:
        """The normal answer to ``request``, without faults (also handy in unit tests)."""
        return self.route(request).handler(request)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind (port 0 picks a free port, reused on restart) and serve on a daemon thread."""
        with self._lock:
            if self._httpd is not None:
                return self
            httpd = _HTTPServer((self._host, self._requested_port), self)
            try:
                httpd.socket = self._ssl_context.wrap_socket(
                    httpd.socket, server_side=True, do_handshake_on_connect=False
                )
            except BaseException:
                httpd.server_close()
                raise
            self._requested_port = int(httpd.server_address[1])
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.thread_name}:serve",
                daemon=True,
            )
            self._httpd, self._thread = httpd, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, reset open connections' reads, and join every thread (bounded)."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None or thread is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.tracker.close_all()
        httpd.server_close()
        thread.join(STOP_TIMEOUT)
        stuck = httpd.tracker.join(STOP_TIMEOUT)
        if stuck or thread.is_alive():
            self.record_error(RuntimeError(f"{self.thread_name}: threads still alive after stop"))

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._httpd is not None

    @property
    def host(self) -> str:
        """The address the server binds to."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._requested_port == 0:
            raise RuntimeError(f"{type(self).__name__} has no port before start()")
        return self._requested_port

    @property
    def base_url(self) -> str:
        """``https://host:port`` without a trailing slash."""
        return f"https://{self._host}:{self.port}"

    @property
    def thread_name(self) -> str:
        """Prefix of this server's thread names, so tests can find leaked threads."""
        return f"okta-bridge-dev:{type(self).__name__}:{self._requested_port}"

    # -- faults, counters, records -------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Queue a fault; the first queued fault matching a request's path applies."""
        with self._lock:
            self._faults.append(dataclasses.replace(fault, headers=dict(fault.headers)))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[Fault]:
        """Copies of the queued faults, ``times`` being what is left of each."""
        with self._lock:
            return [dataclasses.replace(f, headers=dict(f.headers)) for f in self._faults]

    def reset_counts(self) -> None:
        """Zero ``counts`` and the handshakes (recorded requests stay; see ``clear_requests``)."""
        with self._lock:
            self.counts.clear()
        with self._handshake:
            self.handshake_times.clear()

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def record_error(self, error: BaseException) -> None:
        """Keep an unexpected server-side error for tests to assert on, instead of printing it."""
        with self._lock:
            self.errors.append(error)

    # -- used by the request handler -------------------------------------------------------

    def resolve(self, request: RecordedRequest) -> Route:
        """``route(request)``, degrading a routing bug to a 500 route instead of a dead thread."""
        try:
            return self.route(request)
        except Exception as error:  # noqa: BLE001 - a routing bug must still answer
            self.record_error(error)
            failure = _server_error(error)
            return Route("error", lambda _: failure)

    def observe(self, route_name: str, request: RecordedRequest) -> Fault | None:
        """Count and record the request; return (and consume one use of) the fault that applies."""
        with self._lock:
            self.counts[route_name] += 1
            self.requests.append(request)
            for index, fault in enumerate(self._faults):
                if request.path.startswith(fault.match) and fault.method in (None, request.method):
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                    return dataclasses.replace(fault, times=1)
        return None

    def answer(self, route: Route, request: RecordedRequest, fault: Fault | None) -> Response:
        """The response to send: the fault's status and body if both are set, else the route's
        answer with the fault's status, headers and body laid over it."""
        if fault is not None and fault.status is not None and fault.body is not None:
            return Response(fault.status, dict(fault.headers), fault.body)
        try:
            normal = route.handler(request)
        except Exception as error:  # noqa: BLE001 - a handler bug must answer 500, not hang up
            self.record_error(error)
            normal = _server_error(error)
        if fault is None:
            return normal
        return Response(
            fault.status if fault.status is not None else normal.status,
            _merge_headers(normal.headers, fault.headers),
            fault.body if fault.body is not None else normal.body,
        )


def _server_error(error: BaseException) -> Response:
    return Response.json(
        500,
        {"error": "server_error", "error_description": f"Unhandled {type(error).__name__}."},
    )

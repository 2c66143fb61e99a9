"""The socket side of the local HTTPS servers: connections, threads, and one request at a time.

``TLSServer`` owns what a request means; this module owns how it travels: TLS handshakes off the
accept loop, keep-alive, bounded bodies, tracked threads that ``stop()`` can wake and join, and
the transport faults (delays, resets before and during the body, trickled bodies) that a pooled
HTTPS client meets in production.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response

__all__ = ["IDLE_TIMEOUT", "MAX_BODY_BYTES", "ConnectionTracker", "HTTPServer", "ServerOwner"]

MAX_BODY_BYTES = 8 << 20
"""Requests with a larger body get 413. Above the bridge's largest body cap
(BRIDGE_MAX_REQUEST_BYTES may be up to 5,000,000), so the sample API reads any body the bridge
may send."""

IDLE_TIMEOUT = 30.0
"""Seconds an idle kept-alive connection (or a TLS handshake) may last before it is dropped."""

_SEND_DRAIN_TIMEOUT = 1.0


class ServerOwner(Protocol):
    """What the connection threads ask of the server that owns them (``TLSServer``)."""

    added_latency: float

    @property
    def thread_name(self) -> str: ...

    def note_handshake(self) -> None: ...

    def record_error(self, error: BaseException) -> None: ...

    def resolve(self, request: RecordedRequest) -> PathRoute: ...

    def observe(self, route_name: str, request: RecordedRequest) -> Fault | None: ...

    def answer(
        self, route: PathRoute, request: RecordedRequest, fault: Fault | None
    ) -> Response: ...


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


def _pending_send_bytes(sock: socket.socket) -> int:
    """Bytes not yet acknowledged by the peer (Linux/BSD TIOCOUTQ); 0 where unsupported."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only; the servers still work without it
        import termios  # noqa: PLC0415

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (ImportError, AttributeError, OSError):
        return 0
    return int(struct.unpack("i", raw)[0])


class HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with tracked daemon threads and TLS handshakes off the accept loop."""

    daemon_threads = True
    block_on_close = False  # stop() joins through the tracker, with a bound

    def __init__(self, address: tuple[str, int], owner: ServerOwner) -> None:
        self.owner = owner
        self.tracker = ConnectionTracker()
        self.stopping = threading.Event()
        super().__init__(address, _RequestHandler)

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


class _RequestHandler(BaseHTTPRequestHandler):
    """Reads one request at a time, lets the owner answer it, applies the owner's faults."""

    protocol_version = "HTTP/1.1"
    server_version = "okta-bridge-dev"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Head and body are separate writes: with Nagle on, the body would wait for the client's
    # delayed ACK (~40 ms per response), and trickled bytes would be coalesced.
    disable_nagle_algorithm = True
    server: HTTPServer

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
        length = response.content_length
        self._write_head(response, length)
        # HEAD answers carry the Content-Length of the body they do not send (RFC 9110 9.3.2).
        if self.command != "HEAD":
            self._write_body(response, length, trickle=trickle)

    def _send_truncated(self, response: Response) -> None:
        length = response.content_length
        half = length // 2
        self._write_head(response, max(length, half + 1))
        if self._write_body(response, half):
            self._wait_until_delivered()
            self._abort()

    def _write_body(self, response: Response, limit: int, *, trickle: float | None = None) -> bool:
        """Write the body's first ``limit`` bytes chunk by chunk, so a streamed body is never
        held whole (one byte per ``trickle`` seconds when set). False if the connection was
        aborted: the server stopped, or the route's stream failed or ran short of ``limit``."""
        sent = 0
        chunks = response.chunks()
        try:
            while sent < limit:
                try:
                    chunk = next(chunks, None)
                except Exception as error:  # noqa: BLE001 - a broken stream resets, not ends
                    self.server.owner.record_error(error)
                    break
                if chunk is None:
                    self.server.owner.record_error(
                        RuntimeError(f"streamed body ended after {sent} of {limit} bytes")
                    )
                    break
                piece = chunk[: limit - sent]
                if trickle is None:
                    self.wfile.write(piece)
                elif not self._trickle(piece, trickle, first=sent == 0):
                    return False
                sent += len(piece)
            else:
                return True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        self._abort()
        return False

    def _trickle(self, piece: bytes, interval: float, *, first: bool) -> bool:
        """Write ``piece`` one byte per ``interval``; False (aborted) if the server stops."""
        for index in range(len(piece)):
            if (index or not first) and self.server.stopping.wait(interval):
                self._abort()
                return False
            self.wfile.write(piece[index : index + 1])
        return True

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

"""Raw TLS servers for answers the local stack's servers cannot give (they write whole answers):
``Trickler`` answers slowly on purpose, for the deadline tests (one request read, ``head`` sent,
then ``drip`` every ``interval`` for at most ``limit`` seconds); ``RawTlsServer`` is their base."""

from __future__ import annotations

import socket
import ssl
import threading
import time


class RawTlsServer:
    """One TLS listener on 127.0.0.1 whose every connection reads one request head and is then
    answered by ``respond`` (a subclass's), on its own thread; ``close`` stops it."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def respond(self, conn: ssl.SSLSocket) -> None:
        """Answer the request whose head was read (``OSError``/``SSLError`` end it quietly)."""
        raise NotImplementedError

    def hung_up(self) -> None:
        """The client (or the network) ended the connection before ``respond`` did."""

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(raw,), daemon=True).start()

    def _answer(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.respond(conn)
        except (OSError, ssl.SSLError):
            self.hung_up()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(2)


class Trickler(RawTlsServer):
    """Notes whether the client hung up first (``client_left``) or the server ran out of time
    (``finished``)."""

    def __init__(
        self, context: ssl.SSLContext, head: bytes, drip: bytes, *, interval: float, limit: float
    ) -> None:
        self._head, self._drip = head, drip
        self._interval, self._limit = interval, limit
        self.client_left = threading.Event()
        self.finished = threading.Event()
        super().__init__(context)

    def respond(self, conn: ssl.SSLSocket) -> None:
        conn.sendall(self._head)
        ends = time.monotonic() + self._limit
        while time.monotonic() < ends:
            if self._stop.wait(self._interval):
                return
            conn.sendall(self._drip)
        self.finished.set()

    def hung_up(self) -> None:
        self.client_left.set()

"""A raw TLS server that answers slowly on purpose, for the deadline tests: it reads one request,
sends ``head``, then ``drip`` every ``interval`` for at most ``limit`` seconds. Built on a bare
socket because the local stack's servers write whole answers: this one must keep a read going
without ever finishing it."""

from __future__ import annotations

import socket
import ssl
import threading
import time


class Trickler:
    """Notes whether the client hung up first (``client_left``) or the server ran out of time
    (``finished``)."""

    def __init__(
        self, context: ssl.SSLContext, head: bytes, drip: bytes, *, interval: float, limit: float
    ) -> None:
        self._context, self._head, self._drip = context, head, drip
        self._interval, self._limit = interval, limit
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.client_left = threading.Event()
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

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
                conn.sendall(self._head)
                ends = time.monotonic() + self._limit
                while time.monotonic() < ends:
                    if self._stop.wait(self._interval):
                        return
                    conn.sendall(self._drip)
                self.finished.set()
        except (OSError, ssl.SSLError):
            self.client_left.set()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(2)

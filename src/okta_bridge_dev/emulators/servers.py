"""The base of the local HTTPS servers: lifecycle, routing, counters, records and faults.

``TLSServer`` wraps the stdlib ``ThreadingHTTPServer`` (``connections``) so a test can reach every
failure a pooled HTTPS client meets in production (slow peers, resets before and during the body,
trickled bodies, overridden answers) without mocks. Subclasses only map a request to a
``PathRoute``; faults (``faults``), counting and recording live here so they apply to every route
alike.
"""

from __future__ import annotations

import abc
import collections
import ssl
import threading
import time
from types import TracebackType
from typing import Self

from okta_bridge_dev.emulators.connections import HTTPServer
from okta_bridge_dev.emulators.faults import Fault, FaultQueue, overlay
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response

__all__ = ["STOP_TIMEOUT", "Fault", "Lifecycle", "TLSServer"]  # Fault: the type of inject()

STOP_TIMEOUT = 5.0
"""Upper bound for ``stop()`` to wait for connection threads after their sockets were shut down."""


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

    Thread-safe: counters, recorded requests and errors are guarded by one lock (faults by their
    queue's), and ``counts`` / ``requests`` are the same objects for the server's lifetime (clear,
    never replace).
    ``start()`` after ``stop()`` serves again on the same port.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._ssl_context = ssl_context
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._faults = FaultQueue()
        self._httpd: HTTPServer | None = None
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
    def route(self, request: RecordedRequest) -> PathRoute:
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
            httpd = HTTPServer((self._host, self._requested_port), self)
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
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def pending_faults(self) -> list[Fault]:
        """Copies of the queued faults, ``times`` being what is left of each."""
        return self._faults.pending()

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

    def resolve(self, request: RecordedRequest) -> PathRoute:
        """``route(request)``, degrading a routing bug to a 500 route instead of a dead thread."""
        try:
            return self.route(request)
        except Exception as error:  # noqa: BLE001 - a routing bug must still answer
            self.record_error(error)
            failure = _server_error(error)
            return PathRoute("error", lambda _: failure)

    def observe(self, route_name: str, request: RecordedRequest) -> Fault | None:
        """Count and record the request; return (and consume one use of) the fault that applies."""
        with self._lock:
            self.counts[route_name] += 1
            self.requests.append(request)
        return self._faults.take(request)

    def answer(self, route: PathRoute, request: RecordedRequest, fault: Fault | None) -> Response:
        """The response to send: the fault's status and body if both are set, else the route's
        answer with the fault's status, headers and body laid over it."""
        if fault is not None and fault.status is not None and fault.body is not None:
            return Response(fault.status, dict(fault.headers), fault.body)
        try:
            normal = route.handler(request)
        except Exception as error:  # noqa: BLE001 - a handler bug must answer 500, not hang up
            self.record_error(error)
            normal = _server_error(error)
        return normal if fault is None else overlay(normal, fault)


def _server_error(error: BaseException) -> Response:
    return Response.json(
        500,
        {"error": "server_error", "error_description": f"Unhandled {type(error).__name__}."},
    )

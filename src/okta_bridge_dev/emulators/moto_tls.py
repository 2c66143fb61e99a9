"""moto's server application over real TLS on 127.0.0.1: the base of the AWS emulators.

``SecretsManagerServer`` and ``S3Server`` differ only in how a request names its action and how
an injected AWS error is written (JSON or XML); the listening socket, TLS, connection threads,
counters, queued errors and the per-server AWS account live here. moto keeps its state in
process-wide globals; each server therefore forces its own random AWS account id on every request
(moto's ``x-moto-account-id`` header), so two servers in one process never share resources.
"""

from __future__ import annotations

import abc
import collections
import http
import json
import secrets
import ssl
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from okta_bridge_dev.emulators.connections import IDLE_TIMEOUT, ConnectionTracker
from okta_bridge_dev.emulators.servers import STOP_TIMEOUT, Lifecycle

if TYPE_CHECKING:
    from pathlib import Path

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "MOTO_CREDENTIAL",
    "MOTO_REGION",
    "InjectedError",
    "MotoTlsServer",
    "drain",
    "json_answer",
    "reason",
]

MOTO_REGION = "us-east-1"
MOTO_CREDENTIAL = "testing"  # moto accepts any credentials


@dataclass
class InjectedError:
    """An AWS error the next ``times`` calls of ``action`` get instead of moto's answer."""

    action: str
    code: str
    message: str
    status: int
    times: int


def _tracked_handler(tracker: ConnectionTracker) -> type[WSGIRequestHandler]:
    """moto's request handler, quiet, HTTP/1.1, and registering its connection with ``tracker``."""

    class Handler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_TIMEOUT
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            tracker.add(self.connection, threading.current_thread())

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                tracker.discard(self.connection)

        def log(self, type: str, message: str, *args: Any) -> None:
            """No access log, no "SSL error occurred" lines on stderr."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """No access log."""

    return Handler


class MotoTlsServer(Lifecycle):
    """moto on ``https://host:port`` (werkzeug, one daemon thread per connection).

    Subclasses implement ``_wsgi``: count the action (``_count``), answer an injected error
    (``_take_error``) or hand the request to moto (``_moto``). ``counts`` is keyed by API action.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._ssl_context = ssl_context
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._errors: list[InjectedError] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._tracker = ConnectionTracker()
        self._app = DomainDispatcherApplication(create_backend_app)
        self.account_id = str(100_000_000_000 + secrets.randbelow(900_000_000_000))
        self.counts: collections.Counter[str] = collections.Counter()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind (port 0 picks a free port, reused on restart) and serve on a daemon thread."""
        with self._lock:
            if self._server is not None:
                return self
            tracker = ConnectionTracker()
            server = make_server(
                self._host,
                self._requested_port,
                self._wsgi,
                threaded=True,
                request_handler=_tracked_handler(tracker),
            )
            # TLS is added here rather than through make_server(ssl_context=...): wrapping the
            # listening socket with do_handshake_on_connect=False moves each handshake from the
            # accept loop to the connection's own thread, where a silent client cannot stall the
            # server and IDLE_TIMEOUT bounds it.
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
            server.ssl_context = self._ssl_context
            self._requested_port = int(server.port)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"okta-bridge-dev:{type(self).__name__}:{self._requested_port}:serve",
                daemon=True,
            )
            self._server, self._thread, self._tracker = server, thread, tracker
        thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, shut open connections down, and join every thread (bounded)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        self._tracker.close_all()
        thread.join(STOP_TIMEOUT)  # serve_forever's finally joins the connection threads
        self._tracker.join(STOP_TIMEOUT)
        server.server_close()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._requested_port == 0:
            raise RuntimeError(f"{type(self).__name__} has no port before start()")
        return self._requested_port

    @property
    def endpoint_url(self) -> str:
        """What ``AWS_ENDPOINT_URL_<SERVICE>`` / ``endpoint_url`` should be."""
        return f"https://{self._host}:{self.port}"

    def boto_client(self, service: str, ca_bundle: Path, *, max_attempts: int | None = None) -> Any:
        """A boto3 client of ``service`` for this server that verifies TLS against ``ca_bundle``,
        with moto's dummy credentials.

        ``max_attempts`` None keeps botocore's retry defaults (as the bridge gets them); 1 turns
        retries off for tests that count requests. The caller closes the client.
        """
        import boto3  # noqa: PLC0415 - the emulators' clients only
        from botocore.config import Config  # noqa: PLC0415

        retries: Any = (
            {"mode": "standard", "total_max_attempts": max_attempts}
            if max_attempts is not None
            else None
        )
        session: Any = boto3.session.Session()  # any service name: the typed overloads take one
        return session.client(
            service,
            region_name=MOTO_REGION,
            endpoint_url=self.endpoint_url,
            verify=str(ca_bundle),
            aws_access_key_id=MOTO_CREDENTIAL,
            aws_secret_access_key=MOTO_CREDENTIAL,
            config=Config(retries=retries, connect_timeout=5, read_timeout=10),
        )

    # -- faults and counters ---------------------------------------------------------------

    def _inject(self, injected: InjectedError) -> None:
        if injected.times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._errors.append(injected)

    def clear_faults(self) -> None:
        """Drop every pending injected error."""
        with self._lock:
            self._errors.clear()

    def reset_counts(self) -> None:
        """Zero ``counts``."""
        with self._lock:
            self.counts.clear()

    def _count(self, action: str) -> InjectedError | None:
        """Count one call of ``action``; the injected error it gets, if any."""
        with self._lock:
            self.counts[action] += 1
            for index, injected in enumerate(self._errors):
                if injected.action == action:
                    injected.times -= 1
                    if injected.times == 0:
                        del self._errors[index]
                    return injected
        return None

    # -- WSGI ------------------------------------------------------------------------------

    @abc.abstractmethod
    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request."""

    def _moto(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """moto's answer, in this server's own AWS account."""
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        result: Iterable[bytes] = self._app(environ, start_response)
        return result


def drain(environ: WSGIEnvironment) -> None:
    """Read the request body we will not use, so the kept-alive connection stays in sync."""
    raw = str(environ.get("CONTENT_LENGTH") or "0")
    length = int(raw) if raw.isdigit() else 0
    stream = environ["wsgi.input"]
    while length > 0:
        chunk = stream.read(min(length, 1 << 20))
        if not chunk:
            return
        length -= len(chunk)


def reason(status: int) -> str:
    """The reason phrase for ``status`` ("Error" for codes HTTP does not name)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def json_answer(
    start_response: StartResponse,
    status: int,
    payload: dict[str, Any],
    *,
    content_type: str = "application/x-amz-json-1.1",
) -> list[bytes]:
    """An answer in AWS's JSON protocol (``{"__type": ..., "message": ...}`` for an error;
    DynamoDB's is JSON 1.0)."""
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {reason(status)}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [body]

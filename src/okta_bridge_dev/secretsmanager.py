"""moto's Secrets Manager served over real TLS, with per-action counters and injected AWS errors.

The bridge talks to it with an unmodified boto3 client (``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and
``AWS_CA_BUNDLE``), so signing, retries and error parsing are botocore's own. moto keeps its state
in process-wide globals; each server therefore forces its own random AWS account id on every
request (moto's ``x-moto-account-id`` header), so two servers in one process never share secrets.
"""

from __future__ import annotations

import collections
import http
import json
import secrets
import ssl
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .servers import IDLE_TIMEOUT, STOP_TIMEOUT, ConnectionTracker, Lifecycle

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["REGION", "SecretsManagerServer"]

REGION = "us-east-1"
DUMMY_CREDENTIAL = "testing"  # moto accepts any credentials


@dataclass
class _InjectedError:
    action: str
    code: str
    message: str
    status: int
    times: int


def _action(environ: WSGIEnvironment) -> str:
    """``GetSecretValue`` from ``X-Amz-Target: secretsmanager.GetSecretValue``."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rsplit(".", 1)[-1] if target else "unknown"


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


class SecretsManagerServer(Lifecycle):
    """moto Secrets Manager on ``https://host:port`` (werkzeug, one daemon thread per connection).

    ``counts`` is keyed by API action (``GetSecretValue``, ``CreateSecret``...), faulted requests
    included. ``inject_error`` makes the next ``times`` calls of an action fail like AWS does.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        ca_bundle: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._ssl_context = ssl_context
        self._ca_bundle = ca_bundle
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._errors: list[_InjectedError] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._tracker = ConnectionTracker()
        self._admin: SecretsManagerClient | None = None
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
                name=f"okta-bridge-dev:SecretsManagerServer:{self._requested_port}:serve",
                daemon=True,
            )
            self._server, self._thread, self._tracker = server, thread, tracker
        thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, shut open connections down, and join every thread (bounded)."""
        with self._lock:
            server, thread, admin = self._server, self._thread, self._admin
            self._server = self._thread = self._admin = None
        if admin is not None:
            admin.close()
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
            raise RuntimeError("SecretsManagerServer has no port before start()")
        return self._requested_port

    @property
    def endpoint_url(self) -> str:
        """What ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` / ``endpoint_url`` should be."""
        return f"https://{self._host}:{self.port}"

    # -- faults and counters ---------------------------------------------------------------

    def inject_error(
        self, action: str, code: str, message: str, status: int = 400, times: int = 1
    ) -> None:
        """Fail the next ``times`` calls of ``action`` with AWS's JSON error ``code``."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._errors.append(_InjectedError(action, code, message, status, times))

    def clear_faults(self) -> None:
        """Drop every pending injected error."""
        with self._lock:
            self._errors.clear()

    def reset_counts(self) -> None:
        """Zero ``counts``."""
        with self._lock:
            self.counts.clear()

    # -- clients ---------------------------------------------------------------------------

    def client(self, ca_bundle: Path, *, max_attempts: int | None = None) -> SecretsManagerClient:
        """A boto3 client for this server that verifies TLS against ``ca_bundle``.

        ``max_attempts`` None keeps botocore's retry defaults (as the bridge gets them); 1 turns
        retries off for tests that count requests. The caller closes the client.
        """
        return boto3.session.Session().client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            verify=str(ca_bundle),
            aws_access_key_id=DUMMY_CREDENTIAL,
            aws_secret_access_key=DUMMY_CREDENTIAL,
            config=Config(
                retries=(
                    {"mode": "standard", "total_max_attempts": max_attempts}
                    if max_attempts is not None
                    else None
                ),
                connect_timeout=5,
                read_timeout=10,
            ),
        )

    def put_secret(self, name: str, value: dict[str, Any]) -> str:
        """Create or update the JSON secret ``name`` over HTTPS (counted); return its ARN."""
        client = self._admin_client()
        payload = json.dumps(value)
        try:
            return client.create_secret(Name=name, SecretString=payload)["ARN"]
        except client.exceptions.ResourceExistsException:
            return client.put_secret_value(SecretId=name, SecretString=payload)["ARN"]

    def _admin_client(self) -> SecretsManagerClient:
        with self._lock:
            if self._server is None:
                raise RuntimeError("start() the server before put_secret()")
            if self._ca_bundle is None:
                raise RuntimeError("put_secret() needs the ca_bundle the server was created with")
            if self._admin is None:
                self._admin = self.client(self._ca_bundle, max_attempts=1)
            return self._admin

    # -- WSGI ------------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        action = _action(environ)
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        with self._lock:
            self.counts[action] += 1
            injected = self._take_error(action)
        if injected is None:
            result: Iterable[bytes] = self._app(environ, start_response)
            return result
        _drain(environ)
        body = json.dumps({"__type": injected.code, "message": injected.message}).encode()
        start_response(
            f"{injected.status} {_reason(injected.status)}",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [body]

    def _take_error(self, action: str) -> _InjectedError | None:
        for index, injected in enumerate(self._errors):
            if injected.action == action:
                injected.times -= 1
                if injected.times == 0:
                    del self._errors[index]
                return injected
        return None


def _drain(environ: WSGIEnvironment) -> None:
    """Read the request body we will not use, so the kept-alive connection stays in sync."""
    raw = str(environ.get("CONTENT_LENGTH") or "0")
    length = int(raw) if raw.isdigit() else 0
    if length:
        environ["wsgi.input"].read(length)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"

"""moto's Secrets Manager served over real TLS, with per-action counters and injected AWS errors.

``RotateSecret`` behaves as in AWS when a rotation function is attached (``attach_rotation``): the
call stages an empty AWSPENDING version, returns its id at once and runs the function's four steps
on a thread, as Secrets Manager invokes the Lambda. moto's own ``rotate_secret`` needs Docker for
Lambda, or without one promotes an empty version on the spot; neither is what AWS does.

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
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.secretsmanager.models import secretsmanager_backends
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from okta_bridge_dev.emulators.connections import IDLE_TIMEOUT, ConnectionTracker
from okta_bridge_dev.emulators.servers import STOP_TIMEOUT, Lifecycle

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["REGION", "RotationRun", "SecretsManagerServer"]

REGION = "us-east-1"
DUMMY_CREDENTIAL = "testing"  # moto accepts any credentials


ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
RotationFunction = Callable[[dict[str, Any]], None]


@dataclass
class RotationRun:
    """One RotateSecret call: the version it rotates to, the steps done, how it ended."""

    secret_arn: str
    token: str
    steps_done: list[str] = field(default_factory=list)
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the four steps ran or one failed (bounded); True if all succeeded."""
        if not self.finished.wait(timeout):
            raise TimeoutError(f"rotation {self.token} still running after {timeout} s")
        return self.error is None


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
        self.rotation_function: RotationFunction | None = None
        self.rotation_arn = (
            f"arn:aws:lambda:{REGION}:{self.account_id}:function:okta-bridge-rotation"
        )
        self.rotations: list[RotationRun] = []

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

    # -- rotation (what AWS does around the rotation function) ------------------------------

    def attach_rotation(self, function: RotationFunction | None) -> None:
        """Invoke ``function(event)`` for each step when RotateSecret is called (None detaches)."""
        with self._lock:
            self.rotation_function = function

    def enable_rotation(self, secret_id: str, days: int = 90) -> None:
        """What the template's RotationSchedule does: rotation on, every ``days`` days."""
        secret = self._backend().secrets[secret_id]
        secret.rotation_requested = True  # moto reports rotation fields only once this is set
        secret.rotation_enabled = True
        secret.rotation_lambda_arn = self.rotation_arn
        secret.auto_rotate_after_days = days

    def begin_rotation(self, secret_id: str, token: str | None = None) -> tuple[str, str]:
        """Stage AWSPENDING on a new empty version, as RotateSecret does; (secret ARN, version).

        A rotation still in progress (AWSPENDING on a version that is not AWSCURRENT) is
        resumed with its own version, as Secrets Manager reattempts it.
        """
        secret = self._backend().secrets[secret_id]
        if not secret.rotation_enabled:
            self.enable_rotation(secret_id)
        for version_id, version in secret.versions.items():
            stages = version["version_stages"]
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
                return secret.arn, version_id
        version_id = token or str(uuid.uuid4())
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[version_id] = {
            "createdate": int(time.time()),
            "version_id": version_id,
            "version_stages": ["AWSPENDING"],
        }
        return secret.arn, version_id

    def run_rotation(self, arn: str, token: str) -> RotationRun:
        """The four steps, in order, on a daemon thread; the first failure ends the run."""
        function = self.rotation_function
        if function is None:
            raise RuntimeError("attach_rotation() first")
        run = RotationRun(secret_arn=arn, token=token)

        def invoke() -> None:
            try:
                for step in ROTATION_STEPS:
                    function({"Step": step, "SecretId": arn, "ClientRequestToken": token})
                    run.steps_done.append(step)
            except BaseException as exc:  # noqa: BLE001 - recorded for the caller, as AWS would
                run.error = exc
            finally:
                run.finished.set()

        with self._lock:
            self.rotations.append(run)
        threading.Thread(target=invoke, name="rotation", daemon=True).start()
        return run

    def _rotate_secret(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        length = int(str(environ.get("CONTENT_LENGTH") or "0") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        try:
            arn, token = self.begin_rotation(request["SecretId"], request.get("ClientRequestToken"))
        except KeyError:
            return _json_answer(
                start_response,
                400,
                {
                    "__type": "ResourceNotFoundException",
                    "message": "Secrets Manager can't find the specified secret.",
                },
            )
        self.run_rotation(arn, token)
        name = self._backend().secrets[request["SecretId"]].name
        return _json_answer(start_response, 200, {"ARN": arn, "Name": name, "VersionId": token})

    def _follow_awscurrent(self) -> None:
        """Make a read without a stage return AWSCURRENT after the label moved, as AWS does.

        moto answers GetSecretValue from a default version that UpdateSecretVersionStage leaves
        where it was, so without this the bridge would keep reading the pre-rotation value.
        """
        for secret in list(self._backend().secrets.values()):
            versions = getattr(secret, "versions", {})
            for version_id, version in versions.items():
                if "AWSCURRENT" in version["version_stages"]:
                    secret.set_default_version_id(version_id)

    def _backend(self) -> Any:
        return secretsmanager_backends[self.account_id][REGION]

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
            if action == "RotateSecret" and self.rotation_function is not None:
                return self._rotate_secret(environ, start_response)
            result: Iterable[bytes] = self._app(environ, start_response)
            if action == "UpdateSecretVersionStage":
                self._follow_awscurrent()
            return result
        _drain(environ)
        return _json_answer(
            start_response,
            injected.status,
            {"__type": injected.code, "message": injected.message},
        )

    def _take_error(self, action: str) -> _InjectedError | None:
        for index, injected in enumerate(self._errors):
            if injected.action == action:
                injected.times -= 1
                if injected.times == 0:
                    del self._errors[index]
                return injected
        return None


def _json_answer(
    start_response: StartResponse, status: int, payload: dict[str, Any]
) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {_reason(status)}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [body]


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

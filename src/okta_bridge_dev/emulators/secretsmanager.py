"""moto's Secrets Manager served over real TLS, with per-action counters and injected AWS errors.

``RotateSecret`` behaves as in AWS when a rotation function is attached (``attach_rotation``): the
call stages an empty AWSPENDING version, returns its id at once and runs the function's four steps
on a thread, as Secrets Manager invokes the Lambda. moto's own ``rotate_secret`` needs Docker for
Lambda, or without one promotes an empty version on the spot; neither is what AWS does.

The bridge talks to it with an unmodified boto3 client (``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and
``AWS_CA_BUNDLE``), so signing, retries and error parsing are botocore's own. The TLS server, the
counters and the per-server AWS account are ``moto_tls.MotoTlsServer``'s.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.secretsmanager.models import secretsmanager_backends

from okta_bridge_dev.emulators.moto_tls import (
    MOTO_CREDENTIAL,
    MOTO_REGION,
    InjectedError,
    MotoTlsServer,
    drain,
    json_answer,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["REGION", "RotationRun", "SecretsManagerServer"]

REGION = MOTO_REGION
DUMMY_CREDENTIAL = MOTO_CREDENTIAL


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


def _action(environ: WSGIEnvironment) -> str:
    """``GetSecretValue`` from ``X-Amz-Target: secretsmanager.GetSecretValue``."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rsplit(".", 1)[-1] if target else "unknown"


class SecretsManagerServer(MotoTlsServer):
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
        super().__init__(ssl_context, host=host, port=port)
        self._ca_bundle = ca_bundle
        self._admin: SecretsManagerClient | None = None
        self.rotation_function: RotationFunction | None = None
        self.rotation_arn = (
            f"arn:aws:lambda:{REGION}:{self.account_id}:function:okta-bridge-rotation"
        )
        self.rotations: list[RotationRun] = []

    def stop(self) -> None:
        """Close the admin client, then stop serving (``MotoTlsServer.stop``)."""
        with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        super().stop()

    # -- faults and counters ---------------------------------------------------------------

    def inject_error(
        self, action: str, code: str, message: str, status: int = 400, times: int = 1
    ) -> None:
        """Fail the next ``times`` calls of ``action`` with AWS's JSON error ``code``."""
        self._inject(InjectedError(action, code, message, status, times))

    # -- clients ---------------------------------------------------------------------------

    def client(self, ca_bundle: Path, *, max_attempts: int | None = None) -> SecretsManagerClient:
        """A boto3 client for this server (``boto_client``)."""
        client: SecretsManagerClient = self.boto_client(
            "secretsmanager", ca_bundle, max_attempts=max_attempts
        )
        return client

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
            return json_answer(
                start_response,
                400,
                {
                    "__type": "ResourceNotFoundException",
                    "message": "Secrets Manager can't find the specified secret.",
                },
            )
        self.run_rotation(arn, token)
        name = self._backend().secrets[request["SecretId"]].name
        return json_answer(start_response, 200, {"ARN": arn, "Name": name, "VersionId": token})

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
        injected = self._count(action)
        if injected is None:
            if action == "RotateSecret" and self.rotation_function is not None:
                environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
                return self._rotate_secret(environ, start_response)
            result = self._moto(environ, start_response)
            if action == "UpdateSecretVersionStage":
                self._follow_awscurrent()
            return result
        drain(environ)
        return json_answer(
            start_response,
            injected.status,
            {"__type": injected.code, "message": injected.message},
        )

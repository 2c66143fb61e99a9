"""The rotation Lambda's entry point: configuration, wiring, and the error report.

``lambda_handler`` is what ``template.yaml`` names; it builds a ``Rotator`` for the configured
secret and the Okta admin app, runs one step, and turns a failure into one log line with a stable
code (Secrets Manager shows the function's error; the log says what to do).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from okta_bridge import logs
from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.config import Settings
from okta_bridge.errors import (
    BridgeError,
    ConfigError,
    InternalError,
    RotationError,
)
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.rotation.kms_keys import KmsKeys, KmsRotationSettings, make_kms_client
from okta_bridge.rotation.okta_admin import OktaAdmin
from okta_bridge.rotation.rotator import Rotator
from okta_bridge.rotation.versions import RotationRequest, SecretVersions
from okta_bridge.secret.store import CURRENT, make_client
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = get_logger("rotation")

ADMIN_SECRET_ID = "BRIDGE_ADMIN_SECRET_ID"  # noqa: S105 - a variable name


def build_rotator(
    settings: Settings,
    admin_secret_id: str,
    *,
    client: SecretsManagerClient | None = None,
    http: HttpClient | None = None,
    kms: KmsKeys | None = None,
    kms_settings: KmsRotationSettings | None = None,
) -> Rotator:
    """Wire a rotator from configuration; ``client``/``http``/``kms`` for tests and the local
    stack. The KMS client is made only for a KMS-signed app's secret."""
    sm = client or make_client(settings)
    http = http or HttpClient(settings)
    endpoint = TokenEndpoint(
        http, on_token=lambda value: REDACTOR.register([value]), dpop_mode=settings.dpop
    )

    def admin() -> OktaAdmin:
        # GetSecretValue is all the role may do on the admin secret, so "empty" and "missing"
        # (both ResourceNotFoundException) are not told apart.
        text = SecretVersions(sm, admin_secret_id).text(stage=CURRENT)
        if text is None:
            raise RotationError(
                "ROTATION_ADMIN_SECRET_INVALID",
                f"The admin secret {admin_secret_id} has no value or does not exist "
                "(make secret ADMIN=1).",
            )
        credentials = parse_admin_secret(text)
        REDACTOR.pin(credentials.sensitive_values())
        return OktaAdmin(credentials, http, endpoint)

    def kms_keys() -> KmsKeys:
        if kms is not None:
            return kms
        client = make_kms_client(settings.aws, max_attempts=settings.max_retries + 1)
        return KmsKeys(client, kms_settings or KmsRotationSettings())

    return Rotator(settings, SecretVersions(sm, settings.secret_id), endpoint, admin, kms_keys)


def admin_secret_id(env: Mapping[str, str]) -> str:
    """The admin secret's name or ARN from the environment."""
    value = env.get(ADMIN_SECRET_ID, "").strip()
    if not value:
        raise ConfigError(
            ADMIN_SECRET_ID, "is required: the secret holding the Okta admin app's credentials"
        )
    return value


def lambda_handler(event: Any, context: Any) -> None:
    """Run one rotation step; raise on failure so that Secrets Manager retries the rotation."""
    request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
    with logs.request_scope(request_id):
        step = event.get("Step") if isinstance(event, Mapping) else None
        try:
            settings = Settings.from_env()
            logs.configure(settings.log_level)
            request = RotationRequest.parse(event)
            kms_settings = KmsRotationSettings.from_env(os.environ)
            rotator = build_rotator(
                settings, admin_secret_id(os.environ), kms_settings=kms_settings
            )
            rotator.run(request, Deadline.from_context(context, settings))
        except BridgeError as exc:
            log.error(  # noqa: TRY400 - the message is the report; no traceback in the log
                "rotation step failed",
                extra={"step": step, "code": exc.code, "stage": exc.stage, "error": exc.message},
            )
            raise
        except Exception:
            log.exception("unexpected error in rotation", extra={"code": "INTERNAL_ERROR"})
            raise InternalError() from None

"""The secret's versions as rotation sees them: the step request, the staging labels, the values.

Secrets Manager's staging labels are the rotation's memory between steps and retries; these types
read and move them, so that the state machine in ``rotator`` never handles raw API answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from okta_bridge.errors import (
    RotationError,
)
from okta_bridge.secret.store import CURRENT, PENDING, translate_aws_error

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

PREVIOUS = "AWSPREVIOUS"

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass(frozen=True)
class RotationRequest:
    """One step of one rotation, as Secrets Manager sends it."""

    step: str
    secret_id: str
    token: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: Any) -> RotationRequest:
        """Validate the event; a bad one is refused before any call."""
        if not isinstance(event, Mapping):
            raise RotationError("ROTATION_STEP_INVALID", "The event must be a JSON object.")
        step = event.get("Step")
        if step not in STEPS:
            raise RotationError("ROTATION_STEP_INVALID", f"Step must be one of {', '.join(STEPS)}.")
        fields: dict[str, str] = {}
        for key in ("SecretId", "ClientRequestToken"):
            value = event.get(key)
            if not isinstance(value, str) or not value:
                raise RotationError("ROTATION_STEP_INVALID", f"The event lacks '{key}'.")
            fields[key] = value
        rotation_token = event.get("RotationToken")
        return cls(
            step=step,
            secret_id=fields["SecretId"],
            token=fields["ClientRequestToken"],
            rotation_token=rotation_token if isinstance(rotation_token, str) else None,
        )


@dataclass(frozen=True)
class Description:
    """What ``DescribeSecret`` says about the secret's rotation and versions."""

    arn: str
    name: str
    rotation_enabled: bool
    stages: Mapping[str, tuple[str, ...]]

    def version_with(self, stage: str) -> str | None:
        """The version carrying ``stage``, if any."""
        return next((v for v, labels in self.stages.items() if stage in labels), None)


class SecretVersions:
    """The Secrets Manager calls of a rotation, with AWS errors translated."""

    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def describe(self) -> Description:
        """Rotation state and the staging labels of every version."""
        answer = self._aws(lambda: self._client.describe_secret(SecretId=self._secret_id))
        return Description(
            arn=answer.get("ARN", ""),
            name=answer.get("Name", ""),
            rotation_enabled=bool(answer.get("RotationEnabled")),
            stages={k: tuple(v) for k, v in answer.get("VersionIdsToStages", {}).items()},
        )

    def text(self, *, version_id: str | None = None, stage: str | None = None) -> str | None:
        """The secret string of one version, or None if it has no value (yet)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        arguments: dict[str, str] = {"SecretId": self._secret_id}
        if version_id is not None:
            arguments["VersionId"] = version_id
        if stage is not None:
            arguments["VersionStage"] = stage
        try:
            answer = self._client.get_secret_value(**arguments)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise translate_aws_error(exc, self._secret_id) from exc
        except Exception as exc:
            raise translate_aws_error(exc, self._secret_id) from exc
        return answer.get("SecretString")

    def put_pending(self, token: str, text: str, rotation_token: str | None) -> None:
        """Store the new value as the AWSPENDING version ``token``."""
        arguments: dict[str, Any] = {
            "SecretId": self._secret_id,
            "ClientRequestToken": token,
            "SecretString": text,
            "VersionStages": [PENDING],
        }
        if rotation_token:
            arguments["RotationToken"] = rotation_token
        self._aws(lambda: self._client.put_secret_value(**arguments))

    def promote(self, token: str, current: str) -> None:
        """Move AWSCURRENT to ``token``; Secrets Manager labels ``current`` AWSPREVIOUS."""
        self._aws(
            lambda: self._client.update_secret_version_stage(
                SecretId=self._secret_id,
                VersionStage=CURRENT,
                MoveToVersionId=token,
                RemoveFromVersionId=current,
            )
        )

    def drop_pending(self, token: str) -> None:
        """Take AWSPENDING off ``token``, so no later rotation mistakes it for work in progress."""
        self._aws(
            lambda: self._client.update_secret_version_stage(
                SecretId=self._secret_id, VersionStage=PENDING, RemoveFromVersionId=token
            )
        )

    def _aws(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            raise translate_aws_error(exc, self._secret_id) from exc

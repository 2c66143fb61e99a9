"""The rotation's KMS key management for KMS-signed apps (issue 16): boto3, not the hot path.

A rotation of a KMS-signed app creates a new asymmetric key like the current one, tagged with the
secret, the rotation's version and the app, so that a re-run of ``createSecret`` finds the key it
already made (``ListKeys`` + ``ListResourceTags``) instead of making another, and keys that earlier
failed runs left behind can be retired. Retiring is ``DisableKey`` then ``ScheduleKeyDeletion``,
done only once Okta refuses the key; both are no-ops on a key already in that state.

The new key's policy names the bridge's role for ``kms:Sign`` (with the ``kms:SigningAlgorithm``
condition) and the rotation's role for key management, from ``BRIDGE_KMS_SIGNER_ROLE_ARN`` and
``BRIDGE_KMS_ADMIN_ROLE_ARN``; without them (the local stack) it is KMS's default policy (the
account root, IAM decides). KMS errors become ``RotationError``s that name KMS's error code only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from okta_bridge.auth.jwk import public_jwk
from okta_bridge.auth.kms_signing import ALGORITHMS
from okta_bridge.config import AwsSettings
from okta_bridge.errors import ConfigError, RotationError
from okta_bridge.logs import get_logger

DELETION_DAYS = "BRIDGE_KMS_DELETION_DAYS"
SIGNER_ROLE = "BRIDGE_KMS_SIGNER_ROLE_ARN"
ADMIN_ROLE = "BRIDGE_KMS_ADMIN_ROLE_ARN"
MIN_DELETION_DAYS, MAX_DELETION_DAYS, DEFAULT_DELETION_DAYS = 7, 30, 30

TAG_SECRET = "okta-bridge:secret"  # noqa: S105 - a tag key
TAG_VERSION = "okta-bridge:version"
TAG_APP = "okta-bridge:app"
TAG_STACK = "okta-bridge:stack"
"""Carried over from the current key: the rotation role may create only keys with this tag."""

KEY_SPECS = {"RS256": ("RSA_2048", "RSA_3072", "RSA_4096"), "ES256": ("ECC_NIST_P256",)}

ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"

# What the account root may do on a key whose policy also names the roles: administration, as the
# template's KmsSigningKey allows it, never kms:Sign nor kms:CreateGrant (a grant would be a way to
# sign around the policy), so that nobody signs through an IAM policy.
_ADMINISTRATION = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:Describe*",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:Get*",
    "kms:List*",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
# The rotation role's part: what this module calls on a key, and PutKeyPolicy, which KMS's policy
# lockout safety check requires the creator to keep.
_ROTATION_ACTIONS = [
    "kms:DescribeKey",
    "kms:GetPublicKey",
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
]
_DENIED = frozenset(
    {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"}
)

log = get_logger("rotation")


@dataclass(frozen=True)
class KmsRotationSettings:
    """The rotation's KMS settings, from its environment."""

    deletion_days: int = DEFAULT_DELETION_DAYS
    signer_role_arn: str | None = None
    admin_role_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KmsRotationSettings:
        """Parse and check; ``ConfigError`` names the bad variable."""
        raw = env.get(DELETION_DAYS, "").strip()
        days = DEFAULT_DELETION_DAYS
        if raw:
            try:
                days = int(raw)
            except ValueError:
                days = 0
            if not MIN_DELETION_DAYS <= days <= MAX_DELETION_DAYS:
                raise ConfigError(
                    DELETION_DAYS,
                    f"must be a whole number of days from {MIN_DELETION_DAYS} to "
                    f"{MAX_DELETION_DAYS} (KMS's waiting period before it deletes a key)",
                )
        return cls(
            deletion_days=days,
            signer_role_arn=_role(env, SIGNER_ROLE),
            admin_role_arn=_role(env, ADMIN_ROLE),
        )


def _role(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if value and not (value.startswith("arn:aws") and ":iam::" in value):
        raise ConfigError(name, "must be an IAM role ARN")
    return value or None


class KmsCallError(RotationError):
    """A KMS refusal; ``aws_code`` is KMS's error code (``AccessDeniedException``...)."""

    def __init__(self, code: str, message: str, aws_code: str) -> None:
        super().__init__(code, message)
        self.aws_code = aws_code


@dataclass(frozen=True)
class KmsKey:
    """What ``DescribeKey`` says about a key (``arn`` resolves an alias or a bare id)."""

    arn: str
    key_spec: str
    state: str

    @property
    def account(self) -> str:
        """The AWS account that owns the key (from its ARN)."""
        return self.arn.split(":")[4]

    @property
    def partition(self) -> str:
        """``aws``, ``aws-cn``, ``aws-us-gov``..."""
        return self.arn.split(":")[1]


@dataclass(frozen=True)
class TaggedKey:
    """A key tagged as made by a rotation of this secret, with its tags."""

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        """The rotation version (ClientRequestToken) the key was made for."""
        return self.tags.get(TAG_VERSION)


def make_kms_client(
    aws: AwsSettings,
    *,
    max_attempts: int = 3,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:
    """A boto3 KMS client as the rotation's Secrets Manager client is made: the region, the
    endpoint ``AWS_ENDPOINT_URL_KMS`` (local stack) and its CA bundle; explicit keys only for
    the local stack, which has no AWS credentials in the environment."""
    import boto3  # noqa: PLC0415 - deferred: boto3 costs ~200 ms to import
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import NoRegionError  # noqa: PLC0415

    retries: Any = {"mode": "standard", "total_max_attempts": max_attempts}
    config = Config(
        connect_timeout=5, read_timeout=10, retries=retries, user_agent_extra="okta-bridge"
    )
    try:
        return boto3.session.Session().client(
            "kms",
            region_name=aws.region,
            endpoint_url=aws.kms_endpoint,
            verify=aws.ca_bundle,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
    except NoRegionError:
        raise ConfigError("AWS_REGION", "is not set; Lambda sets it, set it locally") from None


class KmsKeys:
    """The KMS calls of a rotation, with KMS's errors translated to ``RotationError``s."""

    def __init__(self, client: Any, settings: KmsRotationSettings) -> None:
        self._client = client
        self._settings = settings

    @property
    def deletion_days(self) -> int:
        """The waiting period ``retire`` schedules deletion with."""
        return self._settings.deletion_days

    def describe(self, key_id: str) -> KmsKey:
        """The key's ARN, spec and state (``key_id`` may be an alias)."""
        answer = self._call("DescribeKey", key_id, lambda: self._client.describe_key(KeyId=key_id))
        meta = answer["KeyMetadata"]
        return KmsKey(
            arn=str(meta["Arn"]),
            key_spec=str(meta.get("KeySpec") or meta.get("CustomerMasterKeySpec", "")),
            state=str(meta.get("KeyState", "")),
        )

    def public_jwk(self, key_id: str) -> dict[str, str]:
        """The JWK Okta registers for the key, ``kid`` its RFC 7638 thumbprint."""
        answer = self._call(
            "GetPublicKey", key_id, lambda: self._client.get_public_key(KeyId=key_id)
        )
        try:
            return public_jwk(bytes(answer["PublicKey"]))
        except ValueError as exc:
            raise RotationError(
                "ROTATION_KMS_ERROR", f"The public key of {key_id} is not usable for Okta: {exc}."
            ) from None

    def tags(self, key_id: str) -> dict[str, str]:
        """The key's tags (its first page: ours are few)."""
        answer = self._call(
            "ListResourceTags", key_id, lambda: self._client.list_resource_tags(KeyId=key_id)
        )
        return {str(t["TagKey"]): str(t["TagValue"]) for t in answer.get("Tags", [])}

    def tagged(self, secret_arn: str) -> list[TaggedKey]:
        """Every key of the region tagged as made for ``secret_arn``, in ARN order.

        Keys whose tags the role may not read (other teams' keys) or that vanish meanwhile are
        not ours to know about, so they are skipped rather than failing the rotation.
        """
        found = []
        for arn in self._key_arns():
            try:
                tags = self.tags(arn)
            except KmsCallError as exc:
                if exc.aws_code in ("AccessDeniedException", "NotFoundException"):
                    continue
                raise
            if tags.get(TAG_SECRET) == secret_arn:
                found.append(TaggedKey(arn=arn, tags=tags))
        return sorted(found, key=lambda key: key.arn)

    def made_by_rotation(self, key_id: str, current: KmsKey, algorithm: str) -> bool:
        """Whether the key's policy is exactly the one ``create_like`` gives a rotation's keys.

        Tags prove nothing: anyone who may tag a key can tag it as this secret's (and the pending
        version's id is readable with DescribeSecret). A key with another policy is neither
        adopted as the new signing key nor retired as an abandoned run's. One with this exact
        policy was made by KMS with this account's administrators and these two roles as its
        only principals, so adopting it gives nobody more than a key the rotation made.
        """
        try:
            answer = self._call(
                "GetKeyPolicy",
                key_id,
                lambda: self._client.get_key_policy(KeyId=key_id, PolicyName="default"),
            )
        except KmsCallError as exc:
            if exc.aws_code in ("AccessDeniedException", "NotFoundException"):
                return False
            raise
        try:
            policy = json.loads(str(answer["Policy"]))
        except (KeyError, TypeError, ValueError):
            return False
        return bool(policy == self._policy(current, ALGORITHMS[algorithm]))

    def create_like(self, current: KmsKey, algorithm: str, tags: Mapping[str, str]) -> str:
        """A new SIGN_VERIFY key of the current key's spec, with ``tags``; its ARN."""
        if current.key_spec not in KEY_SPECS.get(algorithm, ()):
            raise RotationError(
                "ROTATION_KMS_ERROR",
                f"The current key {current.arn} is {current.key_spec}, which does not sign "
                f"{algorithm}; fix the secret's key_algorithm or kms_key_id first.",
            )
        policy = json.dumps(self._policy(current, ALGORITHMS[algorithm]))
        answer = self._call(
            "CreateKey",
            current.arn,
            lambda: self._client.create_key(
                KeyUsage="SIGN_VERIFY",
                KeySpec=current.key_spec,
                Policy=policy,
                Description=_description(tags),
                Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())],
            ),
        )
        arn = str(answer["KeyMetadata"]["Arn"])
        log.info("KMS key created", extra={"key": arn, "spec": current.key_spec})
        return arn

    def retire(self, key_id: str) -> None:
        """Disable the key and schedule its deletion; a key already so is left as it is."""
        key = self.describe(key_id)
        if key.state == PENDING_DELETION:
            return
        if key.state == ENABLED:
            self._call(
                "DisableKey", key.arn, lambda: self._client.disable_key(KeyId=key.arn), idle=True
            )
        self._call(
            "ScheduleKeyDeletion",
            key.arn,
            lambda: self._client.schedule_key_deletion(
                KeyId=key.arn, PendingWindowInDays=self._settings.deletion_days
            ),
            idle=True,
        )
        log.info(
            "KMS key disabled, deletion scheduled",
            extra={"key": key.arn, "days": self._settings.deletion_days},
        )

    # -- plumbing --------------------------------------------------------------------------

    def _policy(self, current: KmsKey, signing_algorithm: str) -> dict[str, Any]:
        root = f"arn:{current.partition}:iam::{current.account}:root"
        signer, admin = self._settings.signer_role_arn, self._settings.admin_role_arn
        # As the template's KmsSigningKey: the key's one algorithm, on a digest only.
        signing = {
            "StringEquals": {"kms:SigningAlgorithm": signing_algorithm, "kms:MessageType": "DIGEST"}
        }
        if signer is None or admin is None:
            # KMS's default key policy: IAM policies decide (the local stack has no roles).
            statements = [_statement("DefaultAccountAccess", root, "kms:*")]
        else:
            statements = [
                _statement("AccountAdministration", root, _ADMINISTRATION),
                _statement("BridgeSigns", signer, "kms:Sign", signing),
                _statement("RotationManages", admin, _ROTATION_ACTIONS),
                # testSecret signs with the new key, finishSecret with the old one to confirm
                # Okta refuses its kid: the rotation role signs as the bridge does.
                _statement("RotationSigns", admin, "kms:Sign", signing),
            ]
        return {"Version": "2012-10-17", "Statement": statements}

    def _key_arns(self) -> list[str]:
        def every_page() -> list[str]:
            pages = self._client.get_paginator("list_keys").paginate()
            return [str(key["KeyArn"]) for page in pages for key in page.get("Keys", [])]

        result: list[str] = self._call("ListKeys", "the region's keys", every_page)
        return result

    def _call(
        self, action: str, key_id: str, call: Callable[[], Any], *, idle: bool = False
    ) -> Any:
        """Run one KMS call; ``idle`` accepts KMSInvalidStateException (the key is already in
        the state the call would put it in, e.g. a race with another run)."""
        from botocore import exceptions as bce  # noqa: PLC0415

        try:
            return call()
        except bce.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            if idle and code == "KMSInvalidStateException":
                log.info("KMS key already in that state", extra={"action": action, "key": key_id})
                return None
            kind = "ROTATION_KMS_DENIED" if code in _DENIED else "ROTATION_KMS_ERROR"
            raise KmsCallError(kind, f"KMS refused {action} on {key_id}: {code}.", code) from None
        except bce.NoCredentialsError:
            raise RotationError(
                "ROTATION_KMS_DENIED", f"No AWS credentials for KMS {action} on {key_id}."
            ) from None
        except bce.BotoCoreError as exc:
            raise RotationError(
                "ROTATION_KMS_ERROR",
                f"KMS {action} on {key_id} failed ({type(exc).__name__}).",
            ) from None


def _statement(
    sid: str, principal: str, actions: str | list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": actions,
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _description(tags: Mapping[str, str]) -> str:
    app = tags.get(TAG_APP, "an Okta app")
    return f"okta-bridge: signs private_key_jwt client assertions for {app} (rotated key)"

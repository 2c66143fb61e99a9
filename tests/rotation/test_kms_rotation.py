"""Rotation of KMS-signed apps (issue 16): a new KMS key per rotation, its JWK on the Okta app,
the old key disabled and its deletion scheduled once Okta refuses it; re-runs; KMS's faults."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from okta_bridge.errors import BridgeError, ConfigError, RotationError
from okta_bridge.rotation import handler as rotation_entry
from okta_bridge.rotation.kms_keys import (
    ADMIN_ROLE,
    DELETION_DAYS,
    SIGNER_ROLE,
    TAG_APP,
    TAG_SECRET,
    TAG_STACK,
    TAG_VERSION,
    KmsRotationSettings,
)
from okta_bridge.rotation.versions import STEPS
from okta_bridge.secret.credentials import Credentials
from tests.integration.conftest import LambdaContext
from tests.rotation import conftest
from tests.rotation.conftest import Kit

KMS_KINDS = ("kms-rs256", "kms-es256")
SPEC = {"kms-rs256": "RSA_2048", "kms-es256": "ECC_NIST_P256"}
ALGORITHM = {"kms-rs256": "RS256", "kms-es256": "ES256"}
DAY = 86_400.0


def metadata(kit: Kit, key_id: str) -> dict[str, Any]:
    return dict(kit.kms.describe_key(KeyId=key_id)["KeyMetadata"])


def tags(kit: Kit, key_id: str) -> dict[str, str]:
    answer = kit.kms.list_resource_tags(KeyId=key_id)
    return {t["TagKey"]: t["TagValue"] for t in answer["Tags"]}


def okta_keys(kit: Kit) -> list[tuple[str | None, str]]:
    return [(k.kid, k.status) for k in kit.stack.okta.client_keys(kit.client_id)]


def our_keys(kit: Kit) -> list[str]:
    """Every KMS key tagged as made by a rotation of this kit's secret."""
    arns = [k["KeyArn"] for k in kit.kms.list_keys()["Keys"]]
    return sorted(arn for arn in arns if tags(kit, arn).get(TAG_SECRET) == kit.arn)


def assert_retired(kit: Kit, key_id: str, days: int = conftest.DELETION_DAYS) -> None:
    """Disabled and pending deletion, in ``days`` days."""
    meta = metadata(kit, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert not meta["Enabled"]
    deletion = meta["DeletionDate"].timestamp()
    assert abs(deletion - (time.time() + days * DAY)) < 600


def assert_kms_rotated(kit: Kit, token: str, old_version: str, old: Credentials) -> Credentials:
    """The end state of a good rotation of a KMS-signed app; the new credentials."""
    stages = kit.stages()
    assert stages[token] == ["AWSCURRENT"]
    assert stages[old_version] == ["AWSPREVIOUS"]
    assert not [v for v, labels in stages.items() if "AWSPENDING" in labels]
    new = kit.version("AWSCURRENT")
    assert new.kms_key_id is not None
    assert new.kms_key_id != old.kms_key_id
    assert new.private_key is None
    assert new.key_algorithm == old.key_algorithm
    # Okta holds only the new key's JWK, active, under its thumbprint kid.
    assert okta_keys(kit) == [(new.key_id, "ACTIVE")]
    assert kit.token_outcome(new) == "ok"
    # The old key cannot sign any more...
    assert kit.token_outcome(old) == "KMS_KEY_DISABLED"
    assert_retired(kit, old.kms_key_id or "")
    # ...and Okta refuses its kid even when it signs again (re-enabled by hand).
    kit.kms.cancel_key_deletion(KeyId=old.kms_key_id)
    kit.kms.enable_key(KeyId=old.kms_key_id)
    try:
        assert kit.token_outcome(old) == "TOKEN_REJECTED"
    finally:
        kit.kms.disable_key(KeyId=old.kms_key_id)
    return new


def current_version(kit: Kit) -> str:
    return str(kit.sm.get_secret_value(SecretId=kit.secret_id)["VersionId"])


@pytest.mark.parametrize("kind", KMS_KINDS)
def test_a_full_rotation_makes_a_new_kms_key_and_retires_the_old_one(
    make_kit: Any, kind: str
) -> None:
    kit: Kit = make_kit(kind)
    harness = kit.harness()
    assert harness.invoke({})["statusCode"] == 200
    before, old_version, old = (
        kit.raw("AWSCURRENT"),
        current_version(kit),
        kit.version("AWSCURRENT"),
    )
    kit.stack.kms.reset_counts()

    token = kit.rotate()

    new = assert_kms_rotated(kit, token, old_version, old)
    after = kit.raw("AWSCURRENT")
    assert {key for key in after if after[key] != before.get(key)} == {"kms_key_id", "key_id"}
    assert after["key_algorithm"] == ALGORITHM[kind]
    meta = metadata(kit, new.kms_key_id or "")
    assert (meta["KeySpec"], meta["KeyUsage"], meta["KeyState"]) == (
        SPEC[kind],
        "SIGN_VERIFY",
        "Enabled",
    )
    assert tags(kit, new.kms_key_id or "") == {
        TAG_SECRET: kit.arn,
        TAG_VERSION: token,
        TAG_APP: kit.client_id,
    }
    assert kit.stack.kms.counts["CreateKey"] == 1
    # The warm bridge keeps its token; once it needs a new one, it re-reads and carries on.
    assert harness.invoke({})["statusCode"] == 200
    harness.bridge.tokens.clear()
    assert harness.invoke({})["statusCode"] == 200
    # A second rotation starts from the rotated key, and retires it in turn.
    second = kit.rotate()
    assert_kms_rotated(kit, second, token, new)


def test_each_step_run_twice_gives_the_same_result(make_kit: Any) -> None:
    kit: Kit = make_kit("kms-es256")
    old_version, old = current_version(kit), kit.version("AWSCURRENT")
    kit.stack.kms.reset_counts()
    token = kit.begin()
    for step in STEPS:
        kit.step(step, token)
        snapshot = (kit.stages(), okta_keys(kit), _key_states(kit))
        kit.step(step, token)
        assert (kit.stages(), okta_keys(kit), _key_states(kit)) == snapshot, step
    assert kit.stack.kms.counts["CreateKey"] == 1
    assert_kms_rotated(kit, token, old_version, old)


def _key_states(kit: Kit) -> list[tuple[str, str]]:
    old = kit.raw("AWSPREVIOUS") if "AWSPREVIOUS" in str(kit.stages()) else kit.raw("AWSCURRENT")
    arns = [*our_keys(kit), old["kms_key_id"]]
    return [(arn, metadata(kit, arn)["KeyState"]) for arn in arns]


def test_a_crash_between_create_key_and_storing_the_version_reuses_the_key(
    make_kit: Any,
) -> None:
    kit: Kit = make_kit("kms-rs256")
    old_version, old = current_version(kit), kit.version("AWSCURRENT")
    kit.stack.kms.reset_counts()
    token = kit.begin()
    kit.stack.secrets_manager.inject_error(
        "PutSecretValue", "InternalServiceError", "injected", status=500, times=50
    )
    with pytest.raises(BridgeError):
        kit.step("createSecret", token)
    kit.stack.clear_faults()
    made = our_keys(kit)
    assert len(made) == 1
    assert kit.token_outcome(kit.version("AWSCURRENT")) == "ok"
    for step in STEPS:  # Secrets Manager retries the whole rotation with the same version
        kit.step(step, token)
    assert kit.stack.kms.counts["CreateKey"] == 1
    new = assert_kms_rotated(kit, token, old_version, old)
    assert new.kms_key_id == made[0]


def test_a_key_an_abandoned_run_made_is_retired_by_the_next_rotation(make_kit: Any) -> None:
    kit: Kit = make_kit("kms-rs256")
    old_version, old = current_version(kit), kit.version("AWSCURRENT")
    abandoned = kit.begin()
    kit.stack.secrets_manager.inject_error(
        "PutSecretValue", "InternalServiceError", "injected", status=500, times=50
    )
    with pytest.raises(BridgeError):
        kit.step("createSecret", abandoned)
    kit.stack.clear_faults()
    (orphan,) = our_keys(kit)
    # Its JWK was registered (inactive) before the crash.
    assert len(okta_keys(kit)) == 2
    # The operator cancels that rotation; a new one starts with a new version.
    kit.sm.update_secret_version_stage(
        SecretId=kit.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned
    )
    token = kit.begin()
    assert token != abandoned
    for step in STEPS:
        kit.step(step, token)
    new = assert_kms_rotated(kit, token, old_version, old)
    assert new.kms_key_id != orphan
    assert_retired(kit, orphan)
    assert sorted(our_keys(kit)) == sorted([orphan, new.kms_key_id or ""])


@pytest.mark.parametrize(
    ("step", "action", "error", "code"),
    [
        ("createSecret", "CreateKey", "AccessDeniedException", "ROTATION_KMS_DENIED"),
        ("createSecret", "CreateKey", "KMSInternalException", "ROTATION_KMS_ERROR"),
        ("createSecret", "ListKeys", "AccessDeniedException", "ROTATION_KMS_DENIED"),
        ("createSecret", "GetPublicKey", "NotFoundException", "ROTATION_KMS_ERROR"),
        ("finishSecret", "DisableKey", "AccessDeniedException", "ROTATION_KMS_DENIED"),
        ("finishSecret", "ScheduleKeyDeletion", "DependencyTimeoutException", "ROTATION_KMS_ERROR"),
    ],
)
def test_kms_faults_map_to_rotation_codes_and_a_retry_ends_right(
    make_kit: Any, step: str, action: str, error: str, code: str
) -> None:
    kit: Kit = make_kit("kms-rs256")
    old_version, old = current_version(kit), kit.version("AWSCURRENT")
    token = kit.begin()
    for earlier in STEPS[: STEPS.index(step)]:
        kit.step(earlier, token)
    kit.stack.kms.inject_error(action, 400, error, times=1)
    with pytest.raises(RotationError) as caught:
        kit.step(step, token)
    assert caught.value.code == code
    assert error in caught.value.message
    assert action in caught.value.message
    assert "Traceback" not in caught.value.message
    kit.stack.clear_faults()
    # AWSCURRENT works meanwhile (after a failed finish: the new key, already promoted).
    assert kit.harness().invoke({})["statusCode"] == 200
    for again in STEPS:
        kit.step(again, token)
    assert_kms_rotated(kit, token, old_version, old)


def test_the_new_key_policy_names_the_roles_and_the_stack_tag_is_carried(
    make_kit: Any,
) -> None:
    signer = "arn:aws:iam::123456789012:role/bridge"
    admin = "arn:aws:iam::123456789012:role/rotation"
    settings = KmsRotationSettings(deletion_days=7, signer_role_arn=signer, admin_role_arn=admin)
    kit: Kit = make_kit("kms-es256", kms_settings=settings)
    old = kit.version("AWSCURRENT")
    kit.kms.tag_resource(
        KeyId=old.kms_key_id, Tags=[{"TagKey": TAG_STACK, "TagValue": "okta-bridge-prod"}]
    )
    kit.rotate()
    new = kit.version("AWSCURRENT")
    assert tags(kit, new.kms_key_id or "")[TAG_STACK] == "okta-bridge-prod"
    policy = json.loads(
        kit.kms.get_key_policy(KeyId=new.kms_key_id, PolicyName="default")["Policy"]
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {
        "AccountAdministration", "BridgeSigns", "RotationManages", "RotationSigns"
    }  # fmt: skip
    signing = {
        "StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}
    }
    for sid, principal in (("BridgeSigns", signer), ("RotationSigns", admin)):
        assert by_sid[sid]["Principal"] == {"AWS": principal}
        assert (by_sid[sid]["Action"], by_sid[sid]["Condition"]) == ("kms:Sign", signing)
    assert by_sid["RotationManages"]["Principal"] == {"AWS": admin}
    assert "kms:Sign" not in by_sid["RotationManages"]["Action"]
    root = by_sid["AccountAdministration"]
    assert root["Principal"]["AWS"].endswith(":root")
    # Nobody signs through IAM: no Sign, no wildcard that holds it, no grant that could give it.
    assert not [a for a in root["Action"] if a in ("kms:Sign", "kms:*", "kms:Create*")]
    assert "kms:CreateGrant" not in root["Action"]
    assert_retired(kit, old.kms_key_id or "", days=7)


def test_without_roles_the_new_key_has_the_default_policy(make_kit: Any) -> None:
    kit: Kit = make_kit("kms-rs256")
    kit.rotate()
    new = kit.version("AWSCURRENT")
    policy = json.loads(
        kit.kms.get_key_policy(KeyId=new.kms_key_id, PolicyName="default")["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"]["AWS"].endswith(":root")
    assert statement["Action"] == "kms:*"


@pytest.mark.parametrize(
    ("env", "days"),
    [({}, 30), ({DELETION_DAYS: "7"}, 7), ({DELETION_DAYS: " 30 "}, 30)],
)
def test_the_deletion_window_setting(env: dict[str, str], days: int) -> None:
    assert KmsRotationSettings.from_env(env).deletion_days == days


@pytest.mark.parametrize(
    "env",
    [
        {DELETION_DAYS: "6"},
        {DELETION_DAYS: "31"},
        {DELETION_DAYS: "ten"},
        {DELETION_DAYS: "7.5"},
        {SIGNER_ROLE: "bridge-role"},
        {ADMIN_ROLE: "arn:aws:s3:::bucket"},
    ],
)
def test_a_bad_kms_setting_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        KmsRotationSettings.from_env(env)
    assert caught.value.variable == next(iter(env))


def test_lambda_handler_refuses_a_bad_deletion_window_before_any_change(
    make_kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit: Kit = make_kit("kms-rs256")
    kit.lambda_environment(monkeypatch)
    monkeypatch.setenv(rotation_entry.ADMIN_SECRET_ID, kit.admin_id)
    monkeypatch.setenv(DELETION_DAYS, "3")
    kit.stack.kms.reset_counts()
    event = {"Step": "createSecret", "SecretId": kit.arn, "ClientRequestToken": kit.begin()}
    with pytest.raises(ConfigError) as caught:
        rotation_entry.lambda_handler(event, LambdaContext(60_000))
    assert caught.value.variable == DELETION_DAYS
    assert kit.stack.kms.counts.get("CreateKey", 0) == 0


def test_lambda_handler_rotates_a_kms_signed_app_from_the_environment(
    make_kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit: Kit = make_kit("kms-es256")
    kit.lambda_environment(monkeypatch)
    monkeypatch.setenv(rotation_entry.ADMIN_SECRET_ID, kit.admin_id)
    monkeypatch.setenv(DELETION_DAYS, "8")
    old_version, old = current_version(kit), kit.version("AWSCURRENT")
    token = kit.begin()
    for step in STEPS:
        event = {"Step": step, "SecretId": kit.arn, "ClientRequestToken": token}
        assert rotation_entry.lambda_handler(event, LambdaContext(60_000)) is None
    assert kit.stages()[token] == ["AWSCURRENT"]
    assert kit.stages()[old_version] == ["AWSPREVIOUS"]
    assert_retired(kit, old.kms_key_id or "", days=8)


def test_a_rotation_after_the_current_key_was_disabled_by_hand(make_kit: Any) -> None:
    """The leak runbook: disable the key at once (the bridge stops signing), then rotate."""
    kit: Kit = make_kit("kms-es256")
    harness = kit.harness()
    assert harness.invoke({})["statusCode"] == 200
    old_version, old = current_version(kit), kit.version("AWSCURRENT")
    kit.stack.kms.disable(old.kms_key_id or "")
    harness.bridge.tokens.clear()
    assert harness.invoke({})["statusCode"] == 500  # KMS_KEY_DISABLED, until the rotation
    token = kit.rotate()
    assert kit.stages()[token] == ["AWSCURRENT"]
    assert kit.stages()[old_version] == ["AWSPREVIOUS"]
    new = kit.version("AWSCURRENT")
    assert okta_keys(kit) == [(new.key_id, "ACTIVE")]
    assert_retired(kit, old.kms_key_id or "")
    assert harness.invoke({})["statusCode"] == 200  # re-reads the secret, signs with the new key

"""Finding 3: rotation never deletes the live credential.

``finishSecret`` on a version that was already ``AWSCURRENT`` used to run the cleanup again; when
neither the current nor the previous version carried ``okta_secret_id`` (the normal state after
``make secret`` was run twice), it deactivated and deleted every other client secret, including
the one in use. Secrets Manager retries steps, and anyone who may invoke the rotation function can
send that event. ``finishSecret`` also promoted a pending version that never passed its test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.errors import RotationError
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.rotation.okta_admin import OktaAdmin
from okta_bridge.rotation.strategies import ClientSecretStrategy
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import LocalStack
from tests.rotation.conftest import Kit


def current_version(kit: Kit) -> str:
    return str(kit.sm.get_secret_value(SecretId=kit.secret_id)["VersionId"])


def assert_in_use_credential_kept(kit: Kit) -> None:
    """Okta still accepts what AWSCURRENT holds, and a fresh bridge is served."""
    current = kit.version("AWSCURRENT")
    assert kit.token_outcome(current) == "ok"
    held = kit.stack.okta.client_secrets(kit.client_id)
    assert [s.value for s in held if s.status == "ACTIVE"] == [current.client_secret]
    assert kit.harness().invoke({})["statusCode"] == 200


def stored_twice(make_kit: Any, stack: LocalStack) -> Kit:
    """A secret stored by ``make secret`` twice: two versions, neither with okta_secret_id."""
    kit: Kit = make_kit("basic")
    stack.store_secret("basic", kit.secret_id)
    stages = kit.stages()
    assert sorted(labels for labels in stages.values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
    assert "okta_secret_id" not in kit.raw("AWSCURRENT")
    assert "okta_secret_id" not in kit.raw("AWSPREVIOUS")
    return kit


def test_a_replayed_finish_on_the_current_version_deletes_nothing(
    make_kit: Any, stack: LocalStack
) -> None:
    kit = stored_twice(make_kit, stack)
    for _ in range(3):  # Secrets Manager's retries, or a hostile invoker, alike
        kit.step("finishSecret", current_version(kit))
    assert_in_use_credential_kept(kit)


def test_every_step_replayed_on_the_current_version_changes_nothing(
    make_kit: Any, stack: LocalStack
) -> None:
    kit = stored_twice(make_kit, stack)
    before = (kit.stages(), [(s.id, s.status) for s in stack.okta.client_secrets(kit.client_id)])
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        kit.step(step, current_version(kit))
    after = (kit.stages(), [(s.id, s.status) for s in stack.okta.client_secrets(kit.client_id)])
    assert after == before
    assert_in_use_credential_kept(kit)


def test_a_finish_whose_pending_version_never_passed_its_test_promotes_nothing(
    make_kit: Any, stack: LocalStack
) -> None:
    kit = stored_twice(make_kit, stack)
    old_version = current_version(kit)
    token = kit.begin()
    kit.step("createSecret", token)  # the new secret exists in Okta, inactive
    with pytest.raises(RotationError) as raised:
        kit.step("finishSecret", token)  # setSecret and testSecret never ran
    assert raised.value.code == "ROTATION_TEST_FAILED"
    assert current_version(kit) == old_version
    assert_in_use_credential_kept(kit)


def test_a_finish_on_a_pending_version_without_a_value_promotes_nothing(
    make_kit: Any, stack: LocalStack
) -> None:
    kit = stored_twice(make_kit, stack)
    old_version = current_version(kit)
    token = kit.begin()  # AWSPENDING on an empty version: createSecret never ran
    with pytest.raises(RotationError) as raised:
        kit.step("finishSecret", token)
    assert raised.value.code == "ROTATION_TEST_FAILED"
    assert current_version(kit) == old_version
    assert_in_use_credential_kept(kit)


def test_a_finish_replayed_after_a_full_rotation_keeps_the_new_credential(
    make_kit: Any, stack: LocalStack
) -> None:
    kit = stored_twice(make_kit, stack)
    token = kit.rotate()
    for _ in range(2):
        kit.step("finishSecret", token)
    assert current_version(kit) == token
    assert_in_use_credential_kept(kit)


def test_retiring_never_guesses_which_secret_the_new_version_holds(
    make_kit: Any, stack: LocalStack
) -> None:
    kit = stored_twice(make_kit, stack)
    admin = OktaAdmin(
        parse_admin_secret(json.dumps(stack.admin_secret_value())),
        HttpClient(kit.settings),
        TokenEndpoint(HttpClient(kit.settings)),
    )
    current, previous = kit.version("AWSCURRENT"), kit.version("AWSPREVIOUS")
    assert current.okta_secret_id is None  # as make secret stores it
    with pytest.raises(RotationError) as raised:
        ClientSecretStrategy(admin).retire(previous, current, Deadline(10.0))
    assert raised.value.code == "ROTATION_CREDENTIAL_UNIDENTIFIED"
    assert_in_use_credential_kept(kit)

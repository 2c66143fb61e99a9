"""The rotation Lambda's entry point, make rotate-now, and what reaches the logs."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from okta_bridge.errors import BridgeError, ConfigError
from okta_bridge.logs import configure
from okta_bridge.rotation import handler as rotation_entry
from okta_bridge.rotation.versions import STEPS, RotationRequest
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.cli import exit_codes
from okta_bridge_dev.console import Console
from okta_bridge_dev.emulators.stack import LocalStack
from okta_bridge_dev.release import rotate_now as rotate
from okta_bridge_dev.release.errors import RotationFailed
from tests.integration.conftest import LambdaContext
from tests.rotation.conftest import Kit

ROOT = Path(__file__).resolve().parents[2]


def test_lambda_handler_runs_each_step_from_the_environment(
    make_kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit: Kit = make_kit("jwt-es256")
    kit.lambda_environment(monkeypatch)
    monkeypatch.setenv(rotation_entry.ADMIN_SECRET_ID, kit.admin_id)
    old = kit.version("AWSCURRENT")
    token = kit.begin()
    for step in STEPS:
        event = {"Step": step, "SecretId": kit.arn, "ClientRequestToken": token}
        assert rotation_entry.lambda_handler(event, LambdaContext(60_000)) is None
    assert kit.stages()[token] == ["AWSCURRENT"]
    assert kit.token_outcome(old) == "TOKEN_REJECTED"


def test_lambda_handler_raises_a_coded_error_and_logs_it_once(
    make_kit: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kit: Kit = make_kit("basic")
    kit.lambda_environment(monkeypatch)
    monkeypatch.setenv(rotation_entry.ADMIN_SECRET_ID, "no/such/admin-secret")
    event = {"Step": "createSecret", "SecretId": kit.arn, "ClientRequestToken": kit.begin()}
    with pytest.raises(BridgeError) as caught:
        rotation_entry.lambda_handler(event, LambdaContext(60_000))
    assert caught.value.code == "ROTATION_ADMIN_SECRET_INVALID"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    failures = [line for line in lines if line["message"] == "rotation step failed"]
    assert len(failures) == 1
    assert failures[0]["code"] == "ROTATION_ADMIN_SECRET_INVALID"
    assert failures[0]["step"] == "createSecret"


def test_lambda_handler_names_a_missing_admin_variable(
    make_kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit: Kit = make_kit("basic")
    kit.lambda_environment(monkeypatch)
    monkeypatch.delenv(rotation_entry.ADMIN_SECRET_ID, raising=False)
    event = {"Step": "createSecret", "SecretId": kit.arn, "ClientRequestToken": "t"}
    with pytest.raises(ConfigError) as caught:
        rotation_entry.lambda_handler(event, LambdaContext())
    assert caught.value.variable == rotation_entry.ADMIN_SECRET_ID


def test_secrets_managers_configuration_check_passes_before_any_rotation(
    make_kit: Any,
) -> None:
    """testSecret on an empty AWSPENDING version, as when the schedule is first created."""
    kit: Kit = make_kit("basic")
    token = kit.begin()
    kit.step("testSecret", token)
    assert kit.stages()[token] == ["AWSPENDING"]


@pytest.mark.parametrize(
    ("admin", "code"),
    [
        ("{}", "ROTATION_ADMIN_SECRET_INVALID"),
        ("not json", "ROTATION_ADMIN_SECRET_INVALID"),
        (None, "ROTATION_ADMIN_TOKEN_FAILED"),
    ],
)
def test_a_bad_admin_secret_stops_create_before_any_change(
    stack: LocalStack, make_kit: Any, admin: str | None, code: str
) -> None:
    kit: Kit = make_kit("basic")
    value = stack.admin_secret_value()
    if admin is None:  # a key Okta does not know: the org authorization server refuses it
        other = stack.secret_value("jwt-es256")
        admin = json.dumps({**value, "private_key": other["private_key"]})
    name = f"{kit.secret_id}/admin"
    stack.secrets_manager.client(stack.ca.ca_pem_path).create_secret(Name=name, SecretString=admin)
    rotator = rotation_entry.build_rotator(kit.settings, name, client=kit.sm)
    before = [(s.id, s.status) for s in stack.okta.client_secrets(kit.client_id)]
    with pytest.raises(BridgeError) as caught:
        rotator.run(RotationRequest("createSecret", kit.arn, kit.begin()), Deadline(10.0))
    assert caught.value.code == code
    assert [(s.id, s.status) for s in stack.okta.client_secrets(kit.client_id)] == before


def test_rotate_now_rotates_follows_and_confirms(make_kit: Any) -> None:
    kit: Kit = make_kit("post")
    kit.stack.secrets_manager.attach_rotation(
        lambda event: kit.rotator.run(RotationRequest.parse(event), Deadline(30.0))
    )
    out, err = io.StringIO(), io.StringIO()
    rotate.rotate_now(  # raises RotationFailed unless the old credential is refused
        kit.sm, kit.secret_id, kit.settings, Console(out=out, err=err), timeout=60, poll=0.05
    )
    assert not err.getvalue()
    text = out.getvalue()
    assert "createSecret" in text or "finishSecret" in text
    assert "confirmed: Okta refuses the old credential (TOKEN_REJECTED)" in text
    run = kit.stack.secrets_manager.rotations[-1]
    assert run.wait(10)
    assert run.steps_done == list(STEPS)


def test_rotate_now_reports_a_rotation_that_does_not_finish(make_kit: Any) -> None:
    kit: Kit = make_kit("basic")
    broken = rotation_entry.build_rotator(kit.settings, "no/such/admin", client=kit.sm)
    kit.stack.secrets_manager.attach_rotation(
        lambda event: broken.run(RotationRequest.parse(event), Deadline(30.0))
    )
    now = [0.0]
    out, err = io.StringIO(), io.StringIO()
    run_done = kit.stack.secrets_manager

    def sleep(seconds: float) -> None:
        run_done.rotations[-1].finished.wait(5)  # let the failing run end, then time passes
        now[0] += seconds

    with pytest.raises(RotationFailed, match="did not finish within 10 s") as caught:
        rotate.rotate_now(
            kit.sm,
            kit.secret_id,
            kit.settings,
            Console(out=out, err=err),
            timeout=10,
            poll=5,
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert exit_codes.explain(caught.value)[1] == exit_codes.EXIT_FAILED
    assert kit.token_outcome(kit.version("AWSCURRENT")) == "ok"


def test_confirm_says_so_when_the_old_credential_still_works(make_kit: Any) -> None:
    kit: Kit = make_kit("basic")
    # A hand-made new version with the same credential: Okta still accepts the "old" one.
    same = kit.raw("AWSCURRENT")
    kit.sm.put_secret_value(SecretId=kit.secret_id, SecretString=json.dumps(same))
    with pytest.raises(RotationFailed, match="THE OLD CREDENTIAL STILL GETS A TOKEN") as caught:
        rotate.confirm_old_refused(
            kit.sm, kit.secret_id, kit.settings, Console(out=io.StringIO(), err=io.StringIO())
        )
    assert exit_codes.explain(caught.value)[1] == exit_codes.EXIT_FAILED


@pytest.mark.parametrize("kind", ["basic", "kms-rs256"])
def test_make_rotate_now_local_runs_end_to_end(kind: str) -> None:
    """What ``make rotate-now LOCAL=1`` runs, in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
    command = [Path(sys.executable).parent / "okta-bridge", "rotate", "--now", "--local"]
    result = subprocess.run(  # noqa: S603 - the project's own console script
        [*command, "--kind", kind],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    confirmed = {
        "basic": "confirmed: Okta refuses the old credential",
        "kms-rs256": "confirmed: the old KMS key can no longer sign (KMS_KEY_DISABLED)",
    }[kind]
    assert confirmed in result.stdout
    assert ", 0 failed" in result.stdout
    assert "bridge after its token expired: HTTP 200" in result.stdout


@pytest.mark.parametrize("kind", ["basic", "jwt-rs256", "password"])
def test_no_secret_reaches_the_logs_during_rotations(
    make_kit: Any, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("DEBUG")
    records = io.StringIO()
    capture = logging.StreamHandler(records)
    logging.getLogger("okta_bridge").addHandler(capture)
    try:
        kit: Kit = make_kit(kind)
        before = kit.raw("AWSCURRENT")
        harness = kit.harness()
        harness.invoke({})
        kit.rotate()
        harness.bridge.tokens.clear()
        harness.invoke({})
        after = kit.raw("AWSCURRENT")
        with pytest.raises(BridgeError):  # a failing step logs too
            kit.step("setSecret", "no-such-version")
    finally:
        logging.getLogger("okta_bridge").removeHandler(capture)
    output = capsys.readouterr().out + records.getvalue()
    material = [
        *kit.stack.all_secret_material(),
        *(before.get(k, "") for k in ("client_secret", "password", "private_key")),
        *(after.get(k, "") for k in ("client_secret", "password", "private_key")),
    ]
    for value in material:
        for fragment in _fragments(value):
            assert fragment not in output


def _fragments(value: str) -> list[str]:
    """The value, and each 40+ character line of a PEM."""
    if not value:
        return []
    lines = [line for line in value.splitlines() if len(line) >= 40 and "-----" not in line]
    return [value, *lines] if lines else [value]

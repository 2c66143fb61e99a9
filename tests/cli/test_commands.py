"""``okta-bridge secret put``, ``rotate --now``, ``demo``, ``outputs``, ``--help`` everywhere, and
the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from okta_bridge import handler
from okta_bridge_dev.emulators.stack import LocalStack

from .conftest import ANSI, FUNCTION, STORED_SECRET, assert_no_secrets, run

SCRIPT = Path(sys.executable).parent / "okta-bridge"
COMMANDS_WITH_HELP = [
    [],
    ["invoke"],
    ["diagnose"],
    ["secret"],
    ["secret", "put"],
    ["rotate"],
    ["demo"],
    ["deploy"],
    ["outputs"],
    ["destroy"],
    ["package"],
]


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """demo and rotate --local point os.environ at the stacks they start: put it back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    handler.set_bridge(None)


def stored_value(stack: LocalStack) -> str:
    client = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
    try:
        return client.get_secret_value(SecretId=STORED_SECRET)["SecretString"]
    finally:
        client.close()


# -- help and usage ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS_WITH_HELP, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help_and_exits_0(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(*command, "--help")
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")
    assert ANSI not in out


def test_the_top_help_lists_every_command_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run("--help")
    out = " ".join(capsys.readouterr().out.split())
    for command in (
        "invoke", "diagnose", "secret", "rotate", "demo", "deploy", "outputs", "destroy", "package"
    ):  # fmt: skip
        assert f" {command} " in out
    assert "Exit codes: 0 ok; 1 the bridge, diagnose or the rotation reported a failure" in out


@pytest.mark.parametrize(
    "argv",
    [[], ["no-such-command"], ["rotate"], ["secret"], ["demo", "--auth", "saml"]],
    ids=["nothing", "unknown", "rotate-without-now", "secret-without-put", "bad-choice"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(*argv)
    assert code == 2
    assert "usage: " in capsys.readouterr().err


# -- secret put -------------------------------------------------------------------------------


@pytest.mark.usefixtures("bridge_env")
def test_secret_put_refuses_invalid_credentials_exit_2(
    stack: LocalStack, cfn_stack: str, tmp_path: Path
) -> None:
    before = stored_value(stack)
    invalid = {k: v for k, v in stack.secret_value("basic").items() if k != "client_id"}
    (tmp_path / "creds.json").write_text(json.dumps(invalid))
    code, console = run("secret", "put", "--stack-name", cfn_stack, "--file", "creds.json")
    assert code == 2
    assert "the credentials were not stored" in console.stderr
    assert "client_id" in console.stderr
    assert stored_value(stack) == before
    assert_no_secrets(stack, console.stdout + console.stderr)


@pytest.mark.usefixtures("bridge_env")
def test_secret_put_validates_and_stores_the_file(
    stack: LocalStack, cfn_stack: str, tmp_path: Path
) -> None:
    value = stack.secret_value("post")
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(value))
    path.chmod(0o600)
    code, console = run("secret", "put", "--stack-name", cfn_stack, "--file", str(path))
    assert code == 0, console.stderr
    assert "stored api_endpoint, auth_method, client_id, client_secret, token_url" in (
        console.stdout
    )
    assert json.loads(stored_value(stack)) == value
    assert_no_secrets(stack, console.stdout + console.stderr)


@pytest.mark.usefixtures("bridge_env")
def test_secret_put_without_a_file_or_terminal_exits_2(cfn_stack: str) -> None:
    code, console = run("secret", "put", "--stack-name", cfn_stack)
    assert code == 2
    assert "no terminal to prompt on" in console.stderr


@pytest.mark.usefixtures("bridge_env")
def test_outputs_prints_one_value_and_exits_3_without_the_stack(cfn_stack: str) -> None:
    code, console = run("outputs", "--stack-name", cfn_stack, "FunctionName")
    assert code == 0
    assert console.stdout == f"{FUNCTION}\n"
    code, console = run("outputs", "--stack-name", "no-such-stack")
    assert code == 3


# -- rotate and demo (each starts a local stack of its own) -----------------------------------


@pytest.mark.usefixtures("restore_environ")
def test_rotate_now_local_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, console = run("rotate", "--now", "--local")
    assert code == 0, console.stdout + console.stderr
    assert "confirmed: Okta refuses the old credential (TOKEN_REJECTED)" in console.stdout
    assert ", 0 failed" in console.stdout


@pytest.mark.usefixtures("restore_environ")
@pytest.mark.parametrize("auth", ["jwt-es256", "kms"])
def test_demo_exits_0(capsys: pytest.CaptureFixture[str], auth: str) -> None:
    code, _ = run("demo", "--auth", auth)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: the cold call made 1/1/1 upstream requests, each warm call 0/0/1 (the" in out
    assert ("kms:Sign calls: 1 (one per token request" in out) == (auth == "kms")


# -- the installed console script -------------------------------------------------------------


def test_the_console_script_is_installed_and_answers_help() -> None:
    done = subprocess.run(  # noqa: S603 - the project's own console script
        [str(SCRIPT), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: okta-bridge ")


def test_the_console_script_diagnoses_with_plain_output_when_piped(
    stack: LocalStack, bridge_env: dict[str, str]
) -> None:
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    done = subprocess.run(  # noqa: S603 - the project's own console script
        [str(SCRIPT), "diagnose", "--local"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: all 11 checks passed" in done.stdout
    assert ANSI not in done.stdout + done.stderr  # neither colour nor spinner into a pipe
    assert "\r" not in done.stderr
    assert_no_secrets(stack, done.stdout + done.stderr)

    done = subprocess.run(  # noqa: S603
        [str(SCRIPT), "diagnose", "--local", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True  # standard output is the report alone

"""``okta-bridge invoke``: the real handler behind the Lambda emulator, reached by boto3."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from okta_bridge_dev.emulators.lambda_service import LambdaServer
from okta_bridge_dev.emulators.stack import LocalStack

from .conftest import ANSI, FUNCTION, Captured, assert_no_secrets, run

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("bridge_env")


def last_event(service: LambdaServer) -> Any:
    return json.loads(service.requests[-1].body)


def test_invoke_prints_the_status_meta_and_the_apis_json(stack: LocalStack) -> None:
    code, console = run("invoke", "--function", FUNCTION)
    assert code == 0, console.stderr
    first = console.stdout.splitlines()[0]
    assert first.startswith("200 OK  request ")
    assert "attempt(s)" in first
    assert '"source": "sample-internal-api"' in console.stdout
    assert ANSI not in console.stdout + console.stderr  # piped: no colour, no spinner
    assert_no_secrets(stack, console.stdout + console.stderr)


def test_invoke_finds_the_function_in_the_stack_outputs(
    cfn_stack: str, lambda_service: LambdaServer
) -> None:
    code, console = run(
        "invoke", "--stack-name", cfn_stack, "--path", "/v1/items",
        "--query", "page=2", "--query", "page_size=3",
    )  # fmt: skip
    assert code == 0, console.stderr
    assert last_event(lambda_service) == {
        "path": "/v1/items",
        "query": {"page": "2", "page_size": "3"},
    }
    assert '"page": 2' in console.stdout
    assert '"page_size": 3' in console.stdout


def test_a_repeated_query_key_becomes_a_list(lambda_service: LambdaServer) -> None:
    code, console = run(
        "invoke", "--function", FUNCTION, "--path", "/v1/items", "--query", "page=1",
        "--query", "page=2",
    )  # fmt: skip
    assert last_event(lambda_service) == {"path": "/v1/items", "query": {"page": ["1", "2"]}}
    assert code == 1  # the API refuses a repeated page with a 400: the bridge's error answer
    assert console.stdout.startswith("502 UPSTREAM_CLIENT_ERROR  stage upstream")


def test_invoke_sends_an_event_file_as_it_is(lambda_service: LambdaServer) -> None:
    event_file = REPO / "events" / "apigw-http-v2.json"
    code, console = run("invoke", "--function", FUNCTION, "--event", str(event_file))
    assert code == 0, console.stdout + console.stderr
    assert last_event(lambda_service) == json.loads(event_file.read_text())
    # The HTTP API shape carries the body as a JSON string: shown parsed.
    assert '"page_size": 5' in console.stdout


def test_an_error_answer_shows_code_stage_and_hint_and_exits_1(stack: LocalStack) -> None:
    code, console = run("invoke", "--function", FUNCTION, "--path", "/admin/users")
    assert code == 1
    lines = console.stdout.splitlines()
    assert lines[0].startswith("403 PATH_NOT_ALLOWED  stage request  request ")
    hint = "  hint: Use a path matching BRIDGE_ALLOWED_PATHS"
    assert any(line.startswith(hint) for line in lines)
    assert_no_secrets(stack, console.stdout + console.stderr)


def test_json_prints_the_raw_answer() -> None:
    code, console = run("invoke", "--function", FUNCTION, "--path", "/admin", "--json")
    assert code == 1
    answer = json.loads(console.stdout)
    assert answer["statusCode"] == 403
    assert answer["body"]["error"]["code"] == "PATH_NOT_ALLOWED"


def test_a_function_that_raises_exits_1(lambda_service: LambdaServer) -> None:
    def broken(event: Any, context: Any) -> Any:
        raise RuntimeError("init failed")

    lambda_service.register("broken", broken)
    try:
        code, console = run("invoke", "--function", "broken")
    finally:
        lambda_service.unregister("broken")
    assert code == 1
    assert "function error (Unhandled): RuntimeError: init failed" in console.stdout


def test_an_answer_that_is_not_the_bridges_exits_1(lambda_service: LambdaServer) -> None:
    lambda_service.register("other", lambda event, context: {"hello": "world"})
    try:
        code, console = run("invoke", "--function", "other")
    finally:
        lambda_service.unregister("other")
    assert code == 1
    assert json.loads(console.stdout) == {"hello": "world"}
    assert "not an okta-bridge response" in console.stderr


def test_an_unknown_function_is_aws_refusing_exit_3() -> None:
    code, console = run("invoke", "--function", "no-such-function")
    assert code == 3
    assert "AWS refused Invoke: ResourceNotFoundException" in console.stderr
    assert "no-such-function" in console.stderr


def test_an_unreachable_endpoint_is_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        endpoint = f"https://127.0.0.1:{bound.getsockname()[1]}"
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        code, console = run("invoke", "--function", FUNCTION)
    assert code == 3
    assert f'AWS: Could not connect to the endpoint URL: "{endpoint}/' in console.stderr


def test_a_missing_stack_is_exit_3() -> None:
    code, console = run("invoke", "--stack-name", "no-such-stack")
    assert code == 3
    assert "stack no-such-stack does not exist" in console.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--query", "page=1"], "--query needs --path"),
        (["--path", "/v1/items", "--query", "page"], "is not KEY=VALUE"),
        (["--event", "missing.json"], "missing.json: no such file"),
    ],
)
def test_bad_event_options_are_usage_errors_exit_2(argv: list[str], message: str) -> None:
    code, console = run("invoke", "--function", FUNCTION, *argv)
    assert code == 2
    assert message in console.stderr


def test_an_event_file_that_is_not_json_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("{not json")
    code, console = run("invoke", "--function", FUNCTION, "--event", "event.json")
    assert code == 2
    assert "is not JSON" in console.stderr


def test_colour_on_a_terminal_only_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, console = run("invoke", "--function", FUNCTION, console=Captured(tty=True))
    assert code == 0
    assert console.stdout.startswith(f"{ANSI}32m200 OK{ANSI}0m")

    monkeypatch.setenv("NO_COLOR", "1")
    code, console = run("invoke", "--function", FUNCTION, console=Captured(tty=True))
    assert code == 0
    assert ANSI not in console.stdout


def test_the_spinner_shows_on_a_terminals_stderr_and_is_erased() -> None:
    code, console = run("invoke", "--function", FUNCTION, console=Captured(err_tty=True))
    assert code == 0
    assert f"\r| invoking {FUNCTION} (0s)" in console.stderr
    assert console.stderr.endswith(f"\r{ANSI}2K")
    assert "\r" not in console.stdout

"""``okta-bridge diagnose``: in the deployed function (the emulator) and ``--local``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from okta_bridge_dev.cli import render
from okta_bridge_dev.emulators.lambda_service import LambdaServer
from okta_bridge_dev.emulators.servers import Fault
from okta_bridge_dev.emulators.stack import LocalStack

from .conftest import ANSI, FUNCTION, Captured, assert_no_secrets, run

pytestmark = pytest.mark.usefixtures("bridge_env")

HOPS = [
    ("config", "config"), ("secret", "secret"),
    ("token_host", "dns"), ("token_host", "tcp"), ("token_host", "tls"), ("token_host", "token"),
    ("api_host", "dns"), ("api_host", "tcp"), ("api_host", "tls"), ("api_host", "api"),
    ("delivery", "s3"),
]  # fmt: skip
INVALID_CLIENT = b'{"error":"invalid_client","error_description":"Client authentication failed."}'
TOKEN_HINT = "hint: Okta refused the client credentials (invalid_client)"
MODES = [
    pytest.param(["--function", FUNCTION], id="deployed"),
    pytest.param(["--local"], id="local"),
]


def reject_client(stack: LocalStack) -> None:
    """Okta answers the token request ``invalid_client`` (cleared by the bridge_env fixture)."""
    stack.okta.inject(
        Fault(
            match=urlsplit(stack.okta.token_url).path,
            status=401,
            headers={"Content-Type": "application/json"},
            body=INVALID_CLIENT,
            times=3,
        )
    )


def rows(text: str) -> list[tuple[str, str, str]]:
    """(target, hop, status) of each table row."""
    found = []
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 3 and (cells[0], cells[1]) in HOPS:
            found.append((cells[0], cells[1], cells[2]))
    return found


@pytest.mark.parametrize("mode", MODES)
def test_all_hops_ok_prints_the_table_and_exits_0(stack: LocalStack, mode: list[str]) -> None:
    code, console = run("diagnose", *mode)
    assert code == 0, console.stdout + console.stderr
    lines = console.stdout.splitlines()
    assert lines[0].split() == ["target", "hop", "status", "ms", "details"]
    assert rows(console.stdout) == [(target, hop, "ok") for target, hop in HOPS]
    assert lines[-1].startswith("ok: all 11 checks passed in ")
    token_row = next(line for line in lines if line.startswith("token_host  token"))
    assert "token_type=Bearer" in token_row
    assert "scopes=api.access" in token_row
    assert ANSI not in console.stdout + console.stderr
    assert_no_secrets(stack, console.stdout + console.stderr)


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_hop_shows_code_and_hint_and_exits_1(stack: LocalStack, mode: list[str]) -> None:
    reject_client(stack)
    code, console = run("diagnose", *mode)
    assert code == 1
    table = rows(console.stdout)
    assert ("token_host", "token", "FAILED") in table
    assert ("api_host", "api", "skipped") in table
    assert ("api_host", "tls", "ok") in table  # the API host's network hops still ran
    text = console.stdout
    assert "TOKEN_REJECTED: Okta refused the token request: invalid_client" in text
    assert TOKEN_HINT in text
    assert "FAILED at token_host token: TOKEN_REJECTED" in text
    assert_no_secrets(stack, console.stdout + console.stderr)


@pytest.mark.parametrize("mode", MODES)
def test_json_prints_the_report(stack: LocalStack, mode: list[str]) -> None:
    reject_client(stack)
    code, console = run("diagnose", *mode, "--json")
    assert code == 1
    report = json.loads(console.stdout)
    assert report["action"] == "diagnose"
    assert report["ok"] is False
    assert [(hop["target"], hop["hop"]) for hop in report["hops"]] == HOPS
    assert report["first_failure"]["code"] == "TOKEN_REJECTED"
    assert_no_secrets(stack, console.stdout + console.stderr)


def test_the_deployed_report_carries_the_invocations_request_id(
    lambda_service: LambdaServer,
) -> None:
    code, console = run("diagnose", "--function", FUNCTION, "--json")
    assert code == 0
    report = json.loads(console.stdout)
    assert report["ok"] is True
    assert report["request_id"]  # the emulator's aws_request_id
    assert json.loads(lambda_service.requests[-1].body) == {"action": "diagnose"}


def test_local_without_the_bridges_configuration_is_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRIDGE_SECRET_ID")
    code, console = run("diagnose", "--local")
    assert code == 2
    assert rows(console.stdout)[0] == ("config", "config", "FAILED")
    assert "CONFIG_INVALID: BRIDGE_SECRET_ID: is required" in console.stdout
    assert "FAILED at config config: CONFIG_INVALID" in console.stdout


def test_a_function_without_diagnose_exits_1(lambda_service: LambdaServer) -> None:
    # An older bridge answers the unknown event key with BAD_REQUEST.
    old = {"statusCode": 400, "body": {"error": {"code": "BAD_REQUEST", "stage": "request"}}}
    lambda_service.register("old-bridge", lambda event, context: old)
    try:
        code, console = run("diagnose", "--function", "old-bridge")
    finally:
        lambda_service.unregister("old-bridge")
    assert code == 1
    assert console.stdout.startswith("400 BAD_REQUEST  stage request")
    assert "did not answer with a diagnose report: deploy this version" in console.stderr


def test_an_unknown_function_is_exit_3() -> None:
    code, console = run("diagnose", "--function", "no-such-function")
    assert code == 3
    assert "ResourceNotFoundException" in console.stderr


def test_verbose_shows_every_fact() -> None:
    code, console = run("diagnose", "--local", "--verbose")
    assert code == 0
    tls_row = next(line for line in console.stdout.splitlines() if "  tls  " in line)
    assert "cipher=" in tls_row  # not a key fact: only with --verbose
    code, console = run("diagnose", "--local")
    tls_row = next(line for line in console.stdout.splitlines() if "  tls  " in line)
    assert "cipher=" not in tls_row
    assert "hostname_match=yes" in tls_row


@pytest.mark.parametrize("no_color", [None, "1"])
def test_colour_on_a_terminal_unless_no_color(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, no_color: str | None
) -> None:
    reject_client(stack)
    if no_color is not None:
        monkeypatch.setenv("NO_COLOR", no_color)
    code, console = run("diagnose", "--local", console=Captured(tty=True))
    assert code == 1
    coloured = f"{ANSI}1;31mFAILED{ANSI}0m" in console.stdout
    assert coloured is (no_color is None)
    assert (f"{ANSI}32mok{ANSI}0m" in console.stdout) is (no_color is None)
    if no_color is not None:
        assert ANSI not in console.stdout


# -- the table alone, from a report built per the contract ------------------------------------


def contract_report() -> dict[str, Any]:
    def hop(target: str, name: str, status: str, **extra: Any) -> dict[str, Any]:
        return {"target": target, "hop": name, "status": status, "ms": 1.25, "facts": {}, **extra}

    failed = {
        "code": "TLS_UNTRUSTED",
        "stage": "tls",
        "message": "The certificate of 10.0.0.5:443 is not trusted.",
        "hint": "Add the issuing CA to BRIDGE_CA_BUNDLE.",
    }
    return {
        "action": "diagnose",
        "ok": False,
        "request_id": "req-1",
        "ms": 12.5,
        "hops": [
            hop("config", "config", "ok", facts={"variables": {"BRIDGE_SECRET_ID": "s"}}),
            hop("secret", "secret", "ok", facts={"version_id": "v1", "keys": list("abcdef")}),
            hop("token_host", "dns", "ok", facts={"addresses": ["10.0.0.5"], "via_proxy": False}),
            hop("token_host", "tls", "failed", facts={"issuer": "CN=corp"}, **failed),
            hop("token_host", "token", "skipped", reason="tls failed", ms=None),
        ],
        "first_failure": {"target": "token_host", "hop": "tls", **failed},
    }


def test_the_table_renders_a_contract_report() -> None:
    console = Captured()
    console.environ = {}
    assert render.render_report(contract_report(), console) == 1
    lines = console.stdout.splitlines()
    assert lines[1] == "config      config  ok       1.2  variables=BRIDGE_SECRET_ID"
    assert lines[2].endswith("version_id=v1 keys=a,b,c,d,+2")
    assert lines[3].endswith("addresses=10.0.0.5 via_proxy=no")
    assert lines[4].endswith(
        "FAILED   1.2  TLS_UNTRUSTED: The certificate of 10.0.0.5:443 is not trusted."
    )
    indent = lines[4].index("TLS_UNTRUSTED")
    assert lines[5] == " " * indent + "hint: Add the issuing CA to BRIDGE_CA_BUNDLE."
    assert lines[6] == " " * indent + "issuer=CN=corp"  # no key fact present: all facts
    assert lines[7].split() == ["token_host", "token", "skipped", "-", "tls", "failed"]
    assert lines[-2:] == [
        "FAILED at token_host tls: TLS_UNTRUSTED, request req-1",
        "  hint: Add the issuing CA to BRIDGE_CA_BUNDLE.",
    ]

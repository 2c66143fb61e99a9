"""No secret value, password, private key or issued token in any log line or response."""

from __future__ import annotations

import json
from typing import Any

import pytest

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import make_harness


def run_flows(stack: LocalStack) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for kind in ("basic", "post", "jwt-rs256", "jwt-es256", "password"):
        harness = make_harness(stack, kind, allowed_paths=("/v1/data", "/v1/items"))
        answers.append(harness.invoke({}))
        answers.append(harness.invoke({"path": "/v1/items", "query": {"page": "2"}}))
        stack.api.inject(Fault(status=401, body=b"{}", times=1))
        answers.append(harness.invoke({}))
        stack.api.inject(Fault(status=500, body=b'{"detail": "upstream trace"}', times=3))
        answers.append(harness.invoke({}))
        answers.append(harness.invoke({"path": "/v1/items/../x"}))
    broken = make_harness(stack, "basic", secret_name="leak/wrong")
    wrong = stack.secret_value("basic") | {"client_secret": "wrong-but-still-secret-0001"}
    stack.secrets_manager.put_secret("leak/wrong", wrong)
    answers.append(broken.invoke({}))
    return answers


def test_no_secret_material_in_logs_or_responses(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(stack.okta.issued_tokens)
    answers = run_flows(stack)
    captured = capsys.readouterr()
    text = captured.out + captured.err + json.dumps(answers)
    material = [*stack.all_secret_material(), "wrong-but-still-secret-0001"]
    # A token per client kind at least, all in the scanned material. (Counted from this test's
    # own flows: the directory's stack also holds the tokens of the tests that ran before.)
    assert len(stack.okta.issued_tokens) - before >= 5
    assert material
    leaks = [m[:12] + "..." for m in material if m in text]
    assert leaks == []
    # The flows did log: the scan looked at real output.
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert any(line["message"] == "token issued" for line in lines)
    assert any(line.get("code") == "TOKEN_REJECTED" for line in lines)
    assert all("request_id" in line for line in lines if line["message"] == "invocation served")

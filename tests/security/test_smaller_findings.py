"""Finding 7: the smaller ones, each confirmed and fixed.

- a caller's query replaced the configured endpoint's entirely (``tenant=acme`` swapped);
- deeply nested JSON from the API raised ``RecursionError`` -> ``INTERNAL_ERROR``;
- the wait for a response's head was bounded per socket read, not by the deadline;
- ``pyproject.toml`` allowed urllib3 versions older than the decompression-bomb fixes;
- ``ROTATION_TEST_FAILED``'s hint claimed AWSCURRENT untouched, false for a password.

The non-idempotent Okta writes are in ``test_okta_writes.py``; the relay's destination allow-list
and the secret policy's CloudFormation exemption are template properties, tested after SAM
translation in ``tests/template/test_template.py`` (``test_relay_tunnels_only_to_the_allowed_
domains``, ``test_who_the_secret_policy_lets_through`` and their neighbours).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from okta_bridge.errors import CATALOG
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import LocalStack
from tests.security.conftest import bridge_for, error_code
from tests.support.trickle import Trickler

ROOT = Path(__file__).resolve().parents[2]


# -- the configured query wins --------------------------------------------------------------------


def tenant_bridge(stack: LocalStack, **env: str) -> object:
    return bridge_for(
        stack,
        env={
            "BRIDGE_API_BASE_URL": f"{stack.api.base_url}/v1/items?tenant=acme",
            "BRIDGE_ALLOWED_PATHS": "/v1/items",
            **env,
        },
    )


@pytest.mark.parametrize(
    "key",
    ["tenant", "TENANT", "Tenant", "tenant[]", "tenant[0]", "\uff54\uff45\uff4e\uff41\uff4e\uff54"],
)
def test_a_caller_cannot_set_a_parameter_the_configuration_sets(
    stack: LocalStack, key: str
) -> None:
    harness = tenant_bridge(stack)
    answer = harness.invoke({"path": "/v1/items", "query": {key: "evil"}})  # type: ignore[attr-defined]
    assert error_code(answer) == "QUERY_NOT_ALLOWED"
    assert sum(stack.api.counts.values()) == 0


def test_the_configured_parameters_are_always_sent(stack: LocalStack) -> None:
    harness = tenant_bridge(stack)
    stack.api.clear_requests()
    answer = harness.invoke({"path": "/v1/items", "query": {"page": "2"}})  # type: ignore[attr-defined]
    assert answer["statusCode"] == 200
    assert stack.api.requests[-1].query == {"tenant": ["acme"], "page": ["2"]}


def test_allowed_query_names_the_only_keys_a_caller_may_set(stack: LocalStack) -> None:
    harness = tenant_bridge(stack, BRIDGE_ALLOWED_QUERY="page")
    assert harness.invoke({"path": "/v1/items", "query": {"page": "2"}})["statusCode"] == 200  # type: ignore[attr-defined]
    refused = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}})  # type: ignore[attr-defined]
    assert error_code(refused) == "QUERY_NOT_ALLOWED"


# -- deeply nested JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_json_is_not_json_not_an_internal_error(
    stack: LocalStack, depth: int
) -> None:
    harness = bridge_for(stack)
    stack.api.inject(Fault(status=200, body=b"[" * depth + b"]" * depth))
    answer = harness.invoke({})
    code = error_code(answer)
    if depth == 100_000 or sys.version_info < (3, 12):
        # Deeper than the parser's recursion limit (Python's before 3.12, its C stack's after).
        assert code == "UPSTREAM_NOT_JSON", answer
        assert "nested" in answer["body"]["error"]["message"]
    else:
        # Python 3.12+ parses 5,000 levels: served, and Lambda can still serialise the answer.
        assert code is None, answer
        assert json.loads(json.dumps(answer))["statusCode"] == 200


# -- the response head is bounded by the deadline --------------------------------------------------


@pytest.fixture
def trickler(stack: LocalStack) -> Iterator[Trickler]:
    """A status line, then the headers one byte per 0.1 s for up to 15 s."""
    context = server_context(stack.server_cert)
    server = Trickler(context, b"HTTP/1.1 200 OK\r\n", b"X", interval=0.1, limit=15.0)
    yield server
    server.close()


def test_a_response_head_trickled_a_byte_at_a_time_is_cut_at_the_deadline(
    stack: LocalStack, trickler: Trickler
) -> None:
    harness = bridge_for(
        stack, env={"BRIDGE_API_BASE_URL": f"https://127.0.0.1:{trickler.port}/v1/data"}
    )
    answer = harness.invoke({}, remaining_ms=2_500)  # a 2 s deadline after the margin
    assert error_code(answer) == "UPSTREAM_TIMEOUT", answer
    assert "before the deadline" in answer["body"]["error"]["message"]
    assert trickler.client_left.wait(10)  # the bridge hung up; the server never got to finish
    assert not trickler.finished.is_set()


# -- dependencies ------------------------------------------------------------------------------

FIXED_URLLIB3 = (2, 7, 0)  # CVE-2026-44432, the last decompression-bomb fix of the streaming API


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_urllib3_is_required_at_a_version_with_the_decompression_fixes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [spec] = [d for d in project["project"]["dependencies"] if d.startswith("urllib3")]
    minimum = re.search(r">=\s*([0-9.]+)", spec)
    assert minimum is not None, spec
    assert version_tuple(minimum.group(1)) >= FIXED_URLLIB3
    assert version_tuple(importlib.metadata.version("urllib3")) >= FIXED_URLLIB3
    locked = re.search(r"^urllib3==([0-9.]+)", (ROOT / "requirements.lock").read_text(), re.M)
    assert locked is not None
    assert version_tuple(locked.group(1)) >= FIXED_URLLIB3


# -- hints tell the truth ----------------------------------------------------------------------


def test_the_rotation_test_failure_hint_does_not_promise_an_untouched_password() -> None:
    hint = CATALOG["ROTATION_TEST_FAILED"].hint
    assert "AWSCURRENT is untouched" not in hint
    assert "password" in hint.lower()

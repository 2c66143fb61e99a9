"""Many execution environments starting cold at the same moment against the local stack.

PROCESSES child processes (``tests/support/children.py``) each import ``okta_bridge.handler``
fresh with the stack's environment, report ``ready`` and wait; the parent then releases them all
at once, and each invokes ``lambda_handler`` CALLS times. Each environment reads the secret once
and requests one token; nothing fails.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest

from okta_bridge_dev.emulators.stack import LocalStack
from tests.load.conftest import ALLOWED_PATHS
from tests.support.children import child_environment, spawn, tracebacks

pytestmark = pytest.mark.integration

PROCESSES = 8
CALLS = 5
BOUND_SECONDS = 60.0


def test_many_environments_start_cold_at_once(stack: LocalStack, tmp_path: Path) -> None:
    secret_id = stack.store_secret("basic", "load/cold-processes")
    stack.reset_counts()
    env = child_environment(stack, secret_id, ALLOWED_PATHS)
    until = time.monotonic() + BOUND_SECONDS
    spawned = time.monotonic()
    children = spawn(PROCESSES, CALLS, env, tmp_path, until)
    try:
        # Importing the handler does no I/O: the bridge is built at the first invocation.
        assert stack.secrets_manager.counts["GetSecretValue"] == 0
        assert stack.okta.counts["token"] == 0

        released = time.monotonic()
        for child in children:
            child.release()
        reports = [child.finish(until) for child in children]
        finished = time.monotonic()
    finally:
        for child in children:
            child.stop()

    assert tracebacks(tmp_path, PROCESSES) == []
    results = [r for report in reports for r in report["results"]]
    assert len(results) == PROCESSES * CALLS
    assert [r for r in results if r["status"] != 200] == []
    assert all(r["answered_id"] == r["request_id"] for r in results)

    assert stack.okta.counts["token"] == PROCESSES  # one per environment
    assert stack.secrets_manager.counts["GetSecretValue"] == PROCESSES
    assert sum(stack.api.counts.values()) == PROCESSES * CALLS
    # Each environment used one token for all its calls, and no two environments shared one.
    tokens_by_child = collections.defaultdict(set)
    for request in stack.api.requests:
        request_id = request.headers.get("x-request-id", "")
        if request_id.startswith("p") and "-" in request_id:
            tokens_by_child[request_id.split("-")[0]].add(request.headers.get("authorization"))
    assert len(tokens_by_child) == PROCESSES
    assert all(len(tokens) == 1 for tokens in tokens_by_child.values())
    assert len(set().union(*tokens_by_child.values())) == PROCESSES

    cold_ms = sorted(report["results"][0]["ms"] for report in reports)
    print(
        f"{PROCESSES} processes x {CALLS} calls: spawn to ready {released - spawned:.2f} s, "
        f"release to last answer {finished - released:.2f} s, cold call ms "
        f"min {cold_ms[0]} median {cold_ms[len(cold_ms) // 2]} max {cold_ms[-1]}, "
        f"import ms {sorted(r['import_ms'] for r in reports)}"
    )

"""Many execution environments starting cold at the same moment against the local stack.

PROCESSES child processes (``cold_child.py``) each import ``okta_bridge.handler`` fresh with the
stack's environment, report ``ready`` and wait; the parent then releases them all at once, and
each invokes ``lambda_handler`` CALLS times. Each environment reads the secret once and requests
one token; nothing fails.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from okta_bridge_dev.emulators.stack import LocalStack
from tests.load.conftest import ALLOWED_PATHS

pytestmark = pytest.mark.integration

PROCESSES = 8
CALLS = 5
BOUND_SECONDS = 60.0
CHILD = Path(__file__).with_name("cold_child.py")
ROOT = Path(__file__).resolve().parents[2]
_PROXY_VARIABLES = {"https_proxy", "http_proxy", "all_proxy", "no_proxy"}


def child_environment(stack: LocalStack, secret_id: str) -> dict[str, str]:
    """This process's environment without anything that could point a child elsewhere (AWS
    profiles and keys, proxies, bridge settings), plus the stack's variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in LocalStack.UNSET_ENVIRONMENT
        and not name.startswith(("AWS_", "BRIDGE_"))
        and name.lower() not in _PROXY_VARIABLES
    }
    env.update(stack.environment(secret_id))
    env["BRIDGE_ALLOWED_PATHS"] = ",".join(ALLOWED_PATHS)
    return env


class Child:
    """A child process and the thread reading its stdout (first ``ready``, then the results)."""

    def __init__(self, index: int, env: dict[str, str], log: IO[bytes]) -> None:
        self.index = index
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter running our own script
            [sys.executable, str(CHILD), str(index), str(CALLS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=ROOT,
            text=True,
        )
        self.ready = threading.Event()
        self.first_line = ""
        self.rest = ""
        self.reader = threading.Thread(target=self._read, name=f"child-{index}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        self.first_line = stdout.readline()
        self.ready.set()
        self.rest = stdout.read()

    def release(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write("go\n")
        stdin.flush()

    def finish(self, until: float) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.close()
        self.reader.join(max(0.0, until - time.monotonic()))
        assert not self.reader.is_alive(), f"child {self.index} did not finish"
        assert self.process.wait(max(0.1, until - time.monotonic())) == 0
        answer: dict[str, Any] = json.loads(self.rest)
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.reader.join(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def test_many_environments_start_cold_at_once(stack: LocalStack, tmp_path: Path) -> None:
    secret_id = stack.store_secret("basic", "load/cold-processes")
    stack.reset_counts()
    env = child_environment(stack, secret_id)
    until = time.monotonic() + BOUND_SECONDS
    logs = [(tmp_path / f"child-{i}.log").open("wb") for i in range(PROCESSES)]
    children: list[Child] = []
    try:
        spawned = time.monotonic()
        children = [Child(i, env, logs[i]) for i in range(PROCESSES)]
        for child in children:
            child.ready.wait(max(0.0, until - time.monotonic()))
        assert [c.first_line for c in children] == ["ready\n"] * PROCESSES
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
        for log in logs:
            log.close()

    for i in range(PROCESSES):
        assert "Traceback" not in (tmp_path / f"child-{i}.log").read_text()
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

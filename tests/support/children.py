"""Execution environments as child processes: each imports ``okta_bridge.handler`` fresh
(``cold_child.py``), says ``ready`` and waits, so that a test can release any number of them at
the same moment, or one before the others, and kill one mid-invocation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from okta_bridge_dev.emulators.stack import LocalStack

CHILD = Path(__file__).with_name("cold_child.py")
ROOT = Path(__file__).resolve().parents[2]
_PROXY_VARIABLES = {"https_proxy", "http_proxy", "all_proxy", "no_proxy"}


def child_environment(
    stack: LocalStack,
    secret_id: str,
    allowed_paths: tuple[str, ...],
    *,
    token_cache: bool = False,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """This process's environment without anything that could point a child elsewhere (AWS
    profiles and keys, proxies, bridge settings), plus the stack's variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in LocalStack.UNSET_ENVIRONMENT
        and not name.startswith(("AWS_", "BRIDGE_"))
        and name.lower() not in _PROXY_VARIABLES
    }
    env.update(stack.environment(secret_id, token_cache=token_cache))
    env["BRIDGE_ALLOWED_PATHS"] = ",".join(allowed_paths)
    env.update(extra or {})
    return env


class Child:
    """A child process and the thread reading its stdout (first ``ready``, then the results)."""

    def __init__(self, index: int, calls: int, env: dict[str, str], log: IO[bytes]) -> None:
        self.index = index
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter running our own script
            [sys.executable, str(CHILD), str(index), str(calls)],
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

    def kill(self) -> None:
        """SIGKILL: an environment that dies mid-invocation (Lambda's timeout, an OOM)."""
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.reader.join(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def spawn(count: int, calls: int, env: dict[str, str], logs: Path, until: float) -> list[Child]:
    """``count`` children, each ready (handler imported, nothing fetched) before ``until``."""
    children: list[Child] = []
    try:
        for index in range(count):
            log = (logs / f"child-{index}.log").open("wb")
            children.append(Child(index, calls, env, log))
            log.close()  # the child holds its own descriptor
        for child in children:
            child.ready.wait(max(0.0, until - time.monotonic()))
        assert [c.first_line for c in children] == ["ready\n"] * count
    except BaseException:
        for child in children:
            child.stop()
        raise
    return children


def tracebacks(logs: Path, count: int) -> list[int]:
    """The children whose stderr shows a traceback."""
    return [i for i in range(count) if "Traceback" in (logs / f"child-{i}.log").read_text()]

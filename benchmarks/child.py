"""One execution environment for the benchmark, run as a fresh process by ``run.py``.

``python child.py MODULE CALLS``: imports MODULE (``okta_bridge.handler``, ``naive`` or ``floor``)
and calls its ``lambda_handler`` CALLS times, then prints one JSON line: the import time, each
call's time, the peak RSS and the last answer's status. The first call is the cold one. Logs go to
stderr so stdout carries only that line.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
import uuid
from typing import Any


class Context:
    """The two members of Lambda's context the handlers read."""

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _peak_rss_kib() -> int:
    """This process's peak RSS. VmHWM starts afresh at exec; getrusage's ru_maxrss would also
    count the pages of the (large) parent process this child was forked from."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    module_name, calls = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    sys.stdout = sys.stderr  # handlers print logs and metrics to stdout
    started = time.perf_counter()
    module = importlib.import_module(module_name)
    import_ms = (time.perf_counter() - started) * 1000
    times: list[float] = []
    statuses: list[Any] = []
    for _ in range(calls):
        begin = time.perf_counter()
        answer = module.lambda_handler({}, Context())
        times.append((time.perf_counter() - begin) * 1000)
        statuses.append(answer.get("statusCode"))
    peak_kib = _peak_rss_kib()
    report = {
        "import_ms": import_ms,
        "call_ms": times,
        "peak_rss_mib": peak_kib / 1024,
        "statuses": sorted(set(statuses), key=str),
        "python": sys.version.split()[0],
    }
    print(json.dumps(report), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

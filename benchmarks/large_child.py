"""One execution environment answering one large call, run as a fresh process by
``large_answers.py``.

``python large_child.py PATH BYTES``: imports the bridge's handler, makes a cold and a warm small
call to ``PATH?bytes=1000`` (the environment's idle state: secret, token and connections held),
reads the resident set (``VmRSS``), resets the peak (``/proc/self/clear_refs``: 5), then asks for
``PATH?bytes=BYTES`` and reads the peak (``VmHWM``). Prints one JSON line. Logs go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")


class Context:
    """The two members of Lambda's context the handler reads."""

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def _status_kib(field: str) -> int:
    for line in STATUS.read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {STATUS}")


def main() -> int:
    path, size = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    sys.stdout = sys.stderr  # the handler prints logs and metrics to stdout
    from okta_bridge import handler  # noqa: PLC0415 - timed and measured from here

    small = {"path": path, "query": {"bytes": "1000"}}
    for _ in range(2):
        answer = handler.lambda_handler(small, Context())
        if answer.get("statusCode") != 200:
            raise RuntimeError(f"small call answered {answer}")
    idle_kib = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")  # the peak starts here
    began = time.perf_counter()
    answer = handler.lambda_handler({"path": path, "query": {"bytes": str(size)}}, Context())
    elapsed = (time.perf_counter() - began) * 1000
    peak_kib = _status_kib("VmHWM")
    body: Any = answer.get("body")
    delivery = body.get("delivery") if isinstance(body, dict) else None
    report = {
        "status": answer.get("statusCode"),
        "idle_mib": idle_kib / 1024,
        "peak_mib": peak_kib / 1024,
        "ms": elapsed,
        "delivery": delivery,
        "inline_items": len(body) if isinstance(body, list) else None,
    }
    print(json.dumps(report), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

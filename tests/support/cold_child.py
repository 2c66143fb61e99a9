"""One cold execution environment, run as a child process (``tests/support/children.py``).

``python cold_child.py INDEX CALLS``: imports ``okta_bridge.handler`` fresh, prints ``ready``,
waits for the parent's ``go`` line on stdin (so every child starts its first invocation at the same
moment), invokes ``lambda_handler`` CALLS times and prints one JSON line with the results. The
bridge's logs go to stderr so stdout carries only the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

EVENTS: list[Any] = [{}, {"path": "/v1/items", "query": {"page": "2"}}, {"path": "/v1/items/7"}]


# Lambda's remaining time each invocation is given (CHILD_REMAINING_MS overrides the default).
REMAINING_MS = int(os.environ.get("CHILD_REMAINING_MS", "20000"))


class Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return REMAINING_MS


def main() -> int:
    index, calls = int(sys.argv[1]), int(sys.argv[2])
    protocol = sys.stdout
    sys.stdout = sys.stderr  # the bridge logs to whatever sys.stdout is
    imported = time.monotonic()
    from okta_bridge import handler  # noqa: PLC0415 - the import is part of the measured start

    import_ms = (time.monotonic() - imported) * 1000
    print("ready", file=protocol, flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    results = []
    for call in range(calls):
        request_id = f"p{index:02d}-{call:03d}"
        started = time.monotonic()
        answer = handler.lambda_handler(EVENTS[call % len(EVENTS)], Context(request_id))
        body = answer.get("body")
        error = body.get("error") if isinstance(body, dict) else None
        results.append(
            {
                "request_id": request_id,
                "status": answer.get("statusCode"),
                "answered_id": (answer.get("meta") or {}).get("request_id"),
                "code": error.get("code") if isinstance(error, dict) else None,
                "ms": round((time.monotonic() - started) * 1000, 1),
            }
        )
    print(json.dumps({"import_ms": round(import_ms, 1), "results": results}), file=protocol)
    protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

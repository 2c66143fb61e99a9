"""One fresh child process of a benchmark: its report (the last JSON line of its stdout) and the
tail of its log, for the error that names what went wrong."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any


def run_child(
    python: str, script: Path, args: list[str], env: dict[str, str], label: str
) -> tuple[dict[str, Any], str]:
    """Run ``script`` with ``args`` under ``python``; raise ``RuntimeError`` if it fails."""
    # The child's logs and metrics lines go to a file, as Lambda's go to a pipe its runtime
    # drains at once; a pipe to this busy parent would stall the child's writes.
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(  # noqa: S603 - our own child script
            [python, str(script), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=600,
            check=False,
        )
        log.seek(0)
        tail = log.read()[-3000:]
    if done.returncode != 0:
        raise RuntimeError(f"{label} child failed:\n{tail}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report, tail

"""Cold starts of two Lambda zips side by side, by kind of client: which build starts faster?

``python benchmarks/cold_ab.py --python python3.13 before.zip after.zip`` unpacks each zip, starts
the local stack with 20 ms added to every Okta and API request (``--latency``), and for each kind
of client (``--kinds``: a client secret, PEM keys, DPoP) runs ROUNDS fresh processes per zip,
interleaved (A, B, A, B, ...), each importing ``okta_bridge.handler`` and serving one invocation
(secret, token, API). It prints the median import, first call and total per zip and kind, and
the total's ratio. ``import_time.py`` does the same for the import alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from import_time import unpack  # benchmarks/ is the script's own directory, on its path

from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack

HERE = Path(__file__).resolve().parent
CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
started = time.perf_counter()
import okta_bridge.handler as handler
imported = time.perf_counter()
from child import Context
answer = handler.lambda_handler({}, Context())
served = time.perf_counter()
if answer.get("statusCode") != 200:
    raise SystemExit(f"answered {answer.get('statusCode')}")
sys.stdout.flush()
print((imported - started) * 1000, (served - imported) * 1000)
"""


def secret_for(stack: LocalStack, kind: str) -> str:
    """A secret of ``kind``; ``dpop`` is the basic client with an app that requires DPoP."""
    if kind == "dpop":
        stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
        value = {**stack.secret_value("basic"), "dpop": True}
        return stack.secrets_manager.put_secret("cold-ab/dpop", value)
    return stack.store_secret(kind, f"cold-ab/{kind}")


def run(python: str, root: Path, env: dict[str, str]) -> tuple[float, float]:
    """One fresh process: its import and first-call milliseconds."""
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [python, "-c", CHILD, str(root), str(HERE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{root}: {done.stderr[-2000:]}")
    imported, first = done.stdout.strip().splitlines()[-1].split()
    return float(imported), float(first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter (Lambda's: 3.13)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds added (Okta, API)")
    parser.add_argument("--kinds", default="post,jwt-rs256,jwt-es256,dpop")
    parser.add_argument("zips", nargs=2, type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, LocalStack() as stack:
        roots = unpack(args.zips, Path(scratch))
        stack.okta.added_latency = stack.api.added_latency = args.latency
        for kind in args.kinds.split(","):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
            env.update(stack.environment(secret_for(stack, kind)))
            env.update({"AWS_LAMBDA_FUNCTION_NAME": "cold-ab", "PYTHONDONTWRITEBYTECODE": "1"})
            samples: list[list[tuple[float, float]]] = [[] for _ in roots]
            for _ in range(args.rounds):
                for index, root in enumerate(roots):
                    samples[index].append(run(args.python, root, env))
            stack.okta.require_dpop(CLIENT_IDS["basic"], on=False)
            totals = [statistics.median(i + f for i, f in s) for s in samples]
            for archive, sample, total in zip(args.zips, samples, totals, strict=True):
                imported = statistics.median(i for i, _ in sample)
                first = statistics.median(f for _, f in sample)
                print(
                    f"{kind:10s} {archive}: cold {total:.0f} ms "
                    f"(import {imported:.0f} + first call {first:.0f}), "
                    f"x first zip {total / totals[0]:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cold import of the handler from Lambda zips, side by side: which build imports faster?

``python benchmarks/import_time.py --python python3.13 before.zip after.zip`` unpacks each zip, then
runs ROUNDS fresh interpreters per zip, interleaved (A, B, A, B, ...) so that a busy machine slows
both alike, each timing ``import okta_bridge.handler`` from the unpacked zip with nothing else on
the path but the standard library. It prints the median and the quartiles of each, and each median
as a ratio of the first zip's. Used to show that a restructure did not slow the cold start.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CHILD = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
    "import okta_bridge.handler; print((time.perf_counter() - t) * 1000)"
)


def unpack(archives: list[Path], scratch: Path) -> list[Path]:
    """Each zip unpacked into its own folder of ``scratch``, in order (as Lambda unpacks one)."""
    roots = []
    for index, archive in enumerate(archives):
        root = scratch / str(index)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(root)
        roots.append(root)
    return roots


def measure(python: str, roots: list[Path], rounds: int) -> list[list[float]]:
    """ROUNDS import times (ms) per root, the roots interleaved within each round."""
    samples: list[list[float]] = [[] for _ in roots]
    for _ in range(rounds):
        for index, root in enumerate(roots):
            out = subprocess.run(  # noqa: S603 - our interpreter, our script
                [python, "-S", "-c", CHILD, str(root)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            samples[index].append(float(out.stdout.strip()))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter (Lambda's: 3.13)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("zips", nargs="+", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        samples = measure(args.python, unpack(args.zips, Path(scratch)), args.rounds)
    base = statistics.median(samples[0])
    for archive, times in zip(args.zips, samples, strict=True):
        q1, median, q3 = statistics.quantiles(times, n=4)
        print(
            json.dumps(
                {
                    "zip": str(archive),
                    "rounds": len(times),
                    "median_ms": round(median, 2),
                    "q1_ms": round(q1, 2),
                    "q3_ms": round(q3, 2),
                    "x_first": round(statistics.median(times) / base, 3),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

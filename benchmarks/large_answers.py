"""Large answers (issue 15): the bridge's memory while a 50 MB export streams through S3.

Each case runs the packaged bridge as a fresh python3.13 process (``large_child.py``) against the
local stack: the sample API's streamed ``/v1/export``, moto's S3 over TLS. A process first makes
two small calls (its idle state: secret, token and connections held), then one large call; the
figure is its peak resident set during that call above its idle one. The baseline of the same run
is an answer just under the inline limit, returned inline (held, parsed and returned whole, as
every inline answer is). The object S3 holds is read back through the presigned URL the answer
carries, and its SHA-256 checked against the answer's and against the bytes the API sent.

``make bench`` adds this section to ``benchmarks/results.md``; run it alone with ``python
benchmarks/large_answers.py --python .venv-313/bin/python --zip build/bench/okta-bridge.zip``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import ssl
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from children import run_child

from okta_bridge_dev.emulators.sample_export import export_sha256
from okta_bridge_dev.emulators.stack import LocalStack

HERE = Path(__file__).resolve().parent
EXPORT = "/v1/export"
THROUGH_S3 = 50_000_000
GOAL_MIB = 16.0
INLINE_LIMIT = 6_000_000  # the default BRIDGE_INLINE_LIMIT_BYTES
JUST_UNDER = 5_000_000  # a direct answer's JSON is the export's bytes plus the envelope


@dataclass(frozen=True)
class Case:
    """One measured call: what was asked, what the process's memory did, what came back."""

    name: str
    size: int
    idle_mib: float
    peak_mib: float
    ms: float
    delivered: bool
    verified: str

    @property
    def above_idle(self) -> float:
        return self.peak_mib - self.idle_mib


def environment(stack: LocalStack, code_dir: Path) -> dict[str, str]:
    """The bridge's variables: the stack, its S3 bucket, the export route."""
    secret_id = stack.store_secret("post", "prod/okta_api_creds-large")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
    env.update(stack.environment(secret_id, delivery=True))
    env.update(
        {
            "BRIDGE_ALLOWED_ROUTES": f"GET {EXPORT}",
            "BRIDGE_READ_TIMEOUT_SECONDS": "60",
            "BRIDGE_METRICS": "off",
            "AWS_LAMBDA_FUNCTION_NAME": "okta-bridge-bench",
            "PYTHONPATH": str(code_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_case(python: str, env: dict[str, str], name: str, size: int, ca: Path) -> Case:
    report, tail = run_child(python, HERE / "large_child.py", [EXPORT, str(size)], env, name)
    if report["status"] != 200:
        raise RuntimeError(f"{name}: answered {report}:\n{tail}")
    delivery = report["delivery"]
    verified = verify(delivery, size, ca) if delivery else "inline (not stored)"
    return Case(
        name,
        size,
        report["idle_mib"],
        report["peak_mib"],
        report["ms"],
        delivery is not None,
        verified,
    )


def verify(delivery: dict[str, Any], size: int, ca: Path) -> str:
    """Read the object through its presigned URL (verified TLS); its digest must be the
    answer's and the API's."""
    digest = hashlib.sha256()
    read = 0
    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(delivery["url"], context=context, timeout=60) as answer:  # noqa: S310 - https only
        while chunk := answer.read(1 << 20):
            digest.update(chunk)
            read += len(chunk)
    expected = export_sha256(size)
    if not (digest.hexdigest() == delivery["sha256"] == expected and read == delivery["bytes"]):
        raise RuntimeError(f"the stored object does not match: {delivery['key']}")
    return f"SHA-256 {expected[:12]}... matches ({read:,} bytes read back)"


def measure(stack: LocalStack, python: str, code_dir: Path) -> list[Case]:
    """The baseline (inline, just under the limit) and the 50 MB export through S3."""
    env = environment(stack, code_dir)
    ca = stack.ca.ca_pem_path
    cases = [
        run_case(python, env, "inline, just under the limit", JUST_UNDER, ca),
        run_case(python, env, "50 MB export through S3", THROUGH_S3, ca),
    ]
    if cases[0].delivered or not cases[1].delivered:
        raise RuntimeError("the baseline must be inline and the export delivered through S3")
    return cases


def report(cases: list[Case]) -> Iterator[str]:
    """The markdown section."""
    yield "## Large answers (issue 15)"
    yield ""
    yield (
        "Peak resident set of one bridge process during one call, above its idle resident set "
        "(after two small calls). The export streams from the API to S3 in 8 MiB multipart "
        f"parts; the goal is under idle + {GOAL_MIB:g} MiB. The baseline is an answer just under "
        f"the {INLINE_LIMIT:,}-byte inline limit, which is held, parsed and returned whole."
    )
    yield ""
    yield (
        "| call | answer bytes | idle RSS MiB | peak RSS MiB | above idle MiB | x baseline | ms "
        "| check |"
    )
    yield "|---|---:|---:|---:|---:|---:|---:|---|"
    base = cases[0].above_idle
    for case in cases:
        yield (
            f"| {case.name} | {case.size:,} | {case.idle_mib:.1f} | {case.peak_mib:.1f} | "
            f"{case.above_idle:.1f} | {case.above_idle / base:.2f}x | {case.ms:.0f} | "
            f"{case.verified} |"
        )
    export = cases[-1]
    verdict = "met" if export.above_idle < GOAL_MIB else "NOT met"
    yield ""
    yield (
        f"Goal (under idle + {GOAL_MIB:g} MiB during the 50 MB export): **{verdict}**, "
        f"{export.above_idle:.1f} MiB above idle."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", required=True, help="python3.13 of the bench venv")
    parser.add_argument("--zip", type=Path, required=True, help="the packaged bridge")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, LocalStack() as stack:
        code_dir = Path(tmp) / "bridge"
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(code_dir)
        text = "\n".join(report(measure(stack, args.python, code_dir)))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

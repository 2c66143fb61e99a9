"""``make bench``: the naive design, the bridge (default, extension, DPoP and KMS-signed clients,
and a cold start that finds the token in the shared cache), a library consumer and the floor, side
by side on the local stack.

Every implementation runs as fresh child processes (``child.py``) on python3.13, the bridge from
the packaged zip as Lambda loads it, against the same local stack (real TLS on 127.0.0.1), in two
network variants: nothing added, and 20 ms added by the local Okta and API to every token and API
request. It measures warm latency (p50/p95/p99 over the warm calls), upstream requests per
invocation, cold start (import + first invocation, median of the cold runs), peak RSS and the
deployment zip's size, and reports each as a ratio to naive and to the floor, in
``benchmarks/results.md`` and ``benchmarks/results.png``; then the bridge's memory during a 50 MB
export delivered through S3 (``large_answers``) and what client assertions signed in KMS cost
(``kms_signing``). ``--only kms`` runs the last alone and replaces only its section of the results.
First, since it takes a second: the scale model (``scale_model``), whose table goes into
``docs/scale.md`` (into ``scale.md`` under ``--out`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kms_signing
import large_answers  # benchmarks/ is the script's own directory, on its path
import scale_model
from children import run_child

from okta_bridge_dev.emulators.extension import SecretsExtension
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECRET_NAME = "prod/okta_api_creds"  # noqa: S105 - the design's secret name
VARIANTS = (("none added", 0.0), ("20 ms added", 0.020))
GOAL_VARIANT = "20 ms added"
COLD_GOAL = 0.5  # issue 18: cold start at most half the design's, default and DPoP clients
WARM_GOAL = 1.15  # and warm calls unchanged: at most 1.15x the floor
NAIVE_PACKAGES = ("requests", "urllib3", "idna", "certifi", "charset_normalizer")
QUICK_CALLS = 5
README = ROOT / "README.md"
SCALE_DOC = ROOT / "docs" / "scale.md"
# The README's figure for a DPoP proof signed in KMS, kept in step by a full run.
KMS_BENCH = re.compile(r"measured: (?:<N>|[\d.]+) ms per proof(?: on loopback)? <!-- KMS-BENCH -->")


@dataclass(frozen=True)
class Impl:
    """One implementation: the module a child imports and what it needs on its path."""

    name: str
    module: str
    path: tuple[Path, ...]
    env: dict[str, str] = field(default_factory=dict)
    prime: bool = False  # one unmeasured run first (the shared cache: the fleet's mint)


@dataclass
class Measured:
    """What the runs of one implementation in one variant gave."""

    warm_ms: list[float] = field(default_factory=list)
    cold_import_ms: list[float] = field(default_factory=list)
    cold_first_ms: list[float] = field(default_factory=list)
    cold_calls: tuple[float, float, float] = (0.0, 0.0, 0.0)
    warm_calls: tuple[float, float, float] = (0.0, 0.0, 0.0)
    peak_rss_mib: float = 0.0

    def warm(self, q: float) -> float:
        """The q-quantile of the warm latencies (0.5 = p50)."""
        ordered = sorted(self.warm_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def cold_ms(self) -> float:
        """Median of import + first call over the cold runs."""
        totals = [i + f for i, f in zip(self.cold_import_ms, self.cold_first_ms, strict=True)]
        return statistics.median(totals)


class Bench:
    """The stack, the extension stand-in and the child processes."""

    def __init__(self, stack: LocalStack, python: str, code_dir: Path) -> None:
        self.stack = stack
        self.python = python
        secret_id = stack.store_secret("post", SECRET_NAME)
        # DPoP (issue 12): another app that requires it, its secret saying so.
        stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
        dpop_secret_id = stack.secrets_manager.put_secret(
            f"{SECRET_NAME}-dpop", {**stack.secret_value("basic"), "dpop": True}
        )
        # KMS signing (issue 16): a private_key_jwt client whose key never leaves KMS.
        kms_secret_id = stack.store_secret("kms-rs256", f"{SECRET_NAME}-kms")
        sm = stack.secrets_manager.client(stack.ca.ca_pem_path)
        self.extension = SecretsExtension(sm, session_token=secrets.token_urlsafe(24)).start()
        value = stack.secret_value("post")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
        env.update(stack.environment(secret_id))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "okta-bridge-bench",
                "REQUESTS_CA_BUNDLE": str(stack.ca.ca_pem_path),
                "NAIVE_SECRET_ID": secret_id,
                "FLOOR_API_URL": value["api_endpoint"],
                "CONSUMER_PATH": urllib.parse.urlsplit(value["api_endpoint"]).path,
                "FLOOR_TOKEN_URL": value["token_url"],
                "FLOOR_CLIENT_ID": value["client_id"],
                "FLOOR_CLIENT_SECRET": value["client_secret"],
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        self.env = env
        extension_env = {**self.extension.environment(), "BRIDGE_SECRET_SOURCE": "extension"}
        # Issue 20: the shared token cache. The first cold run mints and publishes; every later
        # one is a cold start in a fleet whose table holds the token (GetItem + kms:Decrypt).
        plain = stack.environment(secret_id)
        cache_env = {
            name: value
            for name, value in stack.environment(secret_id, token_cache=True).items()
            if plain.get(name) != value
        }
        self.impls = (
            Impl("naive", "naive", (HERE,)),
            Impl("bridge", "okta_bridge.handler", (code_dir,)),
            Impl("bridge + extension", "okta_bridge.handler", (code_dir,), extension_env),
            Impl(
                "bridge + DPoP",
                "okta_bridge.handler",
                (code_dir,),
                {"BRIDGE_SECRET_ID": dpop_secret_id},
            ),
            Impl(
                "bridge + KMS",
                "okta_bridge.handler",
                (code_dir,),
                {"BRIDGE_SECRET_ID": kms_secret_id},
            ),
            Impl("bridge + shared cache", "okta_bridge.handler", (code_dir,), cache_env, True),
            Impl("library consumer", "consumer", (HERE, code_dir)),
            Impl("floor", "floor", (HERE,)),
        )

    def counts(self) -> tuple[int, int, int]:
        """Secret reads (Secrets Manager plus the extension), token requests, API requests."""
        return (
            self.stack.secrets_manager.counts["GetSecretValue"] + self.extension.counts["get"],
            self.stack.okta.counts["token"],
            sum(self.stack.api.counts.values()),
        )

    def child(self, impl: Impl, calls: int) -> tuple[dict[str, Any], tuple[int, int, int]]:
        """Run one fresh process; its report and the upstream requests it made."""
        self.extension.clear_cache()  # a new sandbox: the extension starts empty too
        before = self.counts()
        env = {**self.env, **impl.env, "PYTHONPATH": os.pathsep.join(map(str, impl.path))}
        report, tail = run_child(
            self.python, HERE / "child.py", [impl.module, str(calls)], env, impl.name
        )
        if report["statuses"] != [200]:
            raise RuntimeError(f"{impl.name} answered {report['statuses']}:\n{tail}")
        after = self.counts()
        return report, (after[0] - before[0], after[1] - before[1], after[2] - before[2])

    def cold(self, impl: Impl, measured: Measured) -> None:
        """One cold run: a fresh process, one call."""
        report, calls = self.child(impl, 1)
        measured.cold_import_ms.append(report["import_ms"])
        measured.cold_first_ms.append(report["call_ms"][0])
        measured.peak_rss_mib = max(measured.peak_rss_mib, report["peak_rss_mib"])
        measured.cold_calls = (float(calls[0]), float(calls[1]), float(calls[2]))

    def warm(self, impl: Impl, measured: Measured, warm_calls: int) -> None:
        """One warm process: a cold call, then ``warm_calls`` timed ones."""
        report, total = self.child(impl, warm_calls + 1)
        measured.warm_ms = report["call_ms"][1:]
        measured.peak_rss_mib = max(measured.peak_rss_mib, report["peak_rss_mib"])
        measured.warm_calls = tuple(  # type: ignore[assignment]
            (t - f) / warm_calls for t, f in zip(total, measured.cold_calls, strict=True)
        )


def naive_zip_size(python: str) -> int:
    """The design's zip: its handler plus requests and its dependencies (boto3 is the runtime's)."""
    probe = subprocess.run(  # noqa: S603 - fixed arguments
        [
            python,
            "-c",
            "import json,importlib;print(json.dumps({n: importlib.import_module(n).__path__[0] "
            f"for n in {list(NAIVE_PACKAGES)!r}}}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    paths = json.loads(probe.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "naive.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(HERE / "naive.py", "lambda_function.py")
            for name, folder in paths.items():
                for file in sorted(Path(folder).rglob("*")):
                    if file.is_file() and "__pycache__" not in file.parts:
                        archive.write(file, f"{name}/{file.relative_to(folder)}")
        return target.stat().st_size


def goals(per_impl: dict[str, Measured]) -> Iterator[str]:
    """Issue 18's goals, judged on this run at 20 ms added."""
    naive, floor = per_impl["naive"], per_impl["floor"]
    checks = [
        (f"{name} cold <= {COLD_GOAL}x naive", per_impl[name].cold_ms / naive.cold_ms, COLD_GOAL)
        for name in ("bridge", "bridge + DPoP")
    ] + [
        (
            f"{name} warm p50 <= {WARM_GOAL}x floor",
            per_impl[name].warm(0.5) / floor.warm(0.5),
            WARM_GOAL,
        )
        for name in ("bridge", "bridge + DPoP")
    ]
    yield "| goal (issue 18, at 20 ms added) | this run | met |"
    yield "|---|---:|---|"
    for label, value, limit in checks:
        yield f"| {label} | {value:.2f}x | {'yes' if value <= limit else 'NO'} |"
    yield ""
    yield (
        "Import alone: the implementation's module imported in the fresh process (the bridge's "
        "`okta_bridge.handler`, which also starts parsing the CA store on a thread); the first "
        "call is the rest of the cold start."
    )


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def report(
    results: dict[str, dict[str, Measured]],
    sizes: dict[str, int],
    python_version: str,
    *,
    quick: bool = False,
) -> Iterator[str]:
    """The markdown of benchmarks/results.md."""
    yield "# Benchmark results"
    yield ""
    yield (
        f"`make bench` on the local stack, python {python_version}, each number from fresh child "
        "processes. Ratios are against the design's naive handler and against the floor (a bare "
        "keep-alive GET with a valid token) of the same run."
    )
    if quick:
        yield ""
        yield (
            f"**Quick smoke run** (`make bench QUICK=1`): one cold run and {QUICK_CALLS} warm "
            "calls per implementation. It proves every implementation runs; its figures are "
            "not a measurement."
        )
    yield ""
    yield (
        "`bridge + shared cache` (issue 20): after one unmeasured run that mints for the fleet, "
        "each cold run finds the fleet's token in the table (secret/token/API 1/0/1: a GetItem "
        "and a kms:Decrypt instead of a token request). Its DynamoDB and KMS are moto on "
        "loopback; in a region each adds a few milliseconds (see docs/scale.md)."
    )
    for variant, per_impl in results.items():
        naive, floor = per_impl["naive"], per_impl["floor"]
        yield ""
        yield f"## Network: {variant}"
        yield ""
        yield (
            "| implementation | warm p50 ms | p95 | p99 | p50 x naive | p50 x floor | "
            "warm secret/token/API per call | cold ms (import + first call) | import alone ms | "
            "cold x naive | peak RSS MiB | RSS x naive |"
        )
        yield "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
        for name, m in per_impl.items():
            calls = "/".join(f"{c:g}" for c in (round(x, 2) for x in m.warm_calls))
            cold = statistics.median(m.cold_import_ms), statistics.median(m.cold_first_ms)
            cold_text = f"{m.cold_ms:.0f} ({cold[0]:.0f} + {cold[1]:.0f})"
            is_floor = name == "floor"
            yield (
                f"| {name} | {m.warm(0.5):.2f} | {m.warm(0.95):.2f} | {m.warm(0.99):.2f} | "
                f"{ratio(m.warm(0.5), naive.warm(0.5))} | {ratio(m.warm(0.5), floor.warm(0.5))} | "
                f"{calls} | {'(token at import)' if is_floor else cold_text} | "
                f"{'' if is_floor else f'{cold[0]:.0f}'} | "
                f"{'' if is_floor else ratio(m.cold_ms, naive.cold_ms)} | "
                f"{m.peak_rss_mib:.1f} | {ratio(m.peak_rss_mib, naive.peak_rss_mib)} |"
            )
        if variant == GOAL_VARIANT:
            yield ""
            yield from goals(per_impl)
    yield ""
    yield "## Deployment zip"
    yield ""
    yield "| implementation | bytes | MiB |"
    yield "|---|---:|---:|"
    for name, size in sizes.items():
        yield f"| {name} | {size:,} | {size / 1048576:.1f} |"


def chart(results: dict[str, dict[str, Measured]], target: Path) -> None:
    """Warm p50 and cold start per implementation and variant, as a PNG."""
    import matplotlib  # noqa: PLC0415 - the bench extra only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    variants = list(results)
    names = list(next(iter(results.values())))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(variants)
    for index, variant in enumerate(variants):
        xs = [n + index * width for n in range(len(names))]
        axes[0].bar(xs, [results[variant][n].warm(0.5) for n in names], width, label=variant)
        cold_names = [n for n in names if n != "floor"]
        cold_xs = [n + index * width for n in range(len(cold_names))]
        axes[1].bar(
            cold_xs, [results[variant][n].cold_ms for n in cold_names], width, label=variant
        )
    axes[0].set_xticks([n + width / 2 for n in range(len(names))], names, fontsize=8)
    axes[0].set_title("warm latency, p50 (ms, lower is better)")
    cold_names = [n for n in names if n != "floor"]
    axes[1].set_xticks([n + width / 2 for n in range(len(cold_names))], cold_names, fontsize=8)
    axes[1].set_title("cold start: import + first call (ms)")
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


def replace_section(text: str, heading: str, section: list[str]) -> str:
    """``text`` with the section under ``heading`` (up to the next ``## ``) replaced by
    ``section``, or with ``section`` appended if there is none."""
    lines = text.rstrip("\n").split("\n")
    if heading not in lines:
        return "\n".join([*lines, "", *section]) + "\n"
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = ["", *lines[end:]] if end < len(lines) else []
    return "\n".join([*lines[:start], *section, *after]) + "\n"


def update_readme(per_proof_ms: float) -> None:
    """Put a full run's figure for a KMS-signed DPoP proof into the README."""
    text = README.read_text(encoding="utf-8")
    figure = f"measured: {per_proof_ms:.2f} ms per proof on loopback <!-- KMS-BENCH -->"
    updated, found = KMS_BENCH.subn(figure, text)
    if found != 1:
        raise RuntimeError("README.md has no single KMS-BENCH figure to update")
    README.write_text(updated, encoding="utf-8")


def only_kms(args: argparse.Namespace) -> int:
    """``--only kms``: the KMS signing part alone, its section replaced in the results."""
    with tempfile.TemporaryDirectory() as tmp, LocalStack() as stack:
        code_dir = Path(tmp) / "bridge"
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(code_dir)
        kms = kms_signing.measure(stack, args.python, code_dir, args.cold_runs, args.calls)
    section = list(kms_signing.report(kms))
    target = args.out / "results.md"
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    target.write_text(replace_section(existing, kms_signing.SECTION, section), encoding="utf-8")
    if not args.quick and args.out.resolve() == HERE:
        update_readme(kms_signing.per_proof_ms(kms))
    print("\n".join(section))
    return 0


def scale(args: argparse.Namespace) -> None:
    """The scale model's table: into docs/scale.md on a full run, beside the quick results
    otherwise (the rest of the page copied from docs/scale.md)."""
    committed = not args.quick and args.out.resolve() == HERE
    target = SCALE_DOC if committed else args.out / "scale.md"
    print(f"scale model -> {target}", file=sys.stderr, flush=True)
    scale_model.write_markdown(target, source=SCALE_DOC)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--python", required=True, help="python3.13 with boto3 and requests")
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "okta-bridge.zip")
    parser.add_argument("--cold-runs", type=int, default=9, help="cold runs each (default 9)")
    parser.add_argument("--calls", type=int, default=300, help="warm calls each (default 300)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--only",
        choices=["kms"],
        help="kms: only the KMS signing part, replacing its section of results.md",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (make bench QUICK=1): every implementation once cold and "
        f"{QUICK_CALLS} times warm, in both variants; its figures prove it runs, not how fast",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.cold_runs, args.calls = 1, QUICK_CALLS
        if args.out.resolve() == HERE:
            parser.error("--quick must not overwrite the committed results: give --out")
    elif args.cold_runs < 7 or args.calls < 200:
        parser.error("the issue asks for at least 7 cold runs and 200 warm calls")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "kms":
        return only_kms(args)
    scale(args)
    version = subprocess.run(  # noqa: S603 - fixed arguments
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    results: dict[str, dict[str, Measured]] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalStack() as stack:
        code_dir = Path(tmp) / "bridge"
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(code_dir)
        bench = Bench(stack, args.python, code_dir)
        try:
            for variant, latency in VARIANTS:
                stack.okta.added_latency = latency
                stack.api.added_latency = latency
                measured = {impl.name: Measured() for impl in bench.impls}
                for impl in bench.impls:
                    if impl.prime:
                        bench.child(impl, 1)
                # Rounds interleave the implementations, so a busy moment of the machine hits
                # all of them alike rather than one.
                for round_number in range(args.cold_runs):
                    print(f"{variant}: cold round {round_number + 1}", file=sys.stderr, flush=True)
                    for impl in bench.impls:
                        bench.cold(impl, measured[impl.name])
                for impl in bench.impls:
                    print(f"{variant}: warm {impl.name}", file=sys.stderr, flush=True)
                    bench.warm(impl, measured[impl.name], args.calls)
                results[variant] = measured
            stack.okta.added_latency = stack.api.added_latency = 0.0
            print("large answers", file=sys.stderr, flush=True)
            large = large_answers.measure(stack, args.python, code_dir)
            print("kms signing", file=sys.stderr, flush=True)
            kms = kms_signing.measure(stack, args.python, code_dir, args.cold_runs, args.calls)
        finally:
            bench.extension.stop()
    print(write_results(args, results, version, large, kms))
    return 0


def write_results(
    args: argparse.Namespace,
    results: dict[str, dict[str, Measured]],
    version: str,
    large: list[large_answers.Case],
    kms: dict[str, Any],
) -> str:
    """results.md and results.png under ``--out`` (and a full run's KMS figure in the README)."""
    sizes = {"naive": naive_zip_size(args.python), "bridge": args.zip.stat().st_size}
    lines = [
        *report(results, sizes, version, quick=args.quick),
        "",
        *large_answers.report(large),
        "",
        *kms_signing.report(kms),
    ]
    text = "\n".join(lines) + "\n"
    (args.out / "results.md").write_text(text, encoding="utf-8")
    chart(results, args.out / "results.png")
    if not args.quick and args.out.resolve() == HERE:
        update_readme(kms_signing.per_proof_ms(kms))
    return text


if __name__ == "__main__":
    sys.exit(main())

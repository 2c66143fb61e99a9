"""KMS signing (issue 16): what a client assertion signed by ``kms:Sign`` costs next to one signed
with the PEM key in the secret, and what a DPoP proof signed in KMS would cost.

Three measurements on the local stack (moto's KMS and the local Okta over TLS on 127.0.0.1), the
bridge from the packaged zip on python3.13:

1. Cold start (import + first invocation, ``child.py``) of the bridge for each secret kind
   (``jwt-rs256`` PEM vs ``kms-rs256``, ``jwt-es256`` vs ``kms-es256``) in interleaved rounds, and
   the ``kms:Sign`` calls and token requests the first invocation made.
2. One token request (``TokenEndpoint.request``, no cache) for each kind, timed in one child
   process after a warm-up request: the KMS - PEM difference is the latency ``kms:Sign`` adds to a
   token request on loopback.
3. One DPoP proof (``Dpop.proof``) signed by the environment's in-memory key vs the same proof
   signed by ``kms:Sign`` with the ``kms-es256`` key, the design the bridge does not take; and the
   signature alone (``ProofKey.sign`` vs ``KmsSigner.sign``).

This file is also that child (``--child CALLS``): it then imports only the packaged bridge.
``make bench`` adds the section to ``benchmarks/results.md``; run it alone with ``python
benchmarks/kms_signing.py --python .venv-313/bin/python --zip build/bench/okta-bridge.zip``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from children import run_child

if TYPE_CHECKING:
    from okta_bridge_dev.emulators.stack import LocalStack

HERE = Path(__file__).resolve().parent
SECTION = "## KMS signing (issue 16)"
PAIRS = (("RS256", "jwt-rs256", "kms-rs256"), ("ES256", "jwt-es256", "kms-es256"))
KINDS = tuple(kind for _, pem, kms in PAIRS for kind in (pem, kms))
PROOF_KIND = "kms-es256"
KEY_NAMES = {
    "jwt-rs256": "RSA 2048 PEM in the secret",
    "kms-rs256": "KMS RSA_2048 key",
    "jwt-es256": "EC P-256 PEM in the secret",
    "kms-es256": "KMS ECC_NIST_P256 key",
}
SECRETS_VARIABLE = "BENCH_KMS_SECRETS"  # kind -> secret name, for the child
PROOF_JWK_VARIABLE = "BENCH_KMS_PROOF_JWK"  # the kms-es256 key's public JWK, for the child
PROOF_URL_VARIABLE = "BENCH_KMS_PROOF_URL"
# What is timed each way for DPoP, in memory and by kms:Sign: its label in the report.
PROOF_PARTS = {
    "proof": "one whole proof (`Dpop.proof`)",
    "signature": "the signature alone (`ProofKey.sign` / `KmsSigner.sign`)",
}


@dataclass
class Cold:
    """The cold runs of one kind: import and first-call times and what that call asked for."""

    import_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    signs: set[int] = field(default_factory=set)
    tokens: set[int] = field(default_factory=set)

    @property
    def total_ms(self) -> float:
        """Median of import + first call."""
        return statistics.median(i + f for i, f in zip(self.import_ms, self.first_ms, strict=True))


def quantile(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank, as run.py's warm figures (0.5 = p50)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the parent: the stack's side -------------------------------------------------------------


def environment(stack: LocalStack, code_dir: Path, secret_id: str) -> dict[str, str]:
    """The bridge's variables for one secret, pointed at the stack's KMS, as run.py's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
    env.update(stack.environment(secret_id))
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "okta-bridge-bench",
            "PYTHONPATH": str(code_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def counts(stack: LocalStack) -> tuple[int, int]:
    """kms:Sign calls and token requests so far."""
    return stack.kms.counts["Sign"], stack.okta.counts["token"]


def cold_run(python: str, env: dict[str, str], kind: str, stack: LocalStack, cold: Cold) -> None:
    """One fresh process, one invocation."""
    before = counts(stack)
    report, tail = run_child(python, HERE / "child.py", ["okta_bridge.handler", "1"], env, kind)
    if report["statuses"] != [200]:
        raise RuntimeError(f"{kind} answered {report['statuses']}:\n{tail}")
    after = counts(stack)
    cold.import_ms.append(report["import_ms"])
    cold.first_ms.append(report["call_ms"][0])
    cold.signs.add(after[0] - before[0])
    cold.tokens.add(after[1] - before[1])


def proof_jwk(stack: LocalStack, key_id: str) -> dict[str, str]:
    """The public JWK a proof signed by the KMS key would carry (DPoP's members only)."""
    from okta_bridge.auth.jwk import public_jwk  # noqa: PLC0415 - the parent's venv

    jwk = public_jwk(stack.kms.public_key_der(key_id))
    return {name: jwk[name] for name in ("kty", "crv", "x", "y")}


def measure(
    stack: LocalStack, python: str, code_dir: Path, cold_runs: int, calls: int
) -> dict[str, Any]:
    """Cold starts, token requests and DPoP proofs; raises RuntimeError if the bridge made other
    than one kms:Sign per KMS token request, or any for a PEM one."""
    secret_ids = {kind: stack.store_secret(kind, f"bench/okta_api_creds-{kind}") for kind in KINDS}
    envs = {kind: environment(stack, code_dir, secret_ids[kind]) for kind in KINDS}
    cold = {kind: Cold() for kind in KINDS}
    # Rounds interleave the kinds, so a busy moment of the machine hits all of them alike.
    for round_number in range(cold_runs):
        print(f"kms signing: cold round {round_number + 1}", file=sys.stderr, flush=True)
        for kind in KINDS:
            cold_run(python, envs[kind], kind, stack, cold[kind])
    for kind, c in cold.items():
        wanted = {1 if kind.startswith("kms") else 0}
        if c.signs != wanted or c.tokens != {1}:
            raise RuntimeError(f"{kind}: first calls made {c.signs} kms:Sign, {c.tokens} tokens")

    print("kms signing: token requests and DPoP proofs", file=sys.stderr, flush=True)
    key_id = stack.secret_value(PROOF_KIND)["kms_key_id"]
    env = {
        **envs[PROOF_KIND],
        SECRETS_VARIABLE: json.dumps(secret_ids),
        PROOF_JWK_VARIABLE: json.dumps(proof_jwk(stack, key_id)),
        PROOF_URL_VARIABLE: stack.secret_value(PROOF_KIND)["api_endpoint"],
    }
    before = counts(stack)
    timed, _ = run_child(python, Path(__file__), ["--child", str(calls)], env, "kms signing")
    signs, tokens = (a - b for a, b in zip(counts(stack), before, strict=True))
    # Each round (the first a warm-up): one request per kind, then each DPoP part both ways.
    rounds = calls + 1
    kms_kinds = sum(kind.startswith("kms") for kind in KINDS)
    if signs != rounds * (kms_kinds + len(PROOF_PARTS)) or tokens != rounds * len(KINDS):
        raise RuntimeError(f"the timed child made {signs} kms:Sign and {tokens} token requests")
    return {
        "python": timed["python"],
        "cold_runs": cold_runs,
        "calls": calls,
        "cold": cold,
        "token_ms": timed["token_ms"],
        "proof_ms": timed["proof_ms"],
        "signs_per_kms_token": (signs - rounds * len(PROOF_PARTS)) / (rounds * kms_kinds),
    }


def report(measured: dict[str, Any]) -> Iterator[str]:
    """The markdown section."""
    cold: dict[str, Cold] = measured["cold"]
    token_ms: dict[str, list[float]] = measured["token_ms"]
    proof_ms: dict[str, list[float]] = measured["proof_ms"]
    yield SECTION
    yield ""
    yield (
        f"Secrets naming `kms_key_id` against secrets holding the PEM key, python "
        f"{measured['python']} from the packaged zip, moto's KMS and the local Okta over TLS on "
        f"127.0.0.1. Cold start: median of {measured['cold_runs']} fresh processes per kind "
        "(interleaved rounds), import + first invocation, which reads the secret, gets a token "
        "and calls the API."
    )
    yield ""
    yield (
        "| secret | key | cold ms (import + first call) | cold x PEM | "
        "first call: kms:Sign / token requests |"
    )
    yield "|---|---|---:|---:|---|"
    for _, pem, kms in PAIRS:
        for kind in (pem, kms):
            c = cold[kind]
            parts = statistics.median(c.import_ms), statistics.median(c.first_ms)
            yield (
                f"| {kind} | {KEY_NAMES[kind]} | {c.total_ms:.0f} ({parts[0]:.0f} + "
                f"{parts[1]:.0f}) | {c.total_ms / cold[pem].total_ms:.2f}x | "
                f"{'/'.join(str(n) for n in (*c.signs, *c.tokens))} |"
            )
    yield ""
    yield (
        f"One token request (`TokenEndpoint.request`, a new assertion each, no cache), "
        f"{measured['calls']} per kind in one process after a warm-up request, kinds "
        f"interleaved; {measured['signs_per_kms_token']:g} kms:Sign per KMS token request."
    )
    yield ""
    yield "| secret | token request p50 ms | p95 | added by KMS, p50 ms | added by KMS, p95 ms |"
    yield "|---|---:|---:|---:|---:|"
    added: dict[str, float] = {}
    for algorithm, pem, kms in PAIRS:
        for kind in (pem, kms):
            p50, p95 = quantile(token_ms[kind], 0.5), quantile(token_ms[kind], 0.95)
            if kind == pem:
                yield f"| {kind} | {p50:.2f} | {p95:.2f} | | |"
                continue
            added[algorithm] = p50 - quantile(token_ms[pem], 0.5)
            extra95 = p95 - quantile(token_ms[pem], 0.95)
            yield f"| {kind} | {p50:.2f} | {p95:.2f} | {added[algorithm]:+.2f} | {extra95:+.2f} |"
    yield ""
    yield (
        "Added latency per token request (p50, KMS - PEM, loopback): "
        + ", ".join(f"**{ms:+.2f} ms** ({alg})" for alg, ms in added.items())
        + ". In AWS, each token request also waits for one in-region network round trip to KMS "
        "on top of this figure; that round trip is not measured here. Warm invocations with a "
        "cached token make no token request and so no kms:Sign."
    )
    yield ""
    yield (
        "The alternative not taken, DPoP proofs signed in KMS (ES256, `ECDSA_SHA_256` on the "
        "kms-es256 key) instead of by the environment's ephemeral in-memory P-256 key: "
        f"{measured['calls']} of each in the same process, alternating."
    )
    yield ""
    yield (
        "| DPoP, ES256 | in memory p50 ms | p95 | kms:Sign p50 ms (loopback) | p95 | "
        "kms:Sign x in memory (p50) |"
    )
    yield "|---|---:|---:|---:|---:|---:|"
    for part, label in PROOF_PARTS.items():
        memory, kms_signed = proof_ms[f"{part}, in memory"], proof_ms[f"{part}, kms:Sign"]
        base, p50 = quantile(memory, 0.5), quantile(kms_signed, 0.5)
        yield (
            f"| {label} | {base:.3f} | {quantile(memory, 0.95):.3f} | {p50:.3f} | "
            f"{quantile(kms_signed, 0.95):.3f} | {p50 / base:.0f}x |"
        )
    yield ""
    yield (
        "A proof is signed for every API request (every attempt, retry and redirect hop), so KMS "
        f"would add ~{per_proof_ms(measured):.2f} ms on loopback, plus an in-region round trip "
        "in AWS, to every warm call."
    )


def per_proof_ms(measured: dict[str, Any]) -> float:
    """The p50 of one DPoP proof signed by kms:Sign (README's KMS-BENCH figure)."""
    return quantile(measured["proof_ms"]["proof, kms:Sign"], 0.5)


# -- the child: the bridge's side -------------------------------------------------------------


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def child(calls: int) -> dict[str, Any]:
    """Token requests per kind and DPoP proofs both ways, the first round a warm-up (imports,
    connections, the proof key)."""
    from okta_bridge.auth.dpop import Dpop  # noqa: PLC0415 - the packaged bridge, in the child
    from okta_bridge.auth.endpoint import TokenEndpoint  # noqa: PLC0415
    from okta_bridge.auth.kms_signing import KmsSigner  # noqa: PLC0415
    from okta_bridge.config import Settings  # noqa: PLC0415
    from okta_bridge.secret.credentials import parse_secret  # noqa: PLC0415
    from okta_bridge.secret.sources import SignedHttpSource  # noqa: PLC0415
    from okta_bridge.transport.client import HttpClient  # noqa: PLC0415
    from okta_bridge.transport.deadline import Deadline  # noqa: PLC0415

    settings = Settings.from_env()
    http = HttpClient(settings)
    source = SignedHttpSource(settings, http)
    secret_ids: dict[str, str] = json.loads(os.environ[SECRETS_VARIABLE])
    credentials = {k: parse_secret(source.fetch(v).text, settings) for k, v in secret_ids.items()}
    endpoint = TokenEndpoint(http, dpop_mode=settings.dpop)
    signer = KmsSigner(settings, http)
    key_id = credentials[PROOF_KIND].kms_key_id or ""
    jwk: dict[str, str] = json.loads(os.environ[PROOF_JWK_VARIABLE])

    class KmsProofKey:
        """A proof key whose private half stays in KMS: what ``Dpop.proof`` would sign with."""

        def __init__(self) -> None:
            self.jwk = jwk

        def sign(self, signing_input: bytes) -> bytes:
            return signer.sign(key_id, signing_input, "ES256", Deadline(10))

    dpop, kms_key, url = Dpop(), KmsProofKey(), os.environ[PROOF_URL_VARIABLE]
    token_ms: dict[str, list[float]] = {kind: [] for kind in credentials}
    proof_ms: dict[str, list[float]] = {
        f"{part}, {way}": [] for part in PROOF_PARTS for way in ("in memory", "kms:Sign")
    }
    signing_input = b"eyJhbGciOiJFUzI1NiJ9.eyJodG0iOiJHRVQifQ"  # a proof's size does not matter
    for _ in range(calls + 1):
        for kind, creds in credentials.items():
            token_ms[kind].append(_timed(lambda c=creds: endpoint.request(c, Deadline(10))))
        proof_ms["proof, in memory"].append(_timed(lambda: dpop.proof("GET", url)))
        proof_ms["proof, kms:Sign"].append(_timed(lambda: dpop.proof("GET", url, key=kms_key)))  # type: ignore[arg-type]
        proof_ms["signature, in memory"].append(_timed(lambda: dpop.key.sign(signing_input)))
        proof_ms["signature, kms:Sign"].append(_timed(lambda: kms_key.sign(signing_input)))
    return {
        "python": sys.version.split()[0],
        "token_ms": {kind: values[1:] for kind, values in token_ms.items()},
        "proof_ms": {name: values[1:] for name, values in proof_ms.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", help="python3.13 of the bench venv")
    parser.add_argument("--zip", type=Path, help="the packaged bridge")
    parser.add_argument("--cold-runs", type=int, default=9)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--child", type=int, metavar="CALLS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        out = sys.stdout
        sys.stdout = sys.stderr  # the bridge's logs and metrics go to stdout
        print(json.dumps(child(args.child)), file=out, flush=True)
        return 0
    if not args.python or not args.zip:
        parser.error("--python and --zip are required")
    from okta_bridge_dev.emulators.stack import LocalStack  # noqa: PLC0415 - not in the child

    with tempfile.TemporaryDirectory() as tmp, LocalStack() as stack:
        code_dir = Path(tmp) / "bridge"
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(code_dir)
        measured = measure(stack, args.python, code_dir, args.cold_runs, args.calls)
    print("\n".join(report(measured)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

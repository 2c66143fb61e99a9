"""The fault matrix: each case injects one fault, invokes the handler, checks and records the row.

The last test renders the recorded rows and compares them with ``docs/reliability.md`` (or writes
the file when ``OKTA_BRIDGE_WRITE_RELIABILITY=1``); it only does so when every case ran.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from okta_bridge.config import Settings
from okta_bridge_dev.emulators.stack import LocalStack
from tests.faults.cases import CASES, FaultCase
from tests.faults.conftest import DEFAULT_REMAINING_MS, FaultKit, Matrix, Outcome
from tests.support.reliability import WRITE_VARIABLE, Row, difference, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
MAX_RETRIES = Settings(secret_id="x").max_retries  # BRIDGE_MAX_RETRIES's default
PER_CALL_RECOVERY = 1  # one token refresh after a 401, one token retry after invalid_client
# After invalid_client: one re-read of AWSCURRENT and, if unchanged, one read of AWSPENDING.
SECRET_RECOVERY = 2


def retries_on(hop: str, outcome: Outcome) -> int:
    """Repeated attempts on ``hop``: backoff retries (one recorded wait each) plus repeated
    logical calls (the API again after a 401, Okta again after a secret re-read)."""
    if hop == "secrets":
        # The default source signs its own HTTPS requests; boto3's waits count where it is used.
        waits = len(outcome.boto_waits) + len(outcome.http_waits)
        return waits + max(0, outcome.secret_reads - 1)
    if hop == "okta":
        return len(outcome.http_waits) + max(0, outcome.token_requests - 1)
    return len(outcome.http_waits) + max(0, outcome.api_requests - 1)


def describe(case: FaultCase, outcome: Outcome) -> str:
    """What the bridge did, in words, from what was observed (and the case's checked note)."""
    steps = []
    if outcome.secret_reads > 1:
        steps.append("re-read the secret once")
    if case.hop == "okta" and outcome.token_requests > 1:
        steps.append("asked Okta again with the re-read secret")
    if case.hop == "api" and outcome.api_requests > 1:
        steps.append(
            "fetched a new token and called the API once more"
            if outcome.token_requests > 1
            else "called the API once more"
        )
    backoff = len(outcome.waits)
    if backoff:
        steps.append("retried " + {1: "once", 2: "twice"}.get(backoff, f"{backoff} times"))
    served = outcome.error is None and 200 <= outcome.status < 300
    if steps:
        text = ", ".join(steps)
        text = f"{text[0].upper()}{text[1:]}, then {'served' if served else 'failed'}."
    else:
        text = "Served." if served else "Failed at once, no retry."
    if case.bug is not None:
        return f"{case.bug_effect} {text}"
    return f"{text} {case.note}".strip()


def leaked(stack: LocalStack, *texts: str) -> list[str]:
    """The pieces of secret material found in ``texts`` (shortened, for the failure message)."""
    found = []
    for value in stack.all_secret_material():
        if any(value in text for text in texts):
            found.append(f"{value[:12]}... ({len(value)} chars)")
    return found


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=(
                [pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.bug)]
                if case.bug
                else []
            ),
        )
        for case in CASES
    ],
)
def test_fault(
    case: FaultCase, kit: FaultKit, matrix: Matrix, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.case_id = case.id
    harness = case.setup(kit)
    outcome = harness.invoke(case.event, remaining_ms=case.remaining_ms)
    captured = capsys.readouterr()
    error = outcome.error
    retries = retries_on(case.hop, outcome)
    matrix.rows[case.id] = Row(
        case_id=case.id,
        hop=case.hop,
        fault=case.fault,
        behaviour=describe(case, outcome),
        status=outcome.status,
        code=error["code"] if error else None,
        stage=error["stage"] if error else None,
        retries=retries,
        waits=tuple(outcome.waits),
        wall=outcome.wall,
        known_bug=case.bug,
    )

    # The right answer, code and stage.
    assert outcome.status == case.status, outcome.answer
    if case.recovers:
        assert error is None, outcome.answer
        assert outcome.body["source"] == "sample-internal-api"
    else:
        assert error is not None, outcome.answer
        assert (error["code"], error["stage"]) == (case.code, case.stage)
        assert error["request_id"].startswith("req-")
    # The answer inside the time the Lambda context gave.
    assert outcome.seconds < case.remaining_ms / 1000, (
        f"answered after {outcome.seconds:.2f} s (wall {outcome.wall:.2f} s + waits "
        f"{outcome.waits}); the Lambda context gave {case.remaining_ms / 1000:g} s"
    )
    # Retries only where expected, bounded per call.
    assert retries == case.retries, (
        f"{retries} retries, expected {case.retries} (waits: Secrets Manager "
        f"{outcome.boto_waits}, HTTP {outcome.http_waits})"
    )
    assert len(outcome.boto_waits) <= MAX_RETRIES * max(outcome.secret_reads, 1)
    calls = outcome.token_requests + outcome.api_requests
    assert len(outcome.http_waits) <= MAX_RETRIES * max(calls, 1)
    assert outcome.secret_reads <= 1 + SECRET_RECOVERY
    assert outcome.token_requests <= 1 + PER_CALL_RECOVERY
    assert outcome.api_requests <= 1 + PER_CALL_RECOVERY
    # What the hop's server saw agrees: one request per logical call and per retry.
    expected_calls = case.calls
    if expected_calls is None:
        expected_calls = {
            "secrets": outcome.secret_reads + len(outcome.boto_waits) + len(outcome.http_waits),
            "okta": outcome.token_requests + len(outcome.http_waits),
            "api": outcome.api_requests + len(outcome.http_waits),
        }[case.hop]
    assert outcome.server_calls[case.hop] == expected_calls, outcome.server_calls
    # No secret material in the logs or the answer.
    answer_text = json.dumps(outcome.answer)
    assert not leaked(kit.stack, captured.out, captured.err, answer_text)
    if case.check is not None:
        case.check(kit, outcome)
    matrix.verified.add(case.id)


def test_published_table_is_current(matrix: Matrix) -> None:
    """docs/reliability.md is exactly what this run observed (only checked after a full run)."""
    missing = [c.id for c in CASES if c.id not in matrix.rows]
    unverified = [c.id for c in CASES if c.bug is None and c.id not in matrix.verified]
    if missing or unverified:
        pytest.skip(
            f"not every fault case ran and passed (missing {missing[:3]}, failed "
            f"{unverified[:3]}); the table is only compared after a full, green run"
        )
    text = render(
        [matrix.rows[c.id] for c in CASES],
        max_retries=MAX_RETRIES,
        default_remaining_ms=DEFAULT_REMAINING_MS,
    )
    if os.environ.get(WRITE_VARIABLE) == "1":
        DOC.write_text(text, encoding="utf-8")
        return
    diff = difference(DOC, text)
    assert diff is None, (
        f"{DOC.relative_to(DOC.parents[1])} does not match what the bridge did in this run. "
        f"If the change is intended, regenerate it with\n    {WRITE_VARIABLE}=1 "
        f".venv/bin/pytest tests/faults\nand commit it.\n{diff}"
    )

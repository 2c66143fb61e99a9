"""Many threads invoking one execution environment at once (a handler that fans out).

THREADS x PER_THREAD invocations of one bridge, every thread released by one barrier, mixing the
default endpoint, allowed paths and an API Gateway event. Each burst runs once per module and its
observations are checked by several tests, so a failure of one property does not hide the others.
One of them guards a fixed bug: the transport re-armed the timeout of a socket urllib3 had already
returned to the pool, so a complete answer was taken for a network error and the GET sent again.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import make_harness
from tests.load.conftest import ALLOWED_PATHS, TOKEN_PATH, answered_request_id, invoke

pytestmark = pytest.mark.integration

THREADS = 16
PER_THREAD = 25
INVOCATIONS = THREADS * PER_THREAD
JOIN_SECONDS = 60.0
EVENTS: list[Any] = [
    {},
    {"path": "/v1/items", "query": {"page": "2"}},
    {"path": "/v1/items/7"},
    json.loads((Path(__file__).resolve().parents[2] / "events" / "apigw-http-v2.json").read_text()),
]


@dataclass
class Burst:
    """What one burst produced, snapshotted when the last thread finished."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    raised: list[str] = field(default_factory=list)
    seconds: float = 0.0
    secret_reads: int = 0
    token_requests: int = 0
    api_requests: int = 0
    sent_request_ids: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    bridge_counters: tuple[int, int] = (0, 0)


def run_burst(stack: LocalStack, *, warm: bool) -> Burst:
    harness = make_harness(stack, allowed_paths=ALLOWED_PATHS)
    prefix = "warm" if warm else "cold"
    if warm:
        assert invoke(harness.bridge, {}, "warm-up")["statusCode"] == 200
    else:
        # Nothing is cached when the barrier opens. Hold the token answer a moment so the other
        # threads pile up behind the one request in progress; the counts asserted do not depend
        # on how many did.
        assert (stack.secrets_manager.counts["GetSecretValue"], stack.okta.counts["token"]) == (
            0,
            0,
        )
        stack.okta.inject(Fault(match=TOKEN_PATH, delay=0.3))
    api_before = len(stack.api.requests)
    result = Burst()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS + 1)

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_SECONDS)
            for call in range(PER_THREAD):
                request_id = f"{prefix}-t{index:02d}-{call:03d}"
                answer = invoke(harness.bridge, EVENTS[(index + call) % len(EVENTS)], request_id)
                with lock:
                    result.answers[request_id] = answer
        except BaseException as exc:  # noqa: BLE001 - reported by the tests, not by the thread
            with lock:
                result.raised.append(repr(exc))

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"load-{i}", daemon=True)
        for i in range(THREADS)
    ]
    try:
        for thread in threads:
            thread.start()
        barrier.wait(timeout=JOIN_SECONDS)
        started = time.monotonic()
        for thread in threads:
            thread.join(max(0.0, started + JOIN_SECONDS - time.monotonic()))
        result.seconds = time.monotonic() - started
        assert not [t.name for t in threads if t.is_alive()], "workers still running"
    finally:
        stack.clear_faults()
        handler.set_bridge(None)
    result.secret_reads = stack.secrets_manager.counts["GetSecretValue"]
    result.token_requests = stack.okta.counts["token"]
    result.api_requests = sum(stack.api.counts.values()) - (1 if warm else 0)
    result.sent_request_ids = [
        r.headers.get("x-request-id", "") for r in stack.api.requests[api_before:]
    ]
    result.server_errors = [repr(e) for e in (*stack.api.errors, *stack.okta.errors)]
    result.bridge_counters = (harness.bridge.secrets.reads, harness.bridge.tokens.requests)
    print(f"{prefix}: {THREADS} threads x {PER_THREAD} invocations in {result.seconds:.2f} s")
    return result


@pytest.fixture(scope="module")
def warm_burst(stack: LocalStack) -> Burst:
    return run_burst(stack, warm=True)


@pytest.fixture(scope="module")
def cold_burst(stack: LocalStack) -> Burst:
    return run_burst(stack, warm=False)


def check_every_invocation_answered(result: Burst) -> None:
    assert result.raised == []
    assert len(result.answers) == INVOCATIONS
    failed = {
        rid: (answer.get("statusCode"), answer.get("body"))
        for rid, answer in result.answers.items()
        if answer.get("statusCode") != 200
    }
    assert failed == {}
    # Every answer carries its own invocation's request id: no state leaks between threads.
    assert all(answered_request_id(a) == rid for rid, a in result.answers.items())
    assert result.server_errors == []


def check_one_api_request_per_invocation(result: Burst) -> None:
    assert result.api_requests == INVOCATIONS
    assert sorted(result.sent_request_ids) == sorted(result.answers)


def test_warm_burst_answers_every_invocation(warm_burst: Burst) -> None:
    check_every_invocation_answered(warm_burst)


def test_warm_burst_reads_nothing_new(warm_burst: Burst) -> None:
    # The totals include the warm-up invocation: one secret read and one token, ever.
    assert (warm_burst.secret_reads, warm_burst.token_requests) == (1, 1)
    assert warm_burst.bridge_counters == (1, 1)


def test_warm_burst_sends_one_api_request_per_invocation(warm_burst: Burst) -> None:
    check_one_api_request_per_invocation(warm_burst)


def test_cold_burst_answers_every_invocation(cold_burst: Burst) -> None:
    check_every_invocation_answered(cold_burst)


def test_cold_burst_reads_the_secret_once_and_requests_one_token(cold_burst: Burst) -> None:
    assert (cold_burst.secret_reads, cold_burst.token_requests) == (1, 1)
    assert cold_burst.bridge_counters == (1, 1)


def test_cold_burst_sends_one_api_request_per_invocation(cold_burst: Burst) -> None:
    check_one_api_request_per_invocation(cold_burst)

"""Tokens near expiry: environments refresh at jittered moments rather than all at once.

ENVIRONMENTS bridges share one fake clock, each with its own jitter seed (as each real execution
environment has its own random state). All get a token at t0 from the local Okta; the clock then
moves through the last ten minutes of the token's life in STEP-second steps, every environment
being invoked once per step, and the step at which each one requests its new token is recorded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from okta_bridge.auth.access_token import EXPIRY_SAFETY
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import FakeClock
from tests.load.conftest import invoke, seeded_environment

pytestmark = pytest.mark.integration

ENVIRONMENTS = 20
LIFETIME = 3600
STEP = 10
WATCHED = 600  # the last ten minutes of the token's life
EVENTS = [{}, {"path": "/v1/items", "query": {"page": "2"}}]


@dataclass
class Refreshes:
    """Seconds after t0 of each environment's token requests after the first, and the counts."""

    moments: list[list[int]]
    token_requests: int
    secret_reads: int
    api_requests: int
    invocations: int
    failures: list[str]


def simulate(stack: LocalStack) -> Refreshes:
    clock = FakeClock()
    stack.okta.token_lifetime = LIFETIME
    bridges = [seeded_environment(stack, clock, seed) for seed in range(ENVIRONMENTS)]
    stack.reset_counts()
    failures: list[str] = []
    moments: list[list[int]] = [[] for _ in bridges]
    invocations = 0

    def invoke_all(offset: int) -> None:
        nonlocal invocations
        clock.now = t0 + offset
        for index, bridge in enumerate(bridges):
            before = stack.okta.counts["token"]
            answer = invoke(bridge, EVENTS[index % len(EVENTS)], f"env{index:02d}-{offset:04d}")
            invocations += 1
            if answer["statusCode"] != 200:
                failures.append(f"env {index} at t0+{offset}: {answer}")
            if stack.okta.counts["token"] != before and offset > 0:
                moments[index].extend([offset] * (stack.okta.counts["token"] - before))

    t0 = clock.now
    invoke_all(0)
    assert stack.okta.counts["token"] == ENVIRONMENTS  # every environment got its token at t0
    for offset in range(LIFETIME - WATCHED - STEP, LIFETIME + 1, STEP):
        invoke_all(offset)
    return Refreshes(
        moments=moments,
        token_requests=stack.okta.counts["token"],
        secret_reads=stack.secrets_manager.counts["GetSecretValue"],
        api_requests=sum(stack.api.counts.values()),
        invocations=invocations,
        failures=failures,
    )


@pytest.fixture(scope="module")
def refreshes(stack: LocalStack) -> Refreshes:
    result = simulate(stack)
    steps = sorted(Counter(m for ms in result.moments for m in ms).items())
    print(f"refresh moments (s after t0: environments): {steps}")
    return result


def test_every_environment_refreshes_once_before_expiry(refreshes: Refreshes) -> None:
    assert refreshes.failures == []
    assert [len(m) for m in refreshes.moments] == [1] * ENVIRONMENTS
    assert all(m[0] < LIFETIME - EXPIRY_SAFETY for m in refreshes.moments)
    # Nothing refreshed before the watched window (the invocation at its first step, 10 s
    # before it, would have sent any token request due earlier).
    assert all(m[0] >= LIFETIME - WATCHED for m in refreshes.moments)
    assert refreshes.token_requests == 2 * ENVIRONMENTS
    # The secret is older than its TTL (900 s) at refresh time: each environment re-reads it once.
    assert refreshes.secret_reads == 2 * ENVIRONMENTS
    assert refreshes.api_requests == refreshes.invocations


def test_refresh_moments_are_spread_out(refreshes: Refreshes) -> None:
    per_step = Counter(m[0] for m in refreshes.moments if m)
    assert len(per_step) >= ENVIRONMENTS // 2
    assert max(per_step.values()) <= ENVIRONMENTS // 4


def test_refresh_moments_fall_in_the_documented_window(refreshes: Refreshes) -> None:
    # A refresh seen at step T was due in (T - STEP, T]: a due moment at or after the earliest
    # documented one is always seen at or after it.
    earliest = LIFETIME - min(LIFETIME / 10, 300)
    assert [m[0] for m in refreshes.moments if m[0] < earliest] == []

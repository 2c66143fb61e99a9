"""Issue 7's regression guard, in counts rather than times: what a warm and a cold invocation cost
upstream, and that an RSA key is parsed once however often the token is refreshed."""

from __future__ import annotations

import pytest

from okta_bridge.auth.client_auth import KEYS
from okta_bridge_dev.emulators.stack import CLIENT_IDS, KINDS, LocalStack
from tests.integration.conftest import FakeClock, make_harness


def upstream(stack: LocalStack) -> tuple[int, int, int]:
    """Secrets Manager reads, token requests, API requests since the last reset."""
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        sum(stack.api.counts.values()),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_cold_call_makes_at_most_three_upstream_requests_and_a_warm_one_exactly_one(
    stack: LocalStack, kind: str
) -> None:
    harness = make_harness(stack, kind)
    stack.reset_counts()
    assert harness.invoke({})["statusCode"] == 200
    assert upstream(stack) == (1, 1, 1)
    for _ in range(5):
        stack.reset_counts()
        assert harness.invoke({"path": "/v1/data"})["statusCode"] == 200
        assert upstream(stack) == (0, 0, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_with_dpop_a_cold_call_makes_1_2_1_and_a_warm_one_exactly_one(
    stack: LocalStack, kind: str
) -> None:
    """Issue 12: the nonce round is the only extra request, and warm calls stay 0/0/1."""
    stack.okta.require_dpop(CLIENT_IDS[kind], on=True)
    try:
        harness = make_harness(stack, kind, dpop="on")
        stack.reset_counts()
        assert harness.invoke({})["statusCode"] == 200
        assert upstream(stack) == (1, 2, 1)
        for _ in range(5):
            stack.reset_counts()
            assert harness.invoke({"path": "/v1/data"})["statusCode"] == 200
            assert upstream(stack) == (0, 0, 1)
    finally:
        stack.okta.require_dpop(CLIENT_IDS[kind], on=False)


def test_the_rsa_key_is_parsed_once_across_many_refreshes(stack: LocalStack) -> None:
    clock = FakeClock()
    harness = make_harness(stack, "jwt-rs256", clock=clock)
    KEYS.clear()
    loads = KEYS.loads
    stack.reset_counts()
    for _ in range(10):
        assert harness.invoke({})["statusCode"] == 200
        clock.now += 3600  # every token is due: each call refreshes it
    assert stack.okta.counts["token"] == 10
    assert KEYS.loads - loads == 1

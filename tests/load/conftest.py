"""Fixtures and helpers for the concurrency and load tests (their own local stack).

The ``stack`` fixture (tests/conftest.py) gives this directory its own local stack;
``make_harness`` and ``FakeClock`` come from tests/integration/conftest.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.logs import REDACTOR, configure
from okta_bridge.request.bridge import Bridge
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture
from tests.integration.conftest import (
    FakeClock,
    make_harness,
)

stack = stack_fixture()  # this directory's own local stack

ALLOWED_PATHS = ("/v1/data", "/v1/items", "/v1/items/*")
TOKEN_PATH = "/oauth2/default/v1/token"


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    lifetime = stack.okta.token_lifetime
    stack.reset_counts()
    stack.clear_faults()
    configure("INFO")
    yield
    stack.clear_faults()
    stack.okta.token_lifetime = lifetime
    handler.set_bridge(None)


class Context:
    """Lambda's context with a request id chosen by the test (unique across threads)."""

    def __init__(self, request_id: str, remaining_ms: int = 20_000) -> None:
        self.aws_request_id = request_id
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def invoke(bridge: Bridge, event: Any, request_id: str) -> dict[str, Any]:
    """One invocation of the real handler in the environment whose bridge is ``bridge``."""
    handler.set_bridge(bridge)
    # A private copy of the event: a handler must not depend on (or change) a shared object.
    return handler.lambda_handler(json.loads(json.dumps(event)), Context(request_id))


def answered_request_id(answer: dict[str, Any]) -> str | None:
    """The request id an answer carries: ``meta`` for direct events, a header for proxy ones."""
    if isinstance(answer.get("headers"), dict):
        return answer["headers"].get("X-Request-ID")
    meta = answer.get("meta")
    return meta.get("request_id") if isinstance(meta, dict) else None


def seeded_environment(stack: LocalStack, clock: FakeClock, seed: int) -> Bridge:
    """A bridge wired like ``make_harness`` but with its own jitter seed, as each real
    execution environment has its own random state."""
    parts = make_harness(stack, clock=clock, allowed_paths=ALLOWED_PATHS).bridge
    tokens = TokenProvider(
        parts.secrets,
        parts.http,
        clock=clock,
        rng=random.Random(seed),
        on_token=lambda value: REDACTOR.register([value]),
    )
    return Bridge(parts.settings, secrets=parts.secrets, http=parts.http, tokens=tokens)

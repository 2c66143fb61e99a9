"""Fixtures for the shared token cache: several execution environments in one process, each a
``Bridge`` of its own wired to the local stack's Okta, API, Secrets Manager, DynamoDB and KMS
over real TLS, and sharing only what Lambda's environments share: the table.

Each environment has its own monotonic clock reading and jitter seed; all of them read one wall
clock (``Clocks``), which the cache's own waits advance instead of sleeping, so that leases
expire and refresh moments pass without a test ever waiting for them.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.config import Settings
from okta_bridge.fleet.cache import SharedTokenCache
from okta_bridge.logs import REDACTOR
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.store import BotoSecretSource, SecretStore
from okta_bridge.transport.client import HttpClient
from okta_bridge_dev.emulators.stack import TOKEN_CACHE_TABLE, LocalStack
from tests.conftest import clean_stack_fixture, stack_fixture

stack = stack_fixture()  # this directory's own local stack

ALLOWED_PATHS = ("/v1/data", "/v1/items", "/v1/items/*")
_names = itertools.count()


# The cache signs its calls with the function's credentials: tests/conftest.py sets them.
_clean_stack = clean_stack_fixture()


class Clocks:
    """The wall clock every environment reads, and the monotonic one, moved together."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = 10_000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Context:
    """Lambda's context: a unique request id and the remaining time."""

    def __init__(self, remaining_ms: int = 20_000) -> None:
        self.aws_request_id = f"fleet-{next(_names):05d}"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@dataclass
class Environment:
    """One execution environment: its bridge and its cache."""

    bridge: Bridge
    cache: SharedTokenCache | None
    slept: list[float] = field(default_factory=list)

    def invoke(self, event: Any = None, remaining_ms: int = 20_000) -> dict[str, Any]:
        handler.set_bridge(self.bridge)
        answer: dict[str, Any] = handler.lambda_handler(
            json.loads(json.dumps(event or {})), Context(remaining_ms)
        )
        return answer


@dataclass
class Fleet:
    """Environments of one function (one secret), created cold one after another."""

    stack: LocalStack
    secret_id: str
    clocks: Clocks = field(default_factory=Clocks)
    seeds: Iterator[int] = field(default_factory=itertools.count)

    def environment(
        self, *, cache: bool = True, real_time: bool = False, **overrides: Any
    ) -> Environment:
        """A cold environment; ``real_time`` for one that waits for another thread's progress
        (its clocks and sleeps are the process's)."""
        env = self.stack.environment(self.secret_id, token_cache=cache)
        env["BRIDGE_ALLOWED_PATHS"] = ",".join(ALLOWED_PATHS)
        settings = Settings.from_env(env)._replace(**overrides)
        clocks = self.clocks
        seed = next(self.seeds)
        # The token's times and the cache's are read on one monotonic clock, as in Lambda.
        mono: Callable[[], float] = time.monotonic if real_time else (lambda: clocks.mono)
        http = HttpClient(settings)
        source = BotoSecretSource(
            settings, client=self.stack.secrets_manager.client(self.stack.ca.ca_pem_path)
        )
        secrets = SecretStore(
            settings,
            source,
            clock=mono,
            on_load=lambda creds: REDACTOR.pin(creds.sensitive_values()),
        )
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            clocks.advance(seconds)

        shared = None
        if settings.token_cache is not None:
            wall: Callable[[], float] = time.time if real_time else (lambda: clocks.wall)
            shared = SharedTokenCache(
                settings,
                http,
                on_token=lambda value: REDACTOR.register([value]),
                sleep=(lambda s: (slept.append(s), time.sleep(s))[0]) if real_time else sleep,
                rng=random.Random(seed),
                clock=mono,
                wall_clock=wall,
            )
        tokens = TokenProvider(
            secrets,
            http,
            clock=mono,
            rng=random.Random(seed),
            on_token=lambda value: REDACTOR.register([value]),
            budget_per_minute=settings.token_budget_per_minute,
            refresh_min_age=settings.token_refresh_min_age,
            dpop_mode=settings.dpop,
            shared=shared,
        )
        bridge = Bridge(settings, secrets=secrets, http=http, tokens=tokens)
        return Environment(bridge, shared, slept)


@pytest.fixture
def fleet(stack: LocalStack, request: pytest.FixtureRequest) -> Fleet:
    """A fleet for the stack's ``basic`` client under a secret of its own (its own item)."""
    secret_id = stack.store_secret("basic", f"fleet/{request.node.name}"[:200])
    stack.reset_counts()
    return Fleet(stack, secret_id)


def until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``condition`` held within ``seconds`` (checked every few milliseconds): a
    bounded wait for another thread's progress, never a fixed sleep."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def items(stack: LocalStack) -> list[dict[str, Any]]:
    """The cache table's items as stored."""
    return list(stack.dynamodb.items(TOKEN_CACHE_TABLE))


def emf(text: str) -> list[dict[str, Any]]:
    """The EMF documents among captured stdout lines."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found

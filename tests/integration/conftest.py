"""Fixtures for tests that drive the local stack over real TLS sockets on 127.0.0.1."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from okta_bridge import handler
from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.config import Settings
from okta_bridge.logs import REDACTOR
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.store import BotoSecretSource, SecretStore
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import clean_stack_fixture, stack_fixture

stack = stack_fixture()  # this directory's own local stack


_clean_stack = clean_stack_fixture()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """A bridge wired to the local stack, with a recording sleep and a settable clock."""

    bridge: Bridge
    sleeps: list[float] = field(default_factory=list)

    def invoke(self, event: Any, remaining_ms: int = 20_000) -> dict[str, Any]:
        handler.set_bridge(self.bridge)
        return handler.lambda_handler(event, LambdaContext(remaining_ms))


class LambdaContext:
    """The two members of Lambda's context object that the bridge reads."""

    _count = 0

    def __init__(self, remaining_ms: int = 20_000) -> None:
        LambdaContext._count += 1
        self.aws_request_id = f"req-{LambdaContext._count:05d}"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def make_harness(
    stack: LocalStack,
    kind: str = "basic",
    *,
    clock: FakeClock | None = None,
    secret_name: str | None = None,
    store: bool = True,
    **overrides: Any,
) -> Harness:
    """A bridge for one of the stack's clients; ``overrides`` replace Settings fields.

    ``store=False`` reads ``secret_name`` as it is (a rotation test's secret) instead of storing
    the stack's credentials there first.
    """
    name = stack.store_secret(kind, secret_name) if store or secret_name is None else secret_name
    stack.reset_counts()
    env = stack.environment(name)
    settings = Settings.from_env(env)._replace(**overrides)
    sleeps: list[float] = []
    http = HttpClient(
        settings,
        retry=RetryPolicy(max_retries=settings.max_retries, rng=random.Random(1)),
        sleep=sleeps.append,
    )
    source = BotoSecretSource(settings, client=stack.secrets_manager.client(stack.ca.ca_pem_path))
    secrets = SecretStore(
        settings,
        source,
        on_load=lambda creds: REDACTOR.pin(creds.sensitive_values()),
        **({"clock": clock} if clock else {}),
    )
    tokens = TokenProvider(
        secrets,
        http,
        rng=random.Random(2),
        on_token=lambda value: REDACTOR.register([value]),
        budget_per_minute=settings.token_budget_per_minute,
        refresh_min_age=settings.token_refresh_min_age,
        dpop_mode=settings.dpop,
        **({"clock": clock} if clock else {}),
    )
    bridge = Bridge(settings, secrets=secrets, http=http, tokens=tokens)
    return Harness(bridge, sleeps)

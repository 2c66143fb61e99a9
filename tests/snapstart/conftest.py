"""Fixtures for SnapStart: a stand-in for Lambda's ``snapshot_restore_py`` and a bridge whose
jitter generators and clock the test holds, wired to this directory's local stack."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.config import Settings
from okta_bridge.logs import REDACTOR
from okta_bridge.ops.snapstart import RUNTIME_HOOKS
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.sources import SignedHttpSource
from okta_bridge.secret.store import SecretStore
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import clean_stack_fixture, stack_fixture

stack = stack_fixture()  # this directory's own local stack

Registered = tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]


_clean_stack = clean_stack_fixture()


class FakeRuntimeHooks:
    """``snapshot_restore_py`` as the runtime uses it: ``register_*(func, *args, **kwargs)``;
    before-snapshot hooks run in reverse order of registration, after-restore ones in order."""

    def __init__(self) -> None:
        self.before: list[Registered] = []
        self.after: list[Registered] = []

    def register_before_snapshot(self, func: Callable[..., None], *args: Any, **kw: Any) -> None:
        self.before.append((func, args, kw))

    def register_after_restore(self, func: Callable[..., None], *args: Any, **kw: Any) -> None:
        self.after.append((func, args, kw))

    def snapshot(self) -> None:
        for func, args, kwargs in reversed(self.before):
            func(*args, **kwargs)

    def restore(self) -> None:
        for func, args, kwargs in self.after:
            func(*args, **kwargs)


@pytest.fixture
def runtime_hooks(monkeypatch: pytest.MonkeyPatch) -> FakeRuntimeHooks:
    fake = FakeRuntimeHooks()
    monkeypatch.setitem(sys.modules, RUNTIME_HOOKS, fake)
    return fake


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """A bridge as Lambda builds it (signed secret reads, redactor wiring), with handles on its
    jitter generators, clock and retry sleeps."""

    bridge: Bridge
    token_rng: random.Random
    retry_rng: random.Random
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)

    def generators(self) -> tuple[Any, Any, Any]:
        """The state of every generator a snapshot would copy."""
        return random.getstate(), self.token_rng.getstate(), self.retry_rng.getstate()

    def set_generators(self, state: tuple[Any, Any, Any]) -> None:
        """Put the generators back to ``state``: what a restored copy of a snapshot starts from."""
        random.setstate(state[0])
        self.token_rng.setstate(state[1])
        self.retry_rng.setstate(state[2])


def make_rig(stack: LocalStack, kind: str) -> Rig:
    name = stack.store_secret(kind, f"snapstart/{kind}")
    stack.reset_counts()
    settings = Settings.from_env(stack.environment(name))
    clock = FakeClock()
    sleeps: list[float] = []
    token_rng, retry_rng = random.Random(2), random.Random(1)
    http = HttpClient(
        settings,
        retry=RetryPolicy(max_retries=settings.max_retries, rng=retry_rng),
        sleep=sleeps.append,
    )
    source = SignedHttpSource(
        settings, http, credentials=lambda: (DUMMY_CREDENTIAL, DUMMY_CREDENTIAL, None)
    )
    secrets = SecretStore(
        settings,
        source,
        clock=clock,
        on_load=lambda creds: REDACTOR.pin(creds.sensitive_values()),
    )
    tokens = TokenProvider(
        secrets,
        http,
        clock=clock,
        rng=token_rng,
        on_token=lambda value: REDACTOR.register([value]),
    )
    bridge = Bridge(settings, secrets=secrets, http=http, tokens=tokens)
    return Rig(bridge, token_rng, retry_rng, clock, sleeps)

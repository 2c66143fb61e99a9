"""SnapStart hooks without a stack: registration, what the hooks drop and reseed, Init priming."""

from __future__ import annotations

import os
import random
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from okta_bridge import config
from okta_bridge.auth.client_auth import KEYS
from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.config import INITIALIZATION_TYPE, Settings
from okta_bridge.errors import ConfigError
from okta_bridge.logs import REDACTOR
from okta_bridge.ops import snapstart
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.store import SecretStore
from okta_bridge.transport.client import HttpClient, RetryPolicy


class RecordingHooks:
    """A stand-in for ``snapshot_restore_py`` that records what is registered."""

    def __init__(self) -> None:
        self.registered: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = []

    def register_before_snapshot(self, func: Callable[..., None], *args: Any) -> None:
        self.registered.append(("before", func, args))

    def register_after_restore(self, func: Callable[..., None], *args: Any) -> None:
        self.registered.append(("after", func, args))


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> RecordingHooks:
    fake = RecordingHooks()
    monkeypatch.setitem(sys.modules, snapstart.RUNTIME_HOOKS, fake)
    return fake


def no_bridge() -> Bridge | None:
    return None


def test_without_the_runtime_module_register_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, snapstart.RUNTIME_HOOKS, None)  # import raises ImportError
    assert snapstart.register(no_bridge, enabled=True) is False


def test_without_snapstart_the_runtime_module_is_not_even_imported(
    hooks: RecordingHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(INITIALIZATION_TYPE, raising=False)
    assert snapstart.register(no_bridge) is False
    monkeypatch.setenv(INITIALIZATION_TYPE, "on-demand")
    assert snapstart.register(no_bridge) is False
    assert hooks.registered == []


def test_with_snapstart_both_hooks_are_registered_with_the_bridge_getter(
    hooks: RecordingHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INITIALIZATION_TYPE, "snap-start")
    assert snapstart.register(no_bridge) is True
    assert hooks.registered == [
        ("before", snapstart.before_snapshot, (no_bridge,)),
        ("after", snapstart.after_restore, (no_bridge,)),
    ]
    snapstart.before_snapshot(no_bridge)  # no bridge built yet: nothing to drop but globals
    snapstart.after_restore(no_bridge)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("snap-start", True), (" snap-start ", True), ("on-demand", False), ("", False)],
)
def test_snapstart_is_read_from_the_initialization_type(value: str, expected: bool) -> None:
    assert config.snapstart({INITIALIZATION_TYPE: value}) is expected
    assert config.snapstart({}) is False


def test_forget_clears_the_redactor_and_the_parsed_keys() -> None:
    REDACTOR.register(["a-registered-secret-value"])
    assert REDACTOR.registered > 0
    snapstart.forget(None)
    assert REDACTOR.registered == 0
    assert len(KEYS) == 0
    assert REDACTOR.text("a-registered-secret-value") == "a-registered-secret-value"


def test_reseed_gives_random_a_new_seed() -> None:
    random.seed(7)
    state = random.getstate()
    expected = random.random()
    random.setstate(state)
    snapstart.reseed(None)
    assert random.random() != expected


def test_the_bridge_reseeds_its_token_and_retry_generators() -> None:
    retry = RetryPolicy(rng=random.Random(1))
    settings = Settings(secret_id="unit/snapstart")
    http = HttpClient(settings, retry=retry)
    token_rng = random.Random(2)
    tokens = TokenProvider(SecretStore(settings, source=_NoSource()), http, rng=token_rng)
    bridge = Bridge(settings, http=http, tokens=tokens)
    bridge.reseed()
    assert retry.rng.random() != random.Random(1).random()
    assert token_rng.random() != random.Random(2).random()


def test_uuid4_reads_os_urandom_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # The jti is uuid4: no state in the process, so a restored copy cannot repeat another's.
    monkeypatch.setattr(os, "urandom", lambda n: b"\x01" * n)
    assert uuid.uuid4() == uuid.UUID(bytes=b"\x01" * 16, version=4)
    monkeypatch.undo()
    state = random.getstate()
    first = uuid.uuid4()
    random.setstate(state)
    assert uuid.uuid4() != first


def test_prime_builds_the_bridge_and_imports_what_a_first_call_would() -> None:
    built: list[Bridge] = []

    def build() -> Bridge:
        built.append(Bridge(Settings(secret_id="unit/snapstart")))
        return built[-1]

    bridge = snapstart.prime(build)
    assert bridge is built[0]
    assert bridge.secrets.reads == 0
    assert all(name in sys.modules for name in snapstart.PRELOAD + snapstart.PRELOAD_LARGE)


def test_prime_leaves_a_configuration_error_to_the_first_invocation() -> None:
    def build() -> Bridge:
        raise ConfigError(config.SECRET_ID, "is required")

    assert snapstart.prime(build) is None


class _NoSource:
    def fetch(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("no secret is read")

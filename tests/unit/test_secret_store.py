from __future__ import annotations

import json

import pytest

from okta_bridge.config import Settings
from okta_bridge.errors import SecretError
from okta_bridge.secret.credentials import Credentials
from okta_bridge.secret.store import CURRENT, PENDING, SecretStore, SecretValue

SECRET = {
    "client_id": "0oa1",
    "client_secret": "first-secret-value",
    "token_url": "https://okta.example/oauth2/default/v1/token",
    "api_endpoint": "https://api.example/v1/data",
}


class ScriptedSource:
    """A SecretSource returning queued values or errors (the store is the unit under test)."""

    def __init__(self, *answers: object, pending: dict[str, object] | None = None) -> None:
        self.answers = list(answers)
        self.pending = pending
        self.calls = 0
        self.stages: list[str] = []

    def fetch(
        self, secret_id: str, deadline: object = None, *, stage: str = CURRENT, fresh: bool = False
    ) -> SecretValue:
        self.stages.append(stage)
        if stage == PENDING:
            if self.pending is None:
                raise SecretError("SECRET_NOT_FOUND", "no AWSPENDING version")
            return SecretValue(json.dumps(self.pending), version_id="pending")
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return SecretValue(json.dumps(answer), version_id=f"v{self.calls}")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(source: ScriptedSource, clock: Clock, ttl: float = 900) -> SecretStore:
    return SecretStore(Settings(secret_id="s", secret_ttl=ttl), source, clock=clock)


def test_current_reads_once_whatever_the_age() -> None:
    source, clock = ScriptedSource(SECRET), Clock()
    s = store(source, clock)
    first = s.current()
    clock.now += 10_000
    assert s.current() is first
    assert source.calls == 1


def test_fresh_rereads_after_the_ttl_only() -> None:
    source, clock = ScriptedSource(SECRET), Clock()
    s = store(source, clock, ttl=60)
    first = s.fresh()
    clock.now += 59
    assert s.fresh() is first
    clock.now += 1
    assert s.fresh() is not first
    assert source.calls == 2


def test_reload_skips_when_another_caller_already_replaced_the_value() -> None:
    source, clock = ScriptedSource(SECRET), Clock()
    s = store(source, clock)
    stale = s.current()
    newer = s.reload(stale)
    assert newer is not stale
    assert s.reload(stale) is newer
    assert source.calls == 2


def same_version(answer: dict[str, object]) -> ScriptedSource:
    """A source whose AWSCURRENT never changes version (no rotation has been promoted)."""
    source = ScriptedSource(answer)
    original = source.fetch

    def fetch(
        secret_id: str, deadline: object = None, *, stage: str = CURRENT, fresh: bool = False
    ) -> SecretValue:
        value = original(secret_id, deadline, stage=stage)
        return value if stage == PENDING else SecretValue(value.text, version_id="current")

    source.fetch = fetch  # type: ignore[method-assign]
    return source


def test_reload_of_an_unchanged_secret_tries_the_pending_version() -> None:
    source = same_version(SECRET)
    source.pending = {**SECRET, "client_secret": "second-secret-value"}
    s = store(source, Clock())
    stale = s.current()
    reread = s.reload(stale)
    assert reread.client_secret == "second-secret-value"
    assert reread.version_id == "pending"
    assert s.current() is reread
    assert source.stages == [CURRENT, CURRENT, PENDING]


def test_reload_without_a_pending_version_returns_the_unchanged_secret() -> None:
    source = same_version(SECRET)
    s = store(source, Clock())
    stale = s.current()
    assert s.reload(stale) == stale
    assert source.stages == [CURRENT, CURRENT, PENDING]
    assert s.reads == 3


def test_reload_of_a_changed_secret_never_reads_pending() -> None:
    source = ScriptedSource(SECRET, {**SECRET, "client_secret": "rotated-secret-value"})
    source.pending = {**SECRET, "client_secret": "never-read-value"}
    s = store(source, Clock())
    stale = s.current()
    assert s.reload(stale).client_secret == "rotated-secret-value"
    assert PENDING not in source.stages


def test_failures_are_not_cached_and_on_load_sees_each_value() -> None:
    seen: list[Credentials] = []
    source = ScriptedSource(SecretError("SECRET_THROTTLED", "throttled"), SECRET)
    s = SecretStore(Settings(secret_id="s"), source, clock=Clock(), on_load=seen.append)
    with pytest.raises(SecretError):
        s.current()
    assert s.current().client_id == "0oa1"
    assert len(seen) == 1
    assert s.reads == 2


def test_clear_forgets() -> None:
    source = ScriptedSource(SECRET)
    s = store(source, Clock())
    s.current()
    s.clear()
    s.current()
    assert source.calls == 2

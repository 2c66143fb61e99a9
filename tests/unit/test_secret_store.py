from __future__ import annotations

import json

import pytest

from okta_bridge.config import Settings
from okta_bridge.credentials import Credentials
from okta_bridge.errors import SecretError
from okta_bridge.secrets import SecretStore, SecretValue

SECRET = {
    "client_id": "0oa1",
    "client_secret": "first-secret-value",
    "token_url": "https://okta.example/oauth2/default/v1/token",
    "api_endpoint": "https://api.example/v1/data",
}


class ScriptedSource:
    """A SecretSource returning queued values or errors (the store is the unit under test)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    def fetch(self, secret_id: str, deadline: object = None) -> SecretValue:
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

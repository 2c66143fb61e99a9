"""SnapStart end to end against the local stack: the snapshot holds no secret, token, key or
connection; each restore serves at once and draws its own jitter and assertion ids."""

from __future__ import annotations

import importlib
import random
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from okta_bridge import handler
from okta_bridge.auth.client_auth import KEYS
from okta_bridge.auth.dpop import DPOP
from okta_bridge.config import INITIALIZATION_TYPE, SECRET_ID
from okta_bridge.logs import REDACTOR
from okta_bridge.ops import snapstart
from okta_bridge.request.bridge import Bridge
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.snapstart.conftest import FakeRuntimeHooks, make_rig
from tests.support.reachable import reachable_text


class Context:
    """The members of Lambda's context object that the bridge reads."""

    aws_request_id = "req-snapstart"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


def invoke(bridge: Bridge | None = None) -> dict[str, Any]:
    if bridge is not None:
        handler.set_bridge(bridge)
    return handler.lambda_handler({}, Context())


def secrets_in(bridge: Bridge, stack: LocalStack) -> list[str]:
    texts = reachable_text(bridge)
    return [m[:12] + "..." for m in stack.all_secret_material() if any(m in t for t in texts)]


def counts(stack: LocalStack) -> tuple[int, int]:
    return stack.secrets_manager.counts["GetSecretValue"], stack.okta.counts["token"]


def jtis(stack: LocalStack) -> set[str]:
    found = set()
    for request in stack.okta.requests:
        for assertion in request.form().get("client_assertion", []):
            claims = jwt.decode(assertion, options={"verify_signature": False})
            found.add(claims["jti"])
    return found


@pytest.mark.parametrize("kind", ["jwt-rs256", "password"])
def test_the_snapshot_holds_no_secret_token_key_or_connection(
    stack: LocalStack, runtime_hooks: FakeRuntimeHooks, kind: str
) -> None:
    rig = make_rig(stack, kind)
    assert snapstart.register(lambda: rig.bridge, enabled=True)
    assert len(runtime_hooks.before) == len(runtime_hooks.after) == 1
    assert invoke(rig.bridge)["statusCode"] == 200
    # What the hook must remove is there, and the search finds it.
    assert secrets_in(rig.bridge, stack)
    assert REDACTOR.registered > 0
    assert rig.bridge.http.idle_connections() > 0
    if kind.startswith("jwt"):
        assert len(KEYS) > 0

    runtime_hooks.snapshot()

    assert secrets_in(rig.bridge, stack) == []
    assert REDACTOR.registered == 0
    assert len(KEYS) == 0
    assert rig.bridge.http.idle_connections() == 0

    runtime_hooks.restore()
    stack.reset_counts()
    assert invoke(rig.bridge)["statusCode"] == 200
    assert counts(stack) == (1, 1)  # nothing cached survived: one secret read, one token
    assert REDACTOR.registered > 0  # registered again on load
    assert invoke(rig.bridge)["statusCode"] == 200
    assert counts(stack) == (1, 1)  # and cached again


def test_each_restore_draws_its_own_jitter_and_assertion_ids(
    stack: LocalStack, runtime_hooks: FakeRuntimeHooks
) -> None:
    rig = make_rig(stack, "jwt-es256")
    snapstart.register(lambda: rig.bridge, enabled=True)
    runtime_hooks.snapshot()
    snapshot = rig.generators()

    def draws() -> list[float]:
        return [random.random(), rig.token_rng.random(), rig.retry_rng.random()]

    # Two copies of one snapshot draw alike unless something reseeds them.
    rig.set_generators(snapshot)
    first = draws()
    rig.set_generators(snapshot)
    assert draws() == first

    token_path = urllib.parse.urlsplit(stack.okta.token_url).path
    restores = []
    for _ in range(2):
        rig.set_generators(snapshot)  # a new environment, from the same snapshot
        rig.clock.now = 20_000.0
        rig.sleeps.clear()
        stack.okta.clear_requests()
        runtime_hooks.restore()
        module_draw = random.random()
        # One 503 from Okta: the retry waits a jittered backoff, and sends a new assertion.
        stack.okta.inject(Fault(match=token_path, status=503, body=b"{}"))
        assert invoke(rig.bridge)["statusCode"] == 200
        refresh_at = rig.bridge.tokens.get(Deadline(5)).refresh_at
        restores.append((module_draw, list(rig.sleeps), refresh_at, jtis(stack)))

    (draw_a, sleeps_a, refresh_a, jti_a), (draw_b, sleeps_b, refresh_b, jti_b) = restores
    assert len(sleeps_a) == len(sleeps_b) == 1
    assert len(jti_a) == len(jti_b) == 2
    assert draw_a != draw_b  # random.seed()
    assert sleeps_a != sleeps_b  # RetryPolicy.rng
    assert refresh_a != refresh_b  # TokenEndpoint's rng, same clock and token lifetime
    assert jti_a.isdisjoint(jti_b)  # uuid4 reads os.urandom


@pytest.fixture
def lambda_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A SnapStart Init's environment for a fresh secret, credentials included."""
    name = stack.store_secret("basic", "snapstart/handler")
    env = {**stack.environment(name), INITIALIZATION_TYPE: "snap-start"}
    for variable in LocalStack.UNSET_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return env


@pytest.fixture
def reload_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], object]]:
    """Re-run the handler module's import (Lambda's Init); then again without SnapStart."""
    yield lambda: importlib.reload(handler)
    monkeypatch.undo()
    importlib.reload(handler)
    assert handler.current_bridge() is None


def test_init_with_snapstart_builds_the_bridge_without_reading_a_secret(
    stack: LocalStack,
    runtime_hooks: FakeRuntimeHooks,
    lambda_env: dict[str, str],
    reload_handler: Callable[[], object],
) -> None:
    stack.reset_counts()
    reload_handler()
    bridge = handler.current_bridge()
    assert bridge is not None
    assert len(runtime_hooks.before) == len(runtime_hooks.after) == 1
    assert counts(stack) == (0, 0)
    assert bridge.secrets.reads == 0
    runtime_hooks.snapshot()
    assert secrets_in(bridge, stack) == []
    runtime_hooks.restore()
    assert invoke()["statusCode"] == 200
    assert handler.current_bridge() is bridge
    assert counts(stack) == (1, 1)


def test_a_configuration_error_during_init_waits_for_the_first_invocation(
    runtime_hooks: FakeRuntimeHooks,
    lambda_env: dict[str, str],
    reload_handler: Callable[[], object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_ID)
    reload_handler()  # does not raise: a failed Init would fail the publish
    assert handler.current_bridge() is None
    assert len(runtime_hooks.before) == 1
    runtime_hooks.snapshot()
    runtime_hooks.restore()
    answer = invoke()
    assert answer["statusCode"] == 500
    assert answer["body"]["error"]["code"] == "CONFIG_INVALID"
    assert SECRET_ID in answer["body"]["error"]["message"]


def test_each_restore_makes_a_dpop_key_of_its_own_and_the_snapshot_holds_none(
    stack: LocalStack, runtime_hooks: FakeRuntimeHooks
) -> None:
    stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
    try:
        rig = make_rig(stack, "basic")
        snapstart.register(lambda: rig.bridge, enabled=True)
        assert invoke(rig.bridge)["statusCode"] == 200
        assert rig.bridge.tokens.get(Deadline(5)).scheme == "DPoP"
        before = DPOP.key.thumbprint

        runtime_hooks.snapshot()

        assert not DPOP.has_key  # no key pair (private or public) in the snapshot
        assert DPOP.nonce(stack.okta.token_url) is None
        thumbprints = []
        for _ in range(2):  # two environments restored from the same snapshot
            runtime_hooks.restore()
            assert invoke(rig.bridge)["statusCode"] == 200
            token = rig.bridge.tokens.get(Deadline(5))
            bound = jwt.decode(token.value, options={"verify_signature": False})
            assert bound["cnf"]["jkt"] == DPOP.key.thumbprint
            thumbprints.append(DPOP.key.thumbprint)
        assert len({before, *thumbprints}) == 3
    finally:
        stack.okta.require_dpop(CLIENT_IDS["basic"], on=False)


def test_a_library_client_built_at_init_registers_the_same_hooks(
    stack: LocalStack, runtime_hooks: FakeRuntimeHooks, lambda_env: dict[str, str]
) -> None:
    """Issue 14: a team's own function builds its ``Client`` at module level, during Init:
    with SnapStart on, the snapshot holds none of its secrets and a restore serves at once."""
    from okta_bridge import Client  # noqa: PLC0415 - the consumer's import, under SnapStart

    client = Client.from_env()
    assert len(runtime_hooks.before) == len(runtime_hooks.after) == 1
    assert client.get("/v1/data").status == 200
    runtime_hooks.snapshot()
    assert secrets_in(client.bridge, stack) == []
    runtime_hooks.restore()
    stack.reset_counts()
    assert client.get("/v1/data").json()["source"] == "sample-internal-api"
    assert counts(stack) == (1, 1)

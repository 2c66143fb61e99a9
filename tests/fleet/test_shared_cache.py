"""The shared token cache against the local stack: environments share one token, wait for the
lease holder or take over from a dead one, refresh once for all, drop a refused token for all,
never read a token minted with an older secret version, and fall back to minting alone whenever
DynamoDB or KMS fails, saying so in the metrics."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from okta_bridge.errors import CacheError
from okta_bridge.fleet.table import Item
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import CLIENT_IDS, TOKEN_CACHE_TABLE, LocalStack
from tests.fleet.conftest import Fleet, emf, items, until

pytestmark = pytest.mark.integration

READ = {"path": "/v1/items"}


@contextlib.contextmanager
def holder_minting(fleet: Fleet, stack: LocalStack) -> Iterator[None]:
    """Inside: a first environment, on a thread, holds the lease while its token request is held
    at Okta for half a second. On the way out: it was answered 200."""
    holder = fleet.environment(real_time=True)
    stack.okta.inject(Fault(match="/oauth2/default/v1/token", delay=0.5))
    answers: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: answers.append(holder.invoke(READ)))
    thread.start()
    try:
        assert until(lambda: stack.dynamodb.counts["UpdateItem"] == 1)
        yield
    finally:
        thread.join(20)
    ok(answers[0])


def authorizations(stack: LocalStack) -> list[str]:
    return [r.headers.get("authorization", "") for r in stack.api.requests]


def ok(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 200, answer


def test_a_second_cold_environment_takes_the_fleets_token_without_asking_okta(
    fleet: Fleet, stack: LocalStack
) -> None:
    stack.api.clear_requests()
    first = fleet.environment()
    ok(first.invoke(READ))
    assert stack.okta.counts["token"] == 1
    assert stack.dynamodb.counts["GetItem"] == 1
    assert stack.dynamodb.counts["UpdateItem"] == 1  # the lease
    assert stack.dynamodb.counts["PutItem"] == 1  # the sealed token
    assert stack.kms.counts["GenerateDataKey"] == 1

    second = fleet.environment()
    ok(second.invoke(READ))
    assert stack.okta.counts["token"] == 1  # nothing more asked of Okta
    assert stack.dynamodb.counts["GetItem"] == 2
    assert stack.kms.counts["Decrypt"] == 1  # the first environment's data key, opened once
    assert stack.dynamodb.counts["PutItem"] == 1
    first_token, second_token = authorizations(stack)
    assert first_token == second_token


def test_warm_calls_make_no_dynamodb_or_kms_call(fleet: Fleet, stack: LocalStack) -> None:
    environment = fleet.environment()
    ok(environment.invoke(READ))
    stack.reset_counts()
    for _ in range(5):
        ok(environment.invoke(READ))
    assert stack.secrets_manager.counts["GetSecretValue"] == 0
    assert stack.okta.counts["token"] == 0
    assert sum(stack.api.counts.values()) == 5
    assert sum(stack.dynamodb.counts.values()) == 0
    assert sum(stack.kms.counts.values()) == 0


def test_without_the_cache_nothing_touches_dynamodb_or_kms(fleet: Fleet, stack: LocalStack) -> None:
    for _ in range(2):
        ok(fleet.environment(cache=False).invoke(READ))
    assert stack.okta.counts["token"] == 2  # one per environment, as before
    assert sum(stack.dynamodb.counts.values()) == 0
    assert sum(stack.kms.counts.values()) == 0


def test_the_table_holds_the_token_sealed_only(fleet: Fleet, stack: LocalStack) -> None:
    ok(fleet.environment().invoke(READ))
    stored = repr(items(stack)).encode()
    for secret in stack.all_secret_material():
        for part in {secret, *secret.split(".")}:
            if len(part) >= 16:
                assert part.encode() not in stored


def test_a_new_secret_version_never_reads_the_old_token(fleet: Fleet, stack: LocalStack) -> None:
    ok(fleet.environment().invoke(READ))
    stack.rotate_client_secret("basic", fleet.secret_id)  # the old credential stops working
    stack.reset_counts()
    ok(fleet.environment().invoke(READ))
    assert stack.okta.counts["token"] == 1  # minted with the new credential, not read
    assert len([i for i in items(stack) if i.get("tid")]) >= 2  # one item per version


def test_an_environment_waits_for_the_lease_holders_token(
    fleet: Fleet, stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first environment's token request is held at Okta for half a second; the second
    finds the lease and polls until the token is published."""
    waiter = fleet.environment(real_time=True)
    with holder_minting(fleet, stack):
        ok(waiter.invoke(READ))
    assert stack.okta.counts["token"] == 1
    assert waiter.slept  # it polled
    waits = [d for d in emf(capsys.readouterr().out) if d.get("SharedCacheWaits")]
    assert waits
    assert waits[0]["SharedCacheHits"] == 1


def test_throttled_reads_while_waiting_are_more_waiting_not_a_mint(
    fleet: Fleet, stack: LocalStack
) -> None:
    """A thousand environments polling one item meet the partition's read limit: a throttled
    read means look again later, not mint for yourself (which would be the burst again)."""
    waiter = fleet.environment(real_time=True)
    with holder_minting(fleet, stack):
        # Two of the waiter's reads are throttled (each with the client's two retries).
        stack.dynamodb.inject_error("GetItem", "ProvisionedThroughputExceededException", times=6)
        ok(waiter.invoke(READ))
    assert stack.okta.counts["token"] == 1
    assert stack.dynamodb.counts["GetItem"] >= 3


def test_a_dead_lease_holder_is_taken_over_once_its_lease_expires(
    fleet: Fleet, stack: LocalStack
) -> None:
    environment = fleet.environment()
    lease = environment.cache._settings.lease_seconds  # type: ignore[union-attr]
    pk = _pk(fleet)
    stack.dynamodb.put_raw_item(
        TOKEN_CACHE_TABLE,
        {
            "pk": {"S": pk},
            "lease": {"S": "an-environment-that-died"},
            "lease_until": {"N": str(fleet.clocks.wall + lease)},
        },
    )
    ok(environment.invoke(READ))
    assert stack.okta.counts["token"] == 1
    waited = sum(environment.slept)
    assert lease <= waited <= lease + 1.0  # it waited out the lease, and not much longer
    assert _item(stack, pk).tid is not None


def test_a_slow_read_while_another_environment_mints_is_more_waiting(
    fleet: Fleet,
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A read that times out while a lease is held (a hot partition, a starved host) does not
    send the environment to Okta on its own: it waits on, and here takes the dead lease over."""
    environment = fleet.environment()
    cache = environment.cache
    assert cache is not None
    pk = _pk(fleet)
    stack.dynamodb.put_raw_item(
        TOKEN_CACHE_TABLE,
        {
            "pk": {"S": pk},
            "lease": {"S": "a-slow-holder"},
            "lease_until": {"N": str(fleet.clocks.wall + 2)},
        },
    )
    table = cache._table
    real_get = table.get
    calls = []

    def get(key: str, deadline: Any) -> Any:
        calls.append(key)
        if len(calls) in (2, 3):
            raise CacheError("TOKEN_CACHE_TIMEOUT", "DynamoDB did not answer in time.")
        return real_get(key, deadline)

    monkeypatch.setattr(table, "get", get)
    ok(environment.invoke(READ))
    assert stack.okta.counts["token"] == 1  # the takeover's mint, for the fleet
    assert len(calls) > 3
    assert emf(capsys.readouterr().out)[-1]["SharedCacheFallbacks"] == 0


def test_a_lease_far_in_the_future_does_not_hold_the_fleet(fleet: Fleet, stack: LocalStack) -> None:
    pk = _pk(fleet)
    stack.dynamodb.put_raw_item(
        TOKEN_CACHE_TABLE,
        {
            "pk": {"S": pk},
            "lease": {"S": "a-clock-a-day-ahead"},
            "lease_until": {"N": str(fleet.clocks.wall + 86_400)},
        },
    )
    environment = fleet.environment()
    ok(environment.invoke(READ))
    assert environment.slept == []
    assert stack.okta.counts["token"] == 1
    assert _item(stack, pk).lease is None  # replaced by the published token


def test_one_environment_refreshes_for_the_fleet(fleet: Fleet, stack: LocalStack) -> None:
    stack.okta.token_lifetime = 600
    stack.api.clear_requests()
    try:
        environments = [fleet.environment() for _ in range(4)]
        for environment in environments:
            ok(environment.invoke(READ))
        assert stack.okta.counts["token"] == 1
        fleet.clocks.advance(600 - 11)  # past every refresh moment, before expiry
        for environment in environments:
            ok(environment.invoke(READ))
        assert stack.okta.counts["token"] == 2  # one refresh, for all four
        tokens = authorizations(stack)
        assert len(set(tokens[:4])) == 1
        assert len(set(tokens[4:])) == 1
        assert tokens[0] != tokens[4]
    finally:
        stack.okta.token_lifetime = 3600


def test_a_refused_token_is_dropped_for_everyone_once(fleet: Fleet, stack: LocalStack) -> None:
    first, second = (fleet.environment(token_refresh_min_age=0) for _ in range(2))
    stack.api.clear_requests()
    ok(first.invoke(READ))
    ok(second.invoke(READ))
    assert stack.okta.counts["token"] == 1
    fleet.clocks.advance(1)
    # The API refuses the shared token: once for each environment.
    refused = Fault(status=401, body=b'{"error":"invalid_token"}', times=1)
    stack.api.inject(refused)
    ok(first.invoke(READ))  # dropped it from the table, minted anew
    assert stack.okta.counts["token"] == 2
    stack.api.inject(refused)
    ok(second.invoke(READ))  # found the new one: no request of its own
    assert stack.okta.counts["token"] == 2
    tokens = authorizations(stack)
    assert tokens[-1] == tokens[-3] != tokens[0]


def test_a_young_token_is_not_dropped_on_a_401(fleet: Fleet, stack: LocalStack) -> None:
    environment = fleet.environment()  # the minimum age: 60 s
    ok(environment.invoke(READ))
    pk = _pk(fleet)
    before = _item(stack, pk).tid
    stack.api.inject(Fault(status=401, body=b'{"error":"invalid_token"}', times=1))
    refused = environment.invoke(READ)
    assert refused["body"]["error"]["code"] == "UPSTREAM_UNAUTHORIZED"
    assert stack.okta.counts["token"] == 1
    assert _item(stack, pk).tid == before


def test_dpop_bound_tokens_are_shared_with_their_key(fleet: Fleet, stack: LocalStack) -> None:
    stack.okta.require_dpop(CLIENT_IDS["basic"], True)
    stack.api.clear_requests()
    first, second = fleet.environment(), fleet.environment()
    ok(first.invoke(READ))
    ok(second.invoke(READ))
    assert stack.okta.counts["token"] >= 1
    minted = stack.okta.counts["token"]
    ok(second.invoke(READ))
    assert stack.okta.counts["token"] == minted
    schemes = {a.split(" ", 1)[0] for a in authorizations(stack)}
    assert schemes == {"DPoP"}
    assert len(set(authorizations(stack))) == 1


@pytest.mark.parametrize(
    "break_it",
    ["dynamodb_denied", "dynamodb_throttled", "kms_denied", "kms_key_disabled"],
)
def test_a_failing_cache_never_fails_an_invocation(
    fleet: Fleet,
    stack: LocalStack,
    capsys: pytest.CaptureFixture[str],
    break_it: str,
) -> None:
    overrides: dict[str, Any] = {}
    if break_it == "kms_key_disabled":  # a key of its own: the stack's serves other tests
        cache = fleet.environment().bridge.settings.token_cache
        assert cache is not None
        key = stack.kms.create_symmetric_key("disabled by a test")
        overrides["token_cache"] = cache._replace(key_id=key)
    ok(fleet.environment(**overrides).invoke(READ))  # the fleet has a token to read
    environment = fleet.environment(**overrides)
    if break_it == "kms_key_disabled":
        stack.kms.disable(overrides["token_cache"].key_id)
    else:
        _break(stack, break_it)
    try:
        stack.reset_counts()
        answer = environment.invoke(READ)
    finally:
        stack.clear_faults()
    ok(answer)
    assert stack.okta.counts["token"] == 1  # it minted for itself
    out = capsys.readouterr().out
    document = emf(out)[-1]  # the broken invocation's
    assert document["SharedCacheFallbacks"] == 1
    assert document["TokenRequests"] == 1
    assert "the shared token cache failed" in out
    # The circuit: for a while this environment does not try the table again.
    environment.bridge.tokens.invalidate(environment.bridge.tokens.get(_deadline()))
    stack.reset_counts()
    ok(environment.invoke(READ))
    assert sum(stack.dynamodb.counts.values()) == 0


def test_a_silent_dynamodb_costs_part_of_the_deadline_not_the_invocation(
    fleet: Fleet, stack: LocalStack
) -> None:
    """A DynamoDB endpoint that accepts connections and never answers (a black-holed route):
    the invocation still answers, within its deadline, with a token minted alone."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the handshake never completes: nothing ever accepts
        cache = fleet.environment().bridge.settings.token_cache
        assert cache is not None
        endpoint = f"https://127.0.0.1:{silent.getsockname()[1]}"
        environment = fleet.environment(token_cache=cache._replace(endpoint=endpoint))
        started = time.monotonic()
        answer = environment.invoke(READ, remaining_ms=4_000)
        took = time.monotonic() - started
    ok(answer)
    assert took < 4.0
    assert stack.okta.counts["token"] == 1


def _break(stack: LocalStack, how: str) -> None:
    if how == "dynamodb_denied":
        stack.dynamodb.inject_error("GetItem", "AccessDeniedException", times=5)
    elif how == "dynamodb_throttled":
        stack.dynamodb.inject_error("GetItem", "ProvisionedThroughputExceededException", times=500)
    else:
        stack.kms.inject_error("Decrypt", 400, "AccessDeniedException", times=5)


def _deadline() -> Any:
    from okta_bridge.transport.deadline import Deadline  # noqa: PLC0415

    return Deadline(10)


def _pk(fleet: Fleet) -> str:
    """The item key the fleet's environments use (read from a real environment's secret)."""
    from okta_bridge.fleet.table import cache_key  # noqa: PLC0415

    environment = fleet.environment()
    credentials = environment.bridge.secrets.current(_deadline())
    key = cache_key(credentials, environment.bridge.settings.dpop)
    assert key is not None
    return key


def _item(stack: LocalStack, pk: str) -> Item:
    from okta_bridge.fleet.table import _item as parse  # noqa: PLC0415

    raw = stack.dynamodb.item(TOKEN_CACHE_TABLE, pk)
    assert raw is not None
    return parse(raw)

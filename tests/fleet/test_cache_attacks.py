"""Breaking the shared token cache the way someone who can write the table (but not use the
stack's key under the cache's encryption context) would: every altered, moved, foreign or
malformed item is refused and replaced by a fresh mint, never sent; a planted token never reaches
an Authorization header; an oversized item is a cache failure, not an outage; and nothing of the
token or the fleet's DPoP key is ever logged.

Out of scope, and said so in docs/security.md: a principal that can both write the table and
call kms:GenerateDataKey on the stack's key under the cache's context can seal a token of its
choosing, but that principal is the bridge's own role, which already reads the Okta credentials.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from okta_bridge.fleet.envelope import CONTEXT
from okta_bridge.fleet.table import Item, cache_key
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import CLIENT_IDS, TOKEN_CACHE_TABLE, LocalStack
from tests.fleet.conftest import Environment, Fleet

pytestmark = pytest.mark.integration

READ = {"path": "/v1/items"}
Raw = dict[str, dict[str, Any]]


@pytest.fixture(autouse=True)
def _nothing_secret_is_logged(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    yield
    captured = capsys.readouterr()
    text = captured.out + captured.err
    for secret in stack.all_secret_material():
        assert secret not in text
    assert "Injected" not in text


def pk_of(environment: Environment) -> str:
    credentials = environment.bridge.secrets.current(Deadline(5))
    key = cache_key(credentials, environment.bridge.settings.dpop)
    assert key is not None
    return key


def minted_item(fleet: Fleet, stack: LocalStack) -> tuple[str, Raw]:
    """A fleet whose first environment minted and published; its item as stored."""
    first = fleet.environment()
    assert first.invoke(READ)["statusCode"] == 200
    pk = pk_of(first)
    raw = stack.dynamodb.item(TOKEN_CACHE_TABLE, pk)
    assert raw is not None
    return pk, raw


def replaced(fleet: Fleet, stack: LocalStack, pk: str, before: Raw) -> None:
    """A cold environment refuses what is there: it mints (one more token request) and its
    item replaces the planted one."""
    minted = stack.okta.counts["token"]
    answer = fleet.environment().invoke(READ)
    assert answer["statusCode"] == 200, answer
    assert stack.okta.counts["token"] == minted + 1
    after = stack.dynamodb.item(TOKEN_CACHE_TABLE, pk)
    assert after is not None
    assert after["tid"] != before.get("tid")


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda r: {**r, "ct": {"B": flip(r["ct"]["B"], 20)}}, id="ciphertext"),
        pytest.param(lambda r: {**r, "ct": {"B": flip(r["ct"]["B"], 3)}}, id="nonce"),
        pytest.param(lambda r: {**r, "edk": {"B": flip(r["edk"]["B"], 40)}}, id="data-key"),
        pytest.param(
            lambda r: {**r, "expires": {"N": str(float(r["expires"]["N"]) + 86_400)}},
            id="expiry-extended",
        ),
        pytest.param(
            lambda r: {**r, "refresh": {"N": str(float(r["refresh"]["N"]) + 3_000)}},
            id="refresh-postponed",
        ),
        pytest.param(lambda r: {**r, "tid": {"S": "f" * 32}}, id="token-id"),
        pytest.param(lambda r: {**r, "ct": {"B": r["ct"]["B"][:20]}}, id="truncated"),
    ],
)
def test_an_altered_item_does_not_open_and_is_replaced(
    fleet: Fleet, stack: LocalStack, alter: Callable[[Raw], Raw]
) -> None:
    pk, raw = minted_item(fleet, stack)
    planted = alter(raw)
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, planted)
    replaced(fleet, stack, pk, planted)


def test_an_item_moved_to_another_credentials_key_does_not_open(
    fleet: Fleet, stack: LocalStack
) -> None:
    _, raw = minted_item(fleet, stack)
    other = Fleet(stack, stack.store_secret("basic", "fleet/attack-other-version"))
    pk = pk_of(other.environment())
    planted = {**raw, "pk": {"S": pk}}
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, planted)
    replaced(other, stack, pk, planted)


def sealed_item(pk: str, edk: bytes, sealed: bytes, wall: float, tid: str = "a" * 32) -> Raw:
    return {
        "pk": {"S": pk},
        "v": {"N": "1"},
        "tid": {"S": tid},
        "edk": {"B": edk},
        "ct": {"B": sealed},
        "issued": {"N": repr(round(wall, 3))},
        "refresh": {"N": repr(round(wall + 3000, 3))},
        "expires": {"N": repr(round(wall + 3600, 3))},
    }


def forge(
    environment: Environment, pk: str, wall: float, claims: dict[str, Any], tid: str = "a" * 32
) -> Raw:
    """An item sealed by the environment's own envelope (the stack's key, the right context):
    what a buggy or hostile writer *with* the role's KMS rights could write."""
    cache = environment.cache
    assert cache is not None
    item = Item(
        tid=tid,
        issued=round(wall, 3),
        refresh=round(wall + 3000, 3),
        expires=round(wall + 3600, 3),
    )
    plaintext = json.dumps(claims).encode()
    edk, sealed = cache._envelope.seal(plaintext, cache._aad(pk, item), Deadline(5))
    return sealed_item(pk, edk, sealed, wall, tid)


def test_a_data_key_of_another_kms_key_is_refused(fleet: Fleet, stack: LocalStack) -> None:
    environment = fleet.environment()
    pk = pk_of(environment)
    cache = environment.bridge.settings.token_cache
    assert cache is not None
    other_key = stack.kms.create_symmetric_key("an attacker's key")
    attacker = fleet.environment(token_cache=cache._replace(key_id=other_key))
    planted = forge(attacker, pk, fleet.clocks.wall, {"token": "x" * 40, "scheme": "Bearer"})
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, planted)
    replaced(fleet, stack, pk, planted)
    assert "x" * 40 not in [r.headers.get("authorization", "") for r in stack.api.requests]


def test_a_data_key_under_another_encryption_context_is_refused(
    fleet: Fleet, stack: LocalStack
) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    environment = fleet.environment()
    pk = pk_of(environment)
    kms = stack.kms.client(stack.ca.ca_pem_path)
    made = kms.generate_data_key(
        KeyId=stack.token_cache_key_id,
        KeySpec="AES_256",
        EncryptionContext={**CONTEXT, "okta-bridge:purpose": "something-else"},
    )
    wall = fleet.clocks.wall
    item = Item(
        tid="b" * 32,
        issued=round(wall, 3),
        refresh=round(wall + 3000, 3),
        expires=round(wall + 3600, 3),
    )
    assert environment.cache is not None
    nonce = b"\x00" * 12
    sealed = nonce + AESGCM(made["Plaintext"]).encrypt(
        nonce,
        json.dumps({"token": "y" * 40, "scheme": "Bearer"}).encode(),
        environment.cache._aad(pk, item),
    )
    planted = sealed_item(pk, made["CiphertextBlob"], sealed, wall, "b" * 32)
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, planted)
    replaced(fleet, stack, pk, planted)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"token": "abcdefghijklmnop\r\nInjected: 1", "scheme": "Bearer"}, id="crlf"),
        pytest.param({"token": "short", "scheme": "Bearer"}, id="not-a-token"),
        pytest.param({"token": "t" * 40, "scheme": "Basic"}, id="scheme"),
        pytest.param({"token": "t" * 40, "scheme": "DPoP"}, id="dpop-without-key"),
        pytest.param(
            {"token": "t" * 40, "scheme": "DPoP", "key": base64.b64encode(bytes(32)).decode()},
            id="dpop-key-zero",
        ),
        pytest.param(
            {"token": "t" * 40, "scheme": "DPoP", "key": base64.b64encode(b"\xff" * 32).decode()},
            id="dpop-key-out-of-range",
        ),
        pytest.param({"token": 12345, "scheme": "Bearer"}, id="token-type"),
        pytest.param(["not", "an", "object"], id="not-an-object"),
    ],
)
def test_a_sealed_token_is_checked_as_strictly_as_oktas_answer(
    fleet: Fleet, stack: LocalStack, claims: Any
) -> None:
    environment = fleet.environment()
    pk = pk_of(environment)
    stack.api.clear_requests()
    planted = forge(environment, pk, fleet.clocks.wall, claims)
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, planted)
    replaced(fleet, stack, pk, planted)
    sent = [r.headers.get("authorization", "") for r in stack.api.requests]
    assert all(s.startswith("Bearer ey") for s in sent)  # only Okta's JWTs were sent


@pytest.mark.parametrize(
    "numbers",
    [
        {"expires": {"S": "tomorrow"}},
        {"issued": {"BOOL": True}},
        {"edk": {"S": "not bytes"}},
        {"tid": {"N": "7"}},
        {"tid": {"S": ""}},
        {"tid": {"S": "t" * 5000}},
    ],
    ids=["expiry-string", "issued-bool", "edk-type", "tid-number", "tid-empty", "tid-long"],
)
def test_malformed_attributes_read_as_no_token(
    fleet: Fleet, stack: LocalStack, numbers: Raw
) -> None:
    pk, raw = minted_item(fleet, stack)
    planted = {**raw, **numbers}
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, planted)
    replaced(fleet, stack, pk, planted)


def test_an_oversized_item_is_a_cache_failure_not_an_outage(
    fleet: Fleet, stack: LocalStack
) -> None:
    _, raw = minted_item(fleet, stack)
    stack.dynamodb.put_raw_item(TOKEN_CACHE_TABLE, {**raw, "pad": {"B": b"\x00" * 300_000}})
    minted = stack.okta.counts["token"]
    assert fleet.environment().invoke(READ)["statusCode"] == 200
    assert stack.okta.counts["token"] == minted + 1  # minted alone: the item was not read


def test_the_fleets_dpop_key_never_reaches_a_log_or_the_table_in_clear(
    fleet: Fleet, stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.okta.require_dpop(CLIENT_IDS["basic"], True)
    first = fleet.environment(dpop="on")
    assert first.invoke(READ)["statusCode"] == 200
    token = first.bridge.tokens.get(Deadline(5))
    assert token.key is not None
    scalar = token.key.private_scalar()
    assert repr(token.key) == f"ProofKey(thumbprint={token.key.thumbprint!r})"
    assert "key" not in repr(token).replace("Token", "")
    stored = repr(stack.dynamodb.items(TOKEN_CACHE_TABLE)).encode()
    assert scalar not in stored
    assert base64.b64encode(scalar) not in stored
    out = capsys.readouterr().out
    assert base64.b64encode(scalar).decode() not in out
    assert scalar.hex() not in out

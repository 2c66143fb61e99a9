"""The local stack's DynamoDB (moto over TLS), driven with botocore: the calls and conditions the
shared token cache's lease protocol uses answer as DynamoDB does, conditional writes to one item
are atomic under concurrency, and injected errors come back in DynamoDB's JSON."""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
import urllib3

from okta_bridge_dev.emulators.dynamodb import TOKEN_CACHE_TABLE, DynamoDbServer, error_type
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import LocalStack

pytestmark = pytest.mark.integration

TABLE = TOKEN_CACHE_TABLE
NOW = 1_700_000_000
SEALED = b"\x00\x01nonce-and-ciphertext\xff"  # not valid UTF-8, as a real ct is not


@pytest.fixture
def ddb(stack: LocalStack) -> Iterator[Any]:
    """A boto3 DynamoDB client that verifies the stack's certificate, without retries."""
    client = stack.dynamodb.client(stack.ca.ca_pem_path, max_attempts=1)
    yield client
    client.close()


@pytest.fixture
def pk() -> str:
    """A key of this test's own: the package's stack keeps its table between tests."""
    return f"token#{secrets.token_hex(16)}"


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def _take_lease(ddb: Any, pk: str, owner: str, now: int, lease_seconds: int = 5) -> Any:
    """The lease protocol's UpdateItem: take the lease when there is none or it has expired."""
    return ddb.update_item(
        TableName=TABLE,
        Key=_key(pk),
        UpdateExpression="SET #lease = :owner, lease_until = :until",
        ConditionExpression="attribute_not_exists(#lease) OR lease_until < :now",
        ExpressionAttributeNames={"#lease": "lease"},
        ExpressionAttributeValues={
            ":owner": {"S": owner},
            ":until": {"N": str(now + lease_seconds)},
            ":now": {"N": str(now)},
        },
        ReturnValues="ALL_NEW",
    )


def _code(caught: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, int]:
    response = caught.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def test_the_stack_creates_the_cache_table_as_the_template_does(
    stack: LocalStack, ddb: Any
) -> None:
    table = ddb.describe_table(TableName=TABLE)["Table"]
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert f":{stack.dynamodb.account_id}:" in table["TableArn"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_put_then_consistent_get_round_trips_binary_attributes(
    stack: LocalStack, ddb: Any, pk: str
) -> None:
    item = {
        **_key(pk),
        "v": {"N": "1"},
        "tid": {"S": "t-1"},
        "edk": {"B": b"\xffencrypted-data-key"},
        "ct": {"B": SEALED},
        "ttl": {"N": str(NOW + 3600)},
    }
    ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
    found = ddb.get_item(TableName=TABLE, Key=_key(pk), ConsistentRead=True)

    assert found["Item"] == item
    assert stack.dynamodb.item(TABLE, pk) == item
    assert item in stack.dynamodb.items(TABLE)
    assert ddb.get_item(TableName=TABLE, Key=_key(pk + "x"), ConsistentRead=True).keys() == {
        "ResponseMetadata"
    }
    assert stack.dynamodb.counts == {"PutItem": 1, "GetItem": 2}


def test_a_failed_condition_is_conditional_check_failed_json_400(
    stack: LocalStack, ddb: Any, pk: str
) -> None:
    ddb.put_item(TableName=TABLE, Item={**_key(pk), "tid": {"S": "first"}})
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ddb.put_item(
            TableName=TABLE,
            Item={**_key(pk), "tid": {"S": "second"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert _code(caught) == ("ConditionalCheckFailedException", 400)
    assert caught.value.response["Item"] == {**_key(pk), "tid": {"S": "first"}}
    assert stack.dynamodb.item(TABLE, pk) == {**_key(pk), "tid": {"S": "first"}}


def test_the_raw_error_body_is_dynamodbs_json(stack: LocalStack, pk: str) -> None:
    """What a client of its own (the bridge's) parses: the status, the JSON type and __type."""
    ddb = stack.dynamodb.client(stack.ca.ca_pem_path, max_attempts=1)
    seen: list[Any] = []
    ddb.meta.events.register("after-call.dynamodb.PutItem", lambda **kw: seen.append(kw))
    try:
        ddb.put_item(TableName=TABLE, Item=_key(pk))
        with pytest.raises(botocore.exceptions.ClientError):
            ddb.put_item(
                TableName=TABLE, Item=_key(pk), ConditionExpression="attribute_not_exists(pk)"
            )
    finally:
        ddb.close()
    http = seen[-1]["http_response"]
    assert http.status_code == 400
    assert http.headers["Content-Type"] == "application/x-amz-json-1.0"
    body = json.loads(http.content)
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    assert body["message"] == "The conditional request failed"


def test_the_lease_is_taken_once_refused_while_held_and_taken_over_when_expired(
    stack: LocalStack, ddb: Any, pk: str
) -> None:
    first = _take_lease(ddb, pk, "env-a", NOW)["Attributes"]
    with pytest.raises(botocore.exceptions.ClientError) as held:
        _take_lease(ddb, pk, "env-b", NOW + 4)
    # Past lease_until, and across a change in digit count: N compares as a number.
    taken_over = _take_lease(ddb, pk, "env-b", 10_000_000_000)["Attributes"]

    assert first == {**_key(pk), "lease": {"S": "env-a"}, "lease_until": {"N": str(NOW + 5)}}
    assert _code(held) == ("ConditionalCheckFailedException", 400)
    assert taken_over["lease"] == {"S": "env-b"}
    assert stack.dynamodb.counts == {"UpdateItem": 3}


def test_lease_until_compares_numerically_not_as_text(ddb: Any, pk: str) -> None:
    """ "9.5" < "10" as numbers, not as strings: fractional and shorter values included."""
    _take_lease(ddb, pk, "env-a", 4, lease_seconds=5)  # lease_until 9
    ddb.update_item(
        TableName=TABLE,
        Key=_key(pk),
        UpdateExpression="SET lease_until = :until",
        ExpressionAttributeValues={":until": {"N": "9.5"}},
    )
    with pytest.raises(botocore.exceptions.ClientError):
        _take_lease(ddb, pk, "env-b", 9)  # 9.5 < 9 is false
    assert _take_lease(ddb, pk, "env-b", 10)["Attributes"]["lease"] == {"S": "env-b"}


def test_the_minter_stores_its_token_only_while_it_holds_the_lease(
    stack: LocalStack, ddb: Any, pk: str
) -> None:
    _take_lease(ddb, pk, "env-a", NOW)
    store = {
        "TableName": TABLE,
        "ConditionExpression": "#lease = :owner",
        "ExpressionAttributeNames": {"#lease": "lease"},
    }
    token = {**_key(pk), "tid": {"S": "t-1"}, "ct": {"B": SEALED}, "issued": {"N": str(NOW)}}
    with pytest.raises(botocore.exceptions.ClientError) as stolen:
        ddb.put_item(Item=token, ExpressionAttributeValues={":owner": {"S": "env-b"}}, **store)
    ddb.put_item(Item=token, ExpressionAttributeValues={":owner": {"S": "env-a"}}, **store)

    assert _code(stolen) == ("ConditionalCheckFailedException", 400)
    assert stack.dynamodb.item(TABLE, pk) == token  # the PutItem replaced the lease attributes


def test_a_refused_token_is_removed_only_if_it_is_the_same_and_old_enough(
    stack: LocalStack, ddb: Any, pk: str
) -> None:
    """The 401 path: REMOVE the token when tid matches and issued <= now - min age."""
    token = {
        **_key(pk),
        "tid": {"S": "t-1"},
        "edk": {"B": b"edk"},
        "ct": {"B": SEALED},
        "issued": {"N": str(NOW)},
        "expires": {"N": str(NOW + 3600)},
    }
    ddb.put_item(TableName=TABLE, Item=token)

    def invalidate(tid: str, now: int) -> Any:
        return ddb.update_item(
            TableName=TABLE,
            Key=_key(pk),
            UpdateExpression="REMOVE ct, edk, #tid SET expires = :zero",
            ConditionExpression="#tid = :tid AND issued <= :oldest",
            ExpressionAttributeNames={"#tid": "tid"},
            ExpressionAttributeValues={
                ":tid": {"S": tid},
                ":oldest": {"N": str(now - 30)},
                ":zero": {"N": "0"},
            },
            ReturnValues="ALL_NEW",
        )

    refused = []
    for tid, now in (("t-0", NOW + 60), ("t-1", NOW + 29)):  # another token; too young
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            invalidate(tid, now)
        refused.append(_code(caught)[0])
    removed = invalidate("t-1", NOW + 30)["Attributes"]

    assert refused == ["ConditionalCheckFailedException"] * 2
    assert removed == {**_key(pk), "issued": {"N": str(NOW)}, "expires": {"N": "0"}}


def test_an_or_of_conditions_with_binary_equality(ddb: Any, pk: str) -> None:
    ddb.put_item(TableName=TABLE, Item={**_key(pk), "edk": {"B": b"\x00key"}})
    update = {
        "TableName": TABLE,
        "Key": _key(pk),
        "UpdateExpression": "SET v = :one",
        "ConditionExpression": "edk = :edk OR attribute_not_exists(pk)",
    }
    with pytest.raises(botocore.exceptions.ClientError):
        ddb.update_item(
            **update, ExpressionAttributeValues={":edk": {"B": b"\x00kez"}, ":one": {"N": "1"}}
        )
    ddb.update_item(
        **update, ExpressionAttributeValues={":edk": {"B": b"\x00key"}, ":one": {"N": "1"}}
    )
    item = ddb.get_item(TableName=TABLE, Key=_key(pk), ConsistentRead=True)["Item"]
    assert item["v"] == {"N": "1"}


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so an unguarded check-then-write in
    moto would let two writers through (it does, without DynamoDbServer's lock)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switches")
def test_concurrent_lease_takers_get_exactly_one_lease(stack: LocalStack) -> None:
    takers = 12
    clients = [stack.dynamodb.client(stack.ca.ca_pem_path, max_attempts=1) for _ in range(takers)]
    try:
        for _ in range(10):
            key = f"token#{secrets.token_hex(16)}"
            start = threading.Barrier(takers)
            winners: list[int] = []

            def take(
                index: int,
                key: str = key,
                start: threading.Barrier = start,
                won: list[int] = winners,
            ) -> None:
                start.wait()
                try:
                    _take_lease(clients[index], key, f"env-{index}", NOW)
                except botocore.exceptions.ClientError:
                    return
                won.append(index)

            threads = [threading.Thread(target=take, args=(i,)) for i in range(takers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(winners) == 1
            assert stack.dynamodb.item(TABLE, key)["lease"] == {"S": f"env-{winners[0]}"}  # type: ignore[index]
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ProvisionedThroughputExceededException", (400, "com.amazonaws.dynamodb.v20120810")),
        ("ThrottlingException", (400, "com.amazon.coral.availability")),
        ("AccessDeniedException", (400, "com.amazon.coral.service")),
        ("InternalServerError", (500, "com.amazonaws.dynamodb.v20120810")),
    ],
)
def test_injected_errors_answer_as_dynamodb(
    stack: LocalStack, ddb: Any, pk: str, code: str, expected: tuple[int, str]
) -> None:
    status, namespace = expected
    stack.dynamodb.inject_error("GetItem", code, times=2)
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ddb.get_item(TableName=TABLE, Key=_key(pk), ConsistentRead=True)
        assert _code(caught) == (code, status)
    answer = ddb.get_item(TableName=TABLE, Key=_key(pk), ConsistentRead=True)

    assert "Item" not in answer
    assert error_type(code) == f"{namespace}#{code}"
    assert stack.dynamodb.counts == {"GetItem": 3}


def test_an_injected_error_hits_only_its_action_and_clear_faults_drops_it(
    stack: LocalStack, ddb: Any, pk: str
) -> None:
    stack.dynamodb.inject_error("UpdateItem", "ThrottlingException", times=5)
    ddb.put_item(TableName=TABLE, Item=_key(pk))
    stack.clear_faults()
    _take_lease(ddb, pk, "env-a", NOW)
    assert stack.dynamodb.counts == {"PutItem": 1, "UpdateItem": 1}


def test_raw_items_can_be_planted_and_removed(stack: LocalStack, ddb: Any, pk: str) -> None:
    planted = {**_key(pk), "v": {"N": "9"}, "ct": {"B": b"\x00not ours"}}
    stack.dynamodb.put_raw_item(TABLE, planted)
    read = ddb.get_item(TableName=TABLE, Key=_key(pk), ConsistentRead=True)["Item"]
    removed = stack.dynamodb.delete_item(TABLE, pk)

    assert read == planted
    assert removed is True
    assert stack.dynamodb.item(TABLE, pk) is None
    assert stack.dynamodb.delete_item(TABLE, pk) is False
    assert stack.dynamodb.counts == {"GetItem": 1}  # the helpers bypass HTTP


def test_servers_do_not_share_tables(stack: LocalStack, ddb: Any, pk: str) -> None:
    ddb.put_item(TableName=TABLE, Item={**_key(pk), "owner": {"S": "stack"}})
    with DynamoDbServer(server_context(stack.server_cert)) as other:
        other.create_table()
        client = other.client(stack.ca.ca_pem_path, max_attempts=1)
        try:
            client.put_item(TableName=TABLE, Item={**_key(pk), "owner": {"S": "other"}})
        finally:
            client.close()
        theirs = other.item(TABLE, pk)
    assert theirs is not None
    assert theirs["owner"] == {"S": "other"}
    assert stack.dynamodb.item(TABLE, pk) == {**_key(pk), "owner": {"S": "stack"}}


def test_a_stopped_server_refuses_connections_and_keeps_its_table(
    stack: LocalStack, pk: str
) -> None:
    server = DynamoDbServer(server_context(stack.server_cert)).start()
    try:
        server.create_table()
        server.put_raw_item(TABLE, _key(pk))
        server.stop()
        pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0))
        with pytest.raises(urllib3.exceptions.NewConnectionError):
            pool.request("POST", server.endpoint_url)
        server.start()
        client = server.client(stack.ca.ca_pem_path, max_attempts=1)
        try:
            found = client.get_item(TableName=TABLE, Key=_key(pk), ConsistentRead=True)
        finally:
            client.close()
    finally:
        server.stop()
    assert found["Item"] == _key(pk)

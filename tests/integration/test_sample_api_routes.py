"""The sample API's issue-15 routes over real TLS, with a token from the stack's Okta:
POST /v1/search, POST /graphql and the streamed GET /v1/export."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from okta_bridge_dev.emulators.connections import MAX_BODY_BYTES
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response, StreamedBody
from okta_bridge_dev.emulators.sample_export import (
    MAX_EXPORT_BYTES,
    MIN_EXPORT_BYTES,
    RECORD_BYTES,
    export_chunks,
    export_sha256,
)
from okta_bridge_dev.emulators.sample_graphql import MAX_QUERY_CHARS, QueryError, execute
from okta_bridge_dev.emulators.sample_resources import ITEMS, item_category
from okta_bridge_dev.emulators.servers import TLSServer
from okta_bridge_dev.emulators.stack import LocalStack

pytestmark = pytest.mark.integration

TIMEOUT = urllib3.Timeout(connect=2.0, read=10.0)
FIFTY_MB = 50_000_000
FIFTY_MB_SHA256 = "eaba9cbd9f48d4724851c3ad18b47649dfe5c10e6703869693f5f41fe879c868"
"""Pinned: the export's bytes are part of what tests elsewhere rely on; a change must be seen."""


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool(stack: LocalStack) -> Iterator[urllib3.PoolManager]:
    context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
    manager = urllib3.PoolManager(ssl_context=context, retries=False, timeout=TIMEOUT)
    yield manager
    manager.clear()


@pytest.fixture(scope="module")
def token(stack: LocalStack, pool: urllib3.PoolManager) -> str:
    value = stack.secret_value("basic")
    raw = f"{value['client_id']}:{value['client_secret']}".encode()
    answer = pool.request(
        "POST",
        stack.okta.token_url,
        fields={"grant_type": "client_credentials", "scope": "api.access"},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
        encode_multipart=False,
    )
    assert answer.status == 200, answer.data
    access_token: str = answer.json()["access_token"]
    return access_token


@pytest.fixture(autouse=True)
def _no_server_errors(stack: LocalStack) -> Iterator[None]:
    stack.api.errors.clear()
    yield
    assert stack.api.errors == []


def call(
    pool: urllib3.PoolManager,
    stack: LocalStack,
    method: str,
    path: str,
    token: str | None,
    *,
    body: Any = None,
    raw: bytes | None = None,
    content_type: str | None = "application/json",
    **kwargs: Any,
) -> urllib3.BaseHTTPResponse:
    """One request to the sample API; ``body`` is sent as JSON, ``raw`` as is."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    return pool.request(method, stack.api.base_url + path, body=data, headers=headers, **kwargs)


def search(pool: urllib3.PoolManager, stack: LocalStack, token: str, body: Any) -> Any:
    answer = call(pool, stack, "POST", "/v1/search", token, body=body)
    assert answer.status == 200, answer.data
    return answer.json()


def graphql(pool: urllib3.PoolManager, stack: LocalStack, token: str, body: Any) -> Any:
    answer = call(pool, stack, "POST", "/graphql", token, body=body)
    assert answer.status == 200, answer.data
    return answer.json()


def assert_error(answer: urllib3.BaseHTTPResponse, status: int, error: str) -> None:
    assert (answer.status, answer.json()["error"]) == (status, error), answer.data


# -- POST /v1/search ---------------------------------------------------------------------------


def test_search_matches_names_and_records_the_query(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    answer = search(pool, stack, token, {"q": "ITEM-1", "limit": 5})
    matching = [item for item in ITEMS if "item-1" in item["name"]]
    assert [item["id"] for item in matching] == list(range(10, 20))
    assert answer == {"results": matching[:5], "total": len(matching)}
    assert stack.api.searches.accepted == [{"q": "ITEM-1", "category": None, "limit": 5}]
    assert stack.api.counts["search"] == 1


def test_search_by_category_and_the_defaults(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    medium = [item for item in ITEMS if 100 <= item["value"] < 400]
    assert {item_category(item) for item in medium} == {"medium"}
    assert search(pool, stack, token, {"category": "medium", "limit": 100}) == {
        "results": medium,
        "total": len(medium),
    }
    assert search(pool, stack, token, {}) == {"results": list(ITEMS[:10]), "total": len(ITEMS)}
    assert search(pool, stack, token, {"q": "nothing"}) == {"results": [], "total": 0}
    assert len(stack.api.searches.accepted) == 3


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"],
)
def test_search_accepts_json_media_types(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, content_type: str
) -> None:
    answer = call(
        pool, stack, "POST", "/v1/search", token, body={"q": "item-02"}, content_type=content_type
    )
    assert (answer.status, answer.json()["total"]) == (200, 1)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
def test_search_refuses_a_body_that_is_not_declared_json_with_415(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, content_type: str | None
) -> None:
    answer = call(pool, stack, "POST", "/v1/search", token, body={}, content_type=content_type)
    assert_error(answer, 415, "unsupported_media_type")
    assert stack.api.searches.accepted == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
        b"[]",
        b'"q"',
        b"null",
        b'{"limit": 0}',
        b'{"limit": 101}',
        b'{"limit": true}',
        b'{"limit": "5"}',
        b'{"limit": 5.0}',
        b'{"q": 5}',
        b'{"category": ["small"]}',
        b'{"q": "' + b"x" * 201 + b'"}',
        b'{"query": "item"}',
    ],
)
def test_search_refuses_a_bad_body_with_400(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, raw: bytes
) -> None:
    answer = call(pool, stack, "POST", "/v1/search", token, raw=raw)
    assert_error(answer, 400, "invalid_request")
    assert stack.api.searches.accepted == []


def test_a_reset_after_the_search_ran_leaves_it_recorded_once(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    """The fault a "reset during a POST is not retried" test needs: the API did the work."""
    stack.api.inject(Fault(match="/v1/search", method="POST", reset_mid_body=True))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        call(pool, stack, "POST", "/v1/search", token, body={"q": "item-2"})
    assert stack.api.searches.accepted == [{"q": "item-2", "category": None, "limit": 10}]
    assert stack.api.counts["search"] == 1


def test_search_is_post_only_and_checks_the_token_first(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    refused = call(pool, stack, "GET", "/v1/search", token, content_type=None)
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["Allow"] == "POST"
    assert_error(call(pool, stack, "POST", "/v1/search", None, raw=b"junk"), 401, "invalid_token")
    assert stack.api.searches.accepted == []
    assert stack.api.counts["search"] == 2


def test_the_api_reads_a_body_as_large_as_the_bridge_may_send(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    largest = {"pad": "x" * (5_000_000 - len('{"pad": ""}'))}  # BRIDGE_MAX_REQUEST_BYTES' maximum
    answer = call(pool, stack, "POST", "/v1/orders", token, body=largest)
    assert answer.status == 201, answer.data
    assert stack.api.orders.created[-1]["order"] == largest
    assert len(json.dumps(largest)) < MAX_BODY_BYTES


# -- POST /graphql -----------------------------------------------------------------------------


def test_graphql_lists_items_with_the_selected_fields(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    body = {"query": "{ items(first: 3) { id name category } }"}
    expected = [{"id": n, "name": f"item-{n:02d}", "category": "small"} for n in (1, 2, 3)]
    assert graphql(pool, stack, token, body) == {"data": {"items": expected}}
    assert stack.api.graphql.received == [body]
    assert stack.api.counts["graphql"] == 1


def test_graphql_reads_one_item_through_a_variable_and_names_the_operation(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    query = """
        # one item, by id
        query One($id: Int!) {
          item(id: $id) { id, name, value, category }
        }
    """
    body = {"query": query, "variables": {"id": 15}, "operationName": "One"}
    item = {**ITEMS[14], "category": "medium"}
    assert graphql(pool, stack, token, body) == {"data": {"item": item}}
    missing = {"query": query, "variables": {"id": 26}}
    assert graphql(pool, stack, token, missing) == {"data": {"item": None}}
    both = {"query": "query { item(id: 2) { name } items { id } }"}
    data = graphql(pool, stack, token, both)["data"]
    assert data == {"item": {"name": "item-02"}, "items": [{"id": n} for n in range(1, 26)]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": "{ users { id } }"}, 'Cannot query field "users" on type "Query".'),
        ({"query": "{ items { id secret } }"}, 'Cannot query field "secret" on type "Item".'),
        ({"query": "mutation { items { id } }"}, 'Only queries are supported, not "mutation".'),
        ({"query": "{ items { id }"}, 'Syntax Error: Expected name, found "<EOF>".'),
        ({"query": "{ items { id } } }"}, 'Syntax Error: Expected end, found "}".'),
        ({"query": "{ item { id } }"}, 'Field "item" argument "id" of type "Int!" is required.'),
        ({"query": "{ item(id: $id) { id } }"}, 'Variable "$id" is not defined.'),
        (
            {"query": "query Q($id: Int!) { item(id: $id) { id } }"},
            'Variable "$id" of type "Int!" was not provided.',
        ),
        (
            {"query": "query Q($id: Int!) { item(id: $id) { id } }", "variables": {"id": "7"}},
            'Variable "$id" got invalid value; Int cannot represent it.',
        ),
        (
            {"query": "query Q { items { id } }", "operationName": "Other"},
            'Unknown operation named "Other".',
        ),
        ({"query": "{ items(first: 101) { id } }"}, "first must be from 0 to 100."),
        (
            {"query": "{ items(last: 1) { id } }"},
            'Unknown or repeated argument "last" on field "Query.items".',
        ),
        (
            {"query": "{ items { id { id } } }"},
            'Field "id" of type "Item" takes no arguments or selection.',
        ),
        (
            {"query": '{ item(id: "7") { id } }'},
            "Syntax Error: Unexpected character at position 11.",
        ),
    ],
)
def test_graphql_answers_what_it_cannot_run_with_200_and_errors(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, body: Any, message: str
) -> None:
    assert graphql(pool, stack, token, body) == {"errors": [{"message": message}]}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"variables": {}},
        {"query": ""},
        {"query": 7},
        {"query": "{ items { id } }", "variables": [1]},
        {"query": "{ items { id } }", "operationName": 5},
        {"query": "{ items { id } }", "rogue": 1},
        {"query": "{ items { id } }" + " " * MAX_QUERY_CHARS},
    ],
)
def test_graphql_refuses_a_request_it_cannot_read_with_400(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, body: Any
) -> None:
    assert_error(call(pool, stack, "POST", "/graphql", token, body=body), 400, "invalid_request")
    assert stack.api.graphql.received == []


def test_graphql_is_post_only_json_only_and_behind_the_token(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    refused = call(pool, stack, "GET", "/graphql?query={items{id}}", token, content_type=None)
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["Allow"] == "POST"
    body = {"query": "{ items { id } }"}
    wrong_type = call(pool, stack, "POST", "/graphql", token, body=body, content_type="text/plain")
    assert_error(wrong_type, 415, "unsupported_media_type")
    assert_error(call(pool, stack, "POST", "/graphql", None, body=body), 401, "invalid_token")
    assert stack.api.graphql.received == []


@pytest.mark.parametrize(
    "query",
    [
        "{" * MAX_QUERY_CHARS,
        "{ items " + "{ id " * 800 + "} }",
        "query Q(" + "$a: Int " * 500 + ") { items { id } }",
        "{ " + "items { id } " * 300 + "}",
        "{ items(first: 99999999999999999999) { id } }",
        "{ " + "x" * (MAX_QUERY_CHARS - 4) + " }",
    ],
)
def test_the_graphql_parser_fails_fast_and_flat_on_hostile_queries(query: str) -> None:
    assert len(query) <= MAX_QUERY_CHARS
    with pytest.raises(QueryError):  # not RecursionError: the parser has no recursion
        execute(query, {})
    with pytest.raises(QueryError, match="longer than"):
        execute(query + " " * MAX_QUERY_CHARS, {})


# -- GET /v1/export ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        2,
        MIN_EXPORT_BYTES,
        RECORD_BYTES + 2,
        RECORD_BYTES + 3,
        RECORD_BYTES + 40,
        2 * RECORD_BYTES + 3,
        2 * RECORD_BYTES + 40,
        65_536,
        1_000_001,
    ],
)
def test_the_export_is_exactly_the_size_asked_as_a_json_array_of_records(size: int) -> None:
    raw = b"".join(export_chunks(size))
    assert len(raw) == size
    records = json.loads(raw)
    assert [record["id"] for record in records] == list(range(1, len(records) + 1))
    assert all(record["name"] == f"record-{record['id']:09d}" for record in records)
    assert all(len(json.dumps(r, separators=(",", ":"))) == RECORD_BYTES for r in records[:-1])
    assert export_sha256(size) == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 3, MIN_EXPORT_BYTES - 1, MAX_EXPORT_BYTES + 1])
def test_the_export_refuses_sizes_it_cannot_have(size: int) -> None:
    with pytest.raises(ValueError, match="bytes must be"):
        b"".join(export_chunks(size))


@pytest.mark.parametrize("size", [2, 100, 123_457, 6_000_000])
def test_the_export_over_tls_is_the_expected_bytes_with_a_content_length(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, size: int
) -> None:
    answer = call(pool, stack, "GET", f"/v1/export?bytes={size}", token, content_type=None)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Content-Length"] == str(size)
    assert hashlib.sha256(answer.data).hexdigest() == export_sha256(size)
    assert stack.api.counts["export"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?bytes=",
        "?bytes=abc",
        "?bytes=-5",
        "?bytes=1",
        "?bytes=63",
        "?bytes=200000001",
        "?bytes=99999999999999",
        "?bytes=100&bytes=100",
    ],
)
def test_the_export_refuses_a_bad_size_with_400(
    pool: urllib3.PoolManager, stack: LocalStack, token: str, query: str
) -> None:
    answer = call(pool, stack, "GET", f"/v1/export{query}", token, content_type=None)
    assert_error(answer, 400, "invalid_request")


def test_the_export_is_get_only_and_behind_the_token(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    unauthorized = call(pool, stack, "GET", "/v1/export?bytes=100", None, content_type=None)
    assert_error(unauthorized, 401, "invalid_token")
    posted = call(pool, stack, "POST", "/v1/export?bytes=100", token, body={})
    assert_error(posted, 405, "method_not_allowed")


def stream_sha256(answer: urllib3.BaseHTTPResponse) -> tuple[int, str]:
    """(bytes read, hex SHA-256) of a response read 64 KiB at a time."""
    digest, size = hashlib.sha256(), 0
    for chunk in answer.stream(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    answer.release_conn()
    return size, digest.hexdigest()


def test_fifty_megabytes_stream_with_the_pinned_digest_and_memory_not_proportional(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    """The server never holds the export: tracemalloc (every thread of this process, the
    server's and the client's) peaks at a few hundred KiB while 50 MB cross the socket."""
    assert export_sha256(FIFTY_MB) == FIFTY_MB_SHA256
    tracemalloc.start()
    try:
        answer = call(
            pool,
            stack,
            "GET",
            f"/v1/export?bytes={FIFTY_MB}",
            token,
            content_type=None,
            preload_content=False,
        )
        size, digest = stream_sha256(answer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (answer.status, size, digest) == (200, FIFTY_MB, FIFTY_MB_SHA256)
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while streaming {FIFTY_MB}"


# -- faults on the streamed route ---------------------------------------------------------------


def read_until_failure(answer: urllib3.BaseHTTPResponse) -> tuple[bytes, Exception | None]:
    """(every byte received, the error that ended the body or None)."""
    received = bytearray()
    try:
        while chunk := answer.read1(64 * 1024):
            received += chunk
    except urllib3.exceptions.ProtocolError as error:
        return bytes(received), error
    return bytes(received), None


def test_a_reset_mid_body_streams_the_first_half_then_resets(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    size = 1_000_000
    stack.api.inject(Fault(match="/v1/export", reset_mid_body=True))
    answer = call(
        pool,
        stack,
        "GET",
        f"/v1/export?bytes={size}",
        token,
        content_type=None,
        preload_content=False,
    )
    assert answer.headers["Content-Length"] == str(size)
    received, error = read_until_failure(answer)
    assert isinstance(error, urllib3.exceptions.ProtocolError)
    assert received == b"".join(export_chunks(size))[: size // 2]


def test_a_trickled_or_replaced_export_is_still_a_whole_answer(
    pool: urllib3.PoolManager, stack: LocalStack, token: str
) -> None:
    stack.api.inject(Fault(match="/v1/export", trickle_interval=0.0005))
    trickled = call(pool, stack, "GET", "/v1/export?bytes=80", token, content_type=None)
    assert trickled.data == b"".join(export_chunks(80))
    stack.api.inject(Fault(match="/v1/export", status=503, body=b'{"error":"busy"}'))
    replaced = call(pool, stack, "GET", "/v1/export?bytes=5000", token, content_type=None)
    assert (replaced.status, replaced.data) == (503, b'{"error":"busy"}')
    assert replaced.headers["Content-Length"] == "16"
    stack.api.inject(Fault(match="/v1/export", status=500))
    overlaid = call(pool, stack, "GET", "/v1/export?bytes=5000", token, content_type=None)
    assert (overlaid.status, overlaid.data) == (500, b"".join(export_chunks(5000)))


class ShortStream(TLSServer):
    """Promises 100 bytes and streams 10: a route bug the server must not hide."""

    def route(self, request: RecordedRequest) -> PathRoute:
        stream = StreamedBody(100, lambda: iter([b"0123456789"]))
        return PathRoute("short", lambda _: Response(200, stream=stream))


def test_a_stream_shorter_than_its_length_resets_and_is_recorded(
    stack: LocalStack, pool: urllib3.PoolManager
) -> None:
    with ShortStream(server_context(stack.server_cert)) as server:
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pool.request("GET", f"{server.base_url}/x")
        assert [str(error) for error in server.errors] == [
            "streamed body ended after 10 of 100 bytes"
        ]

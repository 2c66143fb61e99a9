"""Issue 15 on the local stack: routes with methods and JSON bodies from every event shape, the
route's Idempotency-Key, and whole collections with their bounds (real TLS, the real handler)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from okta_bridge.config import DeliverySettings
from okta_bridge.request.policy import Route
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import Harness, make_harness

EVENTS = Path(__file__).resolve().parents[2] / "events"
ROUTES = (
    Route("GET", "/v1/items"),
    Route("GET", "/v1/items/*"),
    Route("POST", "/v1/orders", idempotency_key=True),
    Route("POST", "/v1/search"),
    Route("POST", "/graphql"),
)
SEARCH = {"q": "item-0", "limit": 3}
ORDER = {"sku": "A-1", "quantity": 2, "note": "crème brûlée"}


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def routed(stack: LocalStack, routes: tuple[Route, ...] = ROUTES, **overrides: Any) -> Harness:
    return make_harness(stack, allowed_routes=routes, **overrides)


def api_requests(stack: LocalStack) -> int:
    return sum(stack.api.counts.values())


def error_code(answer: dict[str, Any]) -> str | None:
    body = answer["body"]
    if isinstance(body, str):
        body = json.loads(body)
    error = body.get("error") if isinstance(body, dict) else None
    return None if error is None else str(error["code"])


def v1_post(path: str, body: str | None, *, b64: bool = False, **headers: str) -> dict[str, Any]:
    shaped = event("apigw-rest-v1.json")
    shaped.update(httpMethod="POST", path=path, body=body, isBase64Encoded=b64)
    shaped.update(queryStringParameters=None, multiValueQueryStringParameters=None)
    shaped["headers"] = {"Content-Type": "application/json", **headers}
    return shaped


def v2_post(name: str, path: str, body: str | None, *, b64: bool = False) -> dict[str, Any]:
    shaped = event(name)
    shaped["requestContext"]["http"]["method"] = "POST"
    shaped.update(rawPath=path, rawQueryString="", body=body, isBase64Encoded=b64)
    shaped["headers"] = {"content-type": "application/json; charset=utf-8"}
    return shaped


# -- writes with bodies --------------------------------------------------------------------------


def test_a_direct_post_sends_the_body_as_canonical_json(stack: LocalStack) -> None:
    answer = routed(stack).invoke({"method": "POST", "path": "/v1/orders", "body": ORDER})
    assert answer["statusCode"] == 201, answer
    assert answer["body"]["order"] == ORDER
    sent = stack.api.requests[-1]
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == ORDER
    assert b" " not in sent.body.replace(b"cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e", b"")


@pytest.mark.parametrize("b64", [False, True])
def test_an_api_gateway_v1_post_with_a_plain_or_base64_body(stack: LocalStack, b64: bool) -> None:
    text = json.dumps(ORDER)
    body = base64.b64encode(text.encode()).decode() if b64 else text
    answer = routed(stack).invoke(v1_post("/v1/orders", body, b64=b64))
    assert answer["statusCode"] == 201, answer
    assert json.loads(answer["body"])["order"] == ORDER
    assert json.loads(stack.api.requests[-1].body) == ORDER


@pytest.mark.parametrize("name", ["apigw-http-v2.json", "function-url.json"])
@pytest.mark.parametrize("b64", [False, True])
def test_http_api_and_function_url_posts(stack: LocalStack, name: str, b64: bool) -> None:
    text = json.dumps([ORDER, ORDER])
    body = base64.b64encode(text.encode()).decode() if b64 else text
    answer = routed(stack).invoke(v2_post(name, "/v1/orders", body, b64=b64))
    assert answer["statusCode"] == 201, answer
    assert json.loads(stack.api.requests[-1].body) == [ORDER, ORDER]


@pytest.mark.parametrize(
    ("request_event", "code"),
    [
        ({"method": "POST", "path": "/v1/items", "body": {}}, "METHOD_NOT_ALLOWED"),
        ({"method": "DELETE", "path": "/v1/orders"}, "METHOD_NOT_ALLOWED"),
        ({"method": "POST", "path": "/admin/keys", "body": {}}, "PATH_NOT_ALLOWED"),
        ({"method": "POST", "path": "/v1/orders/../../admin", "body": {}}, "PATH_NOT_ALLOWED"),
        ({"method": "post", "path": "/v1/orders", "body": {}}, "METHOD_NOT_ALLOWED"),
        ({"method": "GET", "path": "/v1/items", "body": {"a": 1}}, "BAD_REQUEST"),
        ({"method": "POST", "path": "/v1/orders", "body": "text"}, "BAD_REQUEST"),
        ({"method": "POST", "path": "/v1/orders", "body": 7}, "BAD_REQUEST"),
        ({"method": "POST", "path": "/v1/orders", "paginate": True}, "BAD_REQUEST"),
        ({"method": "POST", "path": "/v1/orders", "deliver": "s3"}, "DELIVERY_NOT_CONFIGURED"),
        ({"method": "POST", "path": "/v1/orders", "body": {"x": "y" * 2000}}, "REQUEST_TOO_LARGE"),
    ],
)
def test_a_write_not_on_the_routes_is_refused_before_any_request(
    stack: LocalStack, request_event: dict[str, Any], code: str
) -> None:
    harness = routed(stack, max_request_bytes=1000)
    answer = harness.invoke(request_event)
    assert error_code(answer) == code, answer
    assert api_requests(stack) == 0
    assert stack.okta.counts["token"] == 0


def test_without_routes_a_post_is_refused_as_before(stack: LocalStack) -> None:
    harness = make_harness(stack, allowed_paths=("/v1/orders",))
    answer = harness.invoke({"method": "POST", "path": "/v1/orders", "body": ORDER})
    assert error_code(answer) == "METHOD_NOT_ALLOWED"
    assert answer["statusCode"] == 405
    assert api_requests(stack) == 0


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        ("not json", {}, "BAD_REQUEST"),
        ('"a string"', {}, "BAD_REQUEST"),
        ('{"a": NaN}', {}, "BAD_REQUEST"),
        ("[" * 100 + "]" * 100, {}, "BAD_REQUEST"),
        ('{"a": 1}', {"Content-Type": "text/plain"}, "BAD_REQUEST"),
        ('{"a": 1}', {"Content-Type": "application/x-www-form-urlencoded"}, "BAD_REQUEST"),
        ("%%%", {"b64": "yes"}, "BAD_REQUEST"),
        ('{"a": "' + "x" * 5000 + '"}', {}, "REQUEST_TOO_LARGE"),
    ],
)
def test_a_proxy_body_that_is_not_a_small_json_document_is_refused(
    stack: LocalStack, body: str, headers: dict[str, str], code: str
) -> None:
    b64 = headers.pop("b64", None) is not None
    answer = routed(stack, max_request_bytes=1000).invoke(
        v1_post("/v1/orders", body, b64=b64, **headers)
    )
    assert error_code(answer) == code, answer
    assert api_requests(stack) == 0


def test_a_duplicate_key_is_refused(stack: LocalStack) -> None:
    """Parsers disagree on duplicate keys (first wins, last wins, error): the API gets none."""
    answer = routed(stack).invoke(v1_post("/v1/orders", '{"sku": "A", "nested": {"q": 1, "q": 2}}'))
    assert error_code(answer) == "BAD_REQUEST", answer
    assert "repeats the key 'q'" in json.loads(answer["body"])["error"]["message"]
    assert api_requests(stack) == 0


def test_a_proxy_body_reaches_the_api_as_written(stack: LocalStack) -> None:
    """Numbers a float cannot hold, escapes and spacing: the API reads what the caller wrote."""
    text = (
        '{ "amount": 0.1000000000000000055511151231257827,'
        ' "n": 123456789012345678901234567890,\n "s": "\\u00e9\\/x" }'
    )
    answer = routed(stack).invoke(v1_post("/v1/orders", text))
    assert answer["statusCode"] == 201, answer
    assert stack.api.requests[-1].body == text.encode()


@pytest.mark.parametrize("number", ["1e400", "-1e999", "Infinity", "NaN"])
def test_a_number_no_parser_agrees_on_is_refused(stack: LocalStack, number: str) -> None:
    answer = routed(stack).invoke(v1_post("/v1/orders", f'{{"amount": {number}}}'))
    assert error_code(answer) == "BAD_REQUEST", answer
    assert api_requests(stack) == 0


def search_events() -> list[tuple[str, dict[str, Any]]]:
    text = json.dumps(SEARCH)
    b64 = base64.b64encode(text.encode()).decode()
    return [
        ("direct", {"method": "POST", "path": "/v1/search", "body": SEARCH}),
        ("apigw v1", v1_post("/v1/search", text)),
        ("apigw v1 base64", v1_post("/v1/search", b64, b64=True)),
        ("http api v2", v2_post("apigw-http-v2.json", "/v1/search", text)),
        ("function url base64", v2_post("function-url.json", "/v1/search", b64, b64=True)),
    ]


@pytest.mark.parametrize(("shape", "request_event"), search_events())
def test_a_search_post_through_each_event_shape(
    stack: LocalStack, shape: str, request_event: dict[str, Any]
) -> None:
    answer = routed(stack).invoke(request_event)
    assert answer["statusCode"] == 200, (shape, answer)
    body = answer["body"] if shape == "direct" else json.loads(answer["body"])
    assert 1 <= len(body["results"]) <= 3
    assert all("item-0" in result["name"] for result in body["results"])
    assert stack.api.searches.accepted == [{**SEARCH, "category": None}]


def test_a_graphql_post(stack: LocalStack) -> None:
    query = "query One($id: Int!) { item(id: $id) { id name } }"
    answer = routed(stack).invoke(
        {"method": "POST", "path": "/graphql", "body": {"query": query, "variables": {"id": 7}}}
    )
    assert answer["statusCode"] == 200, answer
    assert answer["body"]["data"]["item"] == {"id": 7, "name": "item-07"}
    listing = routed(stack).invoke(
        {"method": "POST", "path": "/graphql", "body": {"query": "{ items(first: 2) { id } }"}}
    )
    assert listing["body"]["data"]["items"] == [{"id": 1}, {"id": 2}]


def test_a_graphql_get_is_not_a_route(stack: LocalStack) -> None:
    answer = routed(stack).invoke({"path": "/graphql", "query": {"query": "{ items { id } }"}})
    assert error_code(answer) == "METHOD_NOT_ALLOWED"
    assert api_requests(stack) == 0


# -- retries of writes ---------------------------------------------------------------------------


def test_a_reset_during_a_post_is_not_retried_without_an_idempotency_key(
    stack: LocalStack,
) -> None:
    harness = routed(stack)
    since = len(stack.api.requests)
    stack.api.inject(Fault(match="/v1/search", method="POST", reset=True))
    answer = harness.invoke({"method": "POST", "path": "/v1/search", "body": {"q": "x"}})
    assert error_code(answer) == "UPSTREAM_UNREACHABLE", answer
    assert [r.method for r in stack.api.requests[since:]] == ["POST"]
    assert harness.sleeps == []


def test_a_reset_after_the_search_ran_is_not_retried(stack: LocalStack) -> None:
    """The API did the work and the answer was lost: only the caller may decide to repeat."""
    harness = routed(stack)
    stack.api.inject(Fault(match="/v1/search", method="POST", reset_mid_body=True))
    answer = harness.invoke({"method": "POST", "path": "/v1/search", "body": SEARCH})
    assert error_code(answer) == "UPSTREAM_UNREACHABLE", answer
    assert stack.api.searches.accepted == [{**SEARCH, "category": None}]
    assert stack.api.counts["search"] == 1
    assert harness.sleeps == []


def test_a_keyed_route_is_retried_with_the_same_key_and_creates_one_order(
    stack: LocalStack,
) -> None:
    harness = routed(stack)
    before, since = len(stack.api.orders.created), len(stack.api.requests)
    stack.api.inject(Fault(match="/v1/orders", method="POST", reset_mid_body=True))
    answer = harness.invoke({"method": "POST", "path": "/v1/orders", "body": ORDER})
    assert answer["statusCode"] in (200, 201), answer
    posts = [r for r in stack.api.requests[since:] if r.method == "POST"]
    assert len(posts) == 2
    keys = {r.headers["idempotency-key"] for r in posts}
    assert keys == {answer["meta"]["request_id"]}
    assert len(stack.api.orders.created) - before == 1


def test_an_unkeyed_write_sends_no_idempotency_key(stack: LocalStack) -> None:
    routes = (Route("POST", "/v1/orders"),)
    answer = routed(stack, routes).invoke({"method": "POST", "path": "/v1/orders", "body": ORDER})
    assert answer["statusCode"] == 201
    assert "idempotency-key" not in stack.api.requests[-1].headers


def test_a_429_to_a_write_is_retried_even_without_a_key(stack: LocalStack) -> None:
    """A 429 says the write was not processed: sending it again cannot duplicate it."""
    harness = routed(stack, (Route("POST", "/v1/orders"),))
    since = len(stack.api.requests)
    first = harness.invoke({"method": "POST", "path": "/v1/orders", "body": ORDER})
    assert first["statusCode"] == 201
    stack.api.inject(Fault(match="/v1/orders", method="POST", status=429, body=b"{}"))
    second = harness.invoke({"method": "POST", "path": "/v1/orders", "body": ORDER})
    assert second["statusCode"] == 201, second
    assert [r.method for r in stack.api.requests[since:]].count("POST") == 3


# -- whole collections ---------------------------------------------------------------------------


def items_total(stack: LocalStack) -> int:
    harness = routed(stack)
    total = harness.invoke({"path": "/v1/items"})["body"]["total"]
    stack.reset_counts()
    return int(total)


@pytest.mark.parametrize("pointer", [None, "/links/next"])
def test_every_page_is_read_once_in_order(stack: LocalStack, pointer: str | None) -> None:
    total = items_total(stack)
    harness = routed(stack, next_link=pointer)
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "7"}, "paginate": True})
    assert answer["statusCode"] == 200, answer
    body = answer["body"]
    assert body["truncated"] is False
    assert "truncated_reason" not in body
    assert [page["page"] for page in body["pages"]] == list(range(1, len(body["pages"]) + 1))
    ids = [item["id"] for page in body["pages"] for item in page["items"]]
    assert len(ids) == total == len(set(ids))
    pages = [r.query for r in stack.api.requests[-len(body["pages"]) :]]
    assert api_requests(stack) == len(body["pages"]) == answer["meta"]["pages"]
    assert len({json.dumps(q, sort_keys=True) for q in pages}) == len(pages)  # none read twice


def test_max_pages_truncates(stack: LocalStack) -> None:
    harness = routed(stack)
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}, "max_pages": 2})
    body = answer["body"]
    assert (body["truncated"], body["truncated_reason"]) == (True, "max_pages")
    assert len(body["pages"]) == 2
    assert api_requests(stack) == 2


def test_the_configured_page_bound_caps_the_event(stack: LocalStack) -> None:
    harness = routed(stack, max_pages=3)
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}, "max_pages": 50})
    assert answer["body"]["truncated_reason"] == "max_pages"
    assert len(answer["body"]["pages"]) == 3


def test_exactly_max_pages_of_a_complete_collection_is_not_truncated(stack: LocalStack) -> None:
    total = items_total(stack)
    harness = routed(stack)
    query = {"page_size": str(total)}
    answer = harness.invoke({"path": "/v1/items", "query": query, "max_pages": 1})
    assert answer["body"]["truncated"] is False


def test_the_byte_bound_truncates(stack: LocalStack) -> None:
    harness = routed(stack)
    one = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}})
    size = len(json.dumps(one["body"]))
    stack.reset_counts()
    harness = routed(stack, max_collection_bytes=int(size * 2.5))
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}, "paginate": True})
    body = answer["body"]
    assert (body["truncated"], body["truncated_reason"]) == (True, "max_bytes")
    assert len(body["pages"]) == 2


def test_the_deadline_truncates(stack: LocalStack) -> None:
    harness = routed(stack)
    answer = harness.invoke(
        {"path": "/v1/items", "query": {"page_size": "5"}, "paginate": True}, remaining_ms=1400
    )
    body = answer["body"]
    assert (body["truncated"], body["truncated_reason"]) == (True, "deadline")
    assert len(body["pages"]) >= 1


@pytest.mark.parametrize(
    ("link", "needle"),
    [
        ("https://evil.example/v1/items?page=2", "another origin"),
        ("//evil.example/v1/items?page=2", "another origin"),
        ("/admin/keys", "not allowed"),
        ("/v1/items/%2e%2e/%2e%2e/admin", "refused"),
        ("/v1/items?page_size=5", "already read"),
    ],
)
def test_a_bad_next_link_stops_with_a_clear_code(stack: LocalStack, link: str, needle: str) -> None:
    harness = routed(stack)
    stack.api.inject(Fault(match="/v1/items", headers={"Link": f'<{link}>; rel="next"'}))
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}, "paginate": True})
    assert error_code(answer) == "UPSTREAM_PAGINATION", answer
    assert needle in answer["body"]["error"]["message"]
    assert api_requests(stack) == 1
    assert stack.api.counts.get("admin", 0) == 0


def test_a_proxy_caller_paginates_with_headers(stack: LocalStack) -> None:
    shaped = event("apigw-http-v2.json")
    shaped["headers"] = {"x-bridge-paginate": "true", "x-bridge-max-pages": "2"}
    shaped["rawQueryString"] = "page_size=5"
    answer = routed(stack).invoke(shaped)
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert len(body["pages"]) == 2
    assert body["truncated_reason"] == "max_pages"


def test_a_collection_over_the_inline_limit_without_a_bucket_is_cut_to_fit(
    stack: LocalStack,
) -> None:
    one = routed(stack).invoke({"path": "/v1/items", "query": {"page_size": "5"}})
    limit = int(len(json.dumps(one["body"])) * 2.5) + 1024
    harness = routed(stack, delivery=DeliverySettings(inline_limit=limit))
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}, "paginate": True})
    assert answer["body"]["truncated_reason"] == "max_bytes", answer
    assert len(answer["body"]["pages"]) == 2
    assert len(json.dumps(answer)) < limit


def test_the_answer_too_large_for_lambda_without_a_bucket_is_a_clear_error(
    stack: LocalStack,
) -> None:
    """Escaping makes a proxy answer larger than the API's bytes: measured as Lambda sends it."""
    quotes = json.dumps({"q": ['"'] * 1200}).encode()  # each '"' doubles in a proxy body
    harness = routed(stack, delivery=DeliverySettings(inline_limit=10_000))
    stack.api.inject(Fault(match="/v1/items", status=200, body=quotes))
    shaped = copy.deepcopy(event("apigw-http-v2.json"))
    answer = harness.invoke(shaped)
    assert error_code(answer) == "UPSTREAM_TOO_LARGE", answer

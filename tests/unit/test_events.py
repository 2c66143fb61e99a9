from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from okta_bridge.errors import RequestError, TokenError
from okta_bridge.request.callers import Caller
from okta_bridge.request.events import ApiResult, Invocation, failure, kind_of, parse_event, success

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


SAMPLE_CALLER = Caller(
    "proxy", "arn:aws:sts::123456789012:assumed-role/reporting-app/reporting-session"
)


def test_sample_events_are_recognised() -> None:
    assert parse_event(load("direct-default.json")) == Invocation("direct")
    assert parse_event(load("direct-path.json")) == Invocation(
        "direct", "/v1/items", (("page", "2"),)
    )
    assert parse_event(load("apigw-rest-v1.json")) == Invocation(
        "apigw_v1", "/v1/items", (("page", "2"), ("page_size", "5")), SAMPLE_CALLER
    )
    assert parse_event(load("apigw-http-v2.json")) == Invocation(
        "apigw_v2", "/v1/items", (("page", "2"), ("page_size", "5")), SAMPLE_CALLER
    )
    assert parse_event(load("function-url.json")) == Invocation(
        "apigw_v2", "/v1/items/7", (), SAMPLE_CALLER
    )


def test_v1_single_value_query_and_repeated_keys() -> None:
    event = load("apigw-rest-v1.json")
    event["multiValueQueryStringParameters"] = {"tag": ["a", "b"]}
    assert parse_event(event).query == (("tag", "a"), ("tag", "b"))
    event["multiValueQueryStringParameters"] = None
    event["queryStringParameters"] = {"x": "1"}
    assert parse_event(event).query == (("x", "1"),)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ([], "BAD_REQUEST"),
        ("path", "BAD_REQUEST"),
        ({"path": "/v1/data", "extra": 1}, "BAD_REQUEST"),
        ({"query": {"a": "1"}}, "BAD_REQUEST"),
        ({"path": "/v1/data", "query": "a=1"}, "BAD_REQUEST"),
        ({"path": "/v1/data", "query": {"a": {"b": "c"}}}, "BAD_REQUEST"),
        ({"path": "/v1/data", "query": {"a": True}}, "BAD_REQUEST"),
        ({"path": "/v1/data", "query": {"a": float("nan")}}, "BAD_REQUEST"),
    ],
)
def test_bad_direct_events(event: object, code: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_event(event)
    assert err.value.code == code


def test_numbers_in_direct_queries_become_strings() -> None:
    assert parse_event({"path": "/v1/items", "query": {"page": 2}}).query == (("page", "2"),)


@pytest.mark.parametrize("name", ["apigw-rest-v1.json", "apigw-http-v2.json"])
@pytest.mark.parametrize("method", ["post", "OPTIONS", "HEAD", "TRACE", "CONNECT", " GET"])
def test_only_route_methods_exactly_spelled_are_read(name: str, method: str) -> None:
    event = load(name)
    if "httpMethod" in event:
        event["httpMethod"] = method
    else:
        event["requestContext"]["http"]["method"] = method
    with pytest.raises(RequestError) as err:
        parse_event(event)
    assert err.value.code == "METHOD_NOT_ALLOWED"
    assert err.value.status == 405


def test_v2_query_must_be_utf8() -> None:
    event = load("apigw-http-v2.json")
    event["rawQueryString"] = "q=%ff"
    with pytest.raises(RequestError):
        parse_event(event)


RESULT = ApiResult(200, {"items": [1]}, '{"items": [1]}', 1, 12)


def test_direct_success_returns_parsed_json_and_meta() -> None:
    answer = success("direct", RESULT, "req-1")
    assert answer["statusCode"] == 200
    assert answer["body"] == {"items": [1]}
    assert answer["meta"]["request_id"] == "req-1"
    assert answer["meta"]["upstream_status"] == 200


@pytest.mark.parametrize("kind", ["apigw_v1", "apigw_v2"])
def test_proxy_success_body_is_a_json_string(kind: Any) -> None:
    answer = success(kind, RESULT, "req-1")
    assert isinstance(answer["body"], str)
    assert json.loads(answer["body"]) == {"items": [1]}
    assert answer["headers"]["Content-Type"].startswith("application/json")
    assert answer["headers"]["X-Request-ID"] == "req-1"
    assert ("isBase64Encoded" in answer) == (kind == "apigw_v1")


def test_errors_carry_code_stage_message_hint_and_request_id() -> None:
    error = TokenError("TOKEN_RATE_LIMITED", "Okta rate limited.", retry_after=2.2)
    direct = failure("direct", error, "req-9")
    assert direct["statusCode"] == 503
    assert direct["body"]["error"]["code"] == "TOKEN_RATE_LIMITED"
    assert direct["body"]["error"]["stage"] == "token"
    assert direct["body"]["error"]["request_id"] == "req-9"
    assert direct["body"]["error"]["hint"]
    proxy = failure("apigw_v2", error, "req-9")
    assert proxy["headers"]["Retry-After"] == "3"
    assert json.loads(proxy["body"])["error"]["code"] == "TOKEN_RATE_LIMITED"


def test_kind_of_never_raises() -> None:
    assert kind_of(None) == "direct"
    assert kind_of({"version": "2.0", "requestContext": "x"}) == "direct"
    assert kind_of({"httpMethod": "GET", "requestContext": {}}) == "apigw_v1"


def test_a_direct_write_and_a_collection_are_read() -> None:
    write = parse_event({"method": "POST", "path": "/v1/search", "body": {"q": "é", "n": [1]}})
    assert (write.method, write.body) == ("POST", '{"q":"é","n":[1]}'.encode())
    assert "é" not in repr(write)  # the caller's data stays out of reprs
    pages = parse_event({"path": "/v1/items", "max_pages": 3, "deliver": "s3"})
    assert (pages.paginate, pages.max_pages, pages.deliver) == (True, 3, "s3")
    assert parse_event({"path": "/v1/items", "paginate": True}).max_pages is None


@pytest.mark.parametrize(
    "event",
    [
        {"paginate": True},
        {"path": "/v1/items", "paginate": "yes"},
        {"path": "/v1/items", "max_pages": 0},
        {"path": "/v1/items", "max_pages": True},
        {"path": "/v1/items", "max_pages": 2.5},
        {"path": "/v1/items", "max_pages": 2, "paginate": False},
        {"path": "/v1/items", "deliver": "email"},
        {"path": "/v1/items", "method": "POST", "body": {"a": float("nan")}},
        {"path": "/v1/items", "method": "POST", "body": "raw"},
        {"path": "/v1/items", "body": {}},
        {"path": "/v1/items", "method": "POST", "paginate": True},
    ],
)
def test_bad_direct_keys_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(RequestError) as err:
        parse_event(event)
    assert err.value.code == "BAD_REQUEST"


def test_a_deep_body_is_refused_without_recursion() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RequestError) as err:
        parse_event({"method": "POST", "path": "/v1/search", "body": deep})
    assert "nested" in err.value.message


def test_the_body_cap_is_on_the_encoded_body() -> None:
    body = {"q": "x" * 100}
    assert parse_event({"method": "POST", "path": "/s", "body": body}, max_body=200).body
    with pytest.raises(RequestError) as err:
        parse_event({"method": "POST", "path": "/s", "body": body}, max_body=100)
    assert (err.value.code, err.value.status) == ("REQUEST_TOO_LARGE", 413)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Bridge-Paginate": "maybe"}, "BAD_REQUEST"),
        ({"X-Bridge-Max-Pages": "-1"}, "BAD_REQUEST"),
        ({"X-Bridge-Max-Pages": "٣"}, "BAD_REQUEST"),  # an Arabic-Indic digit is no number here
        ({"X-Bridge-Deliver": "ftp"}, "BAD_REQUEST"),
        ({"X-Bridge-Paginate": "false", "X-Bridge-Max-Pages": "2"}, "BAD_REQUEST"),
    ],
)
def test_bad_bridge_headers_are_refused(headers: dict[str, str], code: str) -> None:
    event = load("apigw-rest-v1.json")
    event["headers"] = headers
    with pytest.raises(RequestError) as err:
        parse_event(event)
    assert err.value.code == code


def test_bridge_headers_are_read_in_any_case() -> None:
    event = load("apigw-rest-v1.json")
    event["headers"] = {"x-BRIDGE-max-pages": "4", "X-Bridge-Deliver": "S3"}
    parsed = parse_event(event)
    assert (parsed.paginate, parsed.max_pages, parsed.deliver) == (True, 4, "s3")

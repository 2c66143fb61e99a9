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

from __future__ import annotations

import pytest

from okta_bridge.errors import RequestError
from okta_bridge.request.policy import Endpoint, PathPolicy, check_query, decode_path, encode_query

POLICY = PathPolicy(["/v1/data", "/v1/items", "/v1/items/*", "/v1/reports/**"])


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/v1/data", "/v1/data"),
        ("/v1/items", "/v1/items"),
        ("/v1/items/42", "/v1/items/42"),
        ("/v1/items/a%20b", "/v1/items/a%20b"),
        ("/v1/items/%41", "/v1/items/A"),
        ("/v1/items/caf%C3%A9", "/v1/items/caf%C3%A9"),
        ("/v1/items/café", "/v1/items/caf%C3%A9"),
        ("/v1/reports/2026/11", "/v1/reports/2026/11"),
        ("/v1/items/user@corp", "/v1/items/user@corp"),
    ],
)
def test_allowed_paths_come_out_canonical(raw: str, canonical: str) -> None:
    assert POLICY.resolve(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "/v1/admin",
        "/v1/items/1/2",
        "/v1/reports",
        "/v1",
        "/",
        "/v1/data/",
        "/V1/data",
    ],
)
def test_clean_paths_outside_the_list_are_not_allowed(raw: str) -> None:
    with pytest.raises(RequestError) as err:
        POLICY.resolve(raw)
    assert err.value.code == "PATH_NOT_ALLOWED"
    assert err.value.status == 403


@pytest.mark.parametrize(
    "raw",
    [
        "/v1/items/../../admin",
        "/v1/items/..",
        "/v1/items/.",
        "/v1/items/%2e%2e",
        "/v1/items/%2E%2E",
        "/v1/items/.%2e",
        "/v1/items/%252e%252e",
        "/v1/items/%2fadmin",
        "/v1/items/%5cadmin",
        "/v1/items/\uff0e\uff0e",
        "/v1/items/a\\..\\b",
        "//evil.example/v1/data",
        "https://evil.example/v1/data",
        "http:/v1/data",
        "evil.example/v1/data",
        "v1/data",
        "/v1//data",
        "",
    ],
)
def test_traversal_and_foreign_hosts_are_refused(raw: str) -> None:
    with pytest.raises(RequestError) as err:
        POLICY.resolve(raw)
    assert err.value.code == "PATH_NOT_ALLOWED"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        ["/v1/data"],
        {"p": 1},
        "/v1/data\r\nHost: evil",
        "/v1/data\x00",
        "/v1/items/%00",
        "/v1/items/%0d%0a",
        "/v1/data?x=1",
        "/v1/data#frag",
        "/v1/items/%zz",
        "/v1/items/%",
        "/v1/items/%ff",
        "/" + "a" * 3000,
    ],
)
def test_malformed_paths_are_bad_requests(raw: object) -> None:
    with pytest.raises(RequestError) as err:
        POLICY.resolve(raw)
    assert err.value.code == "BAD_REQUEST"
    assert err.value.status == 400


def test_decoded_segments_keep_a_trailing_slash_distinct() -> None:
    assert decode_path("/v1/items/") == ["v1", "items", ""]


def test_endpoint_keeps_the_configured_origin() -> None:
    endpoint = Endpoint.parse("https://api.corp:8443/v1/data?fmt=json")
    assert endpoint.origin == "https://api.corp:8443"
    assert endpoint.path == "/v1/data"
    assert endpoint.query == "fmt=json"
    assert endpoint.url("/v1/items", "") == "https://api.corp:8443/v1/items"
    assert endpoint.url("/v1/items", "a=1") == "https://api.corp:8443/v1/items?a=1"


def test_query_is_escaped_and_bounded() -> None:
    assert encode_query((("q", "a b&c=d"), ("page", "2"))) == "q=a%20b%26c%3Dd&page=2"
    with pytest.raises(RequestError):
        check_query(tuple((f"k{i}", "v") for i in range(51)))
    with pytest.raises(RequestError):
        check_query((("k", "v\r\nX: y"),))
    with pytest.raises(RequestError):
        check_query((("", "v"),))
    with pytest.raises(RequestError):
        check_query((("k", "v" * 5000),))

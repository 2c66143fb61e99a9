"""Issue 14: the public client, end to end on the local stack (secret, token, API over TLS)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from okta_bridge import Client, ConfigError, NetworkError, RequestError, Response, UpstreamError
from okta_bridge.client import request_id_of
from okta_bridge.errors import CATALOG
from okta_bridge.request.pages import json_pointer, next_link
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.sample_resources import ITEMS
from okta_bridge_dev.emulators.stack import LocalStack
from tests.library.conftest import LambdaContext


def upstream(stack: LocalStack) -> tuple[int, int, int]:
    """Secrets Manager reads, token requests, API requests since the last reset."""
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        sum(stack.api.counts.values()),
    )


@pytest.fixture
def client_for(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Client]:
    """A client configured as in a Lambda: ``BRIDGE_*`` and ``AWS_*`` in the environment."""

    def build(kind: str = "basic", **env: str) -> Client:
        secret = stack.store_secret(kind)
        for name, value in {**stack.environment(secret), **env}.items():
            monkeypatch.setenv(name, value)
        client = Client.from_env()
        stack.reset_counts()
        return client

    return build


def test_get_twice_reads_the_secret_once_mints_one_token_and_calls_the_api_twice(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    first = client.get("/v1/items", params={"page": "2"}, context=LambdaContext())
    second = client.get("/v1/data", context=LambdaContext())
    assert upstream(stack) == (1, 1, 2)
    assert isinstance(first, Response)
    assert first.status == 200
    assert [item["id"] for item in first.json()["items"]] == list(range(11, 21))
    assert second.json()["source"] == "sample-internal-api"
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.content) == first.json()


@pytest.mark.parametrize("kind", ["kms-rs256", "kms-es256"])
def test_a_client_whose_key_is_in_kms_signs_one_assertion_and_reads_the_api(
    stack: LocalStack, client_for: Callable[..., Client], kind: str
) -> None:
    client = client_for(kind)
    for _ in range(3):
        assert client.get("/v1/data", context=LambdaContext()).status == 200
    assert upstream(stack) == (1, 1, 3)
    assert stack.kms.counts["Sign"] == 1  # one kms:Sign for the one token request


def test_paginate_reads_every_page_once_in_order_and_stops_at_the_last(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    pages = list(client.paginate("/v1/items", params={"page_size": "7"}, context=LambdaContext()))
    ids = [item["id"] for page in pages for item in page.json()["items"]]
    assert ids == [item["id"] for item in ITEMS]
    assert len(pages) == 4  # 7 + 7 + 7 + 4
    assert stack.api.counts["items"] == 4
    assert upstream(stack) == (1, 1, 4)


def test_paginate_follows_a_json_pointer_too(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    pages = list(
        client.paginate("/v1/items", params={"page_size": "10"}, next_pointer="/links/next")
    )
    assert [page.json()["page"] for page in pages] == [1, 2, 3]


def test_paginate_refuses_a_next_page_on_another_origin(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    stack.api.inject(
        Fault(
            match="/v1/items",
            headers={"Link": '<https://evil.example/v1/items?page=2>; rel="next"'},
        )
    )
    pages = client.paginate("/v1/items")
    next(pages)
    with pytest.raises(UpstreamError) as refused:
        next(pages)
    assert refused.value.code == "UPSTREAM_PAGINATION"
    assert "another origin" in refused.value.message
    assert sum(stack.api.counts.values()) == 1


def test_paginate_refuses_a_next_page_outside_the_allow_list(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for(BRIDGE_ALLOWED_PATHS="/v1/items")
    stack.api.inject(Fault(match="/v1/items", headers={"Link": '</admin/keys>; rel="next"'}))
    pages = client.paginate("/v1/items")
    next(pages)
    with pytest.raises(UpstreamError) as refused:
        next(pages)
    assert refused.value.code == "UPSTREAM_PAGINATION"
    assert "not allowed" in refused.value.message
    assert stack.api.counts["admin"] == 0


def test_paginate_stops_at_max_pages_and_at_a_loop(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    with pytest.raises(UpstreamError) as limited:
        list(client.paginate("/v1/items", params={"page_size": "5"}, max_pages=2))
    assert limited.value.code == "UPSTREAM_PAGINATION"
    assert stack.api.counts["items"] == 2
    stack.api.inject(Fault(match="/v1/items", headers={"Link": '</v1/items>; rel="next"'}, times=5))
    with pytest.raises(UpstreamError) as looped:
        list(client.paginate("/v1/items"))
    assert looped.value.code == "UPSTREAM_PAGINATION"


def test_a_post_without_an_idempotency_key_is_not_retried_after_a_reset(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    client.get("/v1/data")  # token and connection ready: the reset hits the POST itself
    stack.api.inject(Fault(match="/v1/orders", reset=True))
    with pytest.raises(NetworkError) as failed:
        client.request("POST", "/v1/orders", json={"sku": "A-1"}, context=LambdaContext())
    assert failed.value.code == "UPSTREAM_UNREACHABLE"
    assert stack.api.counts["orders"] == 1  # sent once, never again
    assert stack.api.orders.created == []


def test_a_post_with_an_idempotency_key_is_retried_after_a_reset_and_creates_one_order(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    client.get("/v1/data")
    stack.api.inject(Fault(match="/v1/orders", reset=True))
    before = len(stack.api.orders.created)
    answer = client.request(
        "POST",
        "/v1/orders",
        json={"sku": "B-2"},
        idempotency_key="order-b-2",
        context=LambdaContext(),
    )
    assert answer.status == 201
    assert answer.attempts == 2
    assert answer.json()["idempotency_key"] == "order-b-2"
    assert len(stack.api.orders.created) == before + 1
    again = client.request("POST", "/v1/orders", json={"sku": "B-2"}, idempotency_key="order-b-2")
    assert again.json()["id"] == answer.json()["id"]  # the API recognised the repeat


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/nothing-here", "UPSTREAM_NOT_FOUND"),
        ("/v1/items/../../admin/keys", "BAD_REQUEST"),
        ("relative/path", "BAD_REQUEST"),
    ],
)
def test_errors_carry_the_catalog_codes(
    stack: LocalStack, client_for: Callable[..., Client], path: str, code: str
) -> None:
    client = client_for()
    with pytest.raises((UpstreamError, RequestError)) as failed:
        client.get(path)
    error: Any = failed.value
    assert error.code == code or error.code in {"PATH_NOT_ALLOWED", "BAD_REQUEST"}
    assert error.code in CATALOG
    assert error.stage
    assert error.hint
    assert stack.api.counts["admin"] == 0


def test_a_server_error_is_an_upstream_error_with_its_status(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    stack.api.inject(Fault(match="/v1/data", status=500, body=b"{}", times=5))
    with pytest.raises(UpstreamError) as failed:
        client.get("/v1/data")
    assert failed.value.code == "UPSTREAM_ERROR"
    assert failed.value.status == 502


def test_the_deadline_from_the_context_is_honoured(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    client.get("/v1/data")
    stack.api.inject(Fault(match="/v1/data", delay=5.0))
    started = time.monotonic()
    with pytest.raises(NetworkError) as failed:
        client.get("/v1/data", context=LambdaContext(remaining_ms=1_500))
    assert failed.value.code == "UPSTREAM_TIMEOUT"
    assert time.monotonic() - started < 3.0  # 1.5 s minus the margin, not the 5 s delay


def test_the_allow_list_applies_to_library_calls_when_set(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for(BRIDGE_ALLOWED_PATHS="/v1/items,/v1/items/*")
    assert client.get("/v1/items/3").json()["id"] == 3
    with pytest.raises(RequestError) as refused:
        client.get("/v1/data")
    assert refused.value.code == "PATH_NOT_ALLOWED"
    assert stack.api.counts["data"] == 0


def test_the_host_never_comes_from_the_call(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    for path in ("https://evil.example/v1/data", "//evil.example/v1/data"):
        with pytest.raises(RequestError):
            client.get(path)


def test_misuse_is_a_clear_request_error(
    stack: LocalStack, client_for: Callable[..., Client]
) -> None:
    client = client_for()
    cases: list[dict[str, Any]] = [
        {"method": "TRACE"},
        {"method": "GET", "json": {"a": 1}},
        {"method": "POST", "json": {"a": 1}, "data": b"x"},
        {"method": "POST", "json": {"a": float("nan")}},
        {"method": "POST", "idempotency_key": "bad key\r\nX-Injected: 1"},
        {"method": "POST", "data": b"x", "content_type": "text/plain\r\nX: y"},
    ]
    for case in cases:
        method = case.pop("method")
        with pytest.raises(RequestError) as refused:
            client.request(method, "/v1/orders", **case)
        assert refused.value.code == "BAD_REQUEST"
    assert sum(stack.api.counts.values()) == 0


def test_configuration_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError) as failed:
        Client.from_env({})
    assert "BRIDGE_SECRET_ID" in str(failed.value)


def test_link_and_pointer_parsing() -> None:
    header = '<https://a/x?page=1>; rel="prev", <https://a/x?page=3>; rel="next last"'
    assert next_link(header) == "https://a/x?page=3"
    assert next_link("<https://a/x>; rel=next") == "https://a/x"
    assert next_link('<https://a/x>; rel="nextish"') is None
    assert next_link("") is None
    document = {"a": {"b/c": [None, {"~d": "x"}]}}
    assert json_pointer(document, "/a/b~1c/1/~0d") == "x"
    assert json_pointer(document, "/a/missing") is None
    assert json_pointer(document, "/a/b~1c/7") is None


@pytest.mark.parametrize("value", ["req-é", "a b", "x\r\nX-Evil: 1", "", "r" * 200, None, 7])
def test_a_request_id_that_cannot_travel_in_a_header_is_replaced(value: object) -> None:
    """The id goes into X-Request-ID, Idempotency-Key and S3 keys: a hostile or odd context's
    id becomes a fresh UUID instead of an INTERNAL_ERROR (or a header injection)."""

    class Context:
        aws_request_id = value

    replaced = request_id_of(Context())
    assert replaced != value
    assert len(replaced) == 36
    assert request_id_of(type("C", (), {"aws_request_id": "8f6c-Ab.1:2_x"})()) == "8f6c-Ab.1:2_x"

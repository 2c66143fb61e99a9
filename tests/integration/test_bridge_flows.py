"""The bridge end to end against the local stack: moto Secrets Manager, Okta-like server, API."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import FakeClock, make_harness

EVENTS = Path(__file__).resolve().parents[2] / "events"
TOKEN_PATH = "/oauth2/default/v1/token"
KINDS = ["basic", "post", "jwt-rs256", "jwt-es256", "password"]


def event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def counts(stack: LocalStack) -> tuple[int, int, int]:
    api_total = sum(stack.api.counts.values())
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        api_total,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_each_client_authentication_path_reads_the_api(stack: LocalStack, kind: str) -> None:
    harness = make_harness(stack, kind)
    answer = harness.invoke({})
    assert answer["statusCode"] == 200, answer
    assert answer["body"]["source"] == "sample-internal-api"
    assert counts(stack) == (1, 1, 1)
    assert harness.invoke({})["statusCode"] == 200
    assert counts(stack) == (1, 1, 2)


@pytest.mark.parametrize(
    ("name", "path", "query"),
    [
        ("direct-default.json", "/v1/data", {}),
        ("direct-path.json", "/v1/items", {"page": ["2"]}),
        ("apigw-rest-v1.json", "/v1/items", {"page": ["2"], "page_size": ["5"]}),
        ("apigw-http-v2.json", "/v1/items", {"page": ["2"], "page_size": ["5"]}),
        ("function-url.json", "/v1/items/7", {}),
    ],
)
def test_each_event_shape(stack: LocalStack, name: str, path: str, query: dict[str, Any]) -> None:
    harness = make_harness(stack, allowed_paths=("/v1/data", "/v1/items", "/v1/items/*"))
    answer = harness.invoke(event(name))
    assert answer["statusCode"] == 200, answer
    seen = stack.api.requests[-1]
    assert (seen.path, seen.query) == (path, query)
    assert seen.headers["x-request-id"].startswith("req-")
    if name.startswith("direct"):
        assert isinstance(answer["body"], dict | list)
        assert answer["meta"]["upstream_status"] == 200
    else:
        assert isinstance(answer["body"], str)
        json.loads(answer["body"])
        assert answer["headers"]["X-Request-ID"] == seen.headers["x-request-id"]


def test_pagination_query_reaches_the_api(stack: LocalStack) -> None:
    harness = make_harness(stack, allowed_paths=("/v1/items",))
    answer = harness.invoke({"path": "/v1/items", "query": {"page": "3", "page_size": "10"}})
    assert answer["body"]["page"] == 3
    assert answer["body"]["next_page"] is None


def test_token_is_reused_until_its_refresh_moment_then_refreshed_once(stack: LocalStack) -> None:
    clock = FakeClock()
    harness = make_harness(stack, clock=clock)
    stack.okta.token_lifetime = 3600
    for _ in range(5):
        assert harness.invoke({})["statusCode"] == 200
        clock.now += 500  # 2500 s in all: well inside the lifetime
    assert stack.okta.counts["token"] == 1
    clock.now += 1100  # past 3600 - 2*300: the latest possible refresh moment
    for _ in range(3):
        assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 2
    assert stack.secrets_manager.counts["GetSecretValue"] == 2  # TTL (900 s) passed: re-read


def test_api_401_refreshes_the_token_once_and_retries_once(stack: LocalStack) -> None:
    # Any token counts as old enough to be refreshed (tests/security: a fresh one is not).
    harness = make_harness(stack, token_refresh_min_age=0.0)
    assert harness.invoke({})["statusCode"] == 200
    stack.reset_counts()
    stack.api.inject(Fault(status=401, body=b'{"error":"invalid_token"}', times=1))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    assert stack.okta.counts["token"] == 1
    assert sum(stack.api.counts.values()) == 2


def test_api_401_twice_is_upstream_unauthorized(stack: LocalStack) -> None:
    harness = make_harness(stack, token_refresh_min_age=0.0)
    stack.api.inject(Fault(status=401, body=b"{}", times=2))
    answer = harness.invoke({})
    assert answer["statusCode"] == 502
    assert answer["body"]["error"]["code"] == "UPSTREAM_UNAUTHORIZED"
    assert stack.okta.counts["token"] == 2


def test_invalid_client_rereads_the_secret_once_and_recovers(stack: LocalStack) -> None:
    clock = FakeClock()
    # A long TTL: the re-read must come from invalid_client, not from the cache's age.
    harness = make_harness(
        stack, "post", clock=clock, secret_name="rotating/post", secret_ttl=86_400
    )
    assert harness.invoke({})["statusCode"] == 200
    # Rotate: Okta now knows only a new secret, and Secrets Manager holds it.
    rotated = stack.rotate_client_secret("post", "rotating/post")
    assert rotated
    stack.reset_counts()
    clock.now += 3600  # the cached token has expired; the cached secret is still fresh
    answer = harness.invoke({})
    assert answer["statusCode"] == 200, answer
    assert stack.secrets_manager.counts["GetSecretValue"] == 1
    assert stack.okta.counts["token"] == 2  # invalid_client, then the new secret


def test_invalid_client_with_no_new_secret_fails_clearly(stack: LocalStack) -> None:
    harness = make_harness(stack, "basic", secret_name="broken/basic")
    value = stack.secret_value("basic")
    value["client_secret"] = "wrong-secret-value-0000000000"
    stack.secrets_manager.put_secret("broken/basic", value)
    stack.reset_counts()
    answer = harness.invoke({})
    assert answer["statusCode"] == 502
    error = answer["body"]["error"]
    assert (error["code"], error["stage"]) == ("TOKEN_REJECTED", "token")
    # The first read, one re-read, and one look for an AWSPENDING version (a rotation between
    # its steps); both found nothing new, so Okta was not asked again.
    assert stack.secrets_manager.counts["GetSecretValue"] == 3
    assert stack.okta.counts["token"] == 1


@pytest.mark.parametrize("status", [503, 502, 504])
def test_transient_api_status_is_retried(stack: LocalStack, status: int) -> None:
    harness = make_harness(stack)
    stack.api.inject(Fault(status=status, body=b"{}", times=1))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    assert answer["meta"]["attempts"] == 2
    assert len(harness.sleeps) == 1
    assert 0 <= harness.sleeps[0] <= 0.1  # full jitter within the first envelope


def test_429_retry_after_is_honoured(stack: LocalStack) -> None:
    harness = make_harness(stack)
    stack.api.inject(Fault(status=429, headers={"Retry-After": "2"}, body=b"{}", times=1))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    assert harness.sleeps == [2.0]


def test_okta_429_waits_for_rate_limit_reset(stack: LocalStack) -> None:
    harness = make_harness(stack)
    reset = str(int(time.time()) + 3)
    stack.okta.inject(
        Fault(
            match=TOKEN_PATH,
            status=429,
            headers={"X-Rate-Limit-Reset": reset, "X-Rate-Limit-Remaining": "0"},
            body=b'{"errorCode":"E0000047"}',
            times=1,
        )
    )
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    assert len(harness.sleeps) == 1
    assert 1.0 <= harness.sleeps[0] <= 3.0


def test_deadline_stops_retries(stack: LocalStack) -> None:
    harness = make_harness(stack)
    stack.api.inject(Fault(status=429, headers={"Retry-After": "30"}, body=b"{}", times=1))
    answer = harness.invoke({}, remaining_ms=5_000)
    assert answer["statusCode"] == 503
    assert answer["body"]["error"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert harness.sleeps == []


def test_persistent_503_gives_up_after_bounded_retries(stack: LocalStack) -> None:
    harness = make_harness(stack, max_retries=2)
    stack.api.inject(Fault(status=503, body=b"{}", times=10))
    answer = harness.invoke({})
    assert answer["statusCode"] == 502
    assert answer["body"]["error"]["code"] == "UPSTREAM_ERROR"
    assert "3 attempt" in answer["body"]["error"]["message"]
    assert len(harness.sleeps) == 2


def test_okta_rate_limit_exhausted_is_token_rate_limited(stack: LocalStack) -> None:
    harness = make_harness(stack, max_retries=0)
    stack.okta.inject(Fault(match=TOKEN_PATH, status=429, body=b"{}", times=1))
    answer = harness.invoke(json.loads((EVENTS / "apigw-http-v2.json").read_text()) | {})
    answer = harness.invoke({})
    assert answer["statusCode"] == 503
    assert answer["body"]["error"]["code"] == "TOKEN_RATE_LIMITED"


def test_slow_api_is_cut_at_the_deadline(stack: LocalStack) -> None:
    harness = make_harness(stack, max_retries=0)
    harness.invoke({})  # warm: token cached
    stack.api.inject(Fault(delay=3.0, times=1))
    answer = harness.invoke({}, remaining_ms=1_500)
    assert answer["statusCode"] == 504
    assert answer["body"]["error"]["code"] == "UPSTREAM_TIMEOUT"
    assert answer["body"]["error"]["stage"] == "network"


def test_connection_reset_is_retried(stack: LocalStack) -> None:
    harness = make_harness(stack)
    harness.invoke({})
    stack.api.inject(Fault(reset=True, times=1))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    assert answer["meta"]["attempts"] == 2


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(status=403, body=b"{}"), "UPSTREAM_FORBIDDEN"),
        (Fault(status=404, body=b"{}"), "UPSTREAM_NOT_FOUND"),
        (Fault(status=500, body=b"{}"), "UPSTREAM_ERROR"),
        (Fault(status=200, body=b"<html>not json</html>"), "UPSTREAM_NOT_JSON"),
        (Fault(status=200, body=b'{"a": "\xff"}'), "UPSTREAM_NOT_JSON"),
        (Fault(status=200, body=b"[" + b"1," * 600_000 + b"1]"), "UPSTREAM_TOO_LARGE"),
        (Fault(status=302, headers={"Location": "http://127.0.0.1:9/x"}), "UPSTREAM_REDIRECT"),
    ],
)
def test_api_failures_have_stable_codes(stack: LocalStack, fault: Fault, code: str) -> None:
    harness = make_harness(stack, max_response_bytes=1_000_000)
    stack.api.inject(fault)
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == code
    assert answer["body"]["error"]["stage"] == "upstream"


def test_redirect_to_another_host_is_refused_before_anything_is_sent_there(
    stack: LocalStack,
) -> None:
    harness = make_harness(stack)
    other = stack.start_extra_api()
    location = {"Location": f"{other.base_url}/v1/data"}
    stack.api.inject(Fault(status=302, headers=location, times=2))
    answer = harness.invoke({})
    assert other.requests == []
    assert answer["body"]["error"]["code"] == "UPSTREAM_REDIRECT"


def test_redirect_on_the_same_origin_keeps_authorization(stack: LocalStack) -> None:
    harness = make_harness(stack, allowed_paths=("/v1/items", "/v1/data"))
    stack.api.inject(Fault(match="/v1/items", status=307, headers={"Location": "/v1/data"}))
    answer = harness.invoke({"path": "/v1/items"})
    assert answer["statusCode"] == 200
    assert stack.api.requests[-1].path == "/v1/data"


@pytest.mark.parametrize(
    ("okta_error", "status", "code"),
    [
        ("invalid_scope", 400, "TOKEN_SCOPE_INVALID"),
        ("access_denied", 403, "TOKEN_ACCESS_DENIED"),
        ("invalid_grant", 400, "TOKEN_GRANT_INVALID"),
    ],
)
def test_okta_errors_map_to_token_codes(
    stack: LocalStack, okta_error: str, status: int, code: str
) -> None:
    harness = make_harness(stack)
    body = json.dumps({"error": okta_error, "error_description": "described"}).encode()
    # Twice: with DPoP in auto mode, a client credentials invalid_grant from a server whose
    # metadata lists DPoP is worth one proofed try (test_dpop.py), which gets the same answer.
    stack.okta.inject(Fault(match=TOKEN_PATH, status=status, body=body, times=2))
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == code
    assert "described" in answer["body"]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "TOKEN_INVALID_RESPONSE"),
        (
            b'{"token_type":"DPoP","access_token":"abcdefgh","expires_in":60}',
            "TOKEN_INVALID_RESPONSE",
        ),
        (b'{"token_type":"Bearer"}', "TOKEN_INVALID_RESPONSE"),
    ],
)
def test_unusable_token_answers(stack: LocalStack, body: bytes, code: str) -> None:
    harness = make_harness(stack)
    stack.okta.inject(Fault(match=TOKEN_PATH, status=200, body=body))
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == code


def test_token_without_expires_in_is_used_with_a_short_life(stack: LocalStack) -> None:
    harness = make_harness(stack)
    harness.invoke({})
    token = stack.okta.issued_tokens[-1]
    harness.bridge.tokens.clear()
    body = json.dumps({"token_type": "Bearer", "access_token": token}).encode()
    stack.okta.inject(Fault(match=TOKEN_PATH, status=200, body=body))
    assert harness.invoke({})["statusCode"] == 200


def test_okta_500_is_token_endpoint_error_without_retry(stack: LocalStack) -> None:
    harness = make_harness(stack)
    stack.okta.inject(Fault(match=TOKEN_PATH, status=500, body=b"{}"))
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "TOKEN_ENDPOINT_ERROR"
    assert stack.okta.counts["token"] == 1


def test_jwt_assertion_is_new_on_every_retry(stack: LocalStack) -> None:
    harness = make_harness(stack, "jwt-es256")
    stack.okta.inject(Fault(match=TOKEN_PATH, status=503, body=b"{}", times=1))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200  # a reused jti would be refused by the server
    assert stack.okta.counts["token"] == 2


@pytest.mark.parametrize(
    "path",
    [
        "/v1/items/../../admin",
        "/v1/items/%2e%2e/%2e%2e/admin",
        "//evil.example/v1/data",
        "https://evil.example/v1/data",
        "/v1/admin",
    ],
)
def test_traversal_and_foreign_hosts_never_reach_any_host(stack: LocalStack, path: str) -> None:
    harness = make_harness(stack, allowed_paths=("/v1/items/*",))
    answer = harness.invoke({"path": path})
    assert answer["statusCode"] == 403
    assert answer["body"]["error"]["code"] == "PATH_NOT_ALLOWED"
    assert sum(stack.api.counts.values()) == 0
    assert stack.okta.counts["token"] == 0


def test_a_trickling_body_is_cut_at_the_deadline(stack: LocalStack) -> None:
    harness = make_harness(stack, max_retries=0)
    harness.invoke({})
    stack.api.inject(Fault(trickle_interval=0.2, times=1))
    started = time.monotonic()
    answer = harness.invoke({}, remaining_ms=1_500)
    elapsed = time.monotonic() - started
    assert answer["body"]["error"]["code"] == "UPSTREAM_TIMEOUT"
    body_bytes = len(json.dumps({"source": "sample-internal-api"}))
    assert elapsed < body_bytes * 0.2  # cut well before the whole body could arrive


def test_connection_reset_mid_body_is_retried(stack: LocalStack) -> None:
    harness = make_harness(stack)
    harness.invoke({})
    stack.api.inject(Fault(reset_mid_body=True, times=1))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    assert answer["meta"]["attempts"] == 2


def test_concurrent_cold_calls_share_one_secret_read_and_one_token(stack: LocalStack) -> None:
    harness = make_harness(stack)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: harness.invoke({}), range(32)))
    assert [a["statusCode"] for a in answers] == [200] * 32
    assert stack.okta.counts["token"] == 1
    assert stack.secrets_manager.counts["GetSecretValue"] == 1
    assert sum(stack.api.counts.values()) == 32


def test_refresh_failure_keeps_serving_the_still_valid_token(stack: LocalStack) -> None:
    clock = FakeClock()
    harness = make_harness(stack, clock=clock, max_retries=0)
    assert harness.invoke({})["statusCode"] == 200
    clock.now += 3545  # past every refresh moment (<= 3600 - 60), still usable (< 3600 - 10)
    stack.okta.inject(Fault(match=TOKEN_PATH, status=503, body=b"{}", times=1))
    assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 2  # the refresh was tried, failed, old token served

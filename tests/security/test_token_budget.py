"""Finding 5: no invoker can make the bridge hammer Okta.

An allowed path that always answers 401 used to cost one token request per call, against a rate
limit every app of the Okta org shares; diagnose minted a token per call too. Now a 401 is
answered with a new token only for a token older than ``BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS``,
never for ``insufficient_scope``, an environment sends at most ``BRIDGE_TOKEN_BUDGET_PER_MINUTE``
token requests a minute, and diagnose asks Okta at most once per
``BRIDGE_DIAGNOSE_MIN_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import pytest

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.security.conftest import bridge_for, error_code

UNAUTHORIZED = Fault(
    match="/v1/data",
    status=401,
    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    body=b'{"error":"invalid_token"}',
    times=100,
)


def test_an_api_that_always_answers_401_costs_one_token_not_one_per_call(
    stack: LocalStack,
) -> None:
    harness = bridge_for(stack)
    stack.api.inject(UNAUTHORIZED)
    answers = [harness.invoke({}) for _ in range(20)]
    assert {error_code(a) for a in answers} == {"UPSTREAM_UNAUTHORIZED"}
    assert stack.okta.counts["token"] == 1  # the cold start's; a fresh token is not re-minted
    assert stack.api.counts["data"] == 20


def test_insufficient_scope_never_triggers_a_new_token(stack: LocalStack) -> None:
    harness = bridge_for(stack, env={"BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS": "0"})
    stack.api.inject(
        Fault(
            match="/v1/data",
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="admin"'},
            body=b'{"error":"insufficient_scope"}',
            times=10,
        )
    )
    answers = [harness.invoke({}) for _ in range(5)]
    assert {error_code(a) for a in answers} == {"UPSTREAM_UNAUTHORIZED"}
    assert stack.okta.counts["token"] == 1


def test_an_old_token_refused_with_401_is_still_refreshed_once(stack: LocalStack) -> None:
    harness = bridge_for(stack, env={"BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS": "0"})
    stack.api.inject(Fault(match="/v1/data", status=401, body=b"{}", times=1))
    assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 2


def test_token_requests_per_minute_are_bounded(stack: LocalStack) -> None:
    harness = bridge_for(
        stack,
        env={
            "BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS": "0",
            "BRIDGE_TOKEN_BUDGET_PER_MINUTE": "5",
        },
    )
    stack.api.inject(UNAUTHORIZED)
    codes = [error_code(harness.invoke({})) for _ in range(20)]
    assert stack.okta.counts["token"] == 5
    assert "TOKEN_BUDGET_EXHAUSTED" in codes
    refused = harness.invoke({})
    assert error_code(refused) == "TOKEN_BUDGET_EXHAUSTED"
    assert refused["statusCode"] == 503
    assert "BRIDGE_TOKEN_BUDGET_PER_MINUTE" in refused["body"]["error"]["message"]


def test_the_budget_refuses_in_a_proxy_answer_with_retry_after(stack: LocalStack) -> None:
    harness = bridge_for(
        stack,
        env={
            "BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS": "0",
            "BRIDGE_TOKEN_BUDGET_PER_MINUTE": "1",
            "BRIDGE_ALLOW_ANONYMOUS_PROXY": "on",
            "BRIDGE_ALLOWED_PATHS": "/v1/data",
        },
    )
    stack.api.inject(UNAUTHORIZED)
    event = {
        "version": "2.0",
        "rawPath": "/v1/data",
        "rawQueryString": "",
        "requestContext": {"http": {"method": "GET"}},
    }
    harness.invoke(event)
    refused = harness.invoke(event)
    assert refused["statusCode"] == 503
    assert 1 <= int(refused["headers"]["Retry-After"]) <= 60


def test_repeated_diagnose_runs_ask_okta_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = stack.store_secret("basic")
    for key, value in stack.environment(name).items():
        monkeypatch.setenv(key, value)
    harness = bridge_for(stack)
    stack.reset_counts()
    reports = [harness.invoke({"action": "diagnose"}) for _ in range(5)]
    assert all(report["ok"] for report in reports), reports[0]
    assert stack.okta.counts["token"] == 1
    token_hops = [
        next(h for h in r["hops"] if h["target"] == "token_host" and h["hop"] == "token")
        for r in reports
    ]
    assert "from_earlier_diagnose_s" not in token_hops[0]["facts"]
    assert all("from_earlier_diagnose_s" in hop["facts"] for hop in token_hops[1:])
    assert stack.api.counts["data"] == 5  # the API hop still runs each time


def test_a_failed_diagnose_token_request_is_reported_not_repeated(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = stack.store_secret("basic")
    for key, value in stack.environment(name).items():
        monkeypatch.setenv(key, value)
    harness = bridge_for(stack)
    stack.okta.inject(
        Fault(match="/oauth2", status=400, body=b'{"error":"invalid_scope"}', times=10)
    )
    stack.reset_counts()
    reports = [harness.invoke({"action": "diagnose"}) for _ in range(3)]
    assert stack.okta.counts["token"] == 1
    assert {r["first_failure"]["code"] for r in reports} == {"TOKEN_SCOPE_INVALID"}

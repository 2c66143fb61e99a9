"""On a cold start the API connection opens while the token request is in flight, and Okta's
while the first token request is being prepared (issue 18)."""

from __future__ import annotations

import time

import pytest

from okta_bridge.auth import dpop
from okta_bridge.auth.client_auth import KEYS
from okta_bridge.request.api import API_TARGET
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.integration.conftest import make_harness


def test_a_preconnected_connection_is_the_one_the_request_uses(stack: LocalStack) -> None:
    harness = make_harness(stack)
    http: HttpClient = harness.bridge.http
    url = f"{stack.api.base_url}/v1/data"
    stack.reset_counts()
    before = len(stack.api.requests)
    http.preconnect(url, tls=None, deadline=Deadline(5)).join(timeout=10)
    assert stack.api.wait_for_handshakes(1)
    assert len(stack.api.requests) == before  # a connection, no request
    response = http.request("GET", url, target=API_TARGET, deadline=Deadline(5), max_bytes=65536)
    assert response.status == 401  # no token: the point is the connection, not the answer
    assert len(stack.api.handshake_times) == 1


def test_the_cold_call_opens_the_api_connection_during_the_token_request(
    stack: LocalStack,
) -> None:
    harness = make_harness(stack)
    stack.okta.added_latency = 0.3
    try:
        started = time.monotonic()
        answer = harness.invoke({})
    finally:
        stack.okta.added_latency = 0.0
    assert answer["statusCode"] == 200
    assert len(stack.api.handshake_times) == 1  # one connection, opened early and then used
    assert stack.api.handshake_times[0] - started < 0.3  # before Okta's answer came


def test_a_warm_call_opens_nothing_new(stack: LocalStack) -> None:
    harness = make_harness(stack)
    assert harness.invoke({})["statusCode"] == 200
    stack.reset_counts()
    assert harness.invoke({})["statusCode"] == 200
    assert stack.api.handshake_times == []


def test_okta_s_connection_opens_while_the_first_dpop_key_is_made(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
    harness = make_harness(stack, dpop="on")
    made = dpop.ProofKey.__init__
    seen: list[bool] = []

    def slow_key(self: dpop.ProofKey) -> None:
        # While the key is being made, Okta's handshake happens (not after: this would wait 5 s
        # for nothing, and the test fail).
        seen.append(stack.okta.wait_for_handshakes(1, timeout=5))
        made(self)

    monkeypatch.setattr(dpop.ProofKey, "__init__", slow_key)
    try:
        answer = harness.invoke({})
    finally:
        stack.okta.require_dpop(CLIENT_IDS["basic"], on=False)
    assert answer["statusCode"] == 200
    assert seen == [True]
    assert len(stack.okta.handshake_times) == 1  # both token requests (the nonce round) used it


def test_okta_s_connection_opens_while_a_pem_key_is_parsed(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = make_harness(stack, "jwt-rs256")
    KEYS.clear()
    load = KEYS.load
    seen: list[bool] = []

    def slow_load(pem: str) -> object:
        seen.append(stack.okta.wait_for_handshakes(1, timeout=5))
        return load(pem)

    monkeypatch.setattr(KEYS, "load", slow_load)
    assert harness.invoke({})["statusCode"] == 200
    assert seen == [True]
    assert len(stack.okta.handshake_times) == 1


def test_a_client_secret_request_opens_its_connection_itself(stack: LocalStack) -> None:
    """Nothing to prepare: no thread, one connection, opened by the request."""
    harness = make_harness(stack, dpop="off")
    assert harness.invoke({})["statusCode"] == 200
    assert len(stack.okta.handshake_times) == 1
    assert (
        harness.bridge.tokens._endpoint._slow_to_prepare(
            harness.bridge.secrets.current(), wanted=False
        )
        is False
    )

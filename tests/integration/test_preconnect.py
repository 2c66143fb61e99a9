"""On a cold start the API connection opens while the token request is in flight."""

from __future__ import annotations

import time

from okta_bridge.request.api import API_TARGET
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import LocalStack
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

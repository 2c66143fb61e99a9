"""Finding 2: redirects never leave the configured origin, nor the allow-list.

The transport used to follow a redirect to any https origin (dropping only ``Authorization``)
and return that host's JSON: an SSRF into the VPC, the VPN and the internet through any open
redirect in the internal API. Same-origin redirects kept the token and were never checked
against the allow-list. Now another origin is refused before anything is sent there, and a
same-origin redirect is followed only to a path the same policy accepts, re-encoded.
"""

from __future__ import annotations

import pytest

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import LocalStack
from tests.security.conftest import bridge_for, error_code


def redirect(location: str, status: int = 302) -> Fault:
    return Fault(match="/v1/data", status=status, headers={"Location": location}, body=b"")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_reaches_nothing(
    stack: LocalStack, other_api: SampleApi, status: int
) -> None:
    harness = bridge_for(stack)
    other_api.reset_counts()
    stack.api.inject(redirect(f"{other_api.base_url}/v1/data", status))
    answer = harness.invoke({})
    assert error_code(answer) == "UPSTREAM_REDIRECT"
    assert "another origin" in answer["body"]["error"]["message"]
    assert sum(other_api.counts.values()) == 0


@pytest.mark.parametrize(
    "location",
    [
        "https://localhost:{port}/v1/data",  # same port, another name: another origin
        "https://127.0.0.1:1/v1/data",
        "//127.0.0.2:{port}/v1/data",
        "https://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:{port}/v1/data",
    ],
)
def test_other_hosts_ports_and_schemes_are_refused(stack: LocalStack, location: str) -> None:
    harness = bridge_for(stack)
    stack.api.inject(redirect(location.format(port=stack.api.port)))
    answer = harness.invoke({})
    assert error_code(answer) == "UPSTREAM_REDIRECT"
    assert stack.api.counts["data"] == 1  # the redirect itself, nothing after it


@pytest.mark.parametrize(
    "location",
    [
        "/admin/keys",
        "/internal/config",
        "/v1/items/../../admin/keys",
        "/v1/items/..;/..;/admin/keys",
        "/v1/items/%2e%2e/%2e%2e/admin/keys",
        "/v1/items/..%2fadmin",
        "https://{host}/admin/keys",
        "https://user:pass@{host}/admin/keys",
    ],
)
def test_a_same_origin_redirect_outside_the_allow_list_reaches_nothing(
    stack: LocalStack, servlet_api: SampleApi, location: str
) -> None:
    harness = bridge_for(
        stack, env={"BRIDGE_ALLOWED_PATHS": "/v1/data,/v1/items/**"}, api=servlet_api
    )
    servlet_api.reset_counts()
    host = f"{servlet_api.host}:{servlet_api.port}"
    servlet_api.inject(redirect(location.format(host=host)))
    answer = harness.invoke({})
    assert error_code(answer) == "UPSTREAM_REDIRECT", answer
    assert servlet_api.counts.get("admin", 0) == 0
    assert servlet_api.counts.get("internal", 0) == 0
    assert servlet_api.counts["data"] == 1


def test_an_allowed_same_origin_redirect_is_followed_canonically(
    stack: LocalStack, servlet_api: SampleApi
) -> None:
    harness = bridge_for(
        stack, env={"BRIDGE_ALLOWED_PATHS": "/v1/data,/v1/items/*"}, api=servlet_api
    )
    servlet_api.reset_counts()
    servlet_api.clear_requests()
    host = f"{servlet_api.host}:{servlet_api.port}"
    servlet_api.inject(redirect(f"https://someone@{host}/v1/items/%37?page=%31&x=a%3Bb"))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200, answer
    assert answer["body"]["id"] == 7
    followed = servlet_api.requests[-1]
    assert followed.path == "/v1/items/7"
    assert followed.query == {"page": ["1"], "x": ["a;b"]}
    assert "authorization" in followed.headers  # same origin: the token goes along

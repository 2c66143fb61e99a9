"""Finding 6: callers are authenticated by AWS, or refused; per-caller routes; diagnose only for
direct invocations, and only when enabled.

Proxy events (API Gateway, Function URL) reach the API only with an identity AWS authenticated
(IAM auth, or an authorizer); a Function URL with ``AuthType: NONE`` in front would otherwise open
the internal API to the internet without anyone noticing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError
from okta_bridge.request import callers, policy
from okta_bridge_dev.emulators.stack import LocalStack
from tests.security.conftest import bridge_for, error_code

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEAM_A = "arn:aws:sts::123456789012:assumed-role/team-a/session-1"
TEAM_B = "arn:aws:sts::123456789012:assumed-role/team-b/session-7"


def event(name: str, *, identity: str | None, path: str = "/v1/items") -> dict[str, Any]:
    """A sample proxy event for ``path``, its AWS identity replaced (None: anonymous)."""
    data: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    context = data["requestContext"]
    if name == "apigw-rest-v1.json":
        data["path"] = path
        context["identity"] = {"sourceIp": "203.0.113.10", "userArn": identity}
    else:
        data["rawPath"] = path
        data["rawQueryString"] = ""
        context.pop("authorizer", None)
        if identity is not None:
            context["authorizer"] = {"iam": {"userArn": identity, "accountId": "123456789012"}}
    return data


PROXY_EVENTS = ("apigw-rest-v1.json", "apigw-http-v2.json", "function-url.json")


@pytest.mark.parametrize("name", PROXY_EVENTS)
def test_an_anonymous_proxy_event_is_refused_before_any_request(
    stack: LocalStack, name: str
) -> None:
    harness = bridge_for(stack, env={"BRIDGE_ALLOWED_PATHS": "/v1/items"})
    answer = harness.invoke(event(name, identity=None))
    assert answer["statusCode"] == 403
    assert error_code(answer) == "CALLER_NOT_AUTHENTICATED"
    assert sum(stack.api.counts.values()) == 0
    assert stack.okta.counts["token"] == 0


@pytest.mark.parametrize("name", PROXY_EVENTS)
def test_an_iam_authenticated_proxy_event_is_served(stack: LocalStack, name: str) -> None:
    harness = bridge_for(stack, env={"BRIDGE_ALLOWED_PATHS": "/v1/items"})
    answer = harness.invoke(event(name, identity=TEAM_A))
    assert answer["statusCode"] == 200, answer


def test_an_authorizer_identity_counts_as_authenticated(stack: LocalStack) -> None:
    harness = bridge_for(stack, env={"BRIDGE_ALLOWED_PATHS": "/v1/items"})
    lambda_authorized = event("apigw-rest-v1.json", identity=None)
    lambda_authorized["requestContext"]["authorizer"] = {"principalId": "partner-42"}
    assert harness.invoke(lambda_authorized)["statusCode"] == 200
    jwt_authorized = event("apigw-http-v2.json", identity=None)
    jwt_authorized["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "svc-7"}}}
    assert harness.invoke(jwt_authorized)["statusCode"] == 200


def test_anonymous_proxy_callers_only_when_explicitly_allowed(stack: LocalStack) -> None:
    harness = bridge_for(
        stack,
        env={"BRIDGE_ALLOWED_PATHS": "/v1/items", "BRIDGE_ALLOW_ANONYMOUS_PROXY": "on"},
    )
    assert harness.invoke(event("function-url.json", identity=None))["statusCode"] == 200


def test_caller_routes_give_each_team_its_own_paths(stack: LocalStack) -> None:
    routes = {
        "arn:aws:iam::123456789012:role/team-a": ["/v1/items", "/v1/items/*"],
        "arn:aws:sts::123456789012:assumed-role/team-b/*": ["/v1/data"],
    }
    harness = bridge_for(
        stack,
        env={
            "BRIDGE_ALLOWED_PATHS": "/v1/data,/v1/items,/v1/items/*",
            "BRIDGE_CALLER_ROUTES": json.dumps(routes),
        },
    )
    # team-a's session matches its role's ARN; team-b's session matches a session pattern.
    assert harness.invoke(event("apigw-http-v2.json", identity=TEAM_A))["statusCode"] == 200
    denied = harness.invoke(event("apigw-http-v2.json", identity=TEAM_A, path="/v1/data"))
    assert error_code(denied) == "PATH_NOT_ALLOWED"
    assert (
        harness.invoke(event("apigw-http-v2.json", identity=TEAM_B, path="/v1/data"))["statusCode"]
        == 200
    )
    denied = harness.invoke(event("apigw-http-v2.json", identity=TEAM_B))
    assert error_code(denied) == "PATH_NOT_ALLOWED"
    stranger = "arn:aws:sts::123456789012:assumed-role/team-c/s"
    unknown = harness.invoke(event("apigw-rest-v1.json", identity=stranger))
    assert error_code(unknown) == "CALLER_NOT_ALLOWED"
    assert stack.api.counts.get("data", 0) + stack.api.counts.get("items", 0) == 2


def test_caller_routes_never_widen_the_global_allow_list(stack: LocalStack) -> None:
    routes = {"arn:aws:iam::123456789012:role/team-a": ["/v1/items/**", "/admin/**"]}
    harness = bridge_for(
        stack,
        env={"BRIDGE_ALLOWED_PATHS": "/v1/items", "BRIDGE_CALLER_ROUTES": json.dumps(routes)},
    )
    answer = harness.invoke(event("apigw-http-v2.json", identity=TEAM_A, path="/admin/keys"))
    assert error_code(answer) == "PATH_NOT_ALLOWED"
    assert sum(stack.api.counts.values()) == 0


def test_diagnose_is_never_run_for_a_proxy_event(stack: LocalStack) -> None:
    harness = bridge_for(stack, env={"BRIDGE_ALLOWED_PATHS": "/v1/items"})
    proxied = event("function-url.json", identity=TEAM_A)
    proxied["action"] = "diagnose"
    answer = harness.invoke(proxied)
    assert "hops" not in answer
    assert "action" not in answer
    assert answer["statusCode"] == 200  # served as the request it is, nothing more


def test_diagnose_can_be_switched_off(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    name = stack.store_secret("basic")
    for key, value in stack.environment(name).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_DIAGNOSE", "off")
    harness = bridge_for(stack)
    answer = harness.invoke({"action": "diagnose"})
    assert error_code(answer) == "DIAGNOSE_DISABLED"
    assert answer["statusCode"] == 403
    assert stack.okta.counts["token"] == 0
    assert stack.secrets_manager.counts["GetSecretValue"] == 0


def post(identity: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    shaped = event("apigw-http-v2.json", identity=identity, path=path)
    shaped["requestContext"]["http"]["method"] = "POST"
    shaped["body"] = json.dumps(body)
    shaped["headers"] = {"content-type": "application/json"}
    return shaped


def test_a_caller_route_written_for_reading_grants_no_write(stack: LocalStack) -> None:
    """Issue 15: a write route opened for one team must not become a write for every team
    whose caller routes name the path (routes written when the bridge only read)."""
    routes = {
        "arn:aws:iam::123456789012:role/team-a": ["/v1/orders", "POST /v1/orders"],
        "arn:aws:iam::123456789012:role/team-b": ["/v1/orders", "/v1/**"],
    }
    harness = bridge_for(
        stack,
        env={
            "BRIDGE_ALLOWED_ROUTES": "GET /v1/orders, POST /v1/orders",
            "BRIDGE_CALLER_ROUTES": json.dumps(routes),
        },
    )
    refused = harness.invoke(post(TEAM_B, "/v1/orders", {"sku": "b"}))
    assert error_code(refused) == "PATH_NOT_ALLOWED", refused
    assert "POST" in json.loads(refused["body"])["error"]["message"]
    assert stack.api.counts.get("orders", 0) == 0
    served = harness.invoke(post(TEAM_A, "/v1/orders", {"sku": "a"}))
    assert served["statusCode"] == 201, served
    assert [order["order"] for order in stack.api.orders.created][-1:] == [{"sku": "a"}]


def test_a_caller_route_method_must_be_one_the_bridge_sends() -> None:
    assert callers.ROUTE_METHODS == policy.ROUTE_METHODS
    for entry in ("post /v1/orders", "TRACE /v1/orders", "POST", "POST /v1/a /v1/b"):
        env = {"BRIDGE_SECRET_ID": "s", "BRIDGE_CALLER_ROUTES": json.dumps({"*": [entry]})}
        with pytest.raises(ConfigError):
            Settings.from_env(env)

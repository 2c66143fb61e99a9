"""DPoP end to end (issue 12): the bridge against an Okta app that requires DPoP and an API that
validates it as RFC 9449 sections 4.3 and 7 say, over real TLS.

The local Okta answers as Okta does (a missing proof: ``invalid_dpop_proof``; the first proof:
``use_dpop_nonce`` with a ``DPoP-Nonce`` header); the sample API checks the scheme, the proof's
signature, ``htm``, ``htu``, ``iat``, ``ath``, the key's thumbprint against ``cnf.jkt`` and each
``jti`` once. Every test starts with a fresh DPoP state (tests/conftest.py), as a new execution
environment would.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from okta_bridge.auth.dpop import DPOP, b64url
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.integration.conftest import make_harness

KINDS = ("basic", "post", "jwt-rs256", "jwt-es256", "password")


@pytest.fixture
def dpop_app(stack: LocalStack) -> Iterator[Any]:
    """``dpop_app(kind)``: that kind's Okta app now requires DPoP (switched back afterwards).
    The servers' recorded requests start empty."""
    stack.api.clear_requests()
    stack.okta.clear_requests()
    switched: list[str] = []

    def require(kind: str) -> str:
        client_id = CLIENT_IDS[kind]
        stack.okta.require_dpop(client_id, on=True)
        switched.append(client_id)
        return client_id

    yield require
    for client_id in switched:
        stack.okta.require_dpop(client_id, on=False)


def counts(stack: LocalStack) -> tuple[int, int, int]:
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        sum(v for k, v in stack.api.counts.items() if k != "not_found"),
    )


def last_api_request(stack: LocalStack) -> Any:
    return stack.api.requests[-1]


def proof_claims(request: Any) -> dict[str, Any]:
    return dict(jwt.decode(request.headers["dpop"], options={"verify_signature": False}))


# -- every grant, with DPoP required ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_grant_works_with_dpop_required_and_stays_0_0_1_warm(
    stack: LocalStack, dpop_app: Any, kind: str
) -> None:
    dpop_app(kind)
    harness = make_harness(stack, kind, dpop="on")
    assert harness.invoke({})["statusCode"] == 200
    assert counts(stack) == (1, 2, 1)  # the proof, then the proof with Okta's nonce
    assert stack.okta.dpop_counts["nonce_challenge"] == 1
    request = last_api_request(stack)
    token = harness.bridge.tokens.get(Deadline(5))
    assert token.scheme == "DPoP"
    assert request.headers["authorization"] == f"DPoP {token.value}"
    claims = proof_claims(request)
    assert (claims["htm"], claims["htu"]) == ("GET", f"{stack.api.base_url}/v1/data")
    assert "ath" in claims
    bound = jwt.decode(token.value, options={"verify_signature": False})
    assert bound["cnf"]["jkt"] == DPOP.key.thumbprint
    stack.reset_counts()
    for _ in range(3):
        assert harness.invoke({})["statusCode"] == 200
    assert counts(stack) == (0, 0, 3)
    assert stack.api.dpop_counts["accepted"] == 3
    assert stack.api.dpop_counts.get("invalid", 0) == 0


def test_the_secrets_dpop_true_needs_no_setting(stack: LocalStack, dpop_app: Any) -> None:
    dpop_app("basic")
    name = "dpop/secret-true"
    stack.secrets_manager.put_secret(name, {**stack.secret_value("basic"), "dpop": True})
    harness = make_harness(stack, "basic", secret_name=name, store=False)
    assert harness.bridge.settings.dpop == "auto"
    assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 2
    assert stack.okta.dpop_counts.get("missing", 0) == 0  # never a proof-less failed grant


# -- the nonces ------------------------------------------------------------------------------


def test_a_nonce_the_server_retires_costs_one_request_not_a_failure(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="on")
    assert harness.invoke({})["statusCode"] == 200
    stack.okta.expire_dpop_nonces()  # the nonce this environment holds is now refused
    stack.reset_counts()
    harness.bridge.tokens.clear()  # the next call needs a new token
    assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 2
    assert stack.okta.dpop_counts["nonce_challenge"] == 1
    stack.okta.reset_dpop_nonces()


def test_a_rotated_nonce_is_picked_up_from_the_answer(stack: LocalStack, dpop_app: Any) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="on")
    assert harness.invoke({})["statusCode"] == 200
    newest = stack.okta.rotate_dpop_nonce()  # the old one still works, and answers carry this
    stack.reset_counts()
    harness.bridge.tokens.clear()
    assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 1  # the old nonce was still good
    assert DPOP.nonce(stack.okta.token_url) == newest
    stack.okta.reset_dpop_nonces()


def test_the_apis_own_nonce_costs_one_retry_and_is_remembered(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    stack.api.require_dpop_nonce = True
    harness = make_harness(stack, "basic", dpop="on")
    assert harness.invoke({})["statusCode"] == 200
    assert stack.api.dpop_counts["nonce_challenge"] == 1
    assert stack.okta.counts["token"] == 2  # the API's nonce never costs a token
    stack.reset_counts()
    assert harness.invoke({})["statusCode"] == 200
    assert stack.api.dpop_counts.get("nonce_challenge", 0) == 0
    assert sum(v for k, v in stack.api.counts.items() if k != "not_found") == 1


# -- retries, refreshes and redirects: a new proof each time ----------------------------------


def test_a_retry_and_a_refresh_each_send_a_new_proof(stack: LocalStack, dpop_app: Any) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="on", token_refresh_min_age=0.0)
    stack.api.inject(Fault(match="/v1/data", status=503, body=b"{}", times=1))
    assert harness.invoke({})["statusCode"] == 200
    stack.api.inject(Fault(match="/v1/data", status=401, body=b"{}", times=1))
    assert harness.invoke({})["statusCode"] == 200
    proofs = [r.headers["dpop"] for r in stack.api.requests if "dpop" in r.headers]
    assert len(proofs) == 4  # 503 + retry, then 401 + the call with the refreshed token
    assert len({proof_claims_of(p)["jti"] for p in proofs}) == 4
    assert stack.api.dpop_counts.get("replay", 0) == 0
    assert stack.okta.counts["token"] == 3  # the cold nonce round, then one refresh


def proof_claims_of(proof: str) -> dict[str, Any]:
    return dict(jwt.decode(proof, options={"verify_signature": False}))


def test_a_same_origin_redirect_hop_gets_a_proof_for_its_own_url(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="on", allowed_paths=("/v1/data", "/v1/items"))
    stack.api.inject(Fault(match="/v1/data", status=307, headers={"Location": "/v1/items"}))
    assert harness.invoke({})["statusCode"] == 200
    hop = last_api_request(stack)
    assert hop.path == "/v1/items"
    assert proof_claims(hop)["htu"] == f"{stack.api.base_url}/v1/items"


# -- what the API refuses --------------------------------------------------------------------


def _send(stack: LocalStack, headers: dict[str, str]) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
    target = urllib.parse.urlsplit(stack.api.base_url)
    connection = http.client.HTTPSConnection(
        str(target.hostname), target.port, context=context, timeout=10
    )
    try:
        connection.request("GET", "/v1/data", headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheader("www-authenticate") or ""
    finally:
        connection.close()


def test_a_replayed_proof_and_a_bearer_use_are_refused_by_the_api(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="on")
    assert harness.invoke({})["statusCode"] == 200
    token = harness.bridge.tokens.get(Deadline(5))
    proof = DPOP.proof("GET", f"{stack.api.base_url}/v1/data", token=token.value)
    headers = {"Authorization": f"DPoP {token.value}", "DPoP": proof}
    assert _send(stack, headers)[0] == 200
    status, challenge = _send(stack, headers)  # the same proof again
    assert status == 401
    assert "invalid_dpop_proof" in challenge
    status, _ = _send(stack, {"Authorization": f"Bearer {token.value}"})
    assert status == 401  # a bound token is no bearer token


# -- auto, on and off --------------------------------------------------------------------------


def test_auto_with_no_configuration_learns_that_the_app_requires_dpop(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic")
    assert harness.bridge.settings.dpop == "auto"
    assert harness.invoke({})["statusCode"] == 200
    # A proof-less request refused, then the proof, then the proof with the nonce.
    assert stack.okta.counts["token"] == 3
    assert stack.okta.dpop_counts["missing"] == 1
    stack.reset_counts()
    harness.bridge.tokens.clear()
    assert harness.invoke({})["statusCode"] == 200
    assert stack.okta.counts["token"] == 1  # learned, and the nonce is known
    assert stack.okta.dpop_counts.get("missing", 0) == 0


def test_auto_against_an_app_without_dpop_sends_no_proof_and_costs_nothing(
    stack: LocalStack,
) -> None:
    harness = make_harness(stack, "basic")
    assert harness.invoke({})["statusCode"] == 200
    assert counts(stack) == (1, 1, 1)
    assert stack.okta.dpop_counts.get("proof", 0) == 0
    request = last_api_request(stack)
    assert request.headers["authorization"].startswith("Bearer ")
    assert "dpop" not in request.headers
    assert not DPOP.has_key  # no key was even made


def test_auto_against_a_generic_rfc_9449_server_uses_its_metadata(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    stack.okta.missing_proof_error = "invalid_grant"
    try:
        harness = make_harness(stack, "basic")
        assert harness.invoke({})["statusCode"] == 200
        assert stack.okta.counts["token"] == 3
    finally:
        stack.okta.missing_proof_error = "invalid_dpop_proof"


def test_off_against_an_app_that_requires_dpop_is_a_clear_error(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="off")
    answer = harness.invoke({})
    error = answer["body"]["error"]
    assert error["code"] == "TOKEN_DPOP_REQUIRED"
    assert error["stage"] == "token"
    assert "BRIDGE_DPOP" in error["hint"]
    assert stack.okta.counts["token"] == 1


def test_a_bearer_only_gateway_is_named_and_the_token_never_downgraded(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    stack.api.dpop_support = "bearer_only"
    harness = make_harness(stack, "basic", dpop="on", token_refresh_min_age=0.0)
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "UPSTREAM_DPOP_UNSUPPORTED"
    assert all(
        not r.headers.get("authorization", "").startswith("Bearer ") for r in stack.api.requests
    )
    assert stack.okta.counts["token"] == 2  # no refresh: a new token would be bound too


def test_a_dpop_token_the_api_refuses_is_not_refreshed_in_a_loop(
    stack: LocalStack, dpop_app: Any
) -> None:
    dpop_app("basic")
    harness = make_harness(stack, "basic", dpop="on", token_refresh_min_age=0.0)
    challenge = 'DPoP algs="ES256", error="invalid_dpop_proof", error_description="htu"'
    stack.api.inject(
        Fault(match="/v1/data", status=401, headers={"WWW-Authenticate": challenge}, body=b"{}")
    )
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "UPSTREAM_DPOP_REJECTED"
    assert stack.okta.counts["token"] == 2


# -- nothing of DPoP in the logs or answers ---------------------------------------------------


def test_no_proof_nonce_key_or_token_reaches_a_log_line_or_an_answer(
    stack: LocalStack, dpop_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dpop_app("jwt-es256")
    stack.api.require_dpop_nonce = True
    harness = make_harness(stack, "jwt-es256", dpop="on")
    answers = [harness.invoke({}) for _ in range(3)]
    text = capsys.readouterr().out + json.dumps(answers)
    proofs = [r.headers["dpop"] for r in stack.api.requests if "dpop" in r.headers]
    assert proofs
    secrets_seen = [*proofs, stack.okta.dpop_nonce, stack.api.dpop_nonce]
    secrets_seen += list(stack.okta.issued_tokens)
    secrets_seen += stack.all_secret_material()
    private = DPOP.key._private.private_numbers().private_value.to_bytes(32, "big")
    secrets_seen += [b64url(private), private.hex()]
    assert [s[:12] for s in secrets_seen if s and s in text] == []
    assert '"d":' not in text  # no private JWK member

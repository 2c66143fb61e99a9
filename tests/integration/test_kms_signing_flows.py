"""private_key_jwt with the key held in KMS, end to end on the local stack: the bridge signs each
client assertion with one kms:Sign (moto's KMS over TLS), the local Okta verifies it against the
public JWK registered on the app, and every KMS fault reaches the caller as its catalog code.
No private key exists in the bridge: the objects reachable from it hold none."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from okta_bridge.auth.client_auth import KEYS
from okta_bridge.auth.dpop import Dpop
from okta_bridge.auth.jwk import public_jwk
from okta_bridge.errors import CATALOG
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.integration.conftest import Harness, make_harness
from tests.support.reachable import reachable, reachable_text
from tests.support.trickle import RawTlsServer

KMS_KINDS = ("kms-rs256", "kms-es256")
ALGORITHMS = {"kms-rs256": "RS256", "kms-es256": "ES256"}


def counts(stack: LocalStack) -> tuple[int, int, int, int]:
    """Secret reads, token requests, kms:Sign calls, API calls."""
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        stack.kms.counts["Sign"],
        sum(stack.api.counts.values()),
    )


def assertions(stack: LocalStack) -> list[str]:
    return [
        value
        for request in stack.okta.requests
        for value in request.form().get("client_assertion", [])
    ]


def error_of(answer: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = answer["body"]["error"]
    return error


@pytest.mark.parametrize("kind", KMS_KINDS)
def test_a_kms_signed_client_gets_a_token_and_warm_calls_sign_nothing(
    stack: LocalStack, kind: str
) -> None:
    harness = make_harness(stack, kind)
    before, loads = len(assertions(stack)), KEYS.loads
    answer = harness.invoke({})
    assert answer["statusCode"] == 200, answer
    assert counts(stack) == (1, 1, 1, 1)  # one kms:Sign for the one token request
    for _ in range(3):
        assert harness.invoke({})["statusCode"] == 200
    assert counts(stack) == (1, 1, 1, 4)  # warm: the API only

    secret = stack.secret_value(kind)
    (assertion,) = assertions(stack)[before:]
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": ALGORITHMS[kind], "typ": "JWT", "kid": secret["key_id"]}
    # The JWK registered on the Okta app is the KMS key's public half, under that kid.
    jwk = public_jwk(stack.kms.public_key_der(secret["kms_key_id"]))
    registered = stack.okta.client_keys(CLIENT_IDS[kind])
    assert [(k.kid, k.status) for k in registered] == [(jwk["kid"], "ACTIVE")]
    assert jwk["kid"] == secret["key_id"]
    claims = jwt.decode(
        assertion,
        jwt.PyJWK(jwk).key,
        algorithms=[ALGORITHMS[kind]],
        audience=stack.okta.token_url,
    )
    assert claims["iss"] == claims["sub"] == CLIENT_IDS[kind]
    assert claims["exp"] - claims["iat"] <= 300
    assert KEYS.loads == loads  # no PEM key was parsed


def test_every_token_request_signs_a_new_assertion_even_in_a_dpop_nonce_round(
    stack: LocalStack,
) -> None:
    stack.okta.require_dpop(CLIENT_IDS["kms-es256"])
    harness = make_harness(stack, "kms-es256", dpop="on")
    before = len(assertions(stack))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200, answer
    # Okta answers use_dpop_nonce first and consumes that jti: the retry is signed anew.
    sent = assertions(stack)[before:]
    assert len(sent) == stack.okta.counts["token"] == stack.kms.counts["Sign"] == 2
    assert len({jwt.decode(a, options={"verify_signature": False})["jti"] for a in sent}) == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("AccessDeniedException", "KMS_ACCESS_DENIED"),
        ("DisabledException", "KMS_KEY_DISABLED"),
        ("KMSInvalidStateException", "KMS_KEY_DISABLED"),
        ("NotFoundException", "KMS_KEY_NOT_FOUND"),
        ("InvalidKeyUsageException", "KMS_KEY_INVALID"),
        ("KMSInternalException", "KMS_ERROR"),
    ],
)
def test_each_kms_refusal_is_its_code_with_the_signing_stage_and_hint(
    stack: LocalStack, error: str, code: str
) -> None:
    harness = make_harness(stack, "kms-rs256")
    stack.kms.inject_error("Sign", 400, error, times=5)
    answer = harness.invoke({})
    assert answer["statusCode"] == CATALOG[code].status
    found = error_of(answer)
    assert (found["code"], found["stage"]) == (code, "signing")
    assert found["hint"] == CATALOG[code].hint
    assert error in found["message"]
    assert stack.okta.counts["token"] == 0  # nothing unsigned ever reaches Okta
    assert stack.kms.counts["Sign"] == 1  # a refusal is not retried


def test_throttling_is_retried_then_reported_as_kms_throttled(stack: LocalStack) -> None:
    harness = make_harness(stack, "kms-rs256")
    stack.kms.inject_error("Sign", 400, "ThrottlingException", times=1)
    assert harness.invoke({})["statusCode"] == 200  # one throttle: retried, served
    assert harness.sleeps  # backed off before the retry

    throttled = make_harness(stack, "kms-es256")
    stack.kms.inject_error("Sign", 400, "ThrottlingException", times=50)
    answer = throttled.invoke({})
    assert (answer["statusCode"], error_of(answer)["code"]) == (503, "KMS_THROTTLED")
    assert 1 < stack.kms.counts["Sign"] <= 1 + throttled.bridge.settings.max_retries


def test_a_disabled_key_is_kms_key_disabled(stack: LocalStack) -> None:
    value = stack.secret_value("kms-rs256")
    value["kms_key_id"] = stack.kms.create_signing_key("RSA_2048")  # not the app's own key
    stack.kms.disable(value["kms_key_id"])
    stack.secrets_manager.put_secret("kms/disabled", value)
    answer = make_harness(stack, secret_name="kms/disabled", store=False).invoke({})
    assert error_of(answer)["code"] == "KMS_KEY_DISABLED"
    assert value["kms_key_id"] in error_of(answer)["message"]  # which key, for the operator


def test_a_key_that_does_not_exist_is_kms_key_not_found(stack: LocalStack) -> None:
    value = stack.secret_value("kms-rs256")
    arn_prefix = value["kms_key_id"].rsplit("/", 1)[0]
    value["kms_key_id"] = f"{arn_prefix}/00000000-0000-4000-8000-000000000000"
    stack.secrets_manager.put_secret("kms/missing", value)
    answer = make_harness(stack, secret_name="kms/missing", store=False).invoke({})
    assert error_of(answer)["code"] == "KMS_KEY_NOT_FOUND"


def test_an_algorithm_the_key_cannot_sign_is_kms_key_invalid(stack: LocalStack) -> None:
    value = stack.secret_value("kms-rs256")
    value["key_algorithm"] = "ES256"  # an RSA key asked for ECDSA
    stack.secrets_manager.put_secret("kms/mismatch", value)
    answer = make_harness(stack, secret_name="kms/mismatch", store=False).invoke({})
    assert error_of(answer)["code"] == "KMS_KEY_INVALID"
    assert stack.okta.counts["token"] == 0


def test_a_kid_okta_does_not_hold_is_refused_by_okta(stack: LocalStack) -> None:
    value = stack.secret_value("kms-rs256")
    value["key_id"] = "not-the-registered-kid"
    stack.secrets_manager.put_secret("kms/wrong-kid", value)
    answer = make_harness(stack, secret_name="kms/wrong-kid", store=False).invoke({})
    assert error_of(answer)["code"] == "TOKEN_REJECTED"


def test_kms_that_nobody_answers_at_is_kms_unreachable(stack: LocalStack) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    harness = _with_kms_endpoint(stack, f"https://127.0.0.1:{port}")
    answer = harness.invoke({})
    found = error_of(answer)
    assert (answer["statusCode"], found["code"], found["stage"]) == (
        502,
        "KMS_UNREACHABLE",
        "signing",
    )
    assert stack.okta.counts["token"] == 0


class _Silent(RawTlsServer):
    """Reads the request and never answers."""

    def respond(self, conn: ssl.SSLSocket) -> None:
        self._stop.wait(10)


def test_kms_that_never_answers_is_kms_timeout_within_the_deadline(stack: LocalStack) -> None:
    silent = _Silent(server_context(stack.server_cert))
    try:
        harness = _with_kms_endpoint(stack, silent.base_url)
        answer = harness.invoke({}, remaining_ms=3_000)
    finally:
        silent.close()
    found = error_of(answer)
    assert (answer["statusCode"], found["code"], found["stage"]) == (504, "KMS_TIMEOUT", "signing")


def _with_kms_endpoint(stack: LocalStack, url: str) -> Harness:
    harness = make_harness(stack, "kms-rs256")
    settings = harness.bridge.settings
    aws = settings.aws._replace(kms_endpoint=url)
    return make_harness(stack, "kms-rs256", aws=aws)


@pytest.mark.parametrize("kind", KMS_KINDS)
def test_no_private_key_is_reachable_from_a_bridge_that_signed_with_kms(
    stack: LocalStack, kind: str
) -> None:
    KEYS.clear()  # a new environment: no PEM key parsed by an earlier test's bridge
    harness = make_harness(stack, kind)
    assert harness.invoke({})["statusCode"] == 200
    private_pem = stack.kms.private_key_pem(stack.secret_value(kind)["kms_key_id"])
    assert _holds_key(harness, private_pem) == []
    assert _private_key_objects(harness) == 0


def test_the_search_finds_a_pem_key_where_there_is_one(stack: LocalStack) -> None:
    """The control: the same search on a PEM-keyed bridge finds its key, so it can fail."""
    harness = make_harness(stack, "jwt-rs256")
    assert harness.invoke({})["statusCode"] == 200
    private_pem = stack.secret_value("jwt-rs256")["private_key"]
    assert _holds_key(harness, private_pem)
    assert _private_key_objects(harness) > 0


def _holds_key(harness: Harness, private_pem: str) -> list[str]:
    roots = (harness.bridge, KEYS)
    texts = reachable_text(*roots)
    lines = [line for line in private_pem.splitlines() if len(line) >= 40]
    return [line[:8] for line in lines if any(line in text for text in texts)]


def _private_key_objects(harness: Harness) -> int:
    """Private key objects reachable from the bridge, the DPoP state left out: DPoP proofs keep
    their ephemeral in-memory key by design (it binds tokens, it authenticates nothing)."""
    objects = reachable(harness.bridge, KEYS, stop=lambda obj: isinstance(obj, Dpop))
    return sum(isinstance(o, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) for o in objects)

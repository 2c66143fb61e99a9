"""The ``Custom::PublicJwk`` handler (okta_bridge.ops.public_jwk) against the local stack's KMS
(moto over TLS, boto3 pointed at it by AWS_ENDPOINT_URL_KMS and AWS_CA_BUNDLE) and a local HTTPS
receiver standing for CloudFormation's presigned S3 URL: every request is answered, with the
JWK (kid = RFC 7638 thumbprint) or FAILED with a one-line reason, within the deadline."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from okta_bridge.ops import public_jwk
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()
WAIT = 10.0  # seconds a test waits for the answer at most


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """An HTTPS server on 127.0.0.1 (the stack's CA) that records each PUT and answers 200."""

    def __init__(self, stack: LocalStack) -> None:
        self.answers: queue.Queue[Received] = queue.Queue()
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                answers.put(Received("PUT", self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = server_context(stack.ca.issue("cfn-response"))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"https://127.0.0.1:{port}/cfn/response?X-Amz-Signature=presigned"

    def next(self) -> Received:
        return self.answers.get(timeout=WAIT)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)


@dataclass
class Context:
    remaining_ms: int = 30_000
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def receiver(stack: LocalStack) -> Iterator[Receiver]:
    server = Receiver(stack)
    yield server
    server.close()


@pytest.fixture
def aws(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """boto3 (in the handler) reaches the stack's KMS, and trusts the stack's CA."""
    for name, value in stack.environment("unused").items():
        monkeypatch.setenv(name, value)
    stack.kms.clear_faults()
    stack.kms.reset_counts()
    yield
    stack.kms.clear_faults()


def event(request_type: str, url: str, key_id: str | None, physical: str | None = None) -> dict:
    found: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/okta-bridge/guid",
        "RequestId": "4f1d-unique",
        "ResourceType": "Custom::PublicJwk",
        "LogicalResourceId": "PublicJwk",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", "KeyId": key_id},
    }
    if key_id is None:
        del found["ResourceProperties"]["KeyId"]
    if physical is not None:
        found["PhysicalResourceId"] = physical
    return found


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638, written out here: the required members in lexicographic order, no spaces."""
    names = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({name: jwk[name] for name in names}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def assert_one_answer_to(received: Received, request: dict[str, Any]) -> None:
    assert received.method == "PUT"
    assert received.path == "/cfn/response?X-Amz-Signature=presigned"
    assert received.headers.get("Content-Type", "") == ""  # the presigned URL signs none
    for name in ("StackId", "RequestId", "LogicalResourceId"):
        assert received.body[name] == request[name]
    assert received.body["PhysicalResourceId"]


KINDS = {"RSA_2048": ("RS256", "RSA"), "ECC_NIST_P256": ("ES256", "EC")}


@pytest.mark.parametrize("spec", sorted(KINDS))
@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_answer_the_jwk_whose_kid_is_its_thumbprint(
    stack: LocalStack, aws: None, receiver: Receiver, spec: str, request_type: str
) -> None:
    alg, kty = KINDS[spec]
    key = stack.kms.create_signing_key(spec)
    request = event(request_type, receiver.url, key, physical="old-kid")
    public_jwk.lambda_handler(request, Context())
    answer = receiver.next()
    assert_one_answer_to(answer, request)
    body = answer.body
    assert body["Status"] == "SUCCESS", body.get("Reason")
    jwk = json.loads(body["Data"]["Jwk"])
    assert jwk["kty"] == kty
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert jwk["kid"] == thumbprint(jwk) == body["Data"]["Kid"] == body["PhysicalResourceId"]
    # The JWK is the key's public half: the same public key as KMS holds.
    loaded = jwt.PyJWK(jwk).key
    assert loaded.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode() == stack.kms.public_key_pem(key)
    assert "d" not in jwk  # public members only
    assert stack.kms.counts["GetPublicKey"] == 1
    assert receiver.answers.empty()  # exactly one answer


def test_delete_succeeds_without_asking_kms(
    stack: LocalStack, aws: None, receiver: Receiver
) -> None:
    stack.kms.stop()  # KMS unreachable: Delete must not need it
    try:
        request = event("Delete", receiver.url, "arn:aws:kms:us-east-1:1:key/gone", "the-kid")
        public_jwk.lambda_handler(request, Context())
        answer = receiver.next()
    finally:
        stack.kms.start()
    assert_one_answer_to(answer, request)
    assert answer.body["Status"] == "SUCCESS"
    assert answer.body["PhysicalResourceId"] == "the-kid"  # Delete echoes it
    assert stack.kms.counts.get("GetPublicKey", 0) == 0


def missing_key(stack: LocalStack) -> str:
    arn = stack.kms.create_signing_key("RSA_2048")
    return arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "KMS refused GetPublicKey on arn:aws:kms:"),
        ("denied", "AccessDeniedException"),
        ("disabled", "DisabledException"),
        ("no-key-id", "the resource's KeyId property is missing"),
        ("unreachable", "KMS could not be reached"),
    ],
)
def test_a_key_that_cannot_be_read_answers_failed_with_a_one_line_reason(
    stack: LocalStack, aws: None, receiver: Receiver, case: str, expected: str
) -> None:
    key: str | None = stack.kms.create_signing_key("ECC_NIST_P256")
    if case == "missing":
        key = missing_key(stack)
    elif case == "denied":
        stack.kms.inject_error("GetPublicKey", 400, "AccessDeniedException", times=5)
    elif case == "disabled":
        stack.kms.disable(str(key))
    elif case == "no-key-id":
        key = None
    request = event("Create", receiver.url, key)
    if case == "unreachable":
        stack.kms.stop()
    try:
        public_jwk.lambda_handler(request, Context(remaining_ms=12_000))
        answer = receiver.next()
    finally:
        if case == "unreachable":
            stack.kms.start()
    assert_one_answer_to(answer, request)
    body = answer.body
    assert body["Status"] == "FAILED"
    reason = body["Reason"]
    assert expected in reason
    assert "\n" not in reason
    assert "Traceback" not in reason
    assert len(reason) <= public_jwk.REASON_LIMIT
    assert "Data" not in body
    assert body["PhysicalResourceId"] == public_jwk.NOT_CREATED


def test_a_key_that_is_not_for_signing_answers_failed(
    stack: LocalStack, aws: None, receiver: Receiver
) -> None:
    """GetPublicKey works for an RSA ENCRYPT_DECRYPT key too: its JWK would be useless to Okta."""
    kms = stack.kms.client(stack.ca.ca_pem_path)
    key = kms.create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="RSA_2048")["KeyMetadata"]["Arn"]
    kms.close()
    public_jwk.lambda_handler(event("Create", receiver.url, key), Context())
    body = receiver.next().body
    assert body["Status"] == "FAILED"
    assert body["Reason"] == f"{key} is not a signing key (KeyUsage ENCRYPT_DECRYPT)"


def test_without_time_left_it_answers_failed_at_once(
    stack: LocalStack, aws: None, receiver: Receiver
) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    public_jwk.lambda_handler(event("Create", receiver.url, key), Context(remaining_ms=5_500))
    body = receiver.next().body
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "no time left to ask KMS for the public key"
    assert stack.kms.counts.get("GetPublicKey", 0) == 0


def test_an_unexpected_error_is_reported_without_a_traceback(
    aws: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(key_id: str, seconds: float) -> bytes:
        raise RuntimeError("detail that must not reach CloudFormation")

    monkeypatch.setattr(public_jwk, "kms_public_key", broken)
    public_jwk.lambda_handler(event("Create", receiver.url, "alias/x"), Context())
    body = receiver.next().body
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "internal error (RuntimeError); see the function's log"


def test_a_response_url_that_is_not_https_gets_nothing(
    stack: LocalStack, aws: None, receiver: Receiver
) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    plain = receiver.url.replace("https://", "http://")
    public_jwk.lambda_handler(event("Create", plain, key), Context())  # returns, never raises
    assert receiver.answers.empty()  # the answer is sent before the handler returns, or never

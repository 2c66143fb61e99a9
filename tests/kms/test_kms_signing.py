"""Issue 16, first block: client assertions signed in KMS (moto's, over TLS) verify with PyJWT
against the key's public half; KMS's refusals and throttling; the DER-to-JOSE conversion."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import jwt
import pytest

from okta_bridge.auth.jose import compact_jws
from okta_bridge.auth.kms_signing import KmsSigner, raw_ecdsa
from okta_bridge.config import Settings
from okta_bridge.errors import SigningError
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()
TOKEN_URL = "https://okta.example/oauth2/default/v1/token"
SPECS = {"RS256": "RSA_2048", "ES256": "ECC_NIST_P256"}


@pytest.fixture
def signer(stack: LocalStack) -> Iterator[KmsSigner]:
    env = stack.environment("unused")
    settings = Settings.from_env(env)
    http = HttpClient(settings, retry=RetryPolicy(max_retries=2, base=0.001, cap=0.002))
    creds = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], None)
    stack.kms.reset_counts()
    stack.kms.clear_faults()
    yield KmsSigner(settings, http, endpoint=env["AWS_ENDPOINT_URL_KMS"], credentials=lambda: creds)
    stack.kms.clear_faults()
    http.close()


def claims() -> dict[str, object]:
    now = int(time.time())
    return {"iss": "client-1", "sub": "client-1", "aud": TOKEN_URL, "iat": now,
            "exp": now + 300, "jti": uuid.uuid4().hex}  # fmt: skip


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_an_assertion_signed_in_kms_verifies_with_the_public_key(
    stack: LocalStack, signer: KmsSigner, algorithm: str
) -> None:
    key = stack.kms.create_signing_key(SPECS[algorithm])
    header = {"alg": algorithm, "typ": "JWT", "kid": "kms-1"}
    token = compact_jws(
        header, claims(), lambda data: signer.sign(key, data, algorithm, Deadline(10))
    )
    public = stack.kms.public_key_pem(key)
    decoded = jwt.decode(token, public, algorithms=[algorithm], audience=TOKEN_URL)
    assert decoded["iss"] == "client-1"
    assert jwt.get_unverified_header(token)["kid"] == "kms-1"
    assert stack.kms.counts["Sign"] == 1  # one kms:Sign per assertion
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, public, algorithms=[algorithm], audience=TOKEN_URL)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("AccessDeniedException", "KMS_ACCESS_DENIED"),
        ("DisabledException", "KMS_KEY_DISABLED"),
        ("NotFoundException", "KMS_KEY_NOT_FOUND"),
        ("KMSInvalidStateException", "KMS_KEY_DISABLED"),
        ("InvalidKeyUsageException", "KMS_KEY_INVALID"),
        ("KMSInternalException", "KMS_ERROR"),
    ],
)
def test_kms_refusals_map_to_codes_and_are_not_retried(
    stack: LocalStack, signer: KmsSigner, error: str, code: str
) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    stack.kms.inject_error("Sign", 400, error, times=3)
    with pytest.raises(SigningError) as refused:
        signer.sign(key, b"a.b", "RS256", Deadline(10))
    assert (refused.value.code, refused.value.stage) == (code, "signing")
    assert error in refused.value.message
    assert stack.kms.counts["Sign"] == 1


def test_throttling_is_retried_within_the_deadline(stack: LocalStack, signer: KmsSigner) -> None:
    key = stack.kms.create_signing_key("ECC_NIST_P256")
    stack.kms.inject_error("Sign", 400, "ThrottlingException", times=1)
    assert len(signer.sign(key, b"a.b", "ES256", Deadline(10))) == 64
    assert stack.kms.counts["Sign"] == 2


def test_a_disabled_key_is_refused(stack: LocalStack, signer: KmsSigner) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    stack.kms.disable(key)
    with pytest.raises(SigningError) as refused:
        signer.sign(key, b"a.b", "RS256", Deadline(10))
    assert refused.value.code == "KMS_KEY_DISABLED"
    assert "DisabledException" in refused.value.message


def der(r: bytes, s: bytes) -> bytes:
    body = b"\x02" + bytes([len(r)]) + r + b"\x02" + bytes([len(s)]) + s
    return b"\x30" + bytes([len(body)]) + body


def test_der_signatures_become_raw_r_and_s() -> None:
    r, s = b"\x00\x80" + b"\x01" * 31, b"\x7f" + b"\x02" * 31
    assert raw_ecdsa(der(r, s)) == r[1:] + s
    short = raw_ecdsa(der(b"\x01", b"\x02"))
    assert short == b"\x00" * 31 + b"\x01" + b"\x00" * 31 + b"\x02"


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        der(b"\x00\x01", b"\x02"),  # non-minimal
        der(b"\x80", b"\x02"),  # negative
        der(b"\x00", b"\x02"),  # zero
        der(b"\x01" * 34, b"\x02"),  # too long for P-256
        der(b"\x01", b"\x02") + b"\x00",  # trailing
        b"\x31" + der(b"\x01", b"\x02")[1:],  # not a SEQUENCE
    ],
)
def test_malformed_der_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match=r"DER|INTEGER|trailing"):
        raw_ecdsa(bad)

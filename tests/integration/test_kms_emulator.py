"""The local stack's KMS (moto over TLS): asymmetric keys sign SHA-256 digests as AWS does, the
signatures verify against GetPublicKey's key, and injected or state errors come back as the AWS
exceptions botocore raises."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from okta_bridge_dev.emulators.kms import KmsServer
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import LocalStack

MESSAGE = b"header.claims"  # what a client assertion's signature covers
DIGEST = hashlib.sha256(MESSAGE).digest()
ALGORITHMS = {"RSA_2048": "RSASSA_PKCS1_V1_5_SHA_256", "ECC_NIST_P256": "ECDSA_SHA_256"}


@pytest.fixture
def kms(stack: LocalStack) -> Iterator[Any]:
    """A boto3 KMS client that verifies the stack's certificate, without retries."""
    client = stack.kms.client(stack.ca.ca_pem_path, max_attempts=1)
    yield client
    client.close()


def _verify(public_der: bytes, signature: bytes, algorithm: str) -> None:
    """Check ``signature`` over ``MESSAGE`` as a JOSE verifier would (raises if invalid)."""
    public = serialization.load_der_public_key(public_der)
    if isinstance(public, rsa.RSAPublicKey):
        assert algorithm == "RSASSA_PKCS1_V1_5_SHA_256"
        public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert algorithm == "ECDSA_SHA_256"
        public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))


def _error_code(excinfo: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


@pytest.mark.parametrize("spec", sorted(ALGORITHMS))
def test_a_key_created_over_tls_signs_a_digest_that_verifies(
    stack: LocalStack, kms: Any, spec: str
) -> None:
    algorithm = ALGORITHMS[spec]
    key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]
    answer = kms.sign(
        KeyId=key["Arn"], Message=DIGEST, MessageType="DIGEST", SigningAlgorithm=algorithm
    )
    public = kms.get_public_key(KeyId=key["KeyId"])

    assert answer["KeyId"] == key["Arn"]
    assert answer["SigningAlgorithm"] == algorithm
    assert public["KeyId"] == key["Arn"]
    assert public["KeySpec"] == spec
    assert algorithm in public["SigningAlgorithms"]
    _verify(public["PublicKey"], answer["Signature"], algorithm)
    with pytest.raises(Exception):  # noqa: B017,PT011 - cryptography's InvalidSignature
        _verify(public["PublicKey"], answer["Signature"][:-1] + b"\0", algorithm)
    assert stack.kms.counts["CreateKey"] == 1
    assert stack.kms.counts["Sign"] == 1
    assert stack.kms.counts["GetPublicKey"] == 1


@pytest.mark.parametrize("spec", sorted(ALGORITHMS))
def test_the_helpers_create_a_key_and_give_its_public_key(
    stack: LocalStack, kms: Any, spec: str
) -> None:
    arn = stack.kms.create_signing_key(spec)
    assert arn.startswith(f"arn:aws:kms:us-east-1:{stack.kms.account_id}:key/")
    assert stack.kms.counts["CreateKey"] == 0  # helpers do not go through HTTP

    signature = kms.sign(
        KeyId=arn, Message=DIGEST, MessageType="DIGEST", SigningAlgorithm=ALGORITHMS[spec]
    )["Signature"]
    pem = stack.kms.public_key_pem(arn).encode()
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert der == kms.get_public_key(KeyId=arn)["PublicKey"]
    _verify(der, signature, ALGORITHMS[spec])
    assert stack.kms.key_state(arn) == "Enabled"


def test_an_alias_names_the_key(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    kms.create_alias(AliasName="alias/okta-bridge-test", TargetKeyId=arn)
    answer = kms.sign(
        KeyId="alias/okta-bridge-test",
        Message=DIGEST,
        MessageType="DIGEST",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert answer["KeyId"] == arn
    _verify(kms.get_public_key(KeyId=arn)["PublicKey"], answer["Signature"], "ECDSA_SHA_256")
    assert stack.kms.public_key_pem("alias/okta-bridge-test") == stack.kms.public_key_pem(arn)


def test_a_raw_message_is_hashed_by_kms(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("RSA_2048")
    signature = kms.sign(
        KeyId=arn, Message=MESSAGE, MessageType="RAW", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
    )["Signature"]
    _verify(kms.get_public_key(KeyId=arn)["PublicKey"], signature, "RSASSA_PKCS1_V1_5_SHA_256")


def test_an_rsa_pss_digest_signature_verifies(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("RSA_2048")
    signature = kms.sign(
        KeyId=arn, Message=DIGEST, MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_256"
    )["Signature"]
    public = serialization.load_pem_public_key(stack.kms.public_key_pem(arn).encode())
    assert isinstance(public, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public.verify(signature, DIGEST, pss, Prehashed(hashes.SHA256()))


def test_a_digest_of_the_wrong_length_is_refused(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        kms.sign(
            KeyId=arn, Message=DIGEST[:20], MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
        )
    assert _error_code(excinfo) == "ValidationException"


def test_an_algorithm_the_key_lacks_is_refused(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        kms.sign(
            KeyId=arn,
            Message=DIGEST,
            MessageType="DIGEST",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )
    assert _error_code(excinfo) == "ValidationException"


@pytest.mark.parametrize(
    "code",
    [
        "AccessDeniedException",
        "DisabledException",
        "ThrottlingException",
        "KMSInvalidStateException",
        "NotFoundException",
    ],
)
def test_an_injected_error_comes_back_as_the_aws_exception(
    stack: LocalStack, kms: Any, code: str
) -> None:
    arn = stack.kms.create_signing_key("RSA_2048")
    stack.kms.inject_error("Sign", 400, code)

    def sign() -> Any:
        return kms.sign(
            KeyId=arn,
            Message=DIGEST,
            MessageType="DIGEST",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        sign()
    assert _error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert excinfo.value.response["Error"]["Message"]
    sign()  # times=1: the next call is answered by KMS
    assert stack.kms.counts["Sign"] == 2


def test_an_injected_error_lasts_times_calls_and_only_for_its_action(
    stack: LocalStack, kms: Any
) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    stack.kms.inject_error("Sign", 400, "ThrottlingException", times=2, message="Rate exceeded")
    kms.get_public_key(KeyId=arn)  # another action is not faulted
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            kms.sign(
                KeyId=arn, Message=DIGEST, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
            )
        assert _error_code(excinfo) == "ThrottlingException"
        assert excinfo.value.response["Error"]["Message"] == "Rate exceeded"
    kms.sign(KeyId=arn, Message=DIGEST, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")
    assert stack.kms.counts == {"GetPublicKey": 1, "Sign": 3}


def test_clear_faults_drops_pending_errors_and_reset_counts_zeroes(
    stack: LocalStack, kms: Any
) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    stack.kms.inject_error("GetPublicKey", 400, "AccessDeniedException", times=5)
    stack.clear_faults()
    kms.get_public_key(KeyId=arn)
    assert stack.kms.counts["GetPublicKey"] == 1
    stack.reset_counts()
    assert stack.kms.counts == {}


def test_a_disabled_key_is_refused_with_disabled_exception(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("RSA_2048")
    stack.kms.disable(arn)
    assert stack.kms.key_state(arn) == "Disabled"
    with pytest.raises(kms.exceptions.DisabledException) as excinfo:
        kms.sign(
            KeyId=arn,
            Message=DIGEST,
            MessageType="DIGEST",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )
    assert arn in excinfo.value.response["Error"]["Message"]
    with pytest.raises(kms.exceptions.DisabledException):
        kms.get_public_key(KeyId=arn)
    kms.enable_key(KeyId=arn)
    kms.get_public_key(KeyId=arn)


def test_a_key_pending_deletion_is_refused_with_invalid_state(stack: LocalStack, kms: Any) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    kms.disable_key(KeyId=arn)
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    assert stack.kms.key_state(arn) == "PendingDeletion"
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.sign(KeyId=arn, Message=DIGEST, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")


def test_an_unknown_key_is_not_found(stack: LocalStack, kms: Any) -> None:
    missing = (
        f"arn:aws:kms:us-east-1:{stack.kms.account_id}:key/"
        + "0" * 8
        + "-0000" * 3
        + "-"
        + "0" * 12
    )
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.sign(
            KeyId=missing, Message=DIGEST, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
        )
    with pytest.raises(KeyError):
        stack.kms.public_key_pem(missing)


def test_another_kms_server_does_not_see_the_keys(stack: LocalStack) -> None:
    """Each server has an AWS account of its own, though moto's state is process-wide."""
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    other = KmsServer(server_context(stack.server_cert))
    assert f":{stack.kms.account_id}:" in arn
    assert other.account_id != stack.kms.account_id
    with pytest.raises(KeyError):
        other.public_key_pem(arn)
    stack.kms.public_key_pem(arn)


def test_the_certificate_is_verified(stack: LocalStack) -> None:
    """Without the stack's CA the client refuses the server: TLS is real, not bypassed."""
    client = boto3.session.Session().client(
        "kms",
        region_name="us-east-1",
        endpoint_url=stack.kms.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5),
    )
    try:
        with pytest.raises(botocore.exceptions.SSLError):
            client.list_keys()
    finally:
        client.close()
    assert stack.kms.counts["ListKeys"] == 0


def test_environment_points_at_the_stacks_kms(stack: LocalStack) -> None:
    environment = stack.environment("secret")
    assert environment["AWS_ENDPOINT_URL_KMS"] == stack.kms.endpoint_url
    assert environment["AWS_ENDPOINT_URL_KMS"].startswith("https://127.0.0.1:")


def test_keys_survive_a_restart_and_kms_is_unreachable_while_stopped(
    stack: LocalStack, kms: Any
) -> None:
    arn = stack.kms.create_signing_key("ECC_NIST_P256")
    stack.kms.stop()
    try:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            kms.get_public_key(KeyId=arn)
    finally:
        stack.kms.start()
    assert kms.get_public_key(KeyId=arn)["KeyId"] == arn


@pytest.mark.parametrize(
    "key_id",
    [
        "alias/no-such-alias",
        "arn:aws:kms:us-east-1:123456789012:alias/no-such-alias",
        "00000000-0000-4000-8000-000000000000",
    ],
)
@pytest.mark.parametrize("action", ["Sign", "GetPublicKey", "DescribeKey", "DisableKey"])
def test_a_key_that_does_not_exist_is_not_found_as_aws_answers(
    kms: Any, key_id: str, action: str
) -> None:
    calls = {
        "Sign": lambda: kms.sign(
            KeyId=key_id, Message=b"0" * 32, MessageType="DIGEST",
            SigningAlgorithm="ECDSA_SHA_256",
        ),
        "GetPublicKey": lambda: kms.get_public_key(KeyId=key_id),
        "DescribeKey": lambda: kms.describe_key(KeyId=key_id),
        "DisableKey": lambda: kms.disable_key(KeyId=key_id),
    }  # fmt: skip
    with pytest.raises(kms.exceptions.NotFoundException):
        calls[action]()

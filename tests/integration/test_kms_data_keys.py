"""The local stack's KMS as the shared token cache uses it: GenerateDataKey (AES_256) and Decrypt
under the cache's EncryptionContext on a symmetric key, over TLS with botocore; only the exact
context decrypts, and key state, key usage and a mismatched KeyId are refused as AWS does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from okta_bridge_dev.emulators.stack import LocalStack

pytestmark = pytest.mark.integration

CONTEXT = {"okta-bridge:purpose": "token-cache"}


@pytest.fixture
def kms(stack: LocalStack) -> Iterator[Any]:
    """A boto3 KMS client that verifies the stack's certificate, without retries."""
    client = stack.kms.client(stack.ca.ca_pem_path, max_attempts=1)
    yield client
    client.close()


def _code(caught: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, int]:
    response = caught.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def test_the_stack_has_a_symmetric_key_for_the_cache(stack: LocalStack, kms: Any) -> None:
    key = kms.describe_key(KeyId=stack.token_cache_key_id)["KeyMetadata"]
    assert key["Arn"] == stack.token_cache_key_id
    assert (key["KeySpec"], key["KeyUsage"], key["KeyState"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "Enabled",
    )
    assert f":{stack.kms.account_id}:" in key["Arn"]


def test_a_data_key_round_trips_under_the_cache_context(stack: LocalStack, kms: Any) -> None:
    made = kms.generate_data_key(
        KeyId=stack.token_cache_key_id, KeySpec="AES_256", EncryptionContext=CONTEXT
    )
    opened = kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=CONTEXT)
    named = kms.decrypt(
        CiphertextBlob=made["CiphertextBlob"],
        EncryptionContext=CONTEXT,
        KeyId=stack.token_cache_key_id,
    )

    assert len(made["Plaintext"]) == 32
    assert made["Plaintext"] not in made["CiphertextBlob"]
    assert made["KeyId"] == opened["KeyId"] == stack.token_cache_key_id
    assert opened["Plaintext"] == named["Plaintext"] == made["Plaintext"]
    assert stack.kms.counts == {"GenerateDataKey": 1, "Decrypt": 2}


@pytest.mark.parametrize(
    "context",
    [
        {"okta-bridge:purpose": "other"},
        {},
        {**CONTEXT, "extra": "x"},
        {"okta-bridge:purposet": "oken-cache"},  # the same characters run together (moto took it)
        {"okta-bridge:Purpose": "token-cache"},
    ],
    ids=["other-value", "none", "extra-pair", "run-together", "other-case"],
)
def test_decrypt_under_another_context_is_invalid_ciphertext(
    stack: LocalStack, kms: Any, context: dict[str, str]
) -> None:
    made = kms.generate_data_key(
        KeyId=stack.token_cache_key_id, KeySpec="AES_256", EncryptionContext=CONTEXT
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=context)
    assert _code(caught) == ("InvalidCiphertextException", 400)


def test_a_tampered_ciphertext_is_invalid(stack: LocalStack, kms: Any) -> None:
    made = kms.generate_data_key(
        KeyId=stack.token_cache_key_id, KeySpec="AES_256", EncryptionContext=CONTEXT
    )
    blob = bytearray(made["CiphertextBlob"])
    blob[-1] ^= 1
    refused = []
    for tampered in (bytes(blob), b"not a kms ciphertext at all, just bytes" * 2):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            kms.decrypt(CiphertextBlob=tampered, EncryptionContext=CONTEXT)
        refused.append(_code(caught))
    assert refused == [("InvalidCiphertextException", 400)] * 2


def test_decrypt_naming_another_key_is_incorrect_key(stack: LocalStack, kms: Any) -> None:
    other = stack.kms.create_symmetric_key()
    made = kms.generate_data_key(
        KeyId=stack.token_cache_key_id, KeySpec="AES_256", EncryptionContext=CONTEXT
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=CONTEXT, KeyId=other)
    assert _code(caught) == ("IncorrectKeyException", 400)


def test_a_disabled_key_neither_makes_nor_opens_data_keys(stack: LocalStack, kms: Any) -> None:
    key = stack.kms.create_symmetric_key()
    made = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=CONTEXT)
    stack.kms.disable(key)
    refused = []
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=CONTEXT)
    refused.append(_code(caught))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=CONTEXT)
    refused.append(_code(caught))
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=CONTEXT)
    refused.append(_code(caught))

    assert refused == [
        ("DisabledException", 400),
        ("DisabledException", 400),
        ("KMSInvalidStateException", 400),
    ]


def test_a_signing_key_makes_no_data_keys(stack: LocalStack, kms: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.generate_data_key(
            KeyId=stack.kms.create_signing_key("ECC_NIST_P256"),
            KeySpec="AES_256",
            EncryptionContext=CONTEXT,
        )
    assert _code(caught) == ("InvalidKeyUsageException", 400)


def test_encrypt_and_reencrypt_still_bind_their_contexts(stack: LocalStack, kms: Any) -> None:
    """The context binding covers moto's other symmetric calls, so they still agree."""
    sealed = kms.encrypt(
        KeyId=stack.token_cache_key_id, Plaintext=b"hello", EncryptionContext=CONTEXT
    )["CiphertextBlob"]
    moved = kms.re_encrypt(
        CiphertextBlob=sealed,
        SourceEncryptionContext=CONTEXT,
        DestinationKeyId=stack.token_cache_key_id,
        DestinationEncryptionContext={"other": "context"},
    )["CiphertextBlob"]
    opened = kms.decrypt(CiphertextBlob=moved, EncryptionContext={"other": "context"})
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.decrypt(CiphertextBlob=moved, EncryptionContext=CONTEXT)

    assert opened["Plaintext"] == b"hello"
    assert _code(caught) == ("InvalidCiphertextException", 400)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_injected_errors_fail_decrypt_then_it_works(stack: LocalStack, kms: Any, code: str) -> None:
    made = kms.generate_data_key(
        KeyId=stack.token_cache_key_id, KeySpec="AES_256", EncryptionContext=CONTEXT
    )
    stack.kms.inject_error("Decrypt", 400, code)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=CONTEXT)
    opened = kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=CONTEXT)

    assert _code(caught) == (code, 400)
    assert opened["Plaintext"] == made["Plaintext"]
    assert stack.kms.counts == {"GenerateDataKey": 1, "Decrypt": 2}

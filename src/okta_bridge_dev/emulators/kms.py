"""moto's KMS served over real TLS, with per-action counters and injected AWS errors.

The bridge signs client assertions here with ``kms:Sign`` on a SHA-256 digest, through its own
SigV4-signed HTTPS client (``AWS_ENDPOINT_URL_KMS``); tests create the asymmetric keys
(``create_signing_key``), read their public keys (``public_key_pem``) and disable them
(``disable``) without going through HTTP.

What moto 5.2 does not do as AWS does is done here: ``Sign`` with ``MessageType: DIGEST`` signs
the digest as given (moto hashes it again, so no verifier would accept the signature);
``Sign``, ``Verify`` and ``GetPublicKey`` on a disabled key or one pending deletion fail with
``DisabledException`` / ``KMSInvalidStateException`` (moto answers them); ``GetPublicKey``
answers the key ARN and ``KeySpec``; ``DisableKey``, ``EnableKey``, ``ScheduleKeyDeletion`` and
``CancelKeyDeletion`` accept a key ARN (moto fails with a 500). Keys outlive ``stop()``: a test
can stop the server to make KMS unreachable and start it again.

The shared token cache's envelope encryption (``GenerateDataKey``, ``Decrypt`` under an
EncryptionContext, ``create_symmetric_key``) gets the same treatment: moto binds the context as
its keys and values run together, so ``{"ab": "c"}`` decrypted what ``{"a": "bc"}`` encrypted;
here each context reaches moto as one canonical JSON string, so only the exact context decrypts
(InvalidCiphertextException otherwise, as AWS). ``Encrypt``, ``Decrypt`` and ``GenerateDataKey``
on a disabled key or one pending deletion fail as ``Sign`` does (moto answers them; ``Decrypt``
finds the key in the ciphertext), on a signing key with ``InvalidKeyUsageException`` (moto
answers them too), ``Decrypt`` naming a ``KeyId`` other than the ciphertext's fails with
``IncorrectKeyException`` and of bytes that are no ciphertext with ``InvalidCiphertextException``
(moto: ``AccessDeniedException`` for both). Those changes live in ``kms_data_keys``.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms.models import kms_backends

from okta_bridge_dev.emulators.kms_data_keys import (
    CONTEXT_ACTIONS,
    DATA_KEY_ACTIONS,
    bind_contexts,
    decrypting_key,
    encrypts,
    usage_error,
)
from okta_bridge_dev.emulators.moto_tls import InjectedError, MotoTlsServer, drain, json_answer

if TYPE_CHECKING:
    from pathlib import Path

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["KEY_SPECS", "KmsServer", "kms_action"]

_REGION = "us-east-1"
KEY_SPECS = ("RSA_2048", "ECC_NIST_P256")
"""The key specs ``create_signing_key`` makes: those Okta accepts for RS256 and ES256."""

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}
_KEY_IN_USE = frozenset({"Sign", "Verify", "GetPublicKey"}) | DATA_KEY_ACTIONS
"""Actions AWS refuses on a key that is not Enabled."""
_KEY_STATE_CHANGES = frozenset(
    {"DisableKey", "EnableKey", "ScheduleKeyDeletion", "CancelKeyDeletion"}
)
"""Actions moto looks a key up for by the raw id only."""

_MESSAGES = {
    "AccessDeniedException": "User is not authorized to perform this operation on this key.",
    "DisabledException": "The key is disabled.",
    "ThrottlingException": "Rate exceeded",
    "KMSInvalidStateException": "The key is not in a valid state for this operation.",
    "NotFoundException": "The key does not exist.",
}


def kms_action(environ: WSGIEnvironment) -> str:
    """``Sign`` from ``X-Amz-Target: TrentService.Sign``."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rsplit(".", 1)[-1] if target else "unknown"


class KmsServer(MotoTlsServer):
    """moto KMS on ``https://host:port``, in an AWS account of its own.

    ``counts`` is keyed by API action (``Sign``, ``GetPublicKey``, ``CreateKey``...), faulted
    requests included. ``inject_error`` makes the next ``times`` calls of an action fail with
    AWS's JSON error.
    """

    # -- faults ----------------------------------------------------------------------------

    def inject_error(
        self,
        action: str,
        status: int,
        code: str,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``action`` with KMS's JSON error ``code``
        (``AccessDeniedException``, ``DisabledException``, ``ThrottlingException``,
        ``KMSInvalidStateException``, ``NotFoundException``... all status 400 in AWS)."""
        text = message if message is not None else _MESSAGES.get(code, "Injected by the test.")
        self._inject(InjectedError(action, code, text, status, times))

    def client(self, ca_bundle: Path, *, max_attempts: int | None = None) -> Any:
        """A boto3 KMS client for this server (``boto_client``)."""
        return self.boto_client("kms", ca_bundle, max_attempts=max_attempts)

    # -- keys, managed without going through HTTP (not counted) ------------------------------

    def create_signing_key(self, spec: str = "RSA_2048", description: str = "") -> str:
        """A new SIGN_VERIFY key of ``spec`` (``RSA_2048`` or ``ECC_NIST_P256``); its ARN."""
        if spec not in KEY_SPECS:
            raise ValueError(f"spec must be one of {KEY_SPECS}")
        key = self._backend().create_key(None, "SIGN_VERIFY", spec, description, None)
        return str(key.arn)

    def create_symmetric_key(self, description: str = "") -> str:
        """A new SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key (GenerateDataKey, Decrypt); its ARN.

        moto gives every key an RSA-2048 pair (20-60 ms, the bulk of a stack's start) that a
        symmetric key never uses; made as a P-256 key and relabelled, it costs well under 1 ms.
        """
        key = self._backend().create_key(
            None, "ENCRYPT_DECRYPT", "ECC_NIST_P256", description, None
        )
        key.key_spec = "SYMMETRIC_DEFAULT"
        return str(key.arn)

    def public_key_der(self, key_id: str) -> bytes:
        """The key's public key as GetPublicKey returns it (DER SubjectPublicKeyInfo)."""
        return bytes(self._key(key_id).private_key.public_key())

    def public_key_pem(self, key_id: str) -> str:
        """The key's public key (SubjectPublicKeyInfo PEM), what GetPublicKey's DER holds."""
        public = serialization.load_der_public_key(self.public_key_der(key_id))
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()

    def private_key_pem(self, key_id: str) -> str:
        """The key's private half as PKCS#8 PEM, which real KMS never lets out: for leak scans
        (``LocalStack.all_secret_material``) that prove it is nowhere outside KMS."""
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        private = self._key(key_id).private_key.private_key
        pem: bytes = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return pem.decode()

    def disable(self, key_id: str) -> None:
        """Disable the key, as DisableKey does: Sign then fails with ``DisabledException``."""
        key = self._key(key_id)
        self._backend().disable_key(key.id)

    def key_state(self, key_id: str) -> str:
        """``Enabled``, ``Disabled`` or ``PendingDeletion``."""
        return str(self._key(key_id).key_state)

    def _key(self, key_id: str) -> Any:
        """moto's key for a key id, key ARN, alias name or alias ARN (KeyError if none)."""
        backend = self._backend()
        try:
            found = backend.keys[backend.any_id_to_key_id(key_id)]
        except (KeyError, TypeError, AttributeError) as exc:  # an unknown alias: AttributeError
            raise KeyError(key_id) from exc
        return found

    def _backend(self) -> Any:
        return kms_backends[self.account_id][_REGION]

    # -- WSGI ------------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        action = kms_action(environ)
        injected = self._count(action)
        if injected is not None:
            drain(environ)
            return json_answer(
                start_response,
                injected.status,
                {"__type": injected.code, "message": injected.message},
            )
        if action not in _KEY_IN_USE | _KEY_STATE_CHANGES | CONTEXT_ACTIONS:
            return self._moto(environ, start_response)
        body = _read_body(environ)
        request = _parse(body)
        if action in CONTEXT_ACTIONS and request:
            request = bind_contexts(action, request)
            body = json.dumps(request).encode()
        key = self._request_key(request)
        if key is None and isinstance(request.get("KeyId"), str):
            # AWS's answer for a key id, ARN or alias that names no key (moto fails on aliases).
            message = f"Key '{request['KeyId'][:300]}' does not exist"
            return json_answer(
                start_response, 400, {"__type": "NotFoundException", "message": message}
            )
        if action == "Decrypt":
            refusal, key = decrypting_key(self._backend().keys, request, key)
            if refusal is not None:
                return json_answer(start_response, 400, refusal)
        if key is not None and action in _KEY_STATE_CHANGES:
            body = json.dumps({**request, "KeyId": key.id}).encode()
        elif key is not None and key.key_state != "Enabled":
            return json_answer(start_response, 400, _state_error(key))
        elif key is not None and action in DATA_KEY_ACTIONS and not encrypts(key):
            return json_answer(start_response, 400, usage_error(key, action))
        elif key is not None and action == "GetPublicKey":
            return json_answer(start_response, 200, _public_key(key))
        elif key is not None and action == "Sign" and request.get("MessageType") == "DIGEST":
            answer = _sign_digest(key, request)
            if answer is not None:
                return json_answer(start_response, *answer)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self._moto(environ, start_response)

    def _request_key(self, request: dict[str, Any]) -> Any:
        """The key a request names, or None (moto then answers NotFoundException as AWS does)."""
        key_id = request.get("KeyId")
        if not isinstance(key_id, str):
            return None
        try:
            return self._key(key_id)
        except KeyError:
            return None


def _read_body(environ: WSGIEnvironment) -> bytes:
    raw = str(environ.get("CONTENT_LENGTH") or "0")
    length = int(raw) if raw.isdigit() else 0
    return bytes(environ["wsgi.input"].read(length)) if length else b""


def _parse(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _state_error(key: Any) -> dict[str, str]:
    """AWS's answer for a key that is not Enabled."""
    if key.key_state == "Disabled":
        return {"__type": "DisabledException", "message": f"{key.arn} is disabled."}
    return {
        "__type": "KMSInvalidStateException",
        "message": f"{key.arn} is {_state_words(key.key_state)}.",
    }


def _state_words(state: str) -> str:
    return "pending deletion" if state == "PendingDeletion" else f"in state {state}"


def _public_key(key: Any) -> dict[str, Any]:
    """GetPublicKey's answer as AWS gives it (moto's lacks ``KeySpec`` and names the key by id)."""
    answer = {
        "KeyId": key.arn,
        "PublicKey": base64.b64encode(key.private_key.public_key()).decode(),
        "KeySpec": key.key_spec,
        "CustomerMasterKeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
    }
    if key.key_usage == "SIGN_VERIFY":
        answer["SigningAlgorithms"] = key.signing_algorithms
    else:
        answer["EncryptionAlgorithms"] = key.encryption_algorithms
    return answer


def _sign_digest(key: Any, request: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """(status, answer) for Sign over a digest, as AWS: the digest is signed as given.

    None when the request is one moto refuses the same way AWS does (wrong key usage, an
    algorithm the key does not have, a missing field): moto answers it.
    """
    algorithm = request.get("SigningAlgorithm")
    message = request.get("Message")
    if (
        key.key_usage != "SIGN_VERIFY"
        or not isinstance(algorithm, str)
        or algorithm not in key.signing_algorithms
        or not isinstance(message, str)
    ):
        return None
    try:
        digest = base64.b64decode(message, validate=True)
    except ValueError:
        return None
    hash_type = _HASHES.get(algorithm[-7:])
    if hash_type is None:
        return None
    hash_algorithm = hash_type()
    if len(digest) != hash_algorithm.digest_size:
        return 400, {
            "__type": "ValidationException",
            "message": f"Digest is invalid length for algorithm {algorithm}.",
        }
    signature = _sign(key.private_key.private_key, algorithm, digest, hash_algorithm)
    return 200, {
        "KeyId": key.arn,
        "Signature": base64.b64encode(signature).decode(),
        "SigningAlgorithm": algorithm,
    }


def _sign(
    private: Any, algorithm: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm
) -> bytes:
    """Sign a precomputed digest with the key's private key (never leaves this process)."""
    prehashed = Prehashed(hash_algorithm)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(digest, ec.ECDSA(prehashed))
    if not isinstance(private, rsa.RSAPrivateKey):
        raise TypeError(f"no digest signing for {type(private).__name__}")
    if algorithm.startswith("RSASSA_PSS"):
        pad: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size
        )
    else:
        pad = padding.PKCS1v15()
    return private.sign(digest, pad, prehashed)

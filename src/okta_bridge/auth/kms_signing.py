"""Client assertions signed inside AWS KMS (issue 16): ``kms:Sign`` on the SHA-256 digest of the
JWS signing input, so no private key exists in the process, the secret, or a memory dump.

RS256 is ``RSASSA_PKCS1_V1_5_SHA_256`` (KMS returns the PKCS#1 v1.5 signature JOSE uses as it is);
ES256 is ``ECDSA_SHA_256``, whose DER ``SEQUENCE { r INTEGER, s INTEGER }`` becomes JOSE's raw
32-byte ``r || s`` (RFC 7518 3.4). The request is KMS's JSON protocol (``TrentService.Sign``),
signed with SigV4 and sent through the bridge's own HTTP client (verified TLS, deadline, retries of
throttling), as the secret read is: no boto3 on the hot path.

A building block: ``KmsSigner.sign`` raises ``KmsRefused`` with KMS's error type; mapping those to
catalog codes and wiring the signer into ``client_auth`` comes with the rest of issue 16.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable

from okta_bridge import config
from okta_bridge.config import Settings
from okta_bridge.errors import TokenError
from okta_bridge.secret.sigv4 import Credentials, sign_post
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, Target

ALGORITHMS = {"RS256": "RSASSA_PKCS1_V1_5_SHA_256", "ES256": "ECDSA_SHA_256"}
KMS_TARGET = Target("AWS KMS", "TOKEN_UNREACHABLE", "TOKEN_TIMEOUT", TokenError)
MAX_KMS_ANSWER = 16_384
_ES256_SIZE = 32  # bytes of r and of s for P-256


class KmsRefused(Exception):
    """KMS answered with an error: ``error_type`` is its ``__type`` (``AccessDeniedException``,
    ``DisabledException``, ``KMSInvalidStateException``, ``NotFoundException``...)."""

    def __init__(self, error_type: str, status: int) -> None:
        super().__init__(f"KMS refused Sign: {error_type} (HTTP {status})")
        self.error_type = error_type
        self.status = status


class KmsSigner:
    """Signs JWS inputs with a KMS key; one ``kms:Sign`` per call."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        *,
        endpoint: str | None = None,
        credentials: Callable[[], Credentials | None] = config.aws_credentials,
        clock: Callable[[], float] = time.time,
    ) -> None:
        region = settings.aws.region
        if not region:
            raise ValueError("KMS signing needs the function's region (AWS_REGION)")
        self._region = region
        self._url = (endpoint or f"https://kms.{region}.amazonaws.com").rstrip("/") + "/"
        self._http = http
        self._credentials = credentials
        self._clock = clock

    def sign(self, key_id: str, signing_input: bytes, algorithm: str, deadline: Deadline) -> bytes:
        """The JOSE signature of ``signing_input`` (``header.payload``) for ``algorithm``."""
        kms_algorithm = ALGORITHMS[algorithm]
        digest = hashlib.sha256(signing_input).digest()
        body = json.dumps(
            {
                "KeyId": key_id,
                "Message": base64.b64encode(digest).decode("ascii"),
                "MessageType": "DIGEST",
                "SigningAlgorithm": kms_algorithm,
            }
        ).encode()

        def prepare() -> tuple[dict[str, str], bytes]:
            credentials = self._credentials()
            if credentials is None:
                raise KmsRefused("MissingCredentials", 0)
            headers = {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "TrentService.Sign",
            }
            signed = sign_post(
                self._url,
                headers,
                body,
                credentials=credentials,
                region=self._region,
                service="kms",
                now=self._clock(),
            )
            return signed, body

        answer = self._http.request(
            "POST",
            self._url,
            target=KMS_TARGET,
            deadline=deadline,
            prepare=prepare,
            max_bytes=MAX_KMS_ANSWER,
            retry_when=_throttled,
        )
        signature = _signature(answer)
        return raw_ecdsa(signature) if algorithm == "ES256" else signature


def raw_ecdsa(der: bytes) -> bytes:
    """A DER ``ECDSA-Sig-Value`` as JOSE's fixed-size ``r || s`` for P-256; strict DER only."""
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise ValueError("not a DER ECDSA signature")
    r, rest = _der_integer(der[2:])
    s, tail = _der_integer(rest)
    if tail:
        raise ValueError("trailing bytes after the ECDSA signature")
    return r.to_bytes(_ES256_SIZE, "big") + s.to_bytes(_ES256_SIZE, "big")


def _der_integer(data: bytes) -> tuple[int, bytes]:
    if len(data) < 3 or data[0] != 0x02 or data[1] == 0 or data[1] > _ES256_SIZE + 1:
        raise ValueError("not a DER INTEGER of a P-256 signature")
    length = data[1]
    value = data[2 : 2 + length]
    if len(value) != length or value[0] & 0x80:
        raise ValueError("a negative or truncated INTEGER")
    if length > 1 and value[0] == 0 and not value[1] & 0x80:
        raise ValueError("a non-minimal INTEGER")
    number = int.from_bytes(value, "big")
    if number == 0 or number.bit_length() > _ES256_SIZE * 8:
        raise ValueError("an INTEGER out of range")
    return number, data[2 + length :]


def _signature(answer: HttpResponse) -> bytes:
    document = answer.json_object() or {}
    if answer.status != 200:
        error_type = str(document.get("__type", "")).rsplit("#", 1)[-1] or "UnknownError"
        raise KmsRefused(error_type[:80], answer.status)
    value = document.get("Signature")
    if not isinstance(value, str):
        raise KmsRefused("NoSignature", answer.status)
    return base64.b64decode(value, validate=True)


def _throttled(answer: HttpResponse) -> bool:
    document = answer.json_object() or {}
    return answer.status == 400 and "Throttling" in str(document.get("__type", ""))

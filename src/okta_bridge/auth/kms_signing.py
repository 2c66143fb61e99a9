"""Client assertions signed inside AWS KMS (the secret's ``kms_key_id``): ``kms:Sign`` on the
SHA-256 digest of the JWS signing input, so no private key exists in the process, the secret, or a
memory dump, and every signature is a CloudTrail event.

RS256 is ``RSASSA_PKCS1_V1_5_SHA_256`` (KMS returns the PKCS#1 v1.5 signature JOSE uses as it is);
ES256 is ``ECDSA_SHA_256``, whose DER ``SEQUENCE { r INTEGER, s INTEGER }`` becomes JOSE's raw
32-byte ``r || s`` (RFC 7518 3.4). The request is KMS's JSON protocol (``TrentService.Sign``),
signed with SigV4 and sent through the bridge's own HTTP client (verified TLS, deadline, retries of
throttling), as the secret read is: no boto3 on the hot path (its import alone costs more than a
cold start's whole budget for this). KMS's refusals become ``SigningError`` codes with hints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable

from okta_bridge import config
from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError, SigningError
from okta_bridge.logs import get_logger
from okta_bridge.secret.sigv4 import Credentials, error_type, service_host, sign_post
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, ResponseTooLarge, Target

ALGORITHMS = {"RS256": "RSASSA_PKCS1_V1_5_SHA_256", "ES256": "ECDSA_SHA_256"}
KMS_TARGET = Target("AWS KMS", "KMS_UNREACHABLE", "KMS_TIMEOUT", SigningError)
MAX_KMS_ANSWER = 16_384
_ES256_SIZE = 32  # bytes of r and of s for P-256
# An RS256 signature is as long as the modulus: KMS's RSA_2048, RSA_3072 and RSA_4096 keys.
RSA_SIGNATURE_BYTES = frozenset({256, 384, 512})

# KMS's error types (``__type``) by the code the caller sees; anything else is KMS_ERROR.
_CODES = {
    "AccessDeniedException": "KMS_ACCESS_DENIED",
    "MissingCredentials": "KMS_ACCESS_DENIED",
    "UnrecognizedClientException": "KMS_ACCESS_DENIED",
    "InvalidSignatureException": "KMS_ACCESS_DENIED",
    "ExpiredTokenException": "KMS_ACCESS_DENIED",
    "DisabledException": "KMS_KEY_DISABLED",
    "KMSInvalidStateException": "KMS_KEY_DISABLED",
    "NotFoundException": "KMS_KEY_NOT_FOUND",
    "InvalidArnException": "KMS_KEY_NOT_FOUND",
    "InvalidKeyUsageException": "KMS_KEY_INVALID",
    "ValidationException": "KMS_KEY_INVALID",
    "UnsupportedOperationException": "KMS_KEY_INVALID",
    "IncorrectKeyException": "KMS_KEY_INVALID",
    "ThrottlingException": "KMS_THROTTLED",
    "LimitExceededException": "KMS_THROTTLED",
}
_THROTTLING = frozenset(t for t, code in _CODES.items() if code == "KMS_THROTTLED")
# KMS's server faults (HTTP 500), which AWS's SDKs retry: worth another attempt in the deadline.
_SERVER_FAULTS = frozenset({"KMSInternalException", "DependencyTimeoutException"})

log = get_logger("kms")


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
            raise ConfigError("AWS_REGION", "is required to sign with KMS (Lambda sets it)")
        self._region = region
        self.url = kms_url(settings, region, endpoint)
        self._http = http
        self._credentials = credentials
        self._clock = clock

    def sign(self, key_id: str, signing_input: bytes, algorithm: str, deadline: Deadline) -> bytes:
        """The JOSE signature of ``signing_input`` (``header.payload``) for ``algorithm``; raises
        ``SigningError`` (or a network/TLS error naming KMS) when there is none."""
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
                raise _refused("MissingCredentials", key_id)
            headers = {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "TrentService.Sign",
            }
            signed = sign_post(
                self.url,
                headers,
                body,
                credentials=credentials,
                region=self._region,
                service="kms",
                now=self._clock(),
            )
            return signed, body

        try:
            answer = self._http.request(
                "POST",
                self.url,
                target=KMS_TARGET,
                deadline=deadline,
                prepare=prepare,
                max_bytes=MAX_KMS_ANSWER,
                retry_when=_transient,
            )
        except ResponseTooLarge:
            raise SigningError(
                "KMS_ERROR", f"KMS's answer to Sign was over {MAX_KMS_ANSWER} bytes."
            ) from None
        signature = _signature(answer, key_id, self._credentials())
        if algorithm == "RS256":
            if len(signature) not in RSA_SIGNATURE_BYTES:
                raise SigningError(
                    "KMS_ERROR", f"KMS returned a {len(signature)}-byte RSA signature."
                )
            return signature
        try:
            return raw_ecdsa(signature)
        except ValueError:
            raise SigningError("KMS_ERROR", "KMS returned a malformed ECDSA signature.") from None


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


def _signature(answer: HttpResponse, key_id: str, credentials: Credentials | None) -> bytes:
    document = answer.json_object() or {}
    if answer.status != 200:
        error = error_type(document) or f"HTTP {answer.status}"
        # KMS's own message names principals and policies: for the log, not for the caller;
        # scrubbed of the function's credentials, should anything in between echo the request.
        message = str(document.get("message", document.get("Message", "")))[:300]
        for value in credentials or ():
            if value:
                message = message.replace(value, "[REDACTED]")
        log.warning(
            "kms:Sign refused",
            extra={"error_type": error, "status": answer.status, "kms_message": message},
        )
        raise _refused(error, key_id)
    value = document.get("Signature")
    try:
        signature = base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except ValueError:
        signature = b""
    if not signature:
        raise SigningError("KMS_ERROR", "KMS answered Sign without a signature.")
    return signature


def _refused(error_type: str, key_id: str) -> SigningError:
    code = _CODES.get(error_type, "KMS_ERROR")
    return SigningError(code, f"KMS refused kms:Sign with the key {key_id[:300]}: {error_type}.")


def kms_url(settings: Settings, region: str, endpoint: str | None = None) -> str:
    """KMS's JSON API: ``endpoint``, else ``AWS_ENDPOINT_URL_KMS`` (https only), else the
    region's host (FIPS when asked)."""
    url = endpoint or settings.aws.kms_endpoint
    if url is not None:
        config.validate_https_url(url, "AWS_ENDPOINT_URL_KMS")
    else:
        url = f"https://{service_host('kms', region, fips=settings.aws.fips)}"
    return url.rstrip("/") + "/"


def _transient(answer: HttpResponse) -> bool:
    """Throttling (HTTP 400) and KMS's own server faults (HTTP 500) are tried again."""
    error = error_type(answer.json_object() or {})
    return (answer.status == 400 and error in _THROTTLING) or (
        answer.status == 500 and error in _SERVER_FAULTS
    )

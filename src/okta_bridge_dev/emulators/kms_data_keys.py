"""What ``KmsServer`` changes in moto's symmetric calls (GenerateDataKey, Encrypt, Decrypt,
ReEncrypt) so they answer as AWS KMS does; see ``kms``'s docstring for the deviations.

moto binds an EncryptionContext as its keys and values run together, so ``{"ab": "c"}``
decrypted what ``{"a": "bc"}`` encrypted: ``bind_contexts`` hands moto each context as one
canonical JSON string instead, which only the exact same context reproduces.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Mapping
from typing import Any

from moto.kms.utils import CIPHERTEXT_HEADER_FORMAT, HEADER_LEN

__all__ = [
    "CONTEXT_ACTIONS",
    "DATA_KEY_ACTIONS",
    "bind_contexts",
    "decrypting_key",
    "encrypts",
    "usage_error",
]

DATA_KEY_ACTIONS = frozenset(
    {"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"}
)
"""Actions that need a symmetric ENCRYPT_DECRYPT key."""
CONTEXT_ACTIONS = DATA_KEY_ACTIONS | {"ReEncrypt"}
"""Actions whose encryption contexts ``bind_contexts`` rewrites."""

_CONTEXT_FIELDS = ("EncryptionContext", "SourceEncryptionContext", "DestinationEncryptionContext")
_BOUND_CONTEXT = "okta-bridge-dev:encryption-context"
"""The one context key moto sees: its value is the request's context as canonical JSON."""
_KEY_ID = re.compile(r"(mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INVALID_CIPHERTEXT = {"__type": "InvalidCiphertextException", "message": ""}
_INCORRECT_KEY = {
    "__type": "IncorrectKeyException",
    "message": "The key ID in the request does not identify a CMK that can perform this operation.",
}


def bind_contexts(action: str, request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with each encryption context (absent = empty) as one canonical JSON string.

    A context that is not a map is left to moto, which refuses it as AWS does.
    """
    bound = dict(request)
    fields = _CONTEXT_FIELDS[1:] if action == "ReEncrypt" else _CONTEXT_FIELDS[:1]
    for name in fields:
        context = request.get(name, {})
        if isinstance(context, dict):
            canonical = json.dumps(context, sort_keys=True, separators=(",", ":"))
            bound[name] = {_BOUND_CONTEXT: canonical}
    return bound


def decrypting_key(
    keys: Mapping[str, Any], request: dict[str, Any], named: Any
) -> tuple[dict[str, str] | None, Any]:
    """(AWS's refusal or None, the key) for a Decrypt whose ``KeyId`` is ``named`` (or None).

    The key is the one the ciphertext was sealed with, else ``named``; None when neither is
    known (moto then answers AccessDeniedException, as AWS does for a key one cannot use).
    Bytes that are no ciphertext are InvalidCiphertextException (moto reads a key id out of any
    64 bytes and answers AccessDeniedException), a ``KeyId`` other than the ciphertext's key
    IncorrectKeyException (moto: AccessDeniedException).
    """
    blob = request.get("CiphertextBlob")
    if not isinstance(blob, str):
        return None, named
    try:
        header = base64.b64decode(blob, validate=True)[:HEADER_LEN]
        key_id = struct.unpack(CIPHERTEXT_HEADER_FORMAT, header)[0].decode()
    except (binascii.Error, struct.error, UnicodeDecodeError):
        return _INVALID_CIPHERTEXT, None
    if not _KEY_ID.fullmatch(key_id):
        return _INVALID_CIPHERTEXT, None
    sealed_by = keys.get(key_id)
    if named is not None and sealed_by is not None and named.id != sealed_by.id:
        return _INCORRECT_KEY, None
    return None, sealed_by if sealed_by is not None else named


def encrypts(key: Any) -> bool:
    """True for a key GenerateDataKey, Encrypt and Decrypt accept (symmetric, ENCRYPT_DECRYPT)."""
    return bool(key.key_usage == "ENCRYPT_DECRYPT" and key.key_spec == "SYMMETRIC_DEFAULT")


def usage_error(key: Any, action: str) -> dict[str, str]:
    """AWS's answer for a symmetric operation on a key that cannot do it."""
    return {
        "__type": "InvalidKeyUsageException",
        "message": f"{key.arn} key usage is {key.key_usage} which is not valid for {action}.",
    }

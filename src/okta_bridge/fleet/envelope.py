"""Envelope encryption of cache items: AES-256-GCM under data keys that KMS makes and opens.

Why not DynamoDB's own encryption at rest alone (the table has it too, with the stack's key):
anyone whose IAM policy reads the table reads its items in clear, and so would an export, a
backup or a stream. Sealed here, an item opens only for a principal that may also call
``kms:Decrypt`` on the stack's key with the cache's encryption context, which the key policy and
the role grant to the bridge (and the library's consumers) alone; and the AAD binds each item to
its table, key and times, so an item copied or edited in the table does not open.

One ``kms:GenerateDataKey`` per environment for what it writes (the data key is reused, each seal
with a fresh random 96-bit nonce: an environment writes a few items an hour, far below GCM's
limits); one ``kms:Decrypt`` per data key it reads, kept by the encrypted key's bytes. The plain
data keys live in this process only and are dropped with ``clear`` (SnapStart restore).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from okta_bridge.errors import CacheError
from okta_bridge.fleet.aws_json import AwsJsonApi
from okta_bridge.transport.deadline import Deadline

CONTEXT = {"okta-bridge:purpose": "token-cache"}
"""KMS encryption context of every data key: the key policy and the role's grant require it."""
NONCE_BYTES = 12
KEY_BYTES = 32
DATA_KEY_SECONDS = 3600.0  # a new data key for the items an environment writes, hourly
OPENED_KEYS = 16  # data keys of other environments kept opened (one per minter seen)
# KMS's answers to a data key that is not the stack key's or not in the cache's context: the item
# was not sealed by this stack's bridge, so it is corrupt (replaced), not a failure of the cache.
FOREIGN_BLOBS = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class Envelope:
    """Seals and opens byte strings; thread-safe."""

    def __init__(
        self,
        kms: AwsJsonApi,
        key_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._kms = kms
        self._key_id = key_id
        self._clock = clock
        self._random = random_bytes
        self._lock = threading.Lock()
        self._sealing: tuple[bytes, bytes, float] | None = None  # (plain, encrypted, made at)
        self._opened: OrderedDict[bytes, bytes] = OrderedDict()

    def __repr__(self) -> str:
        return f"Envelope(key_id={self._key_id!r})"

    def seal(self, plaintext: bytes, aad: bytes, deadline: Deadline) -> tuple[bytes, bytes]:
        """``(encrypted data key, nonce || ciphertext)`` of ``plaintext`` bound to ``aad``."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        plain, encrypted = self._data_key(deadline)
        nonce = self._random(NONCE_BYTES)
        return encrypted, nonce + AESGCM(plain).encrypt(nonce, plaintext, aad)

    def open(self, encrypted_key: bytes, sealed: bytes, aad: bytes, deadline: Deadline) -> bytes:
        """The plaintext, or ``TOKEN_CACHE_CORRUPT`` when the item does not open as written (its
        ciphertext altered or moved, its data key foreign)."""
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        plain = self._opened_key(encrypted_key, deadline)
        if len(sealed) < NONCE_BYTES + 16:
            raise CacheError("TOKEN_CACHE_CORRUPT", "A cached item is too short to be sealed.")
        try:
            return AESGCM(plain).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise CacheError(
                "TOKEN_CACHE_CORRUPT", "A cached item does not open: altered or moved."
            ) from None

    def clear(self) -> None:
        """Forget every data key (SnapStart: a restored environment makes its own)."""
        with self._lock:
            self._sealing = None
            self._opened.clear()

    def _data_key(self, deadline: Deadline) -> tuple[bytes, bytes]:
        with self._lock:
            current = self._sealing
            if current is not None and self._clock() - current[2] < DATA_KEY_SECONDS:
                return current[0], current[1]
        answer = self._kms.call(
            "GenerateDataKey",
            {"KeyId": self._key_id, "KeySpec": "AES_256", "EncryptionContext": CONTEXT},
            deadline,
        )
        plain = _blob(answer.get("Plaintext"), "GenerateDataKey's Plaintext")
        encrypted = _blob(answer.get("CiphertextBlob"), "GenerateDataKey's CiphertextBlob")
        if len(plain) != KEY_BYTES:
            raise CacheError("TOKEN_CACHE_REFUSED", "KMS made a data key that is not 256 bits.")
        with self._lock:
            self._sealing = (plain, encrypted, self._clock())
            self._remember_locked(encrypted, plain)
        return plain, encrypted

    def _opened_key(self, encrypted: bytes, deadline: Deadline) -> bytes:
        with self._lock:
            plain = self._opened.get(encrypted)
            if plain is not None:
                self._opened.move_to_end(encrypted)
                return plain
        # KeyId pins the key: a blob made under any other key (another stack's, an attacker's)
        # is refused by KMS rather than opened with whatever key it names.
        try:
            answer = self._kms.call(
                "Decrypt",
                {
                    "CiphertextBlob": base64.b64encode(encrypted).decode("ascii"),
                    "EncryptionContext": CONTEXT,
                    "KeyId": self._key_id,
                },
                deadline,
            )
        except CacheError as exc:
            if exc.aws_code not in FOREIGN_BLOBS:
                raise
            raise CacheError(
                "TOKEN_CACHE_CORRUPT",
                f"KMS would not open the cached item's data key ({exc.aws_code}): another key "
                "or encryption context; the next mint replaces it.",
                aws_code=exc.aws_code,
            ) from None
        plain = _blob(answer.get("Plaintext"), "Decrypt's Plaintext")
        if len(plain) != KEY_BYTES:
            raise CacheError("TOKEN_CACHE_CORRUPT", "A cached item's data key is not 256 bits.")
        with self._lock:
            self._remember_locked(encrypted, plain)
        return plain

    def _remember_locked(self, encrypted: bytes, plain: bytes) -> None:
        self._opened[encrypted] = plain
        self._opened.move_to_end(encrypted)
        while len(self._opened) > OPENED_KEYS:
            self._opened.popitem(last=False)


def _blob(value: object, what: str) -> bytes:
    try:
        data = base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except ValueError:
        data = b""
    if not data:
        raise CacheError("TOKEN_CACHE_REFUSED", f"KMS answered without {what}.")
    return data

"""One object being written to S3 with bounded memory: a reusable part buffer, the running SHA-256,
and a multipart upload once the bytes outgrow one part.

The buffer grows to one part and is then reused; a full part is sent only when more bytes
arrive, so an object that fits one part is one PutObject. At most the buffer and the one copy
handed to the HTTP client (urllib3 sends ``bytes``) are alive at once: about two parts, however
large the object.
"""

from __future__ import annotations

import hashlib
import time

from okta_bridge.delivery.s3_api import S3Api
from okta_bridge.errors import DeliveryError
from okta_bridge.logs import get_logger
from okta_bridge.transport.deadline import Deadline

MAX_PARTS = 10_000  # S3's limit per multipart upload
# How long an abort may take once the invocation's own deadline is spent: best effort, within
# half of the default BRIDGE_DEADLINE_MARGIN_MS (500), which exists to leave time for the answer.
ABORT_BUDGET = 0.25

log = get_logger("delivery")


class Upload:
    """The bytes of one object on their way to ``key``; ``finish`` or ``abort`` ends it."""

    def __init__(
        self,
        api: S3Api,
        key: str,
        *,
        deadline: Deadline,
        part_size: int,
        max_bytes: int,
        content_type: str,
    ) -> None:
        self.api = api
        self.key = key
        self.content_type = content_type
        self._deadline = deadline
        self._part_size = part_size
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._filled = 0
        self._sha256 = hashlib.sha256()
        self._upload_id: str | None = None
        self._etags: list[str] = []
        self._completed = False
        self._started = time.monotonic()
        self.size = 0

    @property
    def parts(self) -> int:
        """Parts sent so far (0 while everything is in the buffer)."""
        return len(self._etags)

    @property
    def multipart(self) -> bool:
        """Whether a multipart upload was started (the object outgrew one part)."""
        return self._upload_id is not None

    def write(self, chunk: bytes) -> None:
        """Take the next bytes; send a part each time the buffer is full and more arrive.

        Raises ``DeliveryError``: ``DELIVERY_TOO_LARGE`` past ``max_bytes``, or S3's refusal of
        a part. The caller aborts."""
        if self.size + len(chunk) > self._max_bytes:
            raise DeliveryError(
                "DELIVERY_TOO_LARGE",
                f"The answer is larger than BRIDGE_MAX_DELIVERY_BYTES ({self._max_bytes} bytes).",
            )
        self.size += len(chunk)
        self._sha256.update(chunk)
        with memoryview(chunk) as data:
            taken = 0
            while taken < len(data):
                if self._filled == self._part_size:
                    self._send_part()
                room = self._part_size - self._filled
                with data[taken : taken + room] as piece:
                    self._store(piece)
                    taken += len(piece)

    def held(self) -> bytes:
        """The bytes in the buffer (all of them while no part was sent)."""
        return self._part()

    def finish(self) -> str:
        """Store the object (PutObject, or the last part and CompleteMultipartUpload); return
        the hex SHA-256 of all its bytes. Raises ``DeliveryError``; the caller aborts."""
        if self._upload_id is None:
            self.api.put_object(
                self.key, self._part(), content_type=self.content_type, deadline=self._deadline
            )
        else:
            if self._filled:
                self._send_part()
            self.api.complete(self.key, self._upload_id, self._etags, deadline=self._deadline)
        self._completed = True
        self._release()
        digest = self._sha256.hexdigest()
        log.info(
            "delivered to S3",
            extra={
                "bucket": self.api.bucket,
                "key": self.key,
                "bytes": self.size,
                "parts": len(self._etags) or 1,
                "ms": round((time.monotonic() - self._started) * 1000),
            },
        )
        return digest

    def abort(self) -> None:
        """Drop the buffer and abort the multipart upload, if any (best effort: never raises;
        the bucket's lifecycle rule aborts what this could not, after a day)."""
        upload_id, self._upload_id = self._upload_id, None
        self._release()
        if upload_id is None or self._completed:
            return
        remaining = self._deadline.remaining()
        deadline = self._deadline if remaining >= ABORT_BUDGET else Deadline(ABORT_BUDGET)
        try:
            self.api.abort(self.key, upload_id, deadline=deadline)
        except Exception as exc:  # noqa: BLE001 - best effort; the lifecycle rule is the backstop
            log.warning(
                "could not abort the S3 multipart upload",
                extra={"bucket": self.api.bucket, "key": self.key, "error": _code(exc)},
            )
        else:
            log.info(
                "aborted the S3 multipart upload",
                extra={"bucket": self.api.bucket, "key": self.key, "parts": len(self._etags)},
            )

    # -- the part buffer -------------------------------------------------------------------

    def _store(self, piece: memoryview) -> None:
        end = self._filled + len(piece)
        if end <= len(self._buffer):
            self._buffer[self._filled : end] = piece  # reuse: the buffer already has the room
        else:
            del self._buffer[self._filled :]
            self._buffer += piece  # the first part grows the buffer once
        self._filled = end

    def _part(self) -> bytes:
        if self._filled == len(self._buffer):
            return bytes(self._buffer)
        with memoryview(self._buffer) as whole, whole[: self._filled] as head:
            return bytes(head)

    def _send_part(self) -> None:
        if len(self._etags) >= MAX_PARTS:
            raise DeliveryError(
                "DELIVERY_TOO_LARGE", f"The answer needs more than {MAX_PARTS} parts."
            )
        if self._upload_id is None:
            self._upload_id = self.api.create_upload(
                self.key, content_type=self.content_type, deadline=self._deadline
            )
        number = len(self._etags) + 1
        # Sent from the buffer itself: a copy would double the memory a part costs.
        with memoryview(self._buffer) as whole, whole[: self._filled] as part:
            etag = self.api.upload_part(
                self.key, self._upload_id, number, part, deadline=self._deadline
            )
        self._etags.append(etag)
        self._filled = 0

    def _release(self) -> None:
        self._buffer = bytearray()
        self._filled = 0


def _code(exc: Exception) -> str:
    return str(getattr(exc, "code", None) or type(exc).__name__)

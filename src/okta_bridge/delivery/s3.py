"""Answers too large for Lambda's 6 MB response, written to S3 and handed out as a pointer.

``S3Delivery.put`` streams an answer the bridge builds (a collection of pages, or any answer the
event asked to deliver); ``S3Delivery.spill`` gives the transport a ``BodySink`` that keeps a
body in memory while it is small and streams it to a multipart upload once it is not, so a
50 MB export never sits whole in the function's memory. Either way the object is encrypted with
the stack's KMS key (SSE-KMS), its key is ``<prefix>YYYY/MM/DD/<request id>-<random>.json``, and
the answer is a ``Delivered``: bucket, key, size, SHA-256 and a presigned GET URL.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from okta_bridge import config
from okta_bridge.config import Settings
from okta_bridge.delivery.s3_api import S3Api
from okta_bridge.delivery.upload import Upload
from okta_bridge.errors import UpstreamError
from okta_bridge.secret.sigv4 import Credentials
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline

if TYPE_CHECKING:
    from okta_bridge.transport.message import BodySink

PART_SIZE = 8 * 1024 * 1024
JSON = "application/json"
_SPACE = b" \t\r\n"  # JSON's whitespace (RFC 8259 2)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9-]")
_MAX_ID = 64


class Delivered(NamedTuple):
    """Where an answer was written and how to fetch it. ``url`` is a bearer capability for
    the object until ``expires_at``: it goes into the answer, never into a log or an error."""

    bucket: str
    key: str
    size: int
    sha256: str
    url: str
    expires_at: str
    content_type: str

    def pointer(self) -> dict[str, object]:
        """The answer's ``delivery`` object."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "bytes": self.size,
            "sha256": self.sha256,
            "url": self.url,
            "expires_at": self.expires_at,
            "content_type": self.content_type,
        }

    def __repr__(self) -> str:
        return (
            f"Delivered(bucket={self.bucket!r}, key={self.key!r}, size={self.size}, "
            f"sha256={self.sha256!r}, url='[REDACTED]', expires_at={self.expires_at!r}, "
            f"content_type={self.content_type!r})"
        )


class S3Delivery:
    """Writes answers to ``settings.delivery.bucket``; one per execution environment.

    Every method raises ``DeliveryError``: ``DELIVERY_NOT_CONFIGURED`` without a bucket,
    ``DELIVERY_DENIED`` without credentials or region or when S3/KMS refuse,
    ``DELIVERY_UNREACHABLE``/``DELIVERY_TIMEOUT`` from the transport, ``DELIVERY_TOO_LARGE``
    past ``BRIDGE_MAX_DELIVERY_BYTES`` and ``DELIVERY_FAILED`` for S3's other errors.
    """

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        *,
        credentials: Callable[[], Credentials | None] = config.aws_credentials,
        clock: Callable[[], float] = time.time,
        part_size: int = PART_SIZE,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._part_size = part_size
        self._api = S3Api(settings, http, credentials=credentials, clock=clock)

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        request_id: str,
        deadline: Deadline,
        content_type: str = JSON,
    ) -> Delivered:
        """Stream ``chunks`` into a new object: one PutObject when they fit one part, else a
        multipart upload, aborted (best effort) on any failure."""
        upload = self._upload(self._key(request_id), deadline, self._part_size, content_type)
        try:
            for chunk in chunks:
                upload.write(chunk)
            digest = upload.finish()
        except BaseException:
            upload.abort()
            raise
        return self._delivered(upload, digest)

    def spill(self, *, request_id: str, deadline: Deadline, threshold: int) -> Spill:
        """A ``BodySink`` that keeps up to ``threshold`` bytes in memory and streams a larger
        body to S3 (``Spill``)."""
        _ = self._api.bucket  # DELIVERY_NOT_CONFIGURED before any byte is read
        return Spill(self, self._key(request_id), deadline, threshold)

    def probe(self, *, request_id: str, deadline: Deadline) -> Delivered:
        """A tiny object under ``<prefix>diagnose/``: proves the role may write there with the
        key (``diagnose``), and that a presigned URL can be made."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        body = f'{{"probe": "okta-bridge delivery", "at": "{stamp}"}}'.encode()
        key = self._key(request_id, folder="diagnose/")
        upload = self._upload(key, deadline, self._part_size, JSON)
        try:
            upload.write(body)
            digest = upload.finish()
        except BaseException:
            upload.abort()
            raise
        return self._delivered(upload, digest)

    # -- shared with Spill -----------------------------------------------------------------

    def _upload(self, key: str, deadline: Deadline, part_size: int, content_type: str) -> Upload:
        return Upload(
            self._api,
            key,
            deadline=deadline,
            part_size=part_size,
            max_bytes=self._settings.delivery.max_bytes,
            content_type=content_type,
        )

    def _delivered(self, upload: Upload, digest: str) -> Delivered:
        url, expires_at = self._api.presigned_get(upload.key)
        return Delivered(
            self._api.bucket, upload.key, upload.size, digest, url, expires_at, upload.content_type
        )

    def _key(self, request_id: str, *, folder: str = "") -> str:
        """``<prefix>[folder]YYYY/MM/DD/<request id>-<16 hex>.json``: by day for the operator,
        by request id for the log line that names it, random so retries never collide."""
        day = time.strftime("%Y/%m/%d", time.gmtime(self._clock()))
        safe_id = _UNSAFE_ID.sub("-", request_id)[:_MAX_ID] or "request"
        prefix = self._settings.delivery.prefix
        return f"{prefix}{folder}{day}/{safe_id}-{secrets.token_hex(8)}.json"


class Spill:
    """A ``BodySink`` (``okta_bridge.transport.message``): the body stays in memory up to
    ``threshold`` bytes (``buffered``); past it, parts stream to a multipart upload as they fill.

    ``accepts`` starts afresh for every answer (a retried attempt aborts the earlier attempt's
    upload). After the body: ``finish`` stores the object (also when it was small: the caller
    decided to deliver it anyway), or ``abort``.
    """

    def __init__(self, owner: S3Delivery, key: str, deadline: Deadline, threshold: int) -> None:
        self._owner = owner
        self._key = key
        self._deadline = deadline
        self._threshold = threshold
        # A part must hold the whole threshold, so that nothing is sent below it.
        self._part_size = max(owner._part_size, threshold + 1)
        self._upload: Upload | None = None
        self._first = self._last = b""  # the body's first and last bytes that are not space

    @property
    def taken(self) -> bool:
        """Whether the last answer's body came here (``accepts`` said yes): then the response
        itself holds none."""
        return self._upload is not None

    @property
    def spilled(self) -> bool:
        """Whether the body is over the threshold (it goes to S3)."""
        return self.size > self._threshold

    @property
    def size(self) -> int:
        """Bytes taken from the current answer."""
        return self._upload.size if self._upload is not None else 0

    def accepts(self, status: int, headers: Mapping[str, str]) -> bool:
        """Take the body of a 2xx JSON answer; any earlier attempt's bytes and upload are
        dropped. Anything else is read as before (capped, and judged: an error page or a
        non-JSON body is the API's failure, never data handed out through S3)."""
        self.abort()
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not 200 <= status < 300 or not (media == JSON or media.endswith("+json")):
            return False
        self._upload = self._owner._upload(self._key, self._deadline, self._part_size, JSON)
        self._first = self._last = b""
        return True

    def write(self, chunk: bytes) -> None:
        """The next bytes; raises ``DeliveryError`` (``DELIVERY_TOO_LARGE``, S3's refusal of a
        part) after aborting the upload."""
        if self._upload is None:
            raise RuntimeError("Spill.write() before accepts()")
        try:
            self._frame(chunk)
            self._upload.write(chunk)
        except BaseException:
            self.abort()
            raise

    def _frame(self, chunk: bytes) -> None:
        """A spilled body cannot be parsed whole (that would hold it): it must at least be framed
        as a JSON document is, ``{...}`` or ``[...]``, so an HTML page labelled JSON (a login
        redirect's answer, a proxy's error page) never reaches S3 as data."""
        significant = chunk.strip(_SPACE)
        if not significant:
            return
        if not self._first:
            self._first = significant[:1]
            if self._first not in (b"{", b"["):
                raise UpstreamError(
                    "UPSTREAM_NOT_JSON", "The API's answer is not JSON (it opens with no { or [)."
                )
        self._last = significant[-1:]

    def buffered(self) -> bytes:
        """The whole body, when it was not spilled."""
        if self.spilled:
            raise RuntimeError("the body went to S3; finish() it instead")
        return self._upload.held() if self._upload is not None else b""

    def finish(self, content_type: str = JSON) -> Delivered:
        """Store the object and return its pointer. ``content_type`` applies when the body fits
        one part (PutObject); a multipart upload was created as ``application/json``."""
        upload = self._upload
        if upload is None:
            raise RuntimeError("Spill.finish() before accepts()")
        if (self._first, self._last) not in ((b"{", b"}"), (b"[", b"]")):
            self.abort()
            raise UpstreamError(
                "UPSTREAM_NOT_JSON", "The API's answer is not JSON (it is not closed as it opened)."
            )
        if not upload.multipart:
            upload.content_type = content_type
        try:
            digest = upload.finish()
        except BaseException:
            self.abort()
            raise
        return self._owner._delivered(upload, digest)

    def abort(self) -> None:
        """Drop the bytes and abort the upload, if any (best effort, never raises)."""
        upload, self._upload = self._upload, None
        if upload is not None:
            upload.abort()


if TYPE_CHECKING:

    def _spill_is_a_body_sink(spill: Spill) -> BodySink:
        return spill  # mypy proves Spill satisfies the transport's protocol

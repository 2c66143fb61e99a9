"""``GET /v1/export?bytes=N``: a JSON array of exactly N bytes, streamed, never held whole.

Why: the bridge must hand answers larger than Lambda's 6 MB to S3 with bounded memory, and a test
can only show that against an API whose answer is as large as asked, byte-exact, and cheap to
check. The records are deterministic, so ``export_sha256(N)`` (or hashing ``export_chunks(N)``)
gives the expected digest without a server; each record differs from its neighbours, so a
reordered, repeated or dropped chunk changes the digest.

Layout: ``[`` records joined by ``,`` ``]``; every record is ``RECORD_BYTES`` long except the last,
which absorbs the remainder (it is padded, or it is up to ``RECORD_BYTES`` longer). A record is
``{"id":<n>,"name":"record-<n, 9 digits>","pad":"<ASCII letters and digits>"}`` with ids from 1.
Valid sizes: 2 (``[]``) and every N from ``MIN_EXPORT_BYTES`` to ``MAX_EXPORT_BYTES``; anything
else is refused with 400 (no "nearest size": a test asking for N gets N or an error).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from okta_bridge_dev.emulators.routing import RecordedRequest, Response, StreamedBody

__all__ = [
    "CHUNK_BYTES",
    "MAX_EXPORT_BYTES",
    "MIN_EXPORT_BYTES",
    "RECORD_BYTES",
    "export",
    "export_chunks",
    "export_sha256",
]

RECORD_BYTES = 1000
"""The size of every record but the last."""

MAX_EXPORT_BYTES = 200_000_000
MIN_EXPORT_BYTES = 64
"""The smallest non-empty export (one record, padded; an unpadded record 1 is 43 bytes)."""

_MIN_LAST_RECORD = 64
"""A shorter remainder joins the previous record instead (an unpadded record is at most 51
bytes while ids have at most 9 digits)."""

CHUNK_BYTES = 64 * 1024
"""About how much ``export_chunks`` yields at a time (whole records, at least one)."""

_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PAD_SOURCE = _PAD_ALPHABET * (2 * RECORD_BYTES // len(_PAD_ALPHABET) + 2)
_DIGITS = frozenset("0123456789")


def _record(number: int, size: int) -> str:
    """Record ``number``, exactly ``size`` bytes (its pad rotated by the number)."""
    head = f'{{"id":{number},"name":"record-{number:09d}","pad":"'
    pad = size - len(head) - 2
    if pad < 0:
        raise ValueError(f"record {number} cannot be {size} bytes")
    start = number % len(_PAD_ALPHABET)
    return f'{head}{_PAD_SOURCE[start : start + pad]}"}}'


def _record_sizes(size: int) -> tuple[int, int]:
    """(number of full records, size of the last record) for an export of ``size`` bytes."""
    inner = size - 2  # without the brackets: records and the commas between them
    full, rest = divmod(inner + 1, RECORD_BYTES + 1)  # each record but the last owns a comma
    if rest == 0:
        return full - 1, RECORD_BYTES
    if rest - 1 >= _MIN_LAST_RECORD or full == 0:
        return full, rest - 1
    return full - 1, RECORD_BYTES + rest  # too short on its own: the last record absorbs it


def _check_size(size: int) -> None:
    if size != 2 and not MIN_EXPORT_BYTES <= size <= MAX_EXPORT_BYTES:
        raise ValueError(f"bytes must be 2 or between {MIN_EXPORT_BYTES} and {MAX_EXPORT_BYTES}")


def export_chunks(size: int) -> Iterator[bytes]:
    """The export of exactly ``size`` bytes, in chunks of about ``CHUNK_BYTES``, built as they
    are yielded (memory stays at one chunk whatever ``size``). Raises ValueError for a size
    the export cannot have."""
    _check_size(size)
    if size == 2:
        yield b"[]"
        return
    full, last = _record_sizes(size)
    parts = ["["]
    buffered = 1
    for number in range(1, full + 1):
        parts.append(_record(number, RECORD_BYTES) + ",")
        buffered += RECORD_BYTES + 1
        if buffered >= CHUNK_BYTES:
            yield "".join(parts).encode("ascii")
            parts, buffered = [], 0
    parts.append(_record(full + 1, last) + "]")
    yield "".join(parts).encode("ascii")


def export_sha256(size: int) -> str:
    """Hex SHA-256 of the export of ``size`` bytes (computed in chunks, like the server sends)."""
    digest = hashlib.sha256()
    for chunk in export_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def export(request: RecordedRequest) -> Response:
    """``GET /v1/export?bytes=N`` (N required): the export, streamed with a Content-Length."""
    try:
        size = _requested_size(request.query.get("bytes", []))
    except ValueError as error:  # answered in the shape of the other routes' errors
        body = {"error": "invalid_request", "error_description": str(error)}
        return Response.json(400, body)
    return Response(
        200,
        {"Content-Type": "application/json"},
        stream=StreamedBody(size, lambda: export_chunks(size)),
    )


def _requested_size(values: list[str]) -> int:
    raw = values[0] if len(values) == 1 else ""
    if not raw or len(raw) > 10 or not set(raw) <= _DIGITS:
        raise ValueError("bytes must be given once, as an integer.")
    _check_size(int(raw))
    return int(raw)

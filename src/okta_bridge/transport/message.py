"""What a request and its answer are to the rest of the bridge: who is called (for error codes
that name the hop), the fully read response, the per-request hooks (a signer for DPoP proofs, a
redirect check), the refusals the transport raises, and how long a server asked us to wait.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from okta_bridge.errors import BridgeError, NetworkError

MAX_RETRY_AFTER = 86_400.0


class Target(NamedTuple):
    """Who is being called, for error codes and messages that name the right hop."""

    label: str
    unreachable_code: str
    timeout_code: str
    error_class: type[BridgeError] = NetworkError


class HttpResponse(NamedTuple):
    """A fully read response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    attempts: int
    retries: int = 0

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name.lower())

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one (an error page, say)."""
        return json_object(self.body)


def json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` parsed as a JSON object; None for anything else (no exception)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class Signer(Protocol):
    """Per-request headers and per-answer bookkeeping (DPoP: a fresh proof for every request
    sent, each attempt and each redirect hop; the nonce of every answer kept)."""

    def headers(self, method: str, url: str) -> Mapping[str, str]:
        """Headers to add to this one request."""
        ...

    def seen(self, url: str, headers: Mapping[str, str]) -> None:
        """An answer from ``url`` arrived with these (lower-case) headers."""
        ...


class BodySink(Protocol):
    """Takes a large answer's body as it arrives instead of the response holding it (S3
    delivery: the body streams to a multipart upload, memory stays bounded).

    ``accepts`` is asked for every answer about to be read (each attempt, each redirect hop);
    answering True starts afresh (a retried attempt's earlier bytes are dropped) and the body is
    then fed to ``write`` in chunks, and the response's ``body`` is empty. ``write`` may raise a
    ``BridgeError`` (the upload failed, or the answer is over the sink's own cap)."""

    def accepts(self, status: int, headers: Mapping[str, str]) -> bool:
        """Whether to take this answer's body (only a success, typically)."""
        ...

    def write(self, chunk: bytes) -> None:
        """The next bytes of the body."""
        ...


Redirect = Callable[[str], str]
"""Checks a same-origin https redirect's URL and returns the URL to request (a canonical form),
or raises ``RedirectRefused``."""
"""Checks a same-origin https redirect's URL and returns the URL to request (a canonical form),
or raises ``RedirectRefused``."""


class ResponseTooLarge(Exception):
    """The body exceeded the cap; callers map it to their own error code."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response larger than {limit} bytes")
        self.limit = limit


class RedirectRefused(Exception):
    """A redirect to another origin, to plain http, to a path the caller's check refuses, or too
    many of them; nothing was sent to where it pointed."""


def retry_after_seconds(
    response: HttpResponse, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds or HTTP-date) on any answer,
    Okta's ``X-Rate-Limit-Reset`` (epoch seconds) on a 429."""
    value = response.header("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return _bounded(float(value))
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            when = None
        if when is not None and when.tzinfo is not None:
            return _bounded(when.timestamp() - now())
    reset = response.header("x-rate-limit-reset")
    if response.status == 429 and reset and reset.strip().isdigit():
        return _bounded(float(reset) - now())
    return None


def _bounded(seconds: float) -> float:
    """A wait between 0 and a day: a server's 400-digit number must not become infinity."""
    return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else MAX_RETRY_AFTER

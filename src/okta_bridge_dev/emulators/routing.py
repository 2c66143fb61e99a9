"""What a local server's routes receive and answer: the recorded request, the response (whole,
or streamed in chunks), and ``PathRoute``, the counted name and handler a server maps a request to.

Why apart from the server: the fake services (Okta, the sample API, Lambda) build routes and
answers without touching sockets, and tests call their handlers directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["PathRoute", "RecordedRequest", "Response", "StreamedBody"]


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it; header names are lower-case.

    ``path`` is the stdlib's reading of the target (``urlsplit``, after ``http.server`` collapsed
    a leading ``//``); ``raw_target`` is the request-target exactly as it stood on the request
    line (each byte one ISO-8859-1 character), for tests that must see what a server that
    normalises paths itself would have routed.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw_target: str = ""

    @property
    def raw_path(self) -> str:
        """``raw_target`` up to its first ``?``: the path as sent, not decoded or normalised."""
        return self.raw_target.partition("?")[0]

    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded`` (empty if it is not UTF-8)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
        return parse_qs(text, keep_blank_values=True)


@dataclass(frozen=True)
class StreamedBody:
    """A body written as ``chunks()`` produces it, never held whole (a large export): its
    ``length`` is the Content-Length, known before the first byte. The server sends exactly
    ``length`` bytes, and resets the connection if ``chunks()`` runs short (a route's bug)."""

    length: int
    chunks: Callable[[], Iterator[bytes]]

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError("StreamedBody.length must not be negative")


@dataclass(frozen=True)
class Response:
    """What a route answers; the server adds Content-Length, Date and Server.

    The body is ``body``, or ``stream`` when set (then ``body`` is ignored).
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: StreamedBody | None = None

    @property
    def content_length(self) -> int:
        """The body's size in bytes, streamed or not."""
        return self.stream.length if self.stream is not None else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        """The body in the pieces the server writes (one piece unless streamed)."""
        if self.stream is not None:
            return self.stream.chunks()
        return iter((self.body,))

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON answer with ``Content-Type: application/json``."""
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, merged, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


@dataclass(frozen=True)
class PathRoute:
    """A route's name (the key in ``TLSServer.counts``) and the function answering it."""

    name: str
    handler: Callable[[RecordedRequest], Response]

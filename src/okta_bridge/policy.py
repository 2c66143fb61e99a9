"""Request policy: which paths of the configured API host an event may read.

The host always comes from configuration. A path from an event is decoded once, segment by
segment, checked, matched against the allow-list, and re-encoded canonically, so the URL sent is
exactly the path that was allowed. Anything ambiguous is refused rather than repaired:

- not a string, too long, control characters, bad percent-encoding -> ``BAD_REQUEST``;
- traversal (``.``/``..`` in any encoding), encoded ``/`` or ``\\``, double encoding, empty
  segments, absolute or scheme-relative URLs, backslashes -> ``PATH_NOT_ALLOWED``;
- a clean path the allow-list does not name -> ``PATH_NOT_ALLOWED``.

Patterns: literal segments, ``*`` for exactly one segment, and a final ``**`` for one or more.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from okta_bridge.errors import RequestError

MAX_PATH_LENGTH = 2048
MAX_QUERY_PARAMS = 50
MAX_QUERY_LENGTH = 4096
_SAFE_SEGMENT = "!$&'()*+,;=:@-._~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

Query = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Endpoint:
    """The configured API: its origin, and the default endpoint's path and query."""

    origin: str
    path: str
    query: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Split an https URL that configuration already validated."""
        parts = urllib.parse.urlsplit(url)
        return cls(f"{parts.scheme}://{parts.netloc}", parts.path or "/", parts.query)

    def url(self, path: str, query: str) -> str:
        """The full URL: always this origin, never anything from the event."""
        return f"{self.origin}{path}?{query}" if query else f"{self.origin}{path}"


class PathPolicy:
    """The allow-list, compiled once."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = tuple(tuple(p.split("/")[1:]) for p in patterns)

    def allows(self, segments: Sequence[str]) -> bool:
        """Whether decoded ``segments`` match any pattern."""
        return any(_match(pattern, segments) for pattern in self._patterns)

    def resolve(self, raw: object) -> str:
        """Check ``raw`` and return its canonical encoded form, or raise ``RequestError``."""
        return self.check(decode_path(raw))

    def check(self, segments: Sequence[str]) -> str:
        """The canonical encoded path of allowed ``segments``, or raise ``PATH_NOT_ALLOWED``."""
        if not self.allows(segments):
            shown = "/" + "/".join(segments)
            raise RequestError("PATH_NOT_ALLOWED", f"The path {shown[:200]!r} is not allowed.")
        return "/" + "/".join(urllib.parse.quote(s, safe=_SAFE_SEGMENT) for s in segments)


@lru_cache(maxsize=8)
def policy_for(patterns: tuple[str, ...]) -> PathPolicy:
    """A compiled policy, shared across invocations."""
    return PathPolicy(patterns)


def decode_path(raw: object) -> list[str]:
    """Decoded segments of an absolute path; refuses anything that is not plainly one."""
    if not isinstance(raw, str):
        raise RequestError("BAD_REQUEST", "'path' must be a string.")
    if len(raw) > MAX_PATH_LENGTH:
        raise RequestError("BAD_REQUEST", f"'path' is longer than {MAX_PATH_LENGTH} characters.")
    if _CONTROL.search(raw):
        raise RequestError("BAD_REQUEST", "'path' contains control characters.")
    if not _is_utf8(raw):
        raise RequestError("BAD_REQUEST", "'path' is not valid Unicode (a lone surrogate).")
    if "?" in raw or "#" in raw:
        raise RequestError("BAD_REQUEST", "'path' must not contain '?' or '#'; send 'query'.")
    if "\\" in raw:
        raise RequestError("PATH_NOT_ALLOWED", "Backslashes are not allowed in paths.")
    if not raw.startswith("/") or raw.startswith("//"):
        raise RequestError(
            "PATH_NOT_ALLOWED", "The path must be absolute ('/...'), never a URL or '//host'."
        )
    if _PERCENT.search(raw):
        raise RequestError("BAD_REQUEST", "'path' has a '%' that is not a %XX escape.")
    segments = raw[1:].split("/")
    decoded: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "" and index != len(segments) - 1:
            raise RequestError("PATH_NOT_ALLOWED", "Empty path segments ('//') are not allowed.")
        decoded.append(_decode_segment(segment))
    return decoded


def _decode_segment(segment: str) -> str:
    try:
        value = urllib.parse.unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise RequestError("BAD_REQUEST", "'path' escapes are not valid UTF-8.") from None
    if _CONTROL.search(value):
        raise RequestError("BAD_REQUEST", "'path' contains encoded control characters.")
    if not _is_utf8(value):
        raise RequestError("BAD_REQUEST", "'path' is not valid Unicode (a lone surrogate).")
    folded = unicodedata.normalize("NFKC", value)
    if "%" in value:
        raise RequestError("PATH_NOT_ALLOWED", "Double-encoded paths are not allowed.")
    if any(c in folded for c in "/\\") or any(c in value for c in "/\\"):
        raise RequestError("PATH_NOT_ALLOWED", "Encoded '/' or '\\' is not allowed in paths.")
    if folded.strip() in (".", "..") or value in (".", ".."):
        raise RequestError("PATH_NOT_ALLOWED", "'.' and '..' segments are not allowed.")
    return value


def _match(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    if pattern and pattern[-1] == "**":
        head, rest = pattern[:-1], segments[len(pattern) - 1 :]
        return bool(rest) and all(rest) and _match(head, segments[: len(head)])
    if len(pattern) != len(segments):
        return False
    return all(p == s or (p == "*" and s != "") for p, s in zip(pattern, segments, strict=True))


def encode_query(pairs: Query) -> str:
    """Canonical, fully escaped query string."""
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


def check_query(pairs: Query) -> Query:
    """Bound the query's size and refuse control characters."""
    if len(pairs) > MAX_QUERY_PARAMS:
        raise RequestError("BAD_REQUEST", f"More than {MAX_QUERY_PARAMS} query parameters.")
    total = 0
    for key, value in pairs:
        if not key:
            raise RequestError("BAD_REQUEST", "Query parameter names must not be empty.")
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise RequestError("BAD_REQUEST", "The query contains control characters.")
        if not (_is_utf8(key) and _is_utf8(value)):
            raise RequestError("BAD_REQUEST", "The query is not valid Unicode (a lone surrogate).")
        total += len(key) + len(value) + 2
    if total > MAX_QUERY_LENGTH:
        raise RequestError(
            "BAD_REQUEST", f"The query is longer than {MAX_QUERY_LENGTH} characters."
        )
    return pairs


def _is_utf8(text: str) -> bool:
    """False for strings UTF-8 cannot encode: lone surrogates, which JSON's \\ud800 yields."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

"""Request policy: which paths of the configured API host, and which query parameters, a caller
may use.

The host always comes from configuration. The allow-list is only as good as the agreement between
what it checks and what the API's server stack routes, and stacks disagree: servlet containers
strip ``;params`` from each segment (``..;/`` climbs), nginx decodes ``%2F`` into a separator,
IIS turns ``\\`` into ``/`` and drops a segment's trailing dots and spaces, Windows' best-fit
mapping turns look-alikes such as U+FF0F into ``/``. So a path is accepted only when it has one
reading on all of them:

- each segment is decoded once (strict UTF-8) and must then hold only letters, digits and
  ``-._~!$&'()*+,=:@`` and space (ASCII), or non-ASCII letters, marks and digits;
- no segment is ``.``/``..`` in any encoding, after NFKC folding, after dropping combining marks,
  or after Windows strips its trailing dots and spaces (any segment of only dots and spaces);
- no ``;``, ``%`` (double encoding), ``/``, ``\\``, ``?``, ``#``, controls or format characters in
  a decoded segment, nor anything whose NFKC form holds a separator look-alike;
- no empty segment but a final one (``//`` is refused, a trailing ``/`` must be in the pattern).

What is sent is re-encoded canonically: unreserved characters and ``!$&'()*,=:@`` as they are,
everything else (``+``, which form decoders read as a space, included) as UTF-8 ``%XX``; so every
stack decodes it to exactly the segments that were allowed. Anything ambiguous is refused, never
repaired: ``BAD_REQUEST`` for malformed input, ``PATH_NOT_ALLOWED`` for confusing or unlisted paths.

Patterns: literal segments, ``*`` for exactly one segment, and a final ``**`` for one or more.

The query: the configured endpoint's own parameters are always sent and win (a caller may not set
the same key under any spelling a server might fold together), and ``BRIDGE_ALLOWED_QUERY``, when
set, names the only keys a caller may set, exactly as spelled.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from okta_bridge.errors import RequestError

MAX_PATH_LENGTH = 2048
MAX_QUERY_PARAMS = 50
MAX_QUERY_LENGTH = 4096
# Sent as they are: RFC 3986 unreserved, and the sub-delimiters no server stack treats as a
# separator, a parameter or a space. ';' (servlet path parameters) and '+' (a space to form
# decoders) are always %-encoded; they are refused in a path anyway but may be in a query.
_SAFE_SEGMENT = "!$&'()*,=:@-._~"
_ASCII_ALLOWED = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@ "
)
_NON_ASCII_CATEGORIES = ("L", "M", "N")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

Query = tuple[tuple[str, str], ...]
ROUTE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Route(NamedTuple):
    """One ``BRIDGE_ALLOWED_ROUTES`` entry: a method, a path pattern, and whether the bridge
    sends an ``Idempotency-Key`` with it (a key per invocation, so the write may be retried)."""

    method: str
    pattern: str
    idempotency_key: bool = False


class Endpoint(NamedTuple):
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

    def fixed_query(self) -> Query:
        """The configured endpoint's own query parameters, in order."""
        return tuple(urllib.parse.parse_qsl(self.query, keep_blank_values=True))


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
            raise RequestError("PATH_NOT_ALLOWED", f"The path {shown(segments)!r} is not allowed.")
        return encode_path(segments)


@lru_cache(maxsize=8)
def policy_for(patterns: tuple[str, ...]) -> PathPolicy:
    """A compiled policy, shared across invocations."""
    return PathPolicy(patterns)


class RoutePolicy:
    """The routes, compiled once: which paths each method may use, and which writes carry an
    ``Idempotency-Key``."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._any = PathPolicy([route.pattern for route in routes])
        self._methods = {
            method: PathPolicy([r.pattern for r in routes if r.method == method])
            for method in ROUTE_METHODS
        }
        self._keyed = {
            method: PathPolicy(
                [r.pattern for r in routes if r.method == method and r.idempotency_key]
            )
            for method in ROUTE_METHODS
        }

    def paths(self, method: str) -> PathPolicy:
        """The paths ``method`` may use (HEAD: GET's, the library's only other method)."""
        return self._methods["GET" if method == "HEAD" else method]

    def check(self, method: str, segments: Sequence[str]) -> str:
        """The canonical path, or ``METHOD_NOT_ALLOWED`` (the path is routed for other methods
        only) / ``PATH_NOT_ALLOWED``."""
        if self.paths(method).allows(segments):
            return encode_path(segments)
        if self._any.allows(segments):
            raise RequestError(
                "METHOD_NOT_ALLOWED",
                f"{method} is not allowed on {shown(segments)!r}; BRIDGE_ALLOWED_ROUTES does "
                "not list it for this path.",
            )
        raise RequestError("PATH_NOT_ALLOWED", f"The path {shown(segments)!r} is not allowed.")

    def wants_key(self, method: str, segments: Sequence[str]) -> bool:
        """Whether a route marked ``idempotency-key`` covers this write."""
        return method in self._keyed and self._keyed[method].allows(segments)


@lru_cache(maxsize=8)
def routes_for(routes: tuple[Route, ...]) -> RoutePolicy:
    """A compiled route policy, shared across invocations."""
    return RoutePolicy(routes)


def shown(segments: Sequence[str]) -> str:
    """A decoded path for a message, bounded."""
    return ("/" + "/".join(segments))[:200]


def encode_path(segments: Iterable[str]) -> str:
    """The canonical encoding of checked segments."""
    return "/" + "/".join(urllib.parse.quote(s, safe=_SAFE_SEGMENT) for s in segments)


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
        decoded.append(_decode_segment(segment) if segment else segment)
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
    check_segment(value)
    return value


def check_segment(value: str) -> None:
    """Refuse a decoded segment that some server stack could read as more than one segment."""
    if "%" in value:
        raise RequestError("PATH_NOT_ALLOWED", "Double-encoded paths are not allowed.")
    if ";" in value:
        raise RequestError(
            "PATH_NOT_ALLOWED", "';' (path parameters, which servlet containers strip) is refused."
        )
    if "/" in value or "\\" in value:
        raise RequestError("PATH_NOT_ALLOWED", "Encoded '/' or '\\' is not allowed in paths.")
    if not all(_plain(char) for char in value):
        char = next(c for c in value if not _plain(c))
        raise RequestError(
            "PATH_NOT_ALLOWED",
            f"The character {char!r} (U+{ord(char):04X}) is not allowed in a path segment.",
        )
    if value.isascii():
        skeleton = value
    else:
        # Compatibility forms may hold punctuation (U+013F folds to 'L' and a middle dot, U+00BD
        # to '1', a fraction slash U+2044 and '2'), which NFKC-normalising or best-fit mapping
        # servers then read: every character of the folded form must be plain too.
        if not all(_plain(char) for char in unicodedata.normalize("NFKC", value)):
            raise RequestError(
                "PATH_NOT_ALLOWED", "The segment folds into a separator or punctuation."
            )
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", value) if unicodedata.category(c)[0] != "M"
        )
        skeleton = unicodedata.normalize("NFKC", bare)
    if not skeleton.strip(". \t") or skeleton.strip() in (".", ".."):
        raise RequestError(
            "PATH_NOT_ALLOWED",
            "'.' and '..' segments are not allowed, in any encoding or spelling "
            "(nor segments of only dots and spaces).",
        )


def _plain(char: str) -> bool:
    """An allowed ASCII character, or a non-ASCII letter, mark or digit. Punctuation and symbols
    beyond ASCII are where NFKC and Windows' best-fit mapping find separator and dot look-alikes
    (U+FF0F, U+2215, U+2024, U+FF0E...; Orange Tsai, "WorstFit", 2024)."""
    if char.isascii():
        return char in _ASCII_ALLOWED
    return unicodedata.category(char)[0] in _NON_ASCII_CATEGORIES


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


_RACK_NAME = re.compile(r"[\[\]]*([^\[\]]*)")


def query_key(name: str) -> str:
    """The name under which some server stack may read a query key as another one.

    NFKC; the name Rack and ``qs`` parse out of brackets (leading ``[``/``]`` dropped, then the
    first run without brackets: ``[tenant]``, ``tenant[]``, ``]tenant`` are all ``tenant``);
    case folded through upper case first, as Java's ``equalsIgnoreCase`` and JavaScript's
    ``toUpperCase`` do (dotless i U+0131 and long s U+017F meet ``i`` and ``s``), with combining
    marks dropped (U+0130); PHP's ``.`` and space read as ``_``. Empty when nothing is left to
    name a key.
    """
    folded = unicodedata.normalize("NFKC", name).strip()
    match = _RACK_NAME.match(folded)
    core = match.group(1) if match else ""
    upper = unicodedata.normalize("NFKD", core.upper())
    bare = "".join(c for c in upper if unicodedata.category(c)[0] != "M")
    return bare.casefold().strip().replace(".", "_").replace(" ", "_")


class QueryPolicy:
    """The configured endpoint's parameters, which win, and the keys a caller may set."""

    def __init__(self, fixed: Query, allowed: Sequence[str] | None) -> None:
        self._fixed = fixed
        self._fixed_keys = frozenset(query_key(k) for k, _ in fixed)
        self._allowed = None if allowed is None else frozenset(allowed)

    def merge(self, caller: Query) -> Query:
        """The configured parameters followed by the caller's, or ``QUERY_NOT_ALLOWED``."""
        for key, _ in caller:
            self._admit(key)
        return check_query((*self._fixed, *caller))

    def merge_redirect(self, pairs: Query) -> Query:
        """A same-origin redirect's query under the same rule as a caller's: the configured
        parameters (which it may repeat exactly) first, then what else it sets, if allowed."""
        fixed = set(self._fixed)
        return self.merge(tuple(pair for pair in pairs if pair not in fixed))

    def _admit(self, key: str) -> None:
        folded = query_key(key)
        if not folded:
            raise RequestError(
                "QUERY_NOT_ALLOWED", f"The query parameter name {key[:40]!r} names no parameter."
            )
        if folded in self._fixed_keys:
            raise RequestError(
                "QUERY_NOT_ALLOWED",
                f"The query parameter {key[:40]!r} is set by the bridge's configuration.",
            )
        # The allow-list names keys exactly as spelled: a folded spelling ('PAGE', '[page]') is
        # another key to a server that does not fold, so it would widen the list there.
        if self._allowed is not None and key not in self._allowed:
            raise RequestError(
                "QUERY_NOT_ALLOWED",
                f"The query parameter {key[:40]!r} is not in BRIDGE_ALLOWED_QUERY (names are "
                "matched exactly as spelled).",
            )


def _is_utf8(text: str) -> bool:
    """False for strings UTF-8 cannot encode: lone surrogates, which JSON's \\ud800 yields."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

"""Following an API's pages: where the next one is, and whether it may be read.

One walk for the library's ``Client.paginate`` and the bridge function's ``"paginate"`` events.
The next page's URL is the answer's ``Link: <...>; rel="next"`` (RFC 8288) or, with a JSON
pointer (RFC 6901: ``BRIDGE_NEXT_LINK``, ``next_pointer``), the string at that place of its body.
A next URL is the API's to give, so it passes every rule a caller's path does, and more: the
configured origin only, the allow-list (the route's method: GET), the query rules, and never a
page already read (a loop is caught before it costs a request). Whatever breaks a rule stops
the walk with ``UPSTREAM_PAGINATION``: the API's link is at fault, not the caller.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from okta_bridge.errors import BridgeError, RequestError, UpstreamError
from okta_bridge.request.api import decode_json
from okta_bridge.request.policy import Query

Target = tuple[str, Query]
PageKey = tuple[str, Query]

_TCHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_INDEX = r"0|[1-9][0-9]{0,8}"  # RFC 6901 4: an array index, no leading zero, ASCII digits only
# RFC 8288 3: ``<target>; param=value; param="value", <target>; ...``. A value is a quoted string
# or runs to the next separator without whitespace: no two parts of the pattern can take the same
# characters, so a hostile header costs linear time. (Pattern sources: ``re`` compiles them on
# first use; this module is on the bridge's cold import.)
_LINK = rf'<([^<>]*)>[ \t]*((?:;[ \t]*{_TCHARS}[ \t]*=[ \t]*(?:"[^"]*"|[^;,\s"]*)[ \t]*)*)'
_LINK_PARAM = rf';[ \t]*({_TCHARS})[ \t]*=[ \t]*("[^"]*"|[^;,\s"]*)'


class Planned(Protocol):
    """What a plan is to the walk: the URL it requests."""

    @property
    def url(self) -> str: ...


P = TypeVar("P", bound=Planned)


class Walk(Generic[P]):
    """One collection's walk: the pages read so far, and the check of each next link.

    ``plan`` turns a path and query into the URL to request (raising ``RequestError`` for what
    the policy refuses); ``configured`` is the endpoint's own query, which a next URL repeats and
    the plan adds again."""

    def __init__(
        self,
        plan: Callable[[str, Query], P],
        *,
        configured: frozenset[tuple[str, str]],
        next_pointer: str | None,
    ) -> None:
        if next_pointer is not None and not next_pointer.startswith("/"):
            raise RequestError("BAD_REQUEST", "next_pointer must be a JSON pointer such as /next.")
        self._plan = plan
        self._configured = configured
        self._pointer = next_pointer
        self._seen: set[PageKey] = set()
        self.pages = 0

    def first(self, path: str, query: Query) -> P:
        """The first page's plan (a caller's request: the policy's own errors stand)."""
        planned = self._plan(path, query)
        self._seen.add(page_key(planned.url))
        return planned

    def read(self, url: str) -> None:
        """A page was read from ``url`` (where a redirect led, when one did)."""
        self._seen.add(page_key(url))
        self.pages += 1

    def following(self, url: str, headers: Mapping[str, str], content: bytes) -> P | None:
        """The next page's URL after the page read from ``url``, checked; None at the end."""
        link = next_url(headers, content, self._pointer)
        if link is None:
            return None
        path, query = self._same_origin(url, link)
        try:
            planned = self._plan(path, query)
        except BridgeError as exc:
            raise UpstreamError(
                "UPSTREAM_PAGINATION", f"The API's next page was refused: {exc.message}"[:300]
            ) from None
        if page_key(planned.url) in self._seen:  # before it is sent: a loop costs no request
            raise UpstreamError(
                "UPSTREAM_PAGINATION", "The API's next page is one already read (a loop)."
            )
        self._seen.add(page_key(planned.url))
        return planned

    def _same_origin(self, current: str, following: str) -> Target:
        try:
            absolute = urllib.parse.urljoin(current, following)
            here, there = urllib.parse.urlsplit(current), urllib.parse.urlsplit(absolute)
            origins = (here.scheme, here.netloc.lower()), (there.scheme, there.netloc.lower())
        except ValueError:
            raise UpstreamError(
                "UPSTREAM_PAGINATION", "The API's next page is not a URL that parses."
            ) from None
        if origins[0] != origins[1]:
            raise UpstreamError(
                "UPSTREAM_PAGINATION",
                "The API's next page is on another origin; only the configured one is read.",
            )
        query = urllib.parse.parse_qsl(there.query, keep_blank_values=True)
        # The configured endpoint's own parameters come back in a next URL: they are added again
        # by the plan (and win), so only the others are the next page's own.
        return there.path or "/", tuple(pair for pair in query if pair not in self._configured)


def page_key(url: str) -> PageKey:
    """A page's identity for loop detection: its path and its query pairs in any order."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    return parts.path, tuple(sorted(pairs))


def next_url(headers: Mapping[str, str], content: bytes, pointer: str | None) -> str | None:
    """The next page's URL as the answer gives it, unchecked; None when there is none."""
    if pointer is None:
        return next_link(headers.get("link", ""))
    found = json_pointer(decode_json(content)[1], pointer)
    if found is None or found == "":
        return None
    if not isinstance(found, str):
        raise UpstreamError(
            "UPSTREAM_NOT_JSON", f"The value at {pointer[:60]!r} is not a URL string."
        )
    return found


def next_link(header: str) -> str | None:
    """The target of the ``rel="next"`` link of a ``Link`` header (RFC 8288 3), if any."""
    for match in re.finditer(_LINK, header):
        for name, value in re.findall(_LINK_PARAM, match.group(2)):
            rels = value.strip('"').lower().split()
            if name.lower() == "rel" and "next" in rels:
                return match.group(1).strip()
    return None


def json_pointer(document: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON pointer; None when any step is missing."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise RequestError("BAD_REQUEST", "next_pointer must be a JSON pointer such as /next.")
    value = document
    for raw in pointer[1:].split("/"):
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and re.fullmatch(_INDEX, step) and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
        if value is None:
            return None
    return value

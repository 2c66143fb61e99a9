"""``POST /v1/search``: the sample API's search endpoint, a write-shaped read with a JSON query.

Why: search and report endpoints take their query as a POST body, which the bridge must carry
(and must not retry blindly). Each accepted query is recorded, so a test can count what the API
received, not only what the bridge says it sent.

Body: ``{"q": str?, "category": str?, "limit": int 1..100 = 10}``, no other field. ``q`` matches
an item's name, case-insensitively, as a substring; ``category`` is ``item_category``'s ("small",
"medium", "large"; another string matches nothing). Answer: 200 ``{"results": [items, by id, at
most limit], "total": <all matches>}``; 415 for a non-JSON Content-Type, 400 for any other bad
body.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from okta_bridge_dev.emulators.routing import RecordedRequest, Response
from okta_bridge_dev.emulators.sample_resources import (
    ITEMS,
    MAX_PAGE_SIZE,
    RequestRefused,
    invalid_request,
    item_category,
    json_body,
)

__all__ = ["DEFAULT_LIMIT", "MAX_TEXT", "Searches"]

DEFAULT_LIMIT = 10
MAX_TEXT = 200
"""The longest ``q`` or ``category`` accepted."""

_FIELDS = frozenset({"q", "category", "limit"})


class Searches:
    """The search endpoint of one API server; ``accepted`` holds each accepted query, in order
    (the same list for the server's lifetime; ``clear`` empties it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted: list[dict[str, Any]] = []

    def clear(self) -> None:
        """Forget the accepted queries."""
        with self._lock:
            self.accepted.clear()

    def search(self, request: RecordedRequest) -> Response:
        """Answer one ``POST /v1/search``."""
        try:
            query = _query(json_body(request))
        except RequestRefused as refused:
            return refused.response
        with self._lock:
            self.accepted.append(query)
        matches = [item for item in ITEMS if _matches(item, query)]
        return Response.json(200, {"results": matches[: query["limit"]], "total": len(matches)})


def _query(body: Any) -> dict[str, Any]:
    """The validated query, with its defaults; raises RequestRefused (400) saying what is wrong."""
    if not isinstance(body, dict):
        raise invalid_request("The body must be a JSON object.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise invalid_request(f"Unknown field(s): {', '.join(unknown)[:MAX_TEXT]}.")
    for name in ("q", "category"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            raise invalid_request(f"{name} must be a string of at most {MAX_TEXT} characters.")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise invalid_request(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}.")
    return {"q": body.get("q"), "category": body.get("category"), "limit": limit}


def _matches(item: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    text, category = query["q"], query["category"]
    if text is not None and text.casefold() not in str(item["name"]).casefold():
        return False
    return category is None or item_category(item) == category

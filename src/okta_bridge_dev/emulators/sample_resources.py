"""What the sample API serves: its data, the two resources no bridge caller may ever reach,
and the route each path maps to.

``/admin/keys`` and ``/internal/config`` stand for what sits behind a real internal API's
gateway next to the allowed paths; tests assert they were never served.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from okta_bridge_dev.emulators.routing import RecordedRequest, Response
from okta_bridge_dev.emulators.sample_export import export

__all__ = [
    "ADMIN_KEYS",
    "DATA_ITEMS",
    "INTERNAL_CONFIG",
    "ITEMS",
    "MAX_PAGE_SIZE",
    "RESOURCES",
    "Orders",
    "RequestRefused",
    "auth_scheme",
    "bad_request",
    "invalid_request",
    "item_category",
    "json_body",
    "oauth_error",
    "route_name",
]

DATA_ITEMS: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "alpha", "value": 10},
    {"id": 2, "name": "beta", "value": 20},
    {"id": 3, "name": "gamma", "value": 30},
)
ITEMS: tuple[dict[str, Any], ...] = tuple(
    {"id": n, "name": f"item-{n:02d}", "value": n * n} for n in range(1, 26)
)
ADMIN_KEYS: dict[str, str] = {"secret": "admin-keys-data"}
INTERNAL_CONFIG: dict[str, str] = {"secret": "internal-config"}
MAX_PAGE_SIZE = 100

_DIGITS = re.compile(r"[0-9]{1,9}")
_ITEM_PATH = re.compile(r"/v1/items/([^/]+)")
_JSON_TYPE = re.compile(r"application/(?:[A-Za-z0-9.!#$&^_-]+\+)?json", re.IGNORECASE)
_EXACT_ROUTES = {
    "/v1/data": "data",
    "/v1/items": "items",
    "/v1/orders": "orders",
    "/v1/search": "search",
    "/graphql": "graphql",
    "/v1/export": "export",
    "/admin/keys": "admin",
    "/internal/config": "internal",
}


def auth_scheme(headers: Mapping[str, str]) -> str:
    """The Authorization scheme, lower-case ("" when there is none)."""
    return headers.get("authorization", "").strip().partition(" ")[0].lower()


def oauth_error(status: int, error: str, description: str, **headers: str) -> Response:
    """An OAuth-style error answer ``{"error", "error_description"}``."""
    return Response.json(status, {"error": error, "error_description": description}, headers)


def item_category(item: Mapping[str, Any]) -> str:
    """An item's category, derived from its value (so ``ITEMS`` keeps its shape): "small"
    below 100, "medium" below 400, else "large"."""
    value = int(item["value"])
    return "small" if value < 100 else "medium" if value < 400 else "large"


class RequestRefused(Exception):
    """Carries a refusal of the request's body (400, 415) out of a route's parsing."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def invalid_request(description: str) -> RequestRefused:
    """A 400 ``invalid_request`` refusal saying what is wrong with the body."""
    return RequestRefused(oauth_error(400, "invalid_request", description))


def json_body(request: RecordedRequest) -> Any:
    """The request's JSON body. Raises ``RequestRefused``: 415 unless the Content-Type is
    ``application/json`` or ``application/*+json`` (parameters such as charset allowed), 400
    when the body is not UTF-8 JSON."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip()
    if not _JSON_TYPE.fullmatch(media_type):
        raise RequestRefused(
            oauth_error(415, "unsupported_media_type", "Send the body as application/json.")
        )
    try:
        return json.loads(request.body.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise invalid_request("The body is not JSON.") from error


def data(request: RecordedRequest) -> Response:
    return Response.json(200, {"source": "sample-internal-api", "items": list(DATA_ITEMS)})


def items(request: RecordedRequest) -> Response:
    try:
        page = _positive_int(request.query, "page", default=1, maximum=None)
        page_size = _positive_int(request.query, "page_size", default=10, maximum=MAX_PAGE_SIZE)
    except ValueError as error:
        return oauth_error(400, "invalid_request", str(error))
    start = (page - 1) * page_size
    more = start + page_size < len(ITEMS)
    body = {
        "items": list(ITEMS[start : start + page_size]),
        "page": page,
        "page_size": page_size,
        "total": len(ITEMS),
        "next_page": page + 1 if more else None,
        # The next page's URL as a body field (a JSON pointer's target: /links/next) and as
        # RFC 8288's Link header; the library's paginate follows either.
        "links": {"next": f"/v1/items?page={page + 1}&page_size={page_size}" if more else None},
    }
    headers = {"Link": f'</v1/items?page={page + 1}&page_size={page_size}>; rel="next"'}
    return Response.json(200, body, headers if more else None)


class Orders:
    """POST /v1/orders: a write, recorded by ``Idempotency-Key`` when one is sent (a repeat with
    the same key answers the first order again, as Stripe-style APIs do). One per API server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.created: list[dict[str, Any]] = []  # in order; tests read it
        self._by_key: dict[str, dict[str, Any]] = {}

    def create(self, request: RecordedRequest) -> Response:
        key = request.headers.get("idempotency-key")
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return oauth_error(400, "invalid_request", "The body is not JSON.")
        with self._lock:
            if key is not None and key in self._by_key:
                return Response.json(200, self._by_key[key])
            order = {"id": len(self.created) + 1, "order": payload, "idempotency_key": key}
            self.created.append(order)
            if key is not None:
                self._by_key[key] = order
        return Response.json(201, order)


def item(request: RecordedRequest) -> Response:
    match = _ITEM_PATH.fullmatch(request.path)
    raw = match.group(1) if match else ""
    if _DIGITS.fullmatch(raw) and 1 <= int(raw) <= len(ITEMS):
        return Response.json(200, ITEMS[int(raw) - 1])
    return oauth_error(404, "not_found", "No such item.")


def admin(request: RecordedRequest) -> Response:
    return Response.json(200, ADMIN_KEYS)


def internal(request: RecordedRequest) -> Response:
    return Response.json(200, INTERNAL_CONFIG)


def not_found(request: RecordedRequest) -> Response:
    return oauth_error(404, "not_found", "No such resource.")


def bad_request(request: RecordedRequest) -> Response:
    return oauth_error(400, "invalid_request", "The request-target is not a valid path.")


def route_name(path: str) -> str:
    if path in _EXACT_ROUTES:
        return _EXACT_ROUTES[path]
    return "item" if _ITEM_PATH.fullmatch(path) else "not_found"


def _positive_int(
    query: Mapping[str, list[str]], name: str, *, default: int, maximum: int | None
) -> int:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise ValueError(f"{name} must be given once")
    if not _DIGITS.fullmatch(values[0]) or int(values[0]) < 1:
        raise ValueError(f"{name} must be a positive integer")
    if maximum is not None and int(values[0]) > maximum:
        raise ValueError(f"{name} must be at most {maximum}")
    return int(values[0])


RESOURCES: Mapping[str, Callable[[RecordedRequest], Response]] = {
    "data": data,
    "items": items,
    "item": item,
    "export": export,
    "admin": admin,
    "internal": internal,
    "not_found": not_found,
}
"""Route name -> handler of every route behind the token check (all but "bad_request")."""

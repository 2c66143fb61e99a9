"""Event shapes in, response shapes out.

In: a direct invocation (``{}``, or ``{"method", "path", "query", "body", "paginate",
"max_pages", "deliver"}``), an API Gateway REST API (v1) proxy event, or an HTTP API (v2) / Lambda
Function URL event (same format), whose method and body (plain or base64) are the request's and
whose ``X-Bridge-Paginate``/``X-Bridge-Max-Pages``/``X-Bridge-Deliver`` headers ask for the same
as the direct keys. A body is a JSON object or array (``bodies``).
Out: for direct calls a dict whose ``body`` is the API's parsed JSON; for proxy events a proxy
response whose ``body`` is a JSON string, as API Gateway requires.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from okta_bridge.errors import BridgeError, RequestError
from okta_bridge.logs import REDACTOR
from okta_bridge.request.bodies import checked_body, encode_body, proxy_body
from okta_bridge.request.callers import DIRECT, Caller, proxy_caller
from okta_bridge.request.policy import ROUTE_METHODS, Query, check_query

Kind = Literal["direct", "apigw_v1", "apigw_v2"]
DIRECT_KEYS = frozenset({"method", "path", "query", "body", "paginate", "max_pages", "deliver"})
DELIVER_CHOICES = ("auto", "s3")
_JSON_TYPES = ("application/json",)


class Invocation(NamedTuple):
    """What the caller asked for: ``path``/``query`` are ``None`` for the default endpoint;
    ``caller`` is who AWS says sent it (proxy events) or ``DIRECT``."""

    kind: Kind
    path: str | None = None
    query: Query | None = None
    caller: Caller = DIRECT
    method: str = "GET"
    body: bytes | None = None  # the JSON a write sends (a proxy body as written, ``bodies``)
    paginate: bool = False
    max_pages: int | None = None  # the caller's bound; BRIDGE_MAX_PAGES caps it
    deliver: str = "auto"  # "s3": write the answer to S3 whatever its size

    def __repr__(self) -> str:  # the body is the caller's data: its size only
        size = "none" if self.body is None else f"{len(self.body)} bytes"
        return (
            f"Invocation(kind={self.kind!r}, method={self.method!r}, path={self.path!r}, "
            f"body={size}, paginate={self.paginate}, deliver={self.deliver!r})"
        )


class ApiResult(NamedTuple):
    """The internal API's answer, parsed and raw."""

    status: int
    data: Any
    text: str
    attempts: int
    elapsed_ms: int
    pages: int | None = None  # a whole collection: how many pages were read
    delivery: Mapping[str, object] | None = None  # the S3 pointer, when delivered there


def kind_of(event: object) -> Kind:
    """Recognise the event's shape without validating it (so errors can be shaped too)."""
    if isinstance(event, dict):
        context = event.get("requestContext")
        if event.get("version") == "2.0" and isinstance(context, dict) and "http" in context:
            return "apigw_v2"
        if "httpMethod" in event and isinstance(context, dict):
            return "apigw_v1"
    return "direct"


def parse_event(event: object, *, max_body: int = 1_000_000) -> Invocation:
    """Validate the event; raise ``RequestError`` with what is wrong. ``max_body`` bounds a
    request body (``BRIDGE_MAX_REQUEST_BYTES``)."""
    kind = kind_of(event)
    if not isinstance(event, dict):
        raise RequestError("BAD_REQUEST", "The event must be a JSON object.")
    if kind == "apigw_v2":
        return _v2(event, max_body)
    if kind == "apigw_v1":
        return _v1(event, max_body)
    return _direct(event, max_body)


def _direct(event: dict[str, Any], max_body: int) -> Invocation:
    unknown = sorted(str(k)[:40] for k in event if k not in DIRECT_KEYS)
    if unknown:
        raise RequestError(
            "BAD_REQUEST",
            f"Unknown event keys {unknown[:5]}; a direct event has only "
            f"{', '.join(sorted(DIRECT_KEYS))}.",
        )
    path = event.get("path")
    query = event.get("query")
    if path is None:
        if any(event.get(key) is not None for key in DIRECT_KEYS - {"path"}):
            raise RequestError("BAD_REQUEST", "A direct event with other keys needs a 'path'.")
        return Invocation("direct")
    method = _method(event.get("method", "GET"))
    body = event.get("body")
    if body is not None and not isinstance(body, dict | list):
        raise RequestError("BAD_REQUEST", "'body' must be a JSON object or array.")
    paginate, max_pages = _pages(event.get("paginate"), event.get("max_pages"))
    return _invocation(
        "direct",
        path=path,
        query=_query_from_mapping(query) if query is not None else (),
        method=method,
        body=None if body is None else encode_body(body, max_body),
        paginate=paginate,
        max_pages=max_pages,
        deliver=_deliver(event.get("deliver")),
    )


def _v1(event: dict[str, Any], max_body: int) -> Invocation:
    method = _method(event.get("httpMethod"))
    multi = event.get("multiValueQueryStringParameters")
    single = event.get("queryStringParameters")
    query = _query_from_mapping(multi if multi else single) if (multi or single) else ()
    return _proxy_invocation("apigw_v1", event, method, event.get("path"), query, max_body=max_body)


def _v2(event: dict[str, Any], max_body: int) -> Invocation:
    http = event["requestContext"]["http"]
    method = _method(http.get("method") if isinstance(http, dict) else None)
    raw_query = event.get("rawQueryString") or ""
    if not isinstance(raw_query, str):
        raise RequestError("BAD_REQUEST", "'rawQueryString' must be a string.")
    try:
        pairs = urllib.parse.parse_qsl(
            raw_query, keep_blank_values=True, strict_parsing=False, errors="strict"
        )
    except (ValueError, UnicodeDecodeError):
        raise RequestError("BAD_REQUEST", "The query string is not valid UTF-8.") from None
    query = check_query(tuple(pairs))
    return _proxy_invocation(
        "apigw_v2", event, method, event.get("rawPath"), query, max_body=max_body
    )


def _proxy_invocation(
    kind: Kind, event: dict[str, Any], method: str, path: object, query: Query, *, max_body: int
) -> Invocation:
    headers = _headers_of(event)
    raw = proxy_body(event, max_body)
    if raw is not None:
        _check_media_type(headers.get("content-type", ""))
    paginate, max_pages = _pages(
        _switch_header(headers.get("x-bridge-paginate")),
        _int_header(headers.get("x-bridge-max-pages")),
    )
    return _invocation(
        kind,
        path=_proxy_path(path),
        query=query,
        caller=proxy_caller(event.get("requestContext")),
        method=method,
        body=None if raw is None else checked_body(raw, max_body),
        paginate=paginate,
        max_pages=max_pages,
        deliver=_deliver(headers.get("x-bridge-deliver")),
    )


def _check_media_type(value: str) -> None:
    """A body's declared type, when there is one: JSON, in UTF-8 (RFC 8259 8.1), for the bridge
    sends it as ``application/json`` and a body declared otherwise would be read two ways."""
    media, _, parameters = value.partition(";")
    media = media.strip().lower()
    if media and not (media in _JSON_TYPES or media.endswith("+json")):
        raise RequestError(
            "BAD_REQUEST", f"The body must be JSON (Content-Type {media[:60]!r} is not)."
        )
    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() != "utf-8":
            raise RequestError(
                "BAD_REQUEST", f"The body must be UTF-8 JSON (charset {charset.strip()[:20]!r})."
            )


def _invocation(kind: Kind, **fields: Any) -> Invocation:
    """The invocation, with the rules that span its parts checked."""
    invocation = Invocation(kind, **fields)
    if invocation.body is not None and invocation.method == "GET":
        raise RequestError("BAD_REQUEST", "A GET carries no body; use the route's write method.")
    if invocation.paginate and invocation.method != "GET":
        raise RequestError("BAD_REQUEST", "Only a GET collection can be paginated.")
    return invocation


def _method(method: object) -> str:
    # Exactly as spelled: API Gateway and Function URLs send upper case, and a server may read
    # "get" as another method than GET (methods are case-sensitive, RFC 9110 9.1).
    if isinstance(method, str) and method in ROUTE_METHODS:
        return method
    shown = str(method)[:10] if isinstance(method, str) else type(method).__name__
    raise RequestError(
        "METHOD_NOT_ALLOWED",
        f"Method {shown!r} is not allowed; the bridge sends {', '.join(ROUTE_METHODS)} "
        "where BRIDGE_ALLOWED_ROUTES lists them.",
    )


def _headers_of(event: dict[str, Any]) -> dict[str, str]:
    """The request's headers, names in lower case (v1 keeps the client's spelling)."""
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return {}
    return {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}


def _pages(paginate: object, max_pages: object) -> tuple[bool, int | None]:
    if paginate is not None and not isinstance(paginate, bool):
        raise RequestError("BAD_REQUEST", "'paginate' must be true or false.")
    if max_pages is None:
        return bool(paginate), None
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise RequestError("BAD_REQUEST", "'max_pages' must be a whole number of at least 1.")
    if paginate is False:
        raise RequestError("BAD_REQUEST", "'max_pages' asks for pages; 'paginate' says no.")
    return True, max_pages


def _switch_header(value: str | None) -> bool | None:
    if value is None:
        return None
    folded = value.strip().lower()
    if folded not in ("true", "false"):
        raise RequestError("BAD_REQUEST", "X-Bridge-Paginate must be true or false.")
    return folded == "true"


def _int_header(value: str | None) -> object:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise RequestError("BAD_REQUEST", "X-Bridge-Max-Pages must be a whole number.")
    return int(text)


def _deliver(value: object) -> str:
    if value is None:
        return "auto"
    if not isinstance(value, str) or value.strip().lower() not in DELIVER_CHOICES:
        raise RequestError("BAD_REQUEST", '\'deliver\' must be "s3" or "auto".')
    return value.strip().lower()


def _proxy_path(path: object) -> str:
    """A proxy event always names a path (API Gateway and Function URLs set one): without it the
    event is not what it claims, and must not fall back to the default endpoint, which caller
    routes do not cover."""
    if path is None:
        raise RequestError("BAD_REQUEST", "The proxy event has no path.")
    if not isinstance(path, str):
        raise RequestError("BAD_REQUEST", "'path' must be a string.")
    return path


def _query_from_mapping(query: object) -> Query:
    if not isinstance(query, dict):
        raise RequestError("BAD_REQUEST", "'query' must be an object of strings.")
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise RequestError(
                    "BAD_REQUEST", f"Query parameter {str(key)[:40]!r} must be a string."
                )
            if isinstance(item, float) and not math.isfinite(item):
                raise RequestError("BAD_REQUEST", "Query values must be finite numbers.")
            pairs.append((str(key), str(item)))
    return check_query(tuple(pairs))


def success(kind: Kind, result: ApiResult, request_id: str) -> dict[str, Any]:
    """The answer for a successful call, in the caller's shape."""
    if kind == "direct":
        meta: dict[str, Any] = {
            "request_id": request_id,
            "upstream_status": result.status,
            "upstream_ms": result.elapsed_ms,
            "attempts": result.attempts,
        }
        if result.pages is not None:
            meta["pages"] = result.pages
        if result.delivery is not None:
            meta["delivered"] = "s3"
        return {"statusCode": result.status, "body": result.data, "meta": meta}
    headers = _headers(request_id)
    headers["X-Upstream-Status"] = str(result.status)
    if result.delivery is not None:
        headers["X-Bridge-Delivery"] = "s3"
    return _proxy(kind, result.status, headers, result.text or "null")


# What one character of the API's text may become in Lambda's encoding: ``len`` counts code
# points, and an astral one is 12 bytes as two \uXXXX escapes (a re-encoded number, ``1E15,``
# to ``1000000000000000.0, ``, grows less); and room for the envelope (meta, proxy headers).
_MAX_ESCAPE = 12
_ENVELOPE = 1024


def encoded_size(response: dict[str, Any], result: ApiResult, limit: int) -> int:
    """The size of ``response`` as Lambda encodes it (``json.dumps``: ASCII escapes), measured
    only when it may be near ``limit``: a text of fewer than a twelfth of it (less the
    envelope) cannot reach it, whatever its characters."""
    if len(result.text) < (limit - _ENVELOPE) // _MAX_ESCAPE:
        return len(result.text)
    return len(json.dumps(response))


def failure(kind: Kind, error: BridgeError, request_id: str) -> dict[str, Any]:
    """The answer for a failed call: ``{"error": {code, stage, message, hint, request_id}}``."""
    payload = REDACTOR.value(
        {
            "error": {
                "code": error.code,
                "stage": error.stage,
                "message": error.message,
                "hint": error.hint,
                "request_id": request_id,
            }
        }
    )
    if kind == "direct":
        return {"statusCode": error.status, "body": payload}
    headers = _headers(request_id)
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return _proxy(kind, error.status, headers, json.dumps(payload, separators=(",", ":")))


def _headers(request_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Request-ID": request_id,
    }


def _proxy(kind: Kind, status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    response: dict[str, Any] = {"statusCode": status, "headers": headers, "body": body}
    if kind == "apigw_v1":
        response["isBase64Encoded"] = False
    return response


DIAGNOSE_ACTION = "diagnose"


def asks_for_diagnose(event: object) -> bool:
    """Whether ``event`` is the direct invocation ``{"action": "diagnose"}`` (never a proxy
    event: a caller behind API Gateway or a Function URL cannot ask for it)."""
    return (
        isinstance(event, dict)
        and event.get("action") == DIAGNOSE_ACTION
        and kind_of(event) == "direct"
    )

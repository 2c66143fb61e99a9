"""Event shapes in, response shapes out.

In: a direct invocation (``{}`` or ``{"path", "query"}``), an API Gateway REST API (v1) proxy
event, or an HTTP API (v2) / Lambda Function URL event (same format). Out: for direct calls a dict
whose ``body`` is the API's parsed JSON; for proxy events a proxy response whose ``body`` is a JSON
string, as API Gateway requires.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from okta_bridge.errors import BridgeError, RequestError
from okta_bridge.logs import REDACTOR
from okta_bridge.request.callers import DIRECT, Caller, proxy_caller
from okta_bridge.request.policy import Query, check_query

Kind = Literal["direct", "apigw_v1", "apigw_v2"]
DIRECT_KEYS = frozenset({"path", "query"})


@dataclass(frozen=True)
class Invocation:
    """What the caller asked for: ``path``/``query`` are ``None`` for the default endpoint;
    ``caller`` is who AWS says sent it (proxy events) or ``DIRECT``."""

    kind: Kind
    path: str | None = None
    query: Query | None = None
    caller: Caller = DIRECT


@dataclass(frozen=True)
class ApiResult:
    """The internal API's answer, parsed and raw."""

    status: int
    data: Any
    text: str
    attempts: int
    elapsed_ms: int


def kind_of(event: object) -> Kind:
    """Recognise the event's shape without validating it (so errors can be shaped too)."""
    if isinstance(event, dict):
        context = event.get("requestContext")
        if event.get("version") == "2.0" and isinstance(context, dict) and "http" in context:
            return "apigw_v2"
        if "httpMethod" in event and isinstance(context, dict):
            return "apigw_v1"
    return "direct"


def parse_event(event: object) -> Invocation:
    """Validate the event; raise ``RequestError`` with what is wrong."""
    kind = kind_of(event)
    if not isinstance(event, dict):
        raise RequestError("BAD_REQUEST", "The event must be a JSON object.")
    if kind == "apigw_v2":
        return _v2(event)
    if kind == "apigw_v1":
        return _v1(event)
    return _direct(event)


def _direct(event: dict[str, Any]) -> Invocation:
    unknown = sorted(str(k)[:40] for k in event if k not in DIRECT_KEYS)
    if unknown:
        raise RequestError(
            "BAD_REQUEST",
            f"Unknown event keys {unknown[:5]}; a direct event has only 'path' and 'query'.",
        )
    path = event.get("path")
    query = event.get("query")
    if path is None and query is None:
        return Invocation("direct")
    if path is None:
        raise RequestError("BAD_REQUEST", "'query' needs a 'path'.")
    return Invocation(
        "direct", path=path, query=_query_from_mapping(query) if query is not None else ()
    )


def _v1(event: dict[str, Any]) -> Invocation:
    _require_get(event.get("httpMethod"))
    multi = event.get("multiValueQueryStringParameters")
    single = event.get("queryStringParameters")
    query = _query_from_mapping(multi if multi else single) if (multi or single) else ()
    caller = proxy_caller(event.get("requestContext"))
    return Invocation("apigw_v1", path=_proxy_path(event.get("path")), query=query, caller=caller)


def _v2(event: dict[str, Any]) -> Invocation:
    http = event["requestContext"]["http"]
    _require_get(http.get("method") if isinstance(http, dict) else None)
    raw_query = event.get("rawQueryString") or ""
    if not isinstance(raw_query, str):
        raise RequestError("BAD_REQUEST", "'rawQueryString' must be a string.")
    try:
        pairs = urllib.parse.parse_qsl(
            raw_query, keep_blank_values=True, strict_parsing=False, errors="strict"
        )
    except (ValueError, UnicodeDecodeError):
        raise RequestError("BAD_REQUEST", "The query string is not valid UTF-8.") from None
    return Invocation(
        "apigw_v2",
        path=_proxy_path(event.get("rawPath")),
        query=check_query(tuple(pairs)),
        caller=proxy_caller(event.get("requestContext")),
    )


def _proxy_path(path: object) -> str:
    """A proxy event always names a path (API Gateway and Function URLs set one): without it the
    event is not what it claims, and must not fall back to the default endpoint, which caller
    routes do not cover."""
    if path is None:
        raise RequestError("BAD_REQUEST", "The proxy event has no path.")
    if not isinstance(path, str):
        raise RequestError("BAD_REQUEST", "'path' must be a string.")
    return path


def _require_get(method: object) -> None:
    if method != "GET":
        shown = str(method)[:10] if isinstance(method, str) else type(method).__name__
        raise RequestError("METHOD_NOT_ALLOWED", f"Method {shown!r} is not allowed; use GET.")


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
        return {
            "statusCode": result.status,
            "body": result.data,
            "meta": {
                "request_id": request_id,
                "upstream_status": result.status,
                "upstream_ms": result.elapsed_ms,
                "attempts": result.attempts,
            },
        }
    headers = _headers(request_id)
    headers["X-Upstream-Status"] = str(result.status)
    return _proxy(kind, result.status, headers, result.text or "null")


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

"""Request bodies: what a caller may send through the bridge to a write route.

A JSON object or array, bounded in bytes (``BRIDGE_MAX_REQUEST_BYTES``) and nesting, with one
reading for every parser downstream: strict UTF-8, no NaN or Infinity (nor a number that only
reads as one, such as 1e400), no lone surrogate, and no duplicate key (parsers disagree on which
one wins). A proxy event's body that passes is sent as the caller's bytes, so its numbers reach
the API exactly as written (re-encoding would put 0.1000000000000000055 through a float); a direct
event's body was already parsed by Lambda, and is sent as compact JSON of what it holds.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from okta_bridge.errors import RequestError

MAX_BODY_DEPTH = 64


def proxy_body(event: dict[str, Any], max_body: int) -> bytes | None:
    body = event.get("body")
    if body is None or body == "":
        return None
    if not isinstance(body, str):
        raise RequestError("BAD_REQUEST", "The proxy event's 'body' must be a string.")
    # Bounded before decoding: base64 is 4/3 of the bytes, a character at most 4 bytes.
    if len(body) > max_body * 4 // 3 + 4:
        raise RequestError("REQUEST_TOO_LARGE", f"The body is over {max_body} bytes.")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("BAD_REQUEST", "The body is not valid base64.") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError("BAD_REQUEST", "The body is not valid Unicode.") from None


def checked_body(raw: bytes, max_body: int) -> bytes:
    """A proxy body, as sent: ``raw`` once it has one reading (``BAD_REQUEST`` otherwise)."""
    if len(raw) > max_body:
        raise RequestError("REQUEST_TOO_LARGE", f"The body is over {max_body} bytes.")
    try:
        parsed = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique
        )
    except _Duplicate as exc:
        raise RequestError("BAD_REQUEST", f"The body repeats the key {str(exc)[:40]!r}.") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError("BAD_REQUEST", "The body is not JSON (UTF-8, RFC 8259).") from None
    if not isinstance(parsed, dict | list):
        raise RequestError("BAD_REQUEST", "The body must be a JSON object or array.")
    encode_body(parsed, max_body * 6)  # depth, surrogates, 1e400: the same rules as a direct body
    return raw


class _Duplicate(ValueError):
    """A JSON object names a key twice."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Duplicate(key)
        found[key] = value
    return found


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def encode_body(body: object, max_body: int) -> bytes:
    """Canonical JSON of a parsed body, bounded in size and depth."""
    if _depth(body) > MAX_BODY_DEPTH:
        raise RequestError("BAD_REQUEST", f"The body is nested deeper than {MAX_BODY_DEPTH}.")
    try:
        encoded = json.dumps(
            body, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        raise RequestError("BAD_REQUEST", "The body is not valid JSON (or not UTF-8).") from None
    if len(encoded) > max_body:
        raise RequestError("REQUEST_TOO_LARGE", f"The body is over {max_body} bytes.")
    return encoded


def _depth(value: object) -> int:
    """Nesting depth, iteratively (a hostile body must not exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_BODY_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest

"""Enrich API: ``GET /records/{id}`` reads one record of the internal API and adds derived fields.

An API Gateway HTTP API (payload format 2.0) invokes this function; it reads ``/v1/items/{id}``
through the okta-bridge client (from the stack's layer) and answers the record with a
``derived`` object, the business logic a team replaces with its own (``enrich``).

Errors map to HTTP statuses: a malformed id is the caller's 400 (the API is never asked), a
record the API does not have is 404 (``UPSTREAM_NOT_FOUND``), and every other okta-bridge error is
a 502. An error body carries only the error's ``code`` and ``hint``: its message may name hosts
and paths, which the caller of a public API need not learn (the log has them).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from okta_bridge import BridgeError, Client

logger = logging.getLogger(__name__)

RECORD_ID = re.compile(r"[1-9][0-9]{0,8}")
"""A record id: a positive decimal integer, so nothing but digits ever reaches the API's path."""
TIERS = ((100, "small"), (400, "medium"))  # (upper bound exclusive, tier); above: "large"


def enrich(record: Mapping[str, Any]) -> dict[str, Any]:
    """The business logic: the record as the API has it, plus what this service derives."""
    value = record.get("value")
    tier: str | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        tier = next((name for bound, name in TIERS if value < bound), "large")
    name = record.get("name")
    return {
        **record,
        "derived": {
            "tier": tier,
            "label": f"{name} ({tier})" if isinstance(name, str) and tier else None,
        },
    }


def respond(client: Client, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The HTTP API response for one ``GET /records/{id}`` event."""
    raw = (event.get("pathParameters") or {}).get("id")
    if not isinstance(raw, str) or not RECORD_ID.fullmatch(raw):
        return _answer(400, {"error": {"code": "BAD_RECORD_ID", "hint": "Use a positive integer."}})
    try:
        record = client.get(f"/v1/items/{raw}", context=context).json()
    except BridgeError as error:
        status = 404 if error.code == "UPSTREAM_NOT_FOUND" else 502
        logger.warning(
            "record not read",
            extra={"record_id": raw, "code": error.code, "stage": error.stage, "status": status},
        )
        return _answer(status, {"error": {"code": error.code, "hint": error.hint}})
    if not isinstance(record, dict):
        logger.warning("record not an object", extra={"record_id": raw})
        return _answer(502, {"error": {"code": "RECORD_NOT_OBJECT", "hint": "Check the API."}})
    return _answer(200, enrich(record))


def _answer(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": json.dumps(body, separators=(",", ":")),
    }


# One client per execution environment: the secret and the token are cached across requests.
CLIENT = Client.from_env()


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway's entry point."""
    return respond(CLIENT, event, context)

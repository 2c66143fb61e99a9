"""The cache's DynamoDB item, one per credential (``pk``): the fleet's sealed token and the lease.

Only four writes ever happen, each conditional, so that two environments never both believe they
hold the lease or overwrite a newer token: ``take_lease`` (the lease is free or expired, and the
token is still the one the caller saw), ``publish`` (the caller still holds the lease),
``release`` (after a failed mint) and ``drop`` (the API refused this token, and it is older than
the minimum age). Reads are strongly consistent: a token published a moment ago is seen.
The item expires through the table's TTL (``ttl``) shortly after its token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from okta_bridge.errors import CacheError
from okta_bridge.fleet.aws_json import AwsJsonApi
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.deadline import Deadline

FORMAT = 1
TTL_MARGIN = 300  # seconds an item outlives its token (TTL deletes lazily anyway)
_TOKEN_ATTRIBUTES = ("#tid", "#edk", "#ct", "#issued", "#refresh", "#expires")
_NAMES = {
    "#tid": "tid",
    "#edk": "edk",
    "#ct": "ct",
    "#issued": "issued",
    "#refresh": "refresh",
    "#expires": "expires",
    "#lease": "lease",
    "#until": "lease_until",
    "#ttl": "ttl",
    "#v": "v",
}
CONDITION_FAILED = "ConditionalCheckFailedException"


def longest_lease(seconds: float) -> float:
    """The longest lease an environment may see: its own length and clock skew between hosts."""
    return seconds + 5.0


class Item(NamedTuple):
    """What the table holds for one credential (ciphertext only: nothing here is secret)."""

    tid: str | None = None
    edk: bytes = b""
    sealed: bytes = b""
    issued: float = 0.0
    refresh: float = 0.0
    expires: float = 0.0
    lease: str | None = None
    lease_until: float = 0.0
    # ``tid``, ``lease`` and ``lease_until`` as stored, whatever their type: a lease is taken
    # only while all three are still exactly what was read, so an item whose attributes are
    # malformed is replaced like any other (and never fought over).
    seen_as: tuple[tuple[str, Seen], ...] = ()

    @property
    def has_token(self) -> bool:
        return self.tid is not None and bool(self.edk) and bool(self.sealed)

    def aad(self, table: str, pk: str) -> bytes:
        """What the item's ciphertext is bound to: moved or edited, it does not open."""
        parts = (FORMAT, table, pk, self.tid, self.issued, self.refresh, self.expires)
        return "|".join(repr(p) for p in parts).encode()

    def leased(self, now: float, longest: float) -> bool:
        """Another environment is minting, and its lease has not run out. A lease that ends
        more than ``longest`` seconds from now was never granted by this protocol (a clock far
        ahead, a hand-written item): it is ignored, so it cannot hold the fleet waiting."""
        return self.lease is not None and now < self.lease_until <= now + longest


class TokenTable:
    """Conditional reads and writes of the cache's items."""

    def __init__(self, api: AwsJsonApi, table: str) -> None:
        self._api = api
        self.table = table

    def get(self, pk: str, deadline: Deadline) -> Item | None:
        answer = self._api.call(
            "GetItem",
            {"TableName": self.table, "Key": _key(pk), "ConsistentRead": True},
            deadline,
        )
        found = answer.get("Item")
        return _item(found) if isinstance(found, Mapping) else None

    def take_lease(
        self,
        pk: str,
        owner: str,
        *,
        now: float,
        seconds: float,
        seen: Item | None,
        deadline: Deadline,
    ) -> bool:
        """Take the lease, which the caller judged free, expired or impossibly long (see
        ``Item.leased``), if the item's token and lease are still exactly as ``seen`` (None: no
        item): optimistic concurrency, so of two environments that read alike one wins."""
        values: dict[str, Any] = {
            ":owner": {"S": owner},
            ":until": _number(now + seconds),
            ":ttl": _number(int(max(now + seconds, seen.expires if seen else 0)) + TTL_MARGIN),
        }
        found = dict(seen.seen_as) if seen is not None else {}
        condition = " AND ".join(
            _unchanged(name, found.get(name), values) for name in ("#tid", "#lease", "#until")
        )
        return self._update(
            pk,
            "SET #lease = :owner, #until = :until, #ttl = :ttl",
            condition,
            values,
            deadline,
        )

    def publish(self, pk: str, owner: str, item: Item, deadline: Deadline) -> bool:
        """Write the sealed token in place of the lease, if ``owner`` still holds it."""
        record = {
            "pk": {"S": pk},
            "v": _number(FORMAT),
            "tid": {"S": item.tid or ""},
            "edk": {"B": base64.b64encode(item.edk).decode("ascii")},
            "ct": {"B": base64.b64encode(item.sealed).decode("ascii")},
            "issued": _number(item.issued),
            "refresh": _number(item.refresh),
            "expires": _number(item.expires),
            "ttl": _number(int(item.expires) + TTL_MARGIN),
        }
        return self._write(
            "PutItem",
            {
                "TableName": self.table,
                "Item": record,
                "ConditionExpression": "#lease = :owner",
                "ExpressionAttributeNames": {"#lease": "lease"},
                "ExpressionAttributeValues": {":owner": {"S": owner}},
            },
            deadline,
        )

    def release(self, pk: str, owner: str, deadline: Deadline) -> bool:
        """Give the lease up (the mint failed), so that others need not wait for it to expire."""
        return self._update(
            pk, "REMOVE #lease, #until", "#lease = :owner", {":owner": {"S": owner}}, deadline
        )

    def drop(self, pk: str, tid: str, *, issued_before: float, deadline: Deadline) -> bool:
        """Remove the token ``tid`` (the API refused it) if it is older than ``issued_before``."""
        return self._update(
            pk,
            "REMOVE " + ", ".join(_TOKEN_ATTRIBUTES),
            "#tid = :tid AND #issued <= :limit",
            {":tid": {"S": tid}, ":limit": _number(issued_before)},
            deadline,
        )

    def _update(
        self,
        pk: str,
        expression: str,
        condition: str,
        values: dict[str, Any],
        deadline: Deadline,
    ) -> bool:
        used = expression + " " + condition
        return self._write(
            "UpdateItem",
            {
                "TableName": self.table,
                "Key": _key(pk),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {n: v for n, v in _NAMES.items() if n in used},
                "ExpressionAttributeValues": values,
            },
            deadline,
        )

    def _write(self, action: str, payload: dict[str, Any], deadline: Deadline) -> bool:
        """True when written; False when the condition did not hold (someone else was first)."""
        try:
            self._api.call(action, payload, deadline)
        except CacheError as exc:
            if exc.aws_code == CONDITION_FAILED:
                return False
            raise
        return True


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def _number(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3)) if isinstance(value, float) else str(value)}


def _item(raw: Mapping[str, Any]) -> Item:
    """An item as read. A malformed attribute reads as absent: an item without a usable token
    is replaced by the next mint (its ``tid``, if any, is what that mint's lease condition names).
    """
    return Item(
        tid=_string(raw, "tid") or None,
        edk=_bytes(raw, "edk"),
        sealed=_bytes(raw, "ct"),
        issued=_float(raw, "issued"),
        refresh=_float(raw, "refresh"),
        expires=_float(raw, "expires"),
        lease=_string(raw, "lease") or None,
        lease_until=_float(raw, "lease_until"),
        seen_as=tuple(
            (f"#{short}", _attribute(raw, name))
            for short, name in (("tid", "tid"), ("lease", "lease"), ("until", "lease_until"))
        ),
    )


Seen = tuple[str, str] | None
"""An attribute as read: its type and, for a string, number or binary, its value; None when
absent."""


def _attribute(raw: Mapping[str, Any], name: str) -> Seen:
    value = raw.get(name)
    if not isinstance(value, Mapping) or not value:
        return None
    kind, inner = next(iter(value.items()))
    return (str(kind)[:4], inner if kind in ("S", "N", "B") and isinstance(inner, str) else "")


def _unchanged(name: str, seen: Seen, values: dict[str, Any]) -> str:
    """The condition that attribute ``name`` is still as ``seen``: absent, equal, or (a type
    this protocol never writes) still of that type."""
    if seen is None:
        return f"attribute_not_exists({name})"
    kind, inner = seen
    key = f":seen_{name[1:]}"
    if kind in ("S", "N", "B"):
        values[key] = {kind: inner}
        return f"{name} = {key}"
    values[key] = {"S": kind}
    return f"attribute_type({name}, {key})"


def _string(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return str(value["S"])[:200] if isinstance(value, Mapping) and "S" in value else ""


def _float(raw: Mapping[str, Any], name: str) -> float:
    value = raw.get(name)
    try:
        number = float(str(value["N"])[:40]) if isinstance(value, Mapping) else 0.0
    except (KeyError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _bytes(raw: Mapping[str, Any], name: str) -> bytes:
    value = raw.get(name)
    try:
        return (
            base64.b64decode(str(value["B"]), validate=True) if isinstance(value, Mapping) else b""
        )
    except (KeyError, ValueError):
        return b""


def cache_key(credentials: Credentials, dpop_mode: str) -> str | None:
    """The item's key: who the token is for and from which version of the secret. None when
    the source gives no version (then a rotation could not be told apart: nothing is shared)."""
    if not credentials.version_id:
        return None
    identity: list[Any] = [
        credentials.client_id,
        credentials.token_url,
        credentials.grant_type,
        credentials.auth_method,
        list(credentials.scopes),
        credentials.username,
        credentials.version_id,
        credentials.dpop,
        dpop_mode,
    ]
    digest = hashlib.sha256(json.dumps(identity, separators=(",", ":")).encode()).hexdigest()
    return f"token#{digest}"

"""Diagnose's ``token_cache`` target: what the fleet's shared token cache (``BRIDGE_TOKEN_CACHE``)
holds for this secret, and whether the function may use it.

``dns``, ``tcp`` and ``tls`` towards DynamoDB, then ``read``: one strongly consistent GetItem of
the item the bridge would read (whether it exists and holds a token, seconds to the token's expiry
and to the fleet's refresh, whether a lease is held), then ``open``: the token's data key opened
in KMS under the cache's encryption context, or, with no token, one GenerateDataKey under it (the
role's grant for what the next mint seals). Nothing secret enters the report: neither the token
nor a data key, only that they opened and their sizes.

The cache is never a dependency (the bridge mints for itself when it fails), so a failure here
never skips the token and API hops, and the failed hop says so (``fallback``). This module loads
``okta_bridge.fleet`` and is imported only when the cache is configured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from okta_bridge.config import Settings, TokenCacheSettings
from okta_bridge.errors import BridgeError, CacheError
from okta_bridge.fleet.aws_json import AwsJsonApi, dynamodb_api, kms_api
from okta_bridge.fleet.cache import MIN_LIFE
from okta_bridge.fleet.envelope import CONTEXT, KEY_BYTES, Envelope
from okta_bridge.fleet.table import Item, TokenTable, cache_key, longest_lease
from okta_bridge.ops.report import NETWORK_HOPS, Walk
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import Target
from okta_bridge.transport.tls import TlsPolicy

TARGET = "token_cache"
HOPS = ("read", "open")
FALLBACK = "the bridge falls back to minting its own token; the token and API hops still run"
_PROBE = b"okta-bridge diagnose"

Network = Callable[[str, str, Target, TlsPolicy | None], bool]


class TokenCacheProbe:
    """The ``token_cache`` hops of one diagnose run, through its HTTP client (no retries)."""

    def __init__(
        self,
        settings: Settings,
        cache: TokenCacheSettings,
        walk: Walk,
        http: HttpClient,
        *,
        network: Network,
        blocked: Callable[[str], str],
        budget: Callable[[float], Deadline],
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._walk = walk
        self._http = http
        self._network = network
        self._blocked = blocked
        self._budget = budget

    def run(self, credentials: Credentials) -> None:
        walk = self._walk
        pk = cache_key(credentials, self._settings.dpop)
        if pk is None:
            walk.skip(
                TARGET,
                (*NETWORK_HOPS, *HOPS),
                "the secret's source gives no version id: the bridge shares no token for it "
                "and each environment mints its own",
            )
            return
        try:
            dynamodb = dynamodb_api(self._settings, self._http)
        except BridgeError as exc:  # no AWS_REGION, an endpoint that is not https
            walk.fail(TARGET, "read", exc, {"table": self._cache.table}, 0.0)
            walk.skip(TARGET, ("open",), walk.failure(TARGET, "read") or "")
            return
        if not self._network(TARGET, dynamodb.url, dynamodb.target, None):
            walk.skip(TARGET, HOPS, f"{self._blocked(TARGET)}; {FALLBACK}")
            return
        table = TokenTable(dynamodb, self._cache.table)
        read = walk.step(TARGET, "read", lambda f: _falls_back(f, lambda: self._read(table, pk, f)))
        if read is None:
            walk.skip(TARGET, ("open",), f"{walk.failure(TARGET, 'read')}; {FALLBACK}")
            return
        walk.step(TARGET, "open", lambda f: _falls_back(f, lambda: self._open(pk, read[0], f)))

    def _deadline(self) -> Deadline:
        return self._budget(self._settings.connect_timeout + self._settings.read_timeout)

    def _read(self, table: TokenTable, pk: str, facts: dict[str, Any]) -> tuple[Item | None]:
        """One GetItem (ConsistentRead) of the item; its times, never its ciphertext."""
        facts.update(table=table.table, key=pk)
        item = table.get(pk, self._deadline())
        now = time.time()
        facts["item"] = item is not None
        facts["token"] = item is not None and item.has_token
        if item is None:
            return (None,)
        if item.has_token:
            facts.update(
                expires_in=round(item.expires - now),
                refresh_in=round(item.refresh - now),
                issued_ago=round(now - item.issued),
                # What the bridge hands out; an older token is replaced by the next mint.
                fresh=now < item.expires - MIN_LIFE,
            )
        facts["lease_held"] = item.leased(now, longest_lease(self._cache.lease_seconds))
        if item.lease is not None:
            facts["lease_expires_in"] = round(item.lease_until - now, 1)
        return (item,)

    def _open(self, pk: str, item: Item | None, facts: dict[str, Any]) -> None:
        """The token's data key opened in KMS (kms:Decrypt), or with no token one data key made
        (kms:GenerateDataKey), both under the cache's encryption context; sizes only."""
        kms: AwsJsonApi = kms_api(self._settings, self._http)
        envelope = Envelope(kms, self._cache.key_id)
        facts.update(key_id=self._cache.key_id, encryption_context=dict(CONTEXT))
        if item is None or not item.has_token:
            facts["kms_action"] = "GenerateDataKey"
            encrypted_key, _ = envelope.seal(_PROBE, _PROBE, self._deadline())
            facts.update(data_key_bytes=KEY_BYTES, encrypted_key_bytes=len(encrypted_key))
            return
        facts["kms_action"] = "Decrypt"
        aad = item.aad(self._cache.table, pk)
        # A data key of another key or context is TOKEN_CACHE_CORRUPT, as the bridge counts it.
        opened = envelope.open(item.edk, item.sealed, aad, self._deadline())
        facts["opened"] = True
        facts["token_type"] = _scheme(opened)


def _falls_back(facts: dict[str, Any], action: Callable[[], Any]) -> Any:
    """``action()``; a cache failure adds what the bridge does then, and AWS's error type."""
    try:
        return action()
    except CacheError as exc:
        facts["fallback"] = FALLBACK
        if exc.aws_code is not None:
            facts["aws_error"] = exc.aws_code
        raise


def _scheme(opened: bytes) -> str | None:
    """``Bearer`` or ``DPoP`` from the opened item (the token itself is left where it is)."""
    try:
        scheme = json.loads(opened).get("scheme")
    except (ValueError, AttributeError):
        return None
    return scheme if scheme in ("Bearer", "DPoP") else None

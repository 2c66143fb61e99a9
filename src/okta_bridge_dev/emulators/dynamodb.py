"""moto's DynamoDB served over real TLS, with per-action counters and injected AWS errors.

The bridge's shared token cache (``okta_bridge.fleet``) keeps one item per Okta client here and
coordinates cold environments with conditional writes (GetItem with ConsistentRead, PutItem and
UpdateItem with condition expressions), through its own SigV4-signed JSON-protocol client
(``AWS_ENDPOINT_URL_DYNAMODB``). Tests create the table (``create_table``: ``pk`` S hash key,
PAY_PER_REQUEST, TTL on ``ttl``), read items as stored (``items``, to scan for plaintext) and
plant or remove items (``put_raw_item``, ``delete_item``) without going through HTTP.

What moto 5.2 does not do as DynamoDB does is done here: moto checks a condition and then
writes without a lock, so two concurrent conditional writes to one item could both succeed;
DynamoDB applies them one at a time, which the lease protocol relies on. Every request to moto
therefore runs under this server's lock. Injected errors carry the ``__type`` namespace AWS uses
for each code (``com.amazon.coral.availability#ThrottlingException``,
``com.amazon.coral.service#AccessDeniedException``, ``com.amazonaws.dynamodb.v20120810#...`` for
DynamoDB's own), and every answer is ``application/x-amz-json-1.0`` as DynamoDB's are (moto sends
its errors as ``application/json``). moto never expires items
by TTL; neither does DynamoDB promptly (typically within days), so readers must check ``ttl``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from okta_bridge_dev.emulators.moto_tls import (
    MOTO_REGION,
    InjectedError,
    MotoTlsServer,
    drain,
    json_answer,
)

if TYPE_CHECKING:
    import ssl
    from pathlib import Path

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["TARGET_PREFIX", "TOKEN_CACHE_TABLE", "DynamoDbServer", "dynamodb_action", "error_type"]

TOKEN_CACHE_TABLE = "okta-bridge-tokens-local"  # noqa: S105 - a table name
"""The shared token cache's table in the local stack (the template's ``TokenCacheTable``)."""
TARGET_PREFIX = "DynamoDB_20120810."
HASH_KEY = "pk"
TTL_ATTRIBUTE = "ttl"

_CONTENT_TYPE = "application/x-amz-json-1.0"
_DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
_CORAL_NAMESPACES = {
    "ThrottlingException": "com.amazon.coral.availability",
    "AccessDeniedException": "com.amazon.coral.service",
    "UnrecognizedClientException": "com.amazon.coral.service",
    "IncompleteSignatureException": "com.amazon.coral.service",
    "ValidationException": "com.amazon.coral.validate",
}
"""Codes AWS answers from its shared front end rather than DynamoDB itself."""

_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "AccessDeniedException": "User is not authorized to perform this operation.",
    "InternalServerError": "Internal server error",
    "ResourceNotFoundException": "Requested resource not found",
}

RawItem = dict[str, dict[str, Any]]
"""An item as botocore's low-level client gives it: ``{"pk": {"S": ...}, "ct": {"B": b"..."}}``."""


def dynamodb_action(environ: WSGIEnvironment) -> str:
    """``GetItem`` from ``X-Amz-Target: DynamoDB_20120810.GetItem``."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rsplit(".", 1)[-1] if target else "unknown"


def error_type(code: str) -> str:
    """The ``__type`` DynamoDB's JSON error carries for ``code``."""
    return f"{_CORAL_NAMESPACES.get(code, _DYNAMODB_NAMESPACE)}#{code}"


class DynamoDbServer(MotoTlsServer):
    """moto DynamoDB on ``https://host:port``, in an AWS account of its own.

    ``counts`` is keyed by API action (``GetItem``, ``PutItem``, ``UpdateItem``...), faulted
    requests included. Tables outlive ``stop()``: a test can stop the server to make DynamoDB
    unreachable and start it again.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(ssl_context, host=host, port=port)
        self._state_lock = threading.Lock()

    # -- faults ----------------------------------------------------------------------------

    def inject_error(
        self,
        action: str,
        code: str,
        *,
        status: int | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``action`` with DynamoDB's JSON error ``code``.

        ``status`` defaults to AWS's: 500 for ``InternalServerError``, 400 otherwise
        (``ProvisionedThroughputExceededException``, ``ThrottlingException``,
        ``AccessDeniedException``...).
        """
        if status is None:
            status = 500 if code == "InternalServerError" else 400
        text = message if message is not None else _MESSAGES.get(code, "Injected by the test.")
        self._inject(InjectedError(action, code, text, status, times))

    def client(self, ca_bundle: Path, *, max_attempts: int | None = None) -> Any:
        """A boto3 DynamoDB client for this server (``boto_client``)."""
        return self.boto_client("dynamodb", ca_bundle, max_attempts=max_attempts)

    # -- tables and items, managed without going through HTTP (not counted) -------------------

    def create_table(self, name: str = TOKEN_CACHE_TABLE) -> str:
        """Table ``name`` as the template declares it: ``pk`` (S) hash key, PAY_PER_REQUEST,
        TTL on ``ttl``; its ARN."""
        backend = self._backend()
        with self._state_lock:
            table = backend.create_table(
                name,
                schema=[{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
                throughput=None,
                attr=[{"AttributeName": HASH_KEY, "AttributeType": "S"}],
                global_indexes=None,
                indexes=None,
                streams=None,
                billing_mode="PAY_PER_REQUEST",
                sse_specification=None,
                tags=[],
                deletion_protection_enabled=False,
                warm_throughput=None,
            )
            backend.update_time_to_live(name, {"Enabled": True, "AttributeName": TTL_ATTRIBUTE})
        return str(table.table_arn)

    def items(self, table: str) -> list[RawItem]:
        """Every item of ``table`` as stored, binary attributes as bytes, sorted by ``pk``."""
        with self._state_lock:
            stored = list(self._backend().get_table(table).items.values())
        found = [_raw(item) for item in stored]
        return sorted(found, key=lambda item: str(item[HASH_KEY].get("S", "")))

    def item(self, table: str, pk: str) -> RawItem | None:
        """The item whose ``pk`` is ``pk``, as ``items`` gives it, or None."""
        with self._state_lock:
            stored = self._backend().get_table(table).get_item(DynamoType({"S": pk}))
        return None if stored is None else _raw(stored)

    def put_raw_item(self, table: str, item: Mapping[str, Mapping[str, Any]]) -> None:
        """Store ``item`` (the shape ``items`` gives, bytes for B) as is, replacing any item
        with its ``pk``: for tests that plant a corrupt, foreign or expired item."""
        attrs = {name: _wire(value) for name, value in item.items()}
        with self._state_lock:
            self._backend().put_item(table, attrs)

    def delete_item(self, table: str, pk: str) -> bool:
        """Remove the item whose ``pk`` is ``pk``; True if there was one."""
        with self._state_lock:
            removed = self._backend().delete_item(table, {HASH_KEY: {"S": pk}})
        return removed is not None

    def _backend(self) -> Any:
        return dynamodb_backends[self.account_id][MOTO_REGION]

    # -- WSGI ------------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        action = dynamodb_action(environ)
        injected = self._count(action)
        if injected is None:

            def amz_json(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                kept = [(k, v) for k, v in headers if k.lower() != "content-type"]
                return start_response(status, [*kept, ("Content-Type", _CONTENT_TYPE)], *args)

            with self._state_lock:  # moto's conditional writes are not atomic on their own
                return list(self._moto(environ, amz_json))
        drain(environ)
        return json_answer(
            start_response,
            injected.status,
            {"__type": error_type(injected.code), "message": injected.message},
            content_type=_CONTENT_TYPE,
        )


def _raw(item: Item) -> RawItem:
    return {name: _plain(value.to_regular_json()) for name, value in item.attrs.items()}


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """A top-level attribute with B/BS as bytes (moto may hold them base64 or decoded)."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": _as_bytes(inner)}
    if kind == "BS":
        return {"BS": [_as_bytes(one) for one in inner]}
    return {kind: inner}


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)


def _wire(value: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute as it arrives over the wire (B/BS base64), which is how moto stores it."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(one).decode() for one in inner]}
    return {kind: inner}

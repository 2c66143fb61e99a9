"""Scheduled export: read every page of an internal API and store the run as one S3 object.

EventBridge Scheduler invokes this function; it pages through ``EXPORT_PATH`` with the
okta-bridge client (from the stack's layer) and writes the records as one JSON Lines object,
``<EXPORT_PREFIX>dt=<YYYY-MM-DD>/<request id>.jsonl``, encrypted with SSE-KMS under the
okta-bridge stack's key.

Nothing partial is ever written: every page is read (and held in memory, bounded by the
client's ``max_bytes`` and ``EXPORT_MAX_PAGES``) before the one ``PutObject``, which S3 makes
visible whole or not at all. A failing page raises, so the invocation fails and Lambda's retries
and dead-letter queue take over. (A temporary key and a copy would need a second request, the
wider ``kms:Decrypt`` permission for the copy, and a clean-up of orphans after a failure.)
Lambda's retries of an asynchronous invocation keep its request id, so a retry writes the same
key: a run that wrote and then failed is overwritten, not duplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import boto3

from okta_bridge import Client, Response

logger = logging.getLogger(__name__)


class ExportError(Exception):
    """A page is not shaped as configured (``EXPORT_RECORDS_KEY``): the run fails."""


class S3Writer(Protocol):
    """The one S3 call the export makes (boto3's S3 client has it)."""

    def put_object(self, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ExportSettings:
    """What to read and where to write it; parsed once per execution environment."""

    bucket: str
    kms_key_arn: str
    path: str = "/v1/items"
    max_pages: int = 20
    prefix: str = "exports/"
    records_key: str = "items"  # the page body's list of records; "" stores each body whole

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExportSettings:
        """Settings from ``EXPORT_*`` variables (``KeyError``/``ValueError`` name a bad one)."""
        max_pages = int(env.get("EXPORT_MAX_PAGES", "20"))
        if max_pages < 1:
            raise ValueError("EXPORT_MAX_PAGES must be at least 1")
        return cls(
            bucket=env["EXPORT_BUCKET"],
            kms_key_arn=env["EXPORT_KMS_KEY_ARN"],
            path=env.get("EXPORT_PATH", "/v1/items"),
            max_pages=max_pages,
            prefix=env.get("EXPORT_PREFIX", "exports/"),
            records_key=env.get("EXPORT_RECORDS_KEY", "items"),
        )


def export(
    client: Client, s3: S3Writer, settings: ExportSettings, event: Mapping[str, Any], context: Any
) -> dict[str, Any]:
    """Read every page, then write one object; return where it went and what it holds.

    Raises the client's ``BridgeError`` (or ``ExportError``) before anything is written."""
    pages = 0
    lines: list[bytes] = []
    for page in client.paginate(settings.path, context=context, max_pages=settings.max_pages):
        pages += 1
        lines.extend(_json_line(record) for record in _records(page, settings.records_key))
    body = b"".join(lines)
    key = object_key(settings.prefix, run_date(event), context.aws_request_id)
    s3.put_object(
        Bucket=settings.bucket,
        Key=key,
        Body=body,
        ContentType="application/x-ndjson",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.kms_key_arn,
        BucketKeyEnabled=True,
    )
    summary = {"bucket": settings.bucket, "key": key, "pages": pages, "records": len(lines)}
    logger.info("export written", extra=summary | {"bytes": len(body)})
    return summary


def object_key(prefix: str, day: dt.date, request_id: str) -> str:
    """``<prefix>dt=YYYY-MM-DD/<request id>.jsonl``: one object per run, partitioned by day."""
    return f"{prefix}dt={day.isoformat()}/{request_id}.jsonl"


def run_date(event: Mapping[str, Any]) -> dt.date:
    """The schedule's time (the template passes ``<aws.scheduler.scheduled-time>``), so a
    retried run files under its own day; the current UTC day when the event has none."""
    scheduled = event.get("scheduled_time")
    if not scheduled:
        return dt.datetime.now(dt.UTC).date()
    return dt.datetime.fromisoformat(str(scheduled)).astimezone(dt.UTC).date()


def _records(page: Response, records_key: str) -> Iterator[Any]:
    document = page.json()
    if not records_key:
        yield document
        return
    records = document.get(records_key) if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise ExportError(f"a page of {page.url} has no list at {records_key!r}")
    yield from records


def _json_line(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# One client, one S3 client and one set of settings per execution environment: the secret and
# the token are cached across invocations.
CLIENT = Client.from_env()
S3 = cast(S3Writer, boto3.client("s3"))
SETTINGS = ExportSettings.from_env(os.environ)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge Scheduler's entry point."""
    return export(CLIENT, S3, SETTINGS, event, context)

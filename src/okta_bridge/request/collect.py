"""A whole collection for the bridge function: every page of a GET, in one answer.

``{"pages": [<page 1>, <page 2>, ...], "truncated": false}``: the pages' JSON as the API sent
it, read once each, in order, under the invocation's deadline. Bounds stop the walk without
failing it (``"truncated": true`` with ``"truncated_reason"``): the page count (the event's
``max_pages``, at most ``BRIDGE_MAX_PAGES``), the bytes (``BRIDGE_MAX_COLLECTION_BYTES``; without
a delivery bucket, what Lambda can return inline), and the time (the next page is not started
without twice the slowest page's time left). A bad next link fails it (``pages.Walk``).

The pages are kept as the API's bytes, not parsed objects (a parsed page costs several times
its size); the answer is assembled from them, or streamed from them to S3 when it is too large
to return inline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from okta_bridge import metrics
from okta_bridge.errors import BridgeError
from okta_bridge.logs import get_logger
from okta_bridge.request.api import Outgoing, decode_json, refuse_failure
from okta_bridge.request.events import ApiResult, Invocation
from okta_bridge.request.pages import Walk, next_url
from okta_bridge.request.policy import Query
from okta_bridge.transport.deadline import Deadline

if TYPE_CHECKING:
    from okta_bridge.request.bridge import Bridge, Plan

# The least time to start another page with: enough for a quick page and the answer after it.
MIN_PAGE_TIME = 1.0
# What a page after the first leaves of the invocation, to answer with the pages already read.
ANSWER_RESERVE = 0.5
# Room for what wraps the pages in Lambda's response (meta, proxy headers) within its limit.
ENVELOPE = 1024

log = get_logger("collect")


class Collected:
    """The pages read, and why the walk stopped early (None: it reached the end)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.size = 0
        self.status = 200
        self.attempts = 0
        self.truncated: str | None = None

    def pieces(self) -> Iterator[bytes]:
        """The answer's JSON, in pieces (the pages are not copied into one buffer)."""
        yield b'{"pages":['
        for index, body in enumerate(self.bodies):
            yield b"," if index else b""
            yield body
        tail: dict[str, object] = {"truncated": self.truncated is not None}
        if self.truncated is not None:
            tail["truncated_reason"] = self.truncated
        yield b"]," + json.dumps(tail, separators=(",", ":")).encode()[1:]

    def encoded_size(self) -> int:
        return self.size + len(self.bodies) + ENVELOPE


def collect(
    bridge: Bridge, invocation: Invocation, *, request_id: str, deadline: Deadline
) -> ApiResult:
    """Read the collection and answer it inline, or through S3 when too large or asked to."""
    settings = bridge.settings
    delivery = settings.delivery
    limit = settings.max_pages if invocation.max_pages is None else invocation.max_pages
    budget = settings.max_collection_bytes
    if not delivery.enabled:  # no bucket: no more than Lambda can return
        budget = min(budget, delivery.inline_limit - ENVELOPE)
    started = time.monotonic()
    collected = _walk(
        bridge,
        invocation,
        max_pages=min(limit, settings.max_pages),
        budget=budget,
        request_id=request_id,
        deadline=deadline,
    )
    metrics.pages(len(collected.bodies), truncated=collected.truncated is not None)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    log.info(
        "collection read",
        extra={"pages": len(collected.bodies), "bytes": collected.size,
               "truncated": collected.truncated},
    )  # fmt: skip
    pages = len(collected.bodies)
    if invocation.deliver == "s3" or (
        delivery.enabled and collected.encoded_size() > delivery.inline_limit
    ):
        from okta_bridge.request.bridge import delivered_result  # noqa: PLC0415 - cycle

        delivered = bridge.delivery().put(
            collected.pieces(), request_id=request_id, deadline=deadline
        )
        return delivered_result(
            collected.status,
            delivered,
            attempts=collected.attempts,
            elapsed_ms=elapsed_ms,
            pages=pages,
        )
    text, data = decode_json(b"".join(collected.pieces()))
    return ApiResult(collected.status, data, text, collected.attempts, elapsed_ms, pages)


def _walk(
    bridge: Bridge,
    invocation: Invocation,
    *,
    max_pages: int,
    budget: int,
    request_id: str,
    deadline: Deadline,
) -> Collected:
    def plan(path: str, query: Query) -> Plan:
        page = Invocation(invocation.kind, path, query or None, invocation.caller)
        return bridge.plan(page, deadline)

    pointer = bridge.settings.next_link
    walk = Walk(plan, configured=bridge.configured_query(deadline), next_pointer=pointer)
    collected = Collected()
    target: Plan | None = walk.first(invocation.path or "/", invocation.query or ())
    slowest = 0.0
    while target is not None:
        left = budget - collected.size
        if collected.bodies and left <= 0:  # spent exactly: not even a one-byte page more
            collected.truncated = "max_bytes"
            break
        if collected.bodies and deadline.remaining() < max(MIN_PAGE_TIME, 2 * slowest):
            collected.truncated = "deadline"
            break
        began = time.monotonic()
        # After the first page, a page that is still arriving when only the reserve is left is
        # cut there, and the pages already read are the answer.
        page_deadline = (
            Deadline(deadline.remaining() - ANSWER_RESERVE) if collected.bodies else deadline
        )
        try:
            done = bridge.exchange(
                target,
                Outgoing(max_answer=max(1, left)),
                request_id=request_id,
                deadline=page_deadline,
            )
        except BridgeError as exc:
            # A page that would pass the byte budget is not read further: what came before is
            # the answer. (The first page over it is a plain UPSTREAM_TOO_LARGE.)
            if exc.code == "UPSTREAM_TOO_LARGE" and collected.bodies:
                collected.truncated = "max_bytes"
                break
            if exc.code == "UPSTREAM_TIMEOUT" and collected.bodies:
                collected.truncated = "deadline"
                break
            raise
        slowest = max(slowest, time.monotonic() - began)
        response = done.response
        refuse_failure(response, done.attempts)
        decode_json(response.body)  # every page must be JSON: it is embedded as it is
        walk.read(response.url)
        collected.bodies.append(response.body.strip() or b"null")
        collected.size += len(response.body)
        collected.status = response.status
        collected.attempts += done.attempts
        if len(collected.bodies) >= max_pages:
            if next_url(response.headers, response.body, pointer) is not None:
                collected.truncated = "max_pages"
            break
        target = walk.following(response.url, response.headers, response.body)
    return collected

"""A 50 MB answer never sits whole in memory: the traced peak while spilling or putting it stays
near one part (the reusable part buffer, handed to the HTTP client as a view, never copied; a
copy would make it two, and fail here).

The S3 side here is ``HashingS3``, an in-memory stand-in for ``HttpClient`` that hashes what it is
sent and keeps nothing: moto's server in this process would otherwise hold the parts and count them
against the bridge. Deterministic (allocation sizes), not timed.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from okta_bridge.config import Settings
from okta_bridge.delivery.s3 import PART_SIZE, S3Delivery
from tests.delivery.conftest import CREDENTIALS, NOW, HashingS3, chunks, deadline

JSON_ANSWER = {"content-type": "application/json"}

TOTAL = 50_000_000
LIMIT = int(1.5 * PART_SIZE)  # one part buffer, sent without a copy, and change


@pytest.fixture
def delivery_and_s3() -> tuple[S3Delivery, HashingS3]:
    settings = Settings.from_env(
        {"BRIDGE_SECRET_ID": "unused", "AWS_REGION": "eu-west-1",
         "BRIDGE_DELIVERY_BUCKET": "okta-bridge-delivery"}
    )  # fmt: skip
    s3 = HashingS3()
    delivery = S3Delivery(
        settings,
        s3,  # type: ignore[arg-type]  # the one method S3Delivery calls
        credentials=lambda: CREDENTIALS,
        clock=lambda: NOW,
    )
    return delivery, s3


def traced_peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_spilling_50_mb_peaks_under_one_and_a_half_parts(
    delivery_and_s3: tuple[S3Delivery, HashingS3],
) -> None:
    delivery, s3 = delivery_and_s3
    spill = delivery.spill(request_id="req-1", deadline=deadline(), threshold=6_000_000)
    sha = hashlib.sha256()

    def work() -> None:
        assert spill.accepts(200, JSON_ANSWER)
        for piece in chunks(TOTAL):
            sha.update(piece)
            spill.write(piece)
        spill.finish()

    peak = traced_peak(work)
    assert peak < LIMIT, f"peak {peak} bytes"
    assert s3.received == TOTAL
    assert s3.sha256.hexdigest() == sha.hexdigest()
    assert s3.actions.count("UploadPart") == -(-TOTAL // PART_SIZE)


def test_putting_50_mb_in_large_chunks_peaks_under_one_and_a_half_parts(
    delivery_and_s3: tuple[S3Delivery, HashingS3],
) -> None:
    delivery, s3 = delivery_and_s3

    def pages() -> Iterator[bytes]:
        yield from chunks(TOTAL, size=1_000_000, framed=False)  # a page at a time

    peak = traced_peak(lambda: delivery.put(pages(), request_id="req-1", deadline=deadline()))
    assert peak < LIMIT, f"peak {peak} bytes"
    assert s3.received == TOTAL

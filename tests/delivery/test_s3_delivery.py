"""okta_bridge.delivery against moto's S3 over real TLS: what is stored, what is answered, how
failures end (no multipart upload left behind), and what never reaches a log."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import time
import urllib.parse
from collections.abc import Iterator

import pytest
import urllib3

from okta_bridge.errors import DeliveryError
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import BodySink
from okta_bridge_dev.emulators.stack import DELIVERY_BUCKET, LocalStack
from tests.delivery.conftest import (
    NOW,
    SECRET_KEY,
    SESSION_TOKEN,
    SMALL_PART,
    Deliveries,
    chunks,
    deadline,
    digest_of,
)

pytestmark = pytest.mark.integration
JSON_ANSWER = {"content-type": "application/json"}

MB = 1_000_000
KEY = re.compile(r"okta-bridge/2026/11/30/req-1-[0-9a-f]{16}\.json")


def download(stack: LocalStack, url: str) -> Iterator[bytes]:
    """The object behind a presigned URL, over TLS verified against the stack's CA, streamed."""
    context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
    with urllib3.PoolManager(ssl_context=context, retries=False, timeout=30.0) as pool:
        answer = pool.request("GET", url, preload_content=False)
        assert answer.status == 200
        yield from answer.stream(1 << 20)
        answer.release_conn()


# -- put ----------------------------------------------------------------------------------


def test_a_small_answer_is_one_encrypted_put_object(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    body = b'{"items": [1, 2, 3]}'
    delivered = deliveries.make().put([body], request_id="req-1", deadline=deadline())

    assert KEY.fullmatch(delivered.key)
    assert stack.s3.counts == {"PutObject": 1}
    assert stack.s3.object_bytes(delivered.key) == body
    assert delivered.sha256 == hashlib.sha256(body).hexdigest()
    assert (delivered.bucket, delivered.size) == (DELIVERY_BUCKET, len(body))
    info = stack.s3.object_info(delivered.key)
    assert info["encryption"] == "aws:kms"
    assert info["kms_key_id"] == stack.s3.kms_key_arn
    assert info["content_type"] == "application/json"
    assert delivered.expires_at == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 300))
    assert b"".join(download(stack, delivered.url)) == body


def test_the_pointer_names_every_field_and_repr_hides_the_url(deliveries: Deliveries) -> None:
    delivered = deliveries.make(BRIDGE_DELIVERY_URL_SECONDS="900").put(
        [b"[]"], request_id="req-1", deadline=deadline()
    )
    pointer = delivered.pointer()
    assert set(pointer) == {
        "bucket", "key", "bytes", "sha256", "url", "expires_at", "content_type"
    }  # fmt: skip
    assert pointer["bytes"] == 2
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(delivered.url).query)
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Security-Token"] == [SESSION_TOKEN]
    assert "X-Amz-Signature" not in repr(delivered)
    assert delivered.url not in repr(delivered)
    assert delivered.url not in str(delivered)


def test_a_50_mb_export_streams_in_parts_and_its_sha256_matches_the_object(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    total = 50 * MB
    delivered = deliveries.make().put(
        chunks(total, seed=b"export"), request_id="req-1", deadline=deadline()
    )

    assert delivered.size == total
    assert digest_of(chunks(total, seed=b"export")) == (total, delivered.sha256)
    assert digest_of(download(stack, delivered.url)) == (total, delivered.sha256)
    parts = -(-total // (8 * 1024 * 1024))
    assert stack.s3.counts["UploadPart"] == parts
    assert stack.s3.counts["CreateMultipartUpload"] == 1
    assert stack.s3.counts["CompleteMultipartUpload"] == 1
    assert stack.s3.counts["PutObject"] == 0
    assert stack.s3.object_info(delivered.key)["encryption"] == "aws:kms"
    assert stack.s3.uploads() == []


def test_an_answer_of_exactly_one_part_is_still_one_put_object(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    delivered = deliveries.make(part_size=SMALL_PART).put(
        chunks(SMALL_PART), request_id="req-1", deadline=deadline()
    )
    assert stack.s3.counts == {"PutObject": 1}
    assert delivered.size == SMALL_PART


def test_the_probe_writes_a_tiny_object_under_the_diagnose_folder(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    delivered = deliveries.make().probe(request_id="diag-7", deadline=deadline())
    assert re.fullmatch(r"okta-bridge/diagnose/2026/11/30/diag-7-[0-9a-f]{16}\.json", delivered.key)
    assert json.loads(stack.s3.object_bytes(delivered.key))["probe"] == "okta-bridge delivery"
    assert stack.s3.object_info(delivered.key)["encryption"] == "aws:kms"


# -- spill ----------------------------------------------------------------------------------


def test_a_spill_below_the_threshold_keeps_the_bytes_and_sends_nothing(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    spill = deliveries.make().spill(request_id="req-1", deadline=deadline(), threshold=2 * MB)
    sink: BodySink = spill
    assert sink.accepts(200, {"content-type": "application/json"})
    body = b"".join(chunks(2 * MB))
    for piece in chunks(2 * MB):
        sink.write(piece)

    assert not spill.spilled
    assert spill.size == 2 * MB
    assert spill.buffered() == body
    assert stack.s3.counts == {}


def test_a_small_spill_is_delivered_with_one_put_object_when_asked(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    spill = deliveries.make().spill(request_id="req-1", deadline=deadline(), threshold=MB)
    assert spill.accepts(200, JSON_ANSWER)
    spill.write(b'{"small": true}')
    delivered = spill.finish("application/vnd.api+json")
    assert stack.s3.counts == {"PutObject": 1}
    assert stack.s3.object_info(delivered.key)["content_type"] == "application/vnd.api+json"
    assert delivered.content_type == "application/vnd.api+json"


def test_a_spill_above_the_threshold_uploads_parts_as_they_fill(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    total = 12 * MB
    spill = deliveries.make(part_size=SMALL_PART).spill(
        request_id="req-1", deadline=deadline(), threshold=MB
    )
    assert spill.accepts(200, JSON_ANSWER)
    for piece in chunks(total, seed=b"spill"):
        spill.write(piece)
    assert spill.spilled
    assert stack.s3.counts["UploadPart"] == 2  # two full parts sent; the rest waits for finish
    with pytest.raises(RuntimeError):
        spill.buffered()

    delivered = spill.finish()
    assert stack.s3.counts["UploadPart"] == 3
    assert stack.s3.counts["CompleteMultipartUpload"] == 1
    assert (delivered.size, delivered.sha256) == digest_of(chunks(total, seed=b"spill"))
    assert hashlib.sha256(stack.s3.object_bytes(delivered.key)).hexdigest() == delivered.sha256
    assert stack.s3.uploads() == []


def test_accepts_after_a_partial_spill_starts_afresh(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    spill = deliveries.make(part_size=SMALL_PART).spill(
        request_id="req-1", deadline=deadline(), threshold=MB
    )
    assert spill.accepts(200, JSON_ANSWER)
    for piece in chunks(12 * MB, seed=b"first attempt"):
        spill.write(piece)
    assert stack.s3.uploads() != []

    assert not spill.accepts(503, JSON_ANSWER)  # the retried attempt's answer: not a success
    assert stack.s3.counts["AbortMultipartUpload"] == 1
    assert stack.s3.uploads() == []
    assert spill.size == 0

    assert spill.accepts(200, JSON_ANSWER)  # the next attempt succeeds
    for piece in chunks(7 * MB, seed=b"second attempt"):
        spill.write(piece)
    delivered = spill.finish()
    assert (delivered.size, delivered.sha256) == digest_of(chunks(7 * MB, seed=b"second attempt"))
    assert stack.s3.object_bytes(delivered.key) == b"".join(chunks(7 * MB, seed=b"second attempt"))
    assert stack.s3.uploads() == []


def test_a_spill_over_the_delivery_cap_is_too_large_and_aborted(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    spill = deliveries.make(part_size=SMALL_PART, BRIDGE_MAX_DELIVERY_BYTES="11000000").spill(
        request_id="req-1", deadline=deadline(), threshold=MB
    )
    assert spill.accepts(200, JSON_ANSWER)

    def write_all() -> None:
        for piece in chunks(20 * MB):
            spill.write(piece)

    with pytest.raises(DeliveryError) as caught:
        write_all()
    assert caught.value.code == "DELIVERY_TOO_LARGE"
    assert stack.s3.counts["UploadPart"] == 2
    assert stack.s3.counts["AbortMultipartUpload"] == 1
    assert stack.s3.uploads() == []
    assert stack.s3.counts["CompleteMultipartUpload"] == 0


# -- failures -------------------------------------------------------------------------------


def test_a_put_over_the_delivery_cap_is_too_large_and_aborted(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    delivery = deliveries.make(part_size=SMALL_PART, BRIDGE_MAX_DELIVERY_BYTES="12000000")
    with pytest.raises(DeliveryError) as caught:
        delivery.put(chunks(20 * MB), request_id="req-1", deadline=deadline())
    assert caught.value.code == "DELIVERY_TOO_LARGE"
    assert caught.value.status == 502
    assert stack.s3.counts["AbortMultipartUpload"] == 1
    assert stack.s3.uploads() == []
    assert stack.s3.counts["CompleteMultipartUpload"] == 0


def test_a_part_that_keeps_failing_aborts_the_upload(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    stack.s3.inject_error("UploadPart", 500, "InternalError", times=10)
    with pytest.raises(DeliveryError) as caught:
        deliveries.make(part_size=SMALL_PART).put(
            chunks(12 * MB), request_id="req-1", deadline=deadline()
        )
    assert caught.value.code == "DELIVERY_FAILED"
    assert "InternalError" in caught.value.message
    assert "UploadPart" in caught.value.message
    assert stack.s3.counts["UploadPart"] == 3  # the first try and two retries
    assert stack.s3.counts["AbortMultipartUpload"] == 1
    assert stack.s3.uploads() == []


def test_a_transient_s3_error_is_retried_and_the_upload_completes(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    stack.s3.inject_error("UploadPart", 503, "SlowDown")
    stack.s3.inject_error("CompleteMultipartUpload", 200, "InternalError")
    delivered = deliveries.make(part_size=SMALL_PART).put(
        chunks(12 * MB), request_id="req-1", deadline=deadline()
    )
    assert stack.s3.counts["UploadPart"] == 4
    assert stack.s3.counts["CompleteMultipartUpload"] == 2
    assert hashlib.sha256(stack.s3.object_bytes(delivered.key)).hexdigest() == delivered.sha256


def test_a_source_that_breaks_mid_stream_aborts_the_upload(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    def broken() -> Iterator[bytes]:
        yield from chunks(11 * MB)
        raise ConnectionResetError("the API reset the connection")

    with pytest.raises(ConnectionResetError):
        deliveries.make(part_size=SMALL_PART).put(broken(), request_id="req-1", deadline=deadline())
    assert stack.s3.counts["AbortMultipartUpload"] == 1
    assert stack.s3.uploads() == []


def test_a_deadline_spent_mid_upload_is_delivery_timeout_and_still_aborted(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    now = [0.0]
    invocation = Deadline(30.0, clock=lambda: now[0])

    def slow_source() -> Iterator[bytes]:
        for index, piece in enumerate(chunks(12 * MB)):
            if index == 100:  # after the first 5 MiB part went out, before the second
                now[0] = 31.0
            yield piece

    with pytest.raises(DeliveryError) as caught:
        deliveries.make(part_size=SMALL_PART).put(
            slow_source(), request_id="req-1", deadline=invocation
        )
    assert caught.value.code == "DELIVERY_TIMEOUT"
    assert caught.value.status == 504
    assert stack.s3.counts["UploadPart"] == 1
    assert stack.s3.counts["AbortMultipartUpload"] == 1  # on a budget of its own
    assert stack.s3.uploads() == []


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [
        ("PutObject", 403, "AccessDenied"),
        ("PutObject", 400, "KMS.DisabledException"),
        ("CreateMultipartUpload", 403, "AccessDenied"),
        ("UploadPart", 400, "KMS.KMSInvalidStateException"),
    ],
)
def test_s3_and_kms_refusals_are_delivery_denied(
    stack: LocalStack, deliveries: Deliveries, action: str, status: int, code: str
) -> None:
    stack.s3.inject_error(action, status, code)
    size = 1000 if action == "PutObject" else 12 * MB
    with pytest.raises(DeliveryError) as caught:
        deliveries.make(part_size=SMALL_PART).put(
            chunks(size), request_id="req-1", deadline=deadline()
        )
    assert caught.value.code == "DELIVERY_DENIED"
    assert caught.value.status == 500
    assert code in caught.value.message
    assert stack.s3.counts[action] == 1  # a refusal is not retried
    assert stack.s3.uploads() == []


def test_an_error_in_completes_200_is_delivery_failed_and_aborted(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    stack.s3.inject_error("CompleteMultipartUpload", 200, "InvalidPart")
    with pytest.raises(DeliveryError) as caught:
        deliveries.make(part_size=SMALL_PART).put(
            chunks(12 * MB), request_id="req-1", deadline=deadline()
        )
    assert caught.value.code == "DELIVERY_FAILED"
    assert "InvalidPart" in caught.value.message
    assert stack.s3.counts["AbortMultipartUpload"] == 1
    assert stack.s3.uploads() == []


def test_a_missing_bucket_is_delivery_failed_naming_s3s_code(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    delivery = deliveries.make(BRIDGE_DELIVERY_BUCKET="no-such-bucket-here")
    with pytest.raises(DeliveryError) as caught:
        delivery.put([b"{}"], request_id="req-1", deadline=deadline())
    assert caught.value.code == "DELIVERY_FAILED"
    assert "NoSuchBucket" in caught.value.message


def test_an_s3_that_does_not_answer_is_delivery_unreachable(
    stack: LocalStack, deliveries: Deliveries
) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    delivery = deliveries.make(AWS_ENDPOINT_URL_S3=closed)
    with pytest.raises(DeliveryError) as caught:
        delivery.put([b"{}"], request_id="req-1", deadline=deadline())
    assert caught.value.code == "DELIVERY_UNREACHABLE"


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- secrets stay out of logs and errors ---------------------------------------------------------


def test_no_signature_secret_key_or_session_token_in_logs_or_errors(
    stack: LocalStack,
    deliveries: Deliveries,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    delivery = deliveries.make(part_size=SMALL_PART)
    urls = [
        delivery.put([b"{}"], request_id="req-1", deadline=deadline()).url,
        delivery.put(chunks(11 * MB), request_id="req-1", deadline=deadline()).url,
    ]
    errors: list[str] = []
    for action, status, code in [
        ("PutObject", 403, "AccessDenied"),
        ("CompleteMultipartUpload", 200, "InvalidPart"),
    ]:
        stack.s3.inject_error(action, status, code)
        size = 10 if action == "PutObject" else 11 * MB
        with pytest.raises(DeliveryError) as caught:
            delivery.put(chunks(size), request_id="req-1", deadline=deadline())
        errors += [caught.value.message, str(caught.value), repr(caught.value)]

    captured = capsys.readouterr()
    text = "\n".join([captured.out, captured.err, caplog.text, *errors])
    assert "delivered to S3" in captured.out  # the scan reads the bridge's real log lines
    signatures = [urllib.parse.parse_qs(url.split("?", 1)[1])["X-Amz-Signature"][0] for url in urls]
    for secret in [SECRET_KEY, SESSION_TOKEN, *signatures, *urls]:
        assert secret not in text
    assert "Signature=" not in text


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, {}),
        (200, {"content-type": "text/html"}),
        (200, {"content-type": "application/octet-stream"}),
        (200, {"content-type": "text/csv; charset=utf-8"}),
        (500, {"content-type": "application/json"}),
        (404, {"content-type": "application/problem+json"}),
    ],
)
def test_only_a_json_success_is_spilled(
    deliveries: Deliveries, status: int, headers: dict[str, str]
) -> None:
    """An error page or a non-JSON body is read (and judged) as before: never handed out."""
    spill = deliveries.make().spill(request_id="req-1", deadline=deadline(), threshold=10)
    assert not spill.accepts(status, headers)
    assert spill.accepts(200, {"content-type": "application/vnd.api+json; charset=utf-8"})
    spill.abort()

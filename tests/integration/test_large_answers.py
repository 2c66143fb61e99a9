"""Issue 15: answers too large for Lambda go to S3 (moto's, over TLS), end to end through the real
handler: the streamed 50 MB export, the inline limit measured as Lambda encodes the answer, the
pointer's SHA-256 against the stored object, collections, refusals and what the logs never hold.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.config import Settings
from okta_bridge.request.policy import Route
from okta_bridge_dev.emulators.s3 import DELIVERY_BUCKET
from okta_bridge_dev.emulators.sample_export import export_chunks, export_sha256
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import Harness, LambdaContext, make_harness
from tests.integration.test_routes_and_pages import event

ROUTES = (Route("GET", "/v1/export"), Route("GET", "/v1/items"))
FIFTY_MB = 50_000_000
LIMIT = 1_000_000  # a small inline limit keeps the boundary cases quick
SECRET_KEY = "bridgeDeliverySecret/0123456789+ABCDEFGHIJKLmnop"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEBridgeSessionToken//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="


@pytest.fixture(autouse=True)
def _aws_credentials(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's credentials, as Lambda puts them in its environment."""
    env = stack.environment("unused", delivery=True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_REGION", env["AWS_REGION"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)  # moto takes any; this one is findable
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)


def delivering(stack: LocalStack, **delivery: Any) -> Harness:
    settings = Settings.from_env(stack.environment("unused", delivery=True))
    return make_harness(
        stack, allowed_routes=ROUTES, delivery=settings.delivery._replace(**delivery)
    )


def export(size: int, **extra: Any) -> dict[str, Any]:
    return {"path": "/v1/export", "query": {"bytes": str(size)}, **extra}


def pointer(answer: dict[str, Any]) -> dict[str, Any]:
    body = answer["body"]
    if isinstance(body, str):
        body = json.loads(body)
    assert set(body) == {"delivery"}, body
    found: dict[str, Any] = body["delivery"]
    return found


def stored(stack: LocalStack, delivery: dict[str, Any]) -> bytes:
    assert delivery["bucket"] == DELIVERY_BUCKET
    return stack.s3.object_bytes(delivery["key"])


def test_a_50_mb_export_streams_through_s3(stack: LocalStack) -> None:
    harness = delivering(stack)
    answer = harness.invoke(export(FIFTY_MB), remaining_ms=120_000)
    assert answer["statusCode"] == 200, answer
    assert answer["meta"]["delivered"] == "s3"
    found = pointer(answer)
    assert found["bytes"] == FIFTY_MB
    assert found["sha256"] == export_sha256(FIFTY_MB)
    data = stored(stack, found)
    assert hashlib.sha256(data).hexdigest() == found["sha256"]
    info = stack.s3.object_info(found["key"])
    assert info["multipart"]
    assert info["encryption"] == "aws:kms"
    assert info["kms_key_id"] == stack.s3.kms_key_arn
    assert found["key"].startswith("okta-bridge/")
    assert stack.s3.uploads() == []
    # Streamed: parts went up while the API was still sending, never one 50 MB request.
    assert stack.s3.counts["UploadPart"] >= 5
    assert stack.s3.counts["PutObject"] == 0
    assert len(json.dumps(answer)) < 2_000  # Lambda returns a pointer, not 50 MB


def inline_size(size: int) -> int:
    """The direct answer's JSON length for an export of ``size`` bytes, as Lambda encodes it."""
    records = json.loads(b"".join(export_chunks(size)))
    envelope = {"statusCode": 200, "body": records, "meta": {"request_id": "x" * 36}}
    return len(json.dumps(envelope)) + 80  # the meta's numbers


def size_for(encoded: int) -> int:
    """The export size whose direct answer encodes to about ``encoded`` bytes."""
    low, high = 1_000, encoded
    while high - low > 200:
        middle = (low + high) // 2
        low, high = (middle, high) if inline_size(middle) < encoded else (low, middle)
    return low


def test_an_answer_just_under_the_limit_is_returned_inline(stack: LocalStack) -> None:
    size = size_for(LIMIT - 1_000)
    answer = delivering(stack, inline_limit=LIMIT).invoke(export(size))
    assert answer["statusCode"] == 200
    assert isinstance(answer["body"], list), answer["body"]
    assert "delivered" not in answer["meta"]
    assert LIMIT - 3_000 < len(json.dumps(answer)) <= LIMIT
    assert stack.s3.counts["PutObject"] + stack.s3.counts["CreateMultipartUpload"] == 0


def test_an_answer_just_over_the_limit_once_encoded_goes_to_s3(stack: LocalStack) -> None:
    """The API's bytes fit; Lambda's encoding of the answer (spaces, escapes) would not."""
    size = size_for(LIMIT + 1_000)
    assert size < LIMIT  # under the limit as the API sent it
    answer = delivering(stack, inline_limit=LIMIT).invoke(export(size))
    found = pointer(answer)
    digest = hashlib.sha256(stored(stack, found)).hexdigest()
    assert found["sha256"] == export_sha256(size) == digest
    assert stack.s3.counts["PutObject"] == 1  # small: one request, no multipart


@pytest.mark.parametrize("name", ["apigw-rest-v1.json", "apigw-http-v2.json"])
def test_a_proxy_caller_gets_the_pointer_and_a_header(stack: LocalStack, name: str) -> None:
    shaped = event(name)
    if "httpMethod" in shaped:
        shaped.update(path="/v1/export", multiValueQueryStringParameters={"bytes": ["3000000"]})
    else:
        shaped.update(rawPath="/v1/export", rawQueryString="bytes=3000000")
    answer = delivering(stack, inline_limit=LIMIT).invoke(shaped)
    assert answer["statusCode"] == 200, answer
    assert answer["headers"]["X-Bridge-Delivery"] == "s3"
    assert pointer(answer)["sha256"] == export_sha256(3_000_000)


def test_deliver_s3_writes_even_a_small_answer(stack: LocalStack) -> None:
    answer = delivering(stack).invoke({"path": "/v1/items", "deliver": "s3"})
    found = pointer(answer)
    data = json.loads(stored(stack, found))
    assert data["page"] == 1
    assert found["content_type"].startswith("application/json")


def test_a_large_collection_goes_to_s3_whole(stack: LocalStack) -> None:
    one = delivering(stack).invoke({"path": "/v1/items", "query": {"page_size": "5"}})
    limit = len(json.dumps(one["body"])) * 2 + 1024
    harness = delivering(stack, inline_limit=limit)
    answer = harness.invoke({"path": "/v1/items", "query": {"page_size": "5"}, "paginate": True})
    found = pointer(answer)
    collection = json.loads(stored(stack, found))
    assert collection["truncated"] is False
    ids = [item["id"] for page in collection["pages"] for item in page["items"]]
    assert ids == sorted(ids)
    assert len(ids) == one["body"]["total"]
    assert answer["meta"]["pages"] == len(collection["pages"])


def test_s3_refusing_the_write_is_delivery_denied_and_nothing_is_left(stack: LocalStack) -> None:
    stack.s3.inject_error("UploadPart", 403, "AccessDenied")
    answer = delivering(stack, inline_limit=LIMIT).invoke(export(20_000_000), remaining_ms=60_000)
    error = answer["body"]["error"]
    assert (error["code"], error["stage"]) == ("DELIVERY_DENIED", "delivery"), error
    assert stack.s3.uploads() == []


def test_an_export_over_the_delivery_cap_is_refused_and_aborted(stack: LocalStack) -> None:
    harness = delivering(stack, inline_limit=LIMIT, max_bytes=12_000_000)
    answer = harness.invoke(export(20_000_000), remaining_ms=60_000)
    assert answer["body"]["error"]["code"] == "DELIVERY_TOO_LARGE", answer
    assert stack.s3.uploads() == []


def test_without_a_bucket_a_large_answer_is_still_too_large(stack: LocalStack) -> None:
    harness = make_harness(stack, allowed_routes=ROUTES)
    answer = harness.invoke(export(8_000_000))
    assert answer["body"]["error"]["code"] == "UPSTREAM_TOO_LARGE"
    assert stack.s3.counts.total() == 0


def test_the_logs_hold_no_presigned_url_and_no_aws_secret(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = delivering(stack, inline_limit=LIMIT)
    handler.set_bridge(harness.bridge)
    answer = handler.lambda_handler(export(3_000_000), LambdaContext(60_000))
    url = pointer(answer)["url"]
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    logs = capsys.readouterr()
    text = logs.out + logs.err
    assert "delivered" in text or "Deliveries" in text
    assert "X-Amz-Security-Token" in url  # the session's token travels in the URL, as S3 needs
    for secret in (signature, url, SECRET_KEY, SESSION_TOKEN, SESSION_TOKEN[:24]):
        assert secret not in text
    assert SECRET_KEY not in json.dumps(answer)
    emf = [json.loads(line) for line in logs.out.splitlines() if '"_aws"' in line]
    assert any(doc.get("Deliveries") == 1 and doc["DeliveredBytes"] == 3_000_000 for doc in emf)

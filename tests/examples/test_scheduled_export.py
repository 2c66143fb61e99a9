"""examples/scheduled-export: every page once and in order, then one SSE-KMS object, or nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from okta_bridge import UpstreamError
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.sample_resources import ITEMS
from okta_bridge_dev.emulators.stack import LocalStack
from tests.examples.conftest import LambdaContext, s3_client

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/0b7c4a8e-1f2d-4e6a-9c3b-5d7e8f9a0b1c"
SCHEDULED = {"scheduled_time": "2025-01-31T06:00:00Z"}  # the template's scheduler input


@pytest.fixture
def export(
    lambda_env: Callable[..., None],
    load_example: Callable[[str], ModuleType],
    s3_endpoint: str,
) -> Callable[..., tuple[ModuleType, str]]:
    """A fresh bucket and the example loaded as in Lambda (``EXPORT_*`` as the template sets
    them, boto3's S3 pointed at moto); returns the module and the bucket's name."""

    def build(**env: str) -> tuple[ModuleType, str]:
        bucket = f"exports-{uuid.uuid4().hex[:12]}"
        variables = {
            "AWS_ENDPOINT_URL_S3": s3_endpoint,
            "EXPORT_BUCKET": bucket,
            "EXPORT_KMS_KEY_ARN": KEY_ARN,
            "EXPORT_PATH": "/v1/items",
            "EXPORT_MAX_PAGES": "10",
            "BRIDGE_ALLOWED_PATHS": "/v1/items",
        }
        lambda_env(**(variables | env))  # AWS_CA_BUNDLE too: the stack's S3 is over TLS
        s3_client(s3_endpoint).create_bucket(Bucket=bucket)
        return load_example("scheduled-export"), bucket

    return build


def objects(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def upstream(stack: LocalStack) -> tuple[int, int, int]:
    """Secrets Manager reads, token requests, API requests since the last reset."""
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        sum(stack.api.counts.values()),
    )


def page_numbers(stack: LocalStack) -> list[str]:
    return [request.query.get("page", ["1"])[0] for request in stack.api.requests]


def test_a_run_reads_every_page_once_in_order_and_writes_one_sse_kms_object(
    stack: LocalStack, export: Callable[..., tuple[ModuleType, str]], s3_endpoint: str
) -> None:
    module, bucket = export()
    stack.reset_counts()
    summary = module.handler(SCHEDULED, LambdaContext("run-1"))
    key = "exports/dt=2025-01-31/run-1.jsonl"
    assert summary == {"bucket": bucket, "key": key, "pages": 3, "records": len(ITEMS)}
    assert page_numbers(stack) == ["1", "2", "3"]  # 10 + 10 + 5 items, each page once
    assert upstream(stack) == (1, 1, 3)
    assert objects(s3_endpoint, bucket) == [key]
    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=key)
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"] == KEY_ARN
    headers = stored["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == KEY_ARN
    assert stored["ContentType"] == "application/x-ndjson"
    lines = stored["Body"].read().decode().splitlines()
    assert [json.loads(line) for line in lines] == list(ITEMS)


def test_a_second_run_reuses_the_secret_and_the_token_and_writes_its_own_object(
    stack: LocalStack, export: Callable[..., tuple[ModuleType, str]], s3_endpoint: str
) -> None:
    module, bucket = export(EXPORT_PATH="/v1/items")
    module.handler(SCHEDULED, LambdaContext("run-1"))
    stack.reset_counts()
    module.handler(SCHEDULED, LambdaContext("run-2"))
    assert upstream(stack) == (0, 0, 3)  # one execution environment: both cached
    assert sorted(objects(s3_endpoint, bucket)) == [
        "exports/dt=2025-01-31/run-1.jsonl",
        "exports/dt=2025-01-31/run-2.jsonl",
    ]


def test_a_failing_page_fails_the_run_and_nothing_is_written(
    stack: LocalStack, export: Callable[..., tuple[ModuleType, str]], s3_endpoint: str
) -> None:
    module, bucket = export()
    stack.api.inject(Fault(match="/v1/items"))  # page 1 answers normally ...
    stack.api.inject(Fault(match="/v1/items", status=500, body=b"{}", times=10))  # ... page 2 not
    with pytest.raises(UpstreamError) as failed:
        module.handler(SCHEDULED, LambdaContext("run-failing"))
    assert failed.value.code == "UPSTREAM_ERROR"
    assert page_numbers(stack)[:2] == ["1", "2"]
    assert set(page_numbers(stack)) == {"1", "2"}  # page 3 never asked for
    assert objects(s3_endpoint, bucket) == []


def test_more_pages_than_export_max_pages_fail_the_run_and_nothing_is_written(
    stack: LocalStack, export: Callable[..., tuple[ModuleType, str]], s3_endpoint: str
) -> None:
    module, bucket = export(EXPORT_MAX_PAGES="2")
    with pytest.raises(UpstreamError) as limited:
        module.handler(SCHEDULED, LambdaContext("run-long"))
    assert limited.value.code == "UPSTREAM_PAGINATION"
    assert page_numbers(stack) == ["1", "2"]
    assert objects(s3_endpoint, bucket) == []


def test_a_page_without_the_records_list_fails_the_run_and_nothing_is_written(
    export: Callable[..., tuple[ModuleType, str]], s3_endpoint: str
) -> None:
    module, bucket = export(EXPORT_RECORDS_KEY="rows")
    with pytest.raises(module.ExportError, match="'rows'"):
        module.handler(SCHEDULED, LambdaContext("run-shape"))
    assert objects(s3_endpoint, bucket) == []


def test_an_empty_records_key_stores_each_page_body_whole(
    export: Callable[..., tuple[ModuleType, str]], s3_endpoint: str
) -> None:
    module, bucket = export(EXPORT_RECORDS_KEY="")
    summary = module.handler(SCHEDULED, LambdaContext("run-pages"))
    body = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=summary["key"])["Body"].read()
    pages: list[dict[str, Any]] = [json.loads(line) for line in body.decode().splitlines()]
    assert [page["page"] for page in pages] == [1, 2, 3]


def test_the_run_date_is_the_scheduled_time_in_utc_or_today(
    export: Callable[..., tuple[ModuleType, str]],
) -> None:
    module, _ = export()
    day = module.run_date({"scheduled_time": "2025-01-31T23:30:00-05:00"})
    assert day.isoformat() == "2025-02-01"
    assert module.run_date({}) == module.dt.datetime.now(module.dt.UTC).date()
    assert module.object_key("exports/", day, "r-1") == "exports/dt=2025-02-01/r-1.jsonl"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"EXPORT_MAX_PAGES": "0"}, ValueError),
        ({"EXPORT_MAX_PAGES": "many"}, ValueError),
    ],
)
def test_bad_settings_fail_the_environment_at_import(
    export: Callable[..., tuple[ModuleType, str]], env: dict[str, str], problem: type[Exception]
) -> None:
    with pytest.raises(problem):
        export(**env)


def test_a_missing_export_bucket_is_named(
    export: Callable[..., tuple[ModuleType, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = export()
    monkeypatch.delenv("EXPORT_BUCKET")
    with pytest.raises(KeyError, match="EXPORT_BUCKET"):
        module.ExportSettings.from_env(module.os.environ)

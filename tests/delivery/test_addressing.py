"""Where okta_bridge.delivery writes (URLs, keys) and what it refuses before sending anything;
no network: ``HashingS3`` stands in for the HTTP client."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from okta_bridge.config import Settings
from okta_bridge.delivery.s3 import S3Delivery
from okta_bridge.delivery.s3_api import S3Api, error_code
from okta_bridge.errors import DeliveryError
from okta_bridge.secret.sigv4 import Credentials
from tests.delivery.conftest import CREDENTIALS, NOW, HashingS3, deadline

BASE = {"BRIDGE_SECRET_ID": "unused", "AWS_REGION": "eu-west-1"}
OBJECT = "okta-bridge/2026/11/30/r-1.json"


def settings(**extra: str) -> Settings:
    return Settings.from_env({**BASE, "BRIDGE_DELIVERY_BUCKET": "exports", **extra})


def api(env: Settings) -> S3Api:
    return S3Api(env, HashingS3(), credentials=lambda: CREDENTIALS, clock=lambda: NOW)  # type: ignore[arg-type]


def delivery(
    env: Settings, credentials: Callable[[], Credentials | None] = lambda: CREDENTIALS
) -> tuple[S3Delivery, HashingS3]:
    s3 = HashingS3()
    made = S3Delivery(env, s3, credentials=credentials, clock=lambda: NOW)  # type: ignore[arg-type]
    return made, s3


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({}, f"https://exports.s3.eu-west-1.amazonaws.com/{OBJECT}"),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, f"https://exports.s3-fips.eu-west-1.amazonaws.com/{OBJECT}"),
        ({"BRIDGE_DELIVERY_BUCKET": "my.exports"}, f"https://s3.eu-west-1.amazonaws.com/my.exports/{OBJECT}"),
        ({"AWS_REGION": "cn-north-1"}, f"https://exports.s3.cn-north-1.amazonaws.com.cn/{OBJECT}"),
        ({"AWS_ENDPOINT_URL_S3": "https://127.0.0.1:4566/"}, f"https://127.0.0.1:4566/exports/{OBJECT}"),
    ],
)  # fmt: skip
def test_object_urls(extra: dict[str, str], url: str) -> None:
    assert api(settings(**extra)).object_url(OBJECT) == url


@pytest.mark.parametrize(
    ("request_id", "expected"),
    [
        ("8f0c2a4e-1b2c-4d5e-9f00-0123456789ab", "8f0c2a4e-1b2c-4d5e-9f00-0123456789ab"),
        ("../../etc/passwd?x=1", "------etc-passwd-x-1"),
        ("a" * 100, "a" * 64),
        ("", "request"),
    ],
)
def test_keys_are_by_day_and_sanitised_request_id(request_id: str, expected: str) -> None:
    made, _ = delivery(settings(BRIDGE_DELIVERY_PREFIX="exports/bridge/"))
    delivered = made.put([b"{}"], request_id=request_id, deadline=deadline())
    match = re.fullmatch(r"exports/bridge/2026/11/30/(.+)-([0-9a-f]{16})\.json", delivered.key)
    assert match is not None
    assert match.group(1) == expected


def test_two_deliveries_of_one_request_get_different_keys() -> None:
    made, _ = delivery(settings())
    first = made.put([b"{}"], request_id="r", deadline=deadline())
    second = made.put([b"{}"], request_id="r", deadline=deadline())
    assert first.key != second.key


def test_every_request_carries_sse_kms_with_the_configured_key() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    made, s3 = delivery(settings(BRIDGE_DELIVERY_KMS_KEY=key))
    made.put([b"{}"], request_id="r", deadline=deadline())
    assert s3.actions == ["PutObject"]
    assert s3.headers[0]["x-amz-server-side-encryption"] == "aws:kms"
    assert s3.headers[0]["x-amz-server-side-encryption-aws-kms-key-id"] == key


def test_without_a_bucket_delivery_is_not_configured_and_nothing_is_sent() -> None:
    made, s3 = delivery(Settings.from_env(BASE))
    with pytest.raises(DeliveryError) as put:
        made.put([b"{}"], request_id="r", deadline=deadline())
    with pytest.raises(DeliveryError) as spill:
        made.spill(request_id="r", deadline=deadline(), threshold=10)
    assert put.value.code == spill.value.code == "DELIVERY_NOT_CONFIGURED"
    assert put.value.status == 400
    assert s3.actions == []


def test_without_credentials_or_region_delivery_is_denied_clearly() -> None:
    no_credentials, unsigned = delivery(settings(), credentials=lambda: None)
    with pytest.raises(DeliveryError) as caught:
        no_credentials.put([b"{}"], request_id="r", deadline=deadline())
    assert caught.value.code == "DELIVERY_DENIED"
    assert "credentials" in caught.value.message
    no_region, unlocated = delivery(
        Settings.from_env({"BRIDGE_SECRET_ID": "unused", "BRIDGE_DELIVERY_BUCKET": "exports"})
    )
    with pytest.raises(DeliveryError) as caught:
        no_region.put([b"{}"], request_id="r", deadline=deadline())
    assert caught.value.code == "DELIVERY_DENIED"
    assert "AWS_REGION" in caught.value.message
    assert unsigned.actions == unlocated.actions == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<Error><Code>AccessDenied</Code><Message>x</Message></Error>", "AccessDenied"),
        (b"<Error><Code>KMS.DisabledException</Code></Error>", "KMS.DisabledException"),
        (b'<Error><Code>Evil "code"\r\nX-Injected: 1 ' + b"A" * 150 + b"</Code></Error>",
         "EvilcodeX-Injected1" + "A" * 45),
        (b"<Error><Message>no code</Message></Error>", None),
        (b"not xml", None),
    ],
)  # fmt: skip
def test_s3_error_codes_are_bounded_and_sanitised(body: bytes, code: str | None) -> None:
    assert error_code(body) == code


def test_spill_is_used_in_order() -> None:
    made, _ = delivery(settings())
    spill = made.spill(request_id="r", deadline=deadline(), threshold=10)
    with pytest.raises(RuntimeError):
        spill.write(b"x")
    with pytest.raises(RuntimeError):
        spill.finish()
    assert spill.buffered() == b""
    spill.abort()  # nothing to abort: no error

"""okta_bridge.secret.sigv4 signs as botocore's SigV4Auth, S3SigV4Auth and S3SigV4QueryAuth do,
for the bridge's Secrets Manager, S3 and presigned requests."""

from __future__ import annotations

import datetime
import hashlib
import urllib.parse
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from okta_bridge.secret.sigv4 import presign, sign, sign_post

NOW = 1_795_550_000.0
HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "secretsmanager.GetSecretValue",
}


def botocore_headers(
    url: str, body: bytes, credentials: tuple[str, str, str | None], region: str
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(HEADERS))
    fixed = datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        SigV4Auth(Credentials(*credentials), "secretsmanager", region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


@pytest.mark.parametrize(
    ("url", "region", "credentials", "body"),
    [
        (
            "https://secretsmanager.us-east-1.amazonaws.com/",
            "us-east-1",
            ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
            b'{"SecretId": "prod/okta_api_creds"}',
        ),
        (
            "https://secretsmanager.eu-central-1.amazonaws.com/",
            "eu-central-1",
            ("ASIAEXAMPLE", "secret/with+chars", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMQ"),
            b'{"SecretId": "arn:aws:secretsmanager:eu-central-1:1:secret:x", "VersionStage": '
            b'"AWSPENDING"}',
        ),
        (
            "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/",
            "us-gov-west-1",
            ("AKID", "s", "token"),
            b"{}",
        ),
        (
            "https://127.0.0.1:45269",  # a custom endpoint with a port and no path
            "us-east-1",
            ("testing", "testing", None),
            b'{"SecretId": "local/okta_api_creds/basic"}',
        ),
        (
            "https://vpce-0abc.secretsmanager.cn-north-1.vpce.amazonaws.com.cn:443/",
            "cn-north-1",
            ("AKID", "s", "token"),
            b'{"SecretId": "s"}',
        ),
    ],
)
def test_signatures_equal_botocores(
    url: str, region: str, credentials: tuple[str, str, str | None], body: bytes
) -> None:
    ours = sign_post(
        url, HEADERS, body, credentials=credentials, region=region, service="secretsmanager",
        now=NOW,
    )  # fmt: skip
    assert ours == botocore_headers(url, body, credentials, region)


def test_the_headers_given_are_not_changed() -> None:
    headers = dict(HEADERS)
    sign_post("https://h/", headers, b"", credentials=("a", "b", "c"), region="r", service="s")
    assert headers == HEADERS


# -- S3: the object and multipart requests of okta_bridge.delivery, and the presigned GET --------

S3_OBJECT = (
    "https://okta-bridge-delivery.s3.eu-west-1.amazonaws.com/okta-bridge/2026/12/06/req-1-0a1b.json"
)
S3_CASES = [
    ("PUT", S3_OBJECT, b'{"items": []}', {"Content-Type": "application/json",
     "x-amz-server-side-encryption": "aws:kms"}),
    ("PUT", S3_OBJECT + "?partNumber=3&uploadId=VXBsb2FkIElE.Lg-_~%2B%2F%3D", b"x" * 1000, {}),
    ("POST", S3_OBJECT + "?uploads", b"", {"x-amz-server-side-encryption": "aws:kms",
     "x-amz-server-side-encryption-aws-kms-key-id":
     "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}),
    ("POST", S3_OBJECT + "?uploadId=abc", b"<CompleteMultipartUpload/>",
     {"Content-Type": "application/xml"}),
    ("DELETE", S3_OBJECT + "?uploadId=abc", b"", {}),
    ("PUT", "https://127.0.0.1:40123/okta-bridge-delivery-local/okta-bridge/a%20b.json", b"{}", {}),
    ("PUT", "https://s3-fips.us-gov-west-1.amazonaws.com/my.dotted.bucket/k.json", b"[]", {}),
]  # fmt: skip
S3_CREDENTIALS = [
    ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
    ("ASIAEXAMPLE", "secret/with+chars", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMQ=="),
]


def _fixed_time() -> mock._patch[mock.MagicMock]:
    fixed = datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC)
    return mock.patch("botocore.auth.get_current_datetime", return_value=fixed)


@pytest.mark.parametrize("credentials", S3_CREDENTIALS)
@pytest.mark.parametrize(("method", "url", "body", "headers"), S3_CASES)
def test_s3_requests_are_signed_as_botocore_signs_them(
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    credentials: tuple[str, str, str | None],
) -> None:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    with _fixed_time():
        S3SigV4Auth(Credentials(*credentials), "s3", "eu-west-1").add_auth(request)
    theirs = {name: str(value) for name, value in request.headers.items()}
    ours = sign(
        method, url, headers, payload_hash=hashlib.sha256(body).hexdigest(),
        credentials=credentials, region="eu-west-1", service="s3", now=NOW,
    )  # fmt: skip
    assert ours == theirs
    assert ours["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("credentials", S3_CREDENTIALS)
@pytest.mark.parametrize(
    "url",
    [
        S3_OBJECT,
        "https://127.0.0.1:40123/okta-bridge-delivery-local/okta-bridge/2026/12/06/r-1.json",
        "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/okta-bridge/k.json",
    ],
)
@pytest.mark.parametrize("expires", [1, 300, 3600])
def test_presigned_get_urls_equal_botocores(
    url: str, expires: int, credentials: tuple[str, str, str | None]
) -> None:
    request = AWSRequest(method="GET", url=url)
    with _fixed_time():
        S3SigV4QueryAuth(Credentials(*credentials), "s3", "eu-west-1", expires=expires).add_auth(
            request
        )
    ours = presign(
        "GET", url, expires=expires, credentials=credentials, region="eu-west-1", now=NOW
    )
    assert ours == request.url
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(ours).query)
    assert query["X-Amz-Expires"] == [str(expires)]
    assert ("X-Amz-Security-Token" in query) == (credentials[2] is not None)


def test_a_presigned_url_signed_at_another_time_differs() -> None:
    first = presign("GET", S3_OBJECT, expires=60, credentials=("a", "b", None), region="r", now=NOW)
    later = presign(
        "GET", S3_OBJECT, expires=60, credentials=("a", "b", None), region="r", now=NOW + 1
    )
    assert first != later
    assert first.split("X-Amz-Signature=")[0].startswith(S3_OBJECT + "?X-Amz-Algorithm=")

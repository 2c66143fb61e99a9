"""okta_bridge.secret.sigv4 signs as botocore's SigV4Auth does, for the bridge's requests."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from okta_bridge.secret.sigv4 import sign_post

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

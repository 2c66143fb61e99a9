from __future__ import annotations

from pathlib import Path

import pytest

from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError
from okta_bridge.request.policy import Route

BASE = {"BRIDGE_SECRET_ID": "prod/okta_api_creds"}


def settings(**extra: str) -> Settings:
    return Settings.from_env({**BASE, **extra})


def test_defaults_need_only_the_secret_id() -> None:
    s = settings()
    assert s.secret_id == "prod/okta_api_creds"
    assert s.scopes is None
    assert s.allowed_paths is None
    assert s.ca_bundle is None
    assert (s.connect_timeout, s.read_timeout, s.max_retries) == (3.0, 10.0, 2)
    assert s.proxy.https_proxy is None


def test_missing_secret_id_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({})
    assert err.value.variable == "BRIDGE_SECRET_ID"
    assert err.value.stage == "config"
    assert "BRIDGE_SECRET_ID" in err.value.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BRIDGE_TOKEN_URL", "http://okta.example/oauth2/v1/token"),
        ("BRIDGE_API_BASE_URL", "ftp://api.example/"),
        ("BRIDGE_API_BASE_URL", "https://user:pw@api.example/"),
        ("BRIDGE_AUTH_METHOD", "client_secret_jwt"),
        ("BRIDGE_CONNECT_TIMEOUT_SECONDS", "fast"),
        ("BRIDGE_READ_TIMEOUT_SECONDS", "0"),
        ("BRIDGE_MAX_RETRIES", "1.5"),
        ("BRIDGE_MAX_RESPONSE_BYTES", "7000000"),
        ("BRIDGE_LOG_LEVEL", "LOUD"),
        ("BRIDGE_ALLOWED_PATHS", "v1/items"),
        ("BRIDGE_ALLOWED_PATHS", "/v1/**/x"),
        ("BRIDGE_ALLOWED_PATHS", "/v1/../admin"),
        ("BRIDGE_CA_BUNDLE", "/nonexistent/ca.pem"),
        ("HTTPS_PROXY", "socks5://proxy:1080"),
    ],
)
def test_each_bad_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(**{name: value})
    assert err.value.variable == name
    assert err.value.code == "CONFIG_INVALID"


def test_ca_bundle_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError) as err:
        settings(BRIDGE_CA_BUNDLE=str(bad))
    assert "not a readable PEM" in err.value.message


def test_lists_and_numbers_are_parsed() -> None:
    s = settings(
        BRIDGE_SCOPES="api.access, api.read",
        BRIDGE_ALLOWED_PATHS="/v1/items, /v1/items/*,/v1/reports/**",
        BRIDGE_DEADLINE_MARGIN_MS="250",
        BRIDGE_MAX_RETRIES="4",
        BRIDGE_AUTH_METHOD="private_key_jwt",
        HTTPS_PROXY="proxy.corp:3128",
        NO_PROXY=".internal,localhost",
        BRIDGE_LOG_LEVEL="debug",
    )
    assert s.scopes == ("api.access", "api.read")
    assert s.allowed_paths == ("/v1/items", "/v1/items/*", "/v1/reports/**")
    assert s.deadline_margin == 0.25
    assert s.max_retries == 4
    assert s.auth_method == "private_key_jwt"
    assert s.proxy.https_proxy == "http://proxy.corp:3128"
    assert s.proxy.no_proxy == ".internal,localhost"
    assert s.log_level == "DEBUG"


def test_routes_extend_the_allowed_paths_with_methods() -> None:
    s = settings(
        BRIDGE_ALLOWED_ROUTES="GET /v1/items/**, POST /v1/search,post /graphql, "
        "PUT /v1/orders/* idempotency-key",
        BRIDGE_ALLOWED_PATHS="/v1/data",
    )
    assert s.routes() == (
        Route("GET", "/v1/items/**"),
        Route("POST", "/v1/search"),
        Route("POST", "/graphql"),
        Route("PUT", "/v1/orders/*", idempotency_key=True),
        Route("GET", "/v1/data"),
    )
    assert settings().routes() is None
    assert settings(BRIDGE_ALLOWED_PATHS="/v1/a").routes() == (Route("GET", "/v1/a"),)


@pytest.mark.parametrize(
    "value",
    [
        "/v1/items",  # no method
        "FETCH /v1/items",
        "HEAD /v1/items",
        "POST v1/search",
        "POST /v1/../admin",
        "POST /v1/**/x",
        "POST /v1/search retry",
        "GET /v1/items idempotency-key",
        "POST /v1/search idempotency-key extra",
    ],
)
def test_a_bad_route_is_named(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(BRIDGE_ALLOWED_ROUTES=value)
    assert err.value.variable == "BRIDGE_ALLOWED_ROUTES"


def test_delivery_is_off_without_a_bucket_and_bounded_with_one() -> None:
    assert not settings().delivery.enabled
    s = settings(
        BRIDGE_DELIVERY_BUCKET="corp-bridge-delivery",
        BRIDGE_DELIVERY_KMS_KEY="arn:aws:kms:eu-west-1:123456789012:key/abc-123",
        BRIDGE_DELIVERY_URL_SECONDS="120",
        AWS_ENDPOINT_URL_S3="https://127.0.0.1:4566",
    )
    assert s.delivery.enabled
    assert (s.delivery.bucket, s.delivery.prefix) == ("corp-bridge-delivery", "okta-bridge/")
    assert s.delivery.url_seconds == 120
    assert s.delivery.inline_limit == 6_000_000
    assert s.delivery.endpoint == "https://127.0.0.1:4566"
    # Another S3 user's plain-http endpoint is not the bridge's business without a bucket.
    assert settings(AWS_ENDPOINT_URL_S3="http://127.0.0.1:5000").delivery.endpoint is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BRIDGE_DELIVERY_BUCKET", "Bad_Bucket"),
        ("BRIDGE_DELIVERY_BUCKET", "a..b"),
        ("BRIDGE_DELIVERY_PREFIX", "/abs/"),
        ("BRIDGE_DELIVERY_PREFIX", "no-slash"),
        ("BRIDGE_DELIVERY_PREFIX", "a/../b/"),
        ("BRIDGE_DELIVERY_PREFIX", "a b/"),
        ("BRIDGE_DELIVERY_URL_SECONDS", "86400"),
        ("BRIDGE_INLINE_LIMIT_BYTES", "6291456"),
        ("BRIDGE_DELIVERY_KMS_KEY", "key id with spaces"),
        ("BRIDGE_NEXT_LINK", "next"),
        ("BRIDGE_MAX_PAGES", "0"),
        ("BRIDGE_MAX_REQUEST_BYTES", "6000000"),
    ],
)
def test_each_bad_delivery_or_page_variable_is_named(name: str, value: str) -> None:
    env = {"BRIDGE_DELIVERY_BUCKET": "corp-bridge-delivery", name: value}
    with pytest.raises(ConfigError) as err:
        settings(**env)
    assert err.value.variable == name


def test_an_http_s3_endpoint_is_refused_for_the_bridge_bucket() -> None:
    with pytest.raises(ConfigError) as err:
        settings(BRIDGE_DELIVERY_BUCKET="b-1-2", AWS_ENDPOINT_URL_S3="http://127.0.0.1:5000")
    assert err.value.variable == "AWS_ENDPOINT_URL_S3"

from __future__ import annotations

from pathlib import Path

import pytest

from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError

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

"""The secret sources that keep boto3 off the hot path: signed HTTPS and the secrets extension."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from okta_bridge.config import Settings
from okta_bridge.errors import SecretError
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.sources import ExtensionSource, SignedHttpSource, source_for
from okta_bridge.secret.store import PENDING, BotoSecretSource
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.extension import SecretsExtension
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
SESSION_TOKEN = "local-session-token"


@pytest.fixture
def lambda_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Lambda's environment for a fresh secret: credentials included, as Lambda sets them."""
    name = stack.store_secret("basic", "sources/basic")
    env = stack.environment(name)
    for variable in LocalStack.UNSET_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return env


@pytest.fixture
def extension(stack: LocalStack) -> Iterator[SecretsExtension]:
    client = stack.secrets_manager.client(stack.ca.ca_pem_path)
    with SecretsExtension(client, session_token=SESSION_TOKEN) as running:
        yield running


def invoke(bridge: Bridge) -> dict[str, Any]:
    from okta_bridge import handler  # noqa: PLC0415

    handler.set_bridge(bridge)
    return handler.lambda_handler({}, LambdaContext())


def test_the_default_source_signs_its_own_request(
    stack: LocalStack, lambda_env: dict[str, str]
) -> None:
    settings = Settings.from_env(lambda_env)
    bridge = Bridge(settings)
    assert isinstance(bridge.secrets._source, SignedHttpSource)
    stack.reset_counts()
    assert invoke(bridge)["statusCode"] == 200
    assert stack.secrets_manager.counts["GetSecretValue"] == 1


def test_signed_headers_carry_sigv4_and_the_session_token(lambda_env: dict[str, str]) -> None:
    settings = Settings.from_env(lambda_env)
    source = SignedHttpSource(
        settings, HttpClient(settings), credentials=lambda: ("AKIDEXAMPLE", "secret", "session")
    )
    headers = source._signed_headers(b'{"SecretId": "x"}')
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/secretsmanager/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "session"
    assert headers["X-Amz-Target"] == "secretsmanager.GetSecretValue"
    assert headers["X-Amz-Date"].endswith("Z")


def test_a_cold_start_on_the_default_source_never_imports_boto3(
    stack: LocalStack, lambda_env: dict[str, str]
) -> None:
    code = (
        "import json, sys\n"
        "from okta_bridge import handler\n"
        "class C:\n"
        "    aws_request_id = 'r1'\n"
        "    def get_remaining_time_in_millis(self): return 20000\n"
        "answer = handler.lambda_handler({}, C())\n"
        "print(json.dumps([answer['statusCode'], 'boto3' in sys.modules,"
        " 'botocore' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(lambda_env)
    env["BRIDGE_LOG_LEVEL"] = "ERROR"
    done = subprocess.run(  # noqa: S603 - our own code
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, boto3_loaded, signer_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert (status, boto3_loaded, signer_loaded) == (200, False, False)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, SignedHttpSource),
        ({"BRIDGE_SECRET_SOURCE": "sdk"}, BotoSecretSource),
        ({"AWS_CA_BUNDLE": "/elsewhere/ca.pem"}, BotoSecretSource),
        ({"BRIDGE_SECRET_SOURCE": "extension"}, ExtensionSource),
    ],
)
def test_the_source_is_chosen_from_the_configuration(
    lambda_env: dict[str, str], change: dict[str, str], expected: type
) -> None:
    settings = Settings.from_env({**lambda_env, **change})
    assert isinstance(source_for(settings, HttpClient(settings)), expected)


def test_without_credentials_in_the_environment_boto3_is_used(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    settings = Settings.from_env(lambda_env)
    assert isinstance(source_for(settings, HttpClient(settings)), BotoSecretSource)


def test_the_signed_source_reads_a_stage_and_names_a_missing_one(
    stack: LocalStack, lambda_env: dict[str, str]
) -> None:
    settings = Settings.from_env(lambda_env)
    source = SignedHttpSource(settings, HttpClient(settings))
    value = source.fetch(settings.secret_id, Deadline(10))
    assert json.loads(value.text)["client_id"] == "bridge-basic"
    with pytest.raises(SecretError) as caught:
        source.fetch(settings.secret_id, Deadline(10), stage=PENDING)
    assert caught.value.code == "SECRET_NOT_FOUND"


def extension_bridge(
    lambda_env: dict[str, str], extension: SecretsExtension, **overrides: Any
) -> Bridge:
    settings = Settings.from_env(
        {
            **lambda_env,
            "BRIDGE_SECRET_SOURCE": "extension",
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port),
        }
    )
    settings = settings._replace(**overrides)
    http = HttpClient(settings)
    direct = SignedHttpSource(settings, http)
    source = ExtensionSource(
        settings, direct, session_token=lambda: SESSION_TOKEN, host="127.0.0.1"
    )
    return Bridge(settings, source=source, http=http)


def test_the_extension_serves_reads_from_its_cache(
    stack: LocalStack, lambda_env: dict[str, str], extension: SecretsExtension
) -> None:
    stack.reset_counts()
    assert invoke(extension_bridge(lambda_env, extension))["statusCode"] == 200
    assert invoke(extension_bridge(lambda_env, extension))["statusCode"] == 200  # a new sandbox
    assert extension.counts["get"] == 2
    assert extension.counts["miss"] == 1
    assert stack.secrets_manager.counts["GetSecretValue"] == 1  # the extension's one call


def test_a_wrong_session_token_is_refused_by_the_extension(
    lambda_env: dict[str, str], extension: SecretsExtension
) -> None:
    settings = Settings.from_env(
        {**lambda_env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port)}
    )
    source = ExtensionSource(
        settings,
        SignedHttpSource(settings, HttpClient(settings)),
        session_token=lambda: "wrong",
        host="127.0.0.1",
    )
    with pytest.raises(SecretError) as caught:
        source.fetch(settings.secret_id, Deadline(10))
    assert caught.value.code == "SECRET_ERROR"
    assert extension.counts["refused"] == 1


def test_without_the_extension_the_bridge_reads_directly(
    stack: LocalStack, lambda_env: dict[str, str], extension: SecretsExtension
) -> None:
    port = extension.port
    extension.stop()  # the layer is not there
    settings = Settings.from_env(
        {
            **lambda_env,
            "BRIDGE_SECRET_SOURCE": "extension",
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(port),
        }
    )
    stack.reset_counts()
    assert invoke(Bridge(settings))["statusCode"] == 200
    assert stack.secrets_manager.counts["GetSecretValue"] == 1


def test_a_rotated_secret_is_seen_at_once_despite_the_extension_cache(
    stack: LocalStack, lambda_env: dict[str, str], extension: SecretsExtension
) -> None:
    bridge = extension_bridge(lambda_env, extension)
    assert invoke(bridge)["statusCode"] == 200
    stack.rotate_client_secret("basic", lambda_env["BRIDGE_SECRET_ID"])  # Okta and the secret
    bridge.tokens.clear()  # the token is due: Okta refuses the old secret
    stack.reset_counts()
    gets = extension.counts["get"]
    assert invoke(bridge)["statusCode"] == 200
    # The extension still holds the old value; the forced re-read went to Secrets Manager.
    assert extension.counts["get"] == gets
    assert stack.secrets_manager.counts["GetSecretValue"] >= 1

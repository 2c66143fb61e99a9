"""TLS refusals, Secrets Manager failures, configuration through the real handler entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from okta_bridge import handler
from okta_bridge_dev.emulators.pki import LocalCA, server_context
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import LambdaContext, make_harness


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("foreign"), common_name="not trusted CA")


def api_with(stack: LocalStack, ca: LocalCA, **issue: object) -> SampleApi:
    cert = ca.issue("api", **issue)  # type: ignore[arg-type]
    return SampleApi(
        server_context(cert),
        issuer=stack.okta.issuer,
        jwks_url=stack.okta.jwks_url,
        ca_bundle=stack.ca.ca_pem_path,
    ).start()


@pytest.fixture
def untrusted_api(stack: LocalStack, foreign_ca: LocalCA) -> Iterator[SampleApi]:
    api = api_with(stack, foreign_ca)
    yield api
    api.stop()


@pytest.fixture
def mismatched_api(stack: LocalStack) -> Iterator[SampleApi]:
    api = api_with(stack, stack.ca, dns_names=("other.example",), ip_addresses=())
    yield api
    api.stop()


@pytest.fixture
def expired_api(stack: LocalStack) -> Iterator[SampleApi]:
    api = api_with(stack, stack.ca, expired=True)
    yield api
    api.stop()


@pytest.mark.parametrize(
    ("fixture", "code"),
    [
        ("untrusted_api", "TLS_UNTRUSTED"),
        ("mismatched_api", "TLS_HOSTNAME_MISMATCH"),
        ("expired_api", "TLS_CERT_EXPIRED"),
    ],
)
def test_api_tls_faults_are_refused_with_a_tls_error(
    stack: LocalStack, request: pytest.FixtureRequest, fixture: str, code: str
) -> None:
    api: SampleApi = request.getfixturevalue(fixture)
    harness = make_harness(stack, api_base_url=f"{api.base_url}/v1/data")
    answer = harness.invoke({})
    error = answer["body"]["error"]
    assert (error["code"], error["stage"]) == (code, "tls")
    assert answer["statusCode"] == 502
    assert sum(api.counts.values()) == 0  # nothing was sent over the bad connection
    assert harness.sleeps == []  # TLS faults are not retried


def test_okta_with_an_untrusted_certificate_is_refused(stack: LocalStack) -> None:
    harness = make_harness(stack, ca_bundle=None)  # the local CA is not in the system store
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "TLS_UNTRUSTED"
    assert "BRIDGE_CA_BUNDLE" in answer["body"]["error"]["message"]


def test_closed_port_is_unreachable(stack: LocalStack) -> None:
    harness = make_harness(stack, max_retries=1, api_base_url="https://127.0.0.1:9/v1/data")
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "UPSTREAM_UNREACHABLE"
    assert answer["body"]["error"]["stage"] == "network"
    assert len(harness.sleeps) == 1


@pytest.mark.parametrize(
    ("aws_code", "code"),
    [
        ("AccessDeniedException", "SECRET_ACCESS_DENIED"),
        ("DecryptionFailure", "SECRET_DECRYPT_FAILED"),
        ("ResourceNotFoundException", "SECRET_NOT_FOUND"),
    ],
)
def test_secrets_manager_errors(stack: LocalStack, aws_code: str, code: str) -> None:
    harness = make_harness(stack)
    stack.secrets_manager.inject_error("GetSecretValue", aws_code, "injected", times=1)
    answer = harness.invoke({})
    error = answer["body"]["error"]
    assert (error["code"], error["stage"]) == (code, "secret")
    assert answer["statusCode"] == 500


def test_secrets_manager_throttling_is_retried_by_botocore(stack: LocalStack) -> None:
    harness = make_harness(stack)
    stack.secrets_manager.inject_error("GetSecretValue", "ThrottlingException", "slow", times=1)
    assert harness.invoke({})["statusCode"] == 200


def test_missing_secret_through_the_real_entry(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in stack.environment("does/not/exist").items():
        monkeypatch.setenv(key, value)
    handler.set_bridge(None)
    answer = handler.lambda_handler({}, LambdaContext())
    assert answer["body"]["error"]["code"] == "SECRET_NOT_FOUND"
    assert "does/not/exist" in answer["body"]["error"]["message"]


def test_real_entry_reads_the_environment_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = stack.store_secret("basic")
    for key, value in stack.environment(name).items():
        monkeypatch.setenv(key, value)
    handler.set_bridge(None)
    stack.reset_counts()
    first = handler.lambda_handler({}, LambdaContext())
    second = handler.lambda_handler({}, LambdaContext())
    assert first["statusCode"] == second["statusCode"] == 200
    assert handler.get_bridge() is handler.get_bridge()
    assert stack.secrets_manager.counts["GetSecretValue"] == 1
    assert stack.okta.counts["token"] == 1


def test_bad_configuration_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRIDGE_SECRET_ID", raising=False)
    handler.set_bridge(None)
    answer = handler.lambda_handler({}, LambdaContext())
    error = answer["body"]["error"]
    assert answer["statusCode"] == 500
    assert (error["code"], error["stage"]) == ("CONFIG_INVALID", "config")
    assert "BRIDGE_SECRET_ID" in error["message"]


def test_an_unexpected_bug_is_an_internal_error_without_trace(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = make_harness(stack)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("deep bug")

    monkeypatch.setattr(harness.bridge, "serve", broken)
    answer = harness.invoke({})
    assert answer["statusCode"] == 500
    assert answer["body"]["error"]["code"] == "INTERNAL_ERROR"
    assert "deep bug" not in str(answer)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_ca_bundle_path_is_checked_at_first_invocation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_SECRET_ID", "x")
    monkeypatch.setenv("BRIDGE_CA_BUNDLE", str(tmp_path / "missing.pem"))
    handler.set_bridge(None)
    answer = handler.lambda_handler({}, LambdaContext())
    assert "BRIDGE_CA_BUNDLE" in answer["body"]["error"]["message"]

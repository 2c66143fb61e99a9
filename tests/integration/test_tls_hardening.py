"""Certificate pinning and mutual TLS towards the API host, over real TLS on 127.0.0.1."""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError
from okta_bridge.transport.tls import parse_pins, spki_sha256
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import make_harness


def pin_of(cert_path: Path) -> bytes:
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text())
    return spki_sha256(der)


def b64(pin: bytes) -> str:
    return base64.b64encode(pin).decode()


def test_the_api_key_pinned_passes(stack: LocalStack) -> None:
    harness = make_harness(stack, api_pins=frozenset({pin_of(stack.server_cert.cert_path)}))
    assert harness.invoke({})["statusCode"] == 200


def test_two_pins_let_a_certificate_be_replaced(stack: LocalStack) -> None:
    next_key = bytes(32)  # the pin of a key not yet deployed
    pins = frozenset({pin_of(stack.server_cert.cert_path), next_key})
    assert make_harness(stack, api_pins=pins).invoke({})["statusCode"] == 200


def test_a_valid_but_unpinned_certificate_is_refused_before_sending(stack: LocalStack) -> None:
    harness = make_harness(stack, api_pins=frozenset({bytes(32), b"\x01" * 32}))
    answer = harness.invoke({})
    error = answer["body"]["error"]
    assert (error["code"], error["stage"]) == ("TLS_PIN_MISMATCH", "tls")
    assert sum(stack.api.counts.values()) == 0  # no request, so no token, reached the API
    assert stack.okta.counts["token"] == 1  # Okta itself is not pinned
    assert harness.sleeps == []


def test_pins_are_parsed_and_bad_ones_named() -> None:
    pin = b"\x07" * 32
    assert parse_pins(f"{b64(pin)}, sha256/{b64(pin)}") == {pin}
    env = {"BRIDGE_SECRET_ID": "s"}
    assert Settings.from_env({**env, "BRIDGE_API_PINS": b64(pin)}).api_pins == {pin}
    for bad in ("not-base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({**env, "BRIDGE_API_PINS": bad})
        assert err.value.variable == "BRIDGE_API_PINS"


@pytest.fixture
def mtls_api(stack: LocalStack) -> Iterator[SampleApi]:
    context = server_context(stack.server_cert, client_ca=stack.ca.ca_pem_path)
    # TLS 1.2 refuses a missing client certificate inside the handshake; TLS 1.3 does it after
    # the client's Finished, so the refusal would race with the request (alert or EOF).
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    api = SampleApi(
        context,
        issuer=stack.okta.issuer,
        jwks_url=stack.okta.jwks_url,
        ca_bundle=stack.ca.ca_pem_path,
    ).start()
    yield api
    api.stop()


def secret_with_client_certificate(stack: LocalStack, name: str, api: SampleApi) -> None:
    client = stack.ca.issue_client("bridge-client")
    value = stack.secret_value("basic") | {
        "api_endpoint": f"{api.base_url}/v1/data",
        "client_certificate": client.cert_path.read_text(),
        "client_key": client.key_path.read_text(),
    }
    stack.secrets_manager.put_secret(name, value)


def test_mutual_tls_presents_the_client_certificate(stack: LocalStack, mtls_api: SampleApi) -> None:
    harness = make_harness(stack, secret_name="mtls/ok")
    secret_with_client_certificate(stack, "mtls/ok", mtls_api)
    before = set(Path(tempfile.gettempdir()).glob("okta-bridge-*"))
    answer = harness.invoke({})
    assert answer["statusCode"] == 200, answer
    assert sum(mtls_api.counts.values()) == 1
    assert set(Path(tempfile.gettempdir()).glob("okta-bridge-*")) == before  # nothing left


def test_mutual_tls_without_a_client_certificate_is_a_tls_handshake_failure(
    stack: LocalStack, mtls_api: SampleApi
) -> None:
    harness = make_harness(stack, max_retries=0, api_base_url=f"{mtls_api.base_url}/v1/data")
    answer = harness.invoke({})
    error = answer["body"]["error"]
    assert (answer["statusCode"], error["code"], error["stage"]) == (
        502,
        "TLS_HANDSHAKE_FAILED",
        "tls",
    )
    assert sum(mtls_api.counts.values()) == 0


def test_a_client_key_that_does_not_match_is_a_secret_error(
    stack: LocalStack, mtls_api: SampleApi
) -> None:
    harness = make_harness(stack, secret_name="mtls/bad")
    other = stack.ca.issue_client("other-client")
    value = stack.secret_value("basic") | {
        "api_endpoint": f"{mtls_api.base_url}/v1/data",
        "client_certificate": stack.ca.issue_client("bridge-client").cert_path.read_text(),
        "client_key": other.key_path.read_text(),
    }
    stack.secrets_manager.put_secret("mtls/bad", value)
    answer = harness.invoke({})
    error = answer["body"]["error"]
    assert (error["code"], error["stage"]) == ("SECRET_INVALID", "secret")
    assert "BEGIN" not in error["message"]

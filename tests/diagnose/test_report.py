"""Diagnose against the local stack: every hop ok, then one fault per hop and its report."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from okta_bridge.errors import CATALOG
from okta_bridge.ops.report import ORDER
from okta_bridge.transport.tls import spki_sha256
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.pki import LocalCA, server_context
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import API_SCOPE, LocalStack
from tests.diagnose.conftest import (
    Diagnose,
    assert_failed,
    assert_ok,
    assert_skipped,
    free_port,
    hop,
)

NETWORK = ("dns", "tcp", "tls")
TOKEN_PATH = "/oauth2/default/v1/token"


def test_every_hop_is_ok_against_the_local_stack(stack: LocalStack, run_diagnose: Diagnose) -> None:
    report = run_diagnose()

    assert report["ok"] is True, report["hops"]
    assert report["action"] == "diagnose"
    assert report["request_id"] == "diag-test"
    assert report["first_failure"] is None
    assert [(h["target"], h["hop"]) for h in report["hops"]] == list(ORDER)
    assert all(h["status"] == "ok" for h in report["hops"])
    assert all(isinstance(h["ms"], float) for h in report["hops"])

    config = hop(report, "config", "config")["facts"]
    assert config["variables"]["BRIDGE_SECRET_ID"] == "diagnose/basic"
    assert config["variables"]["BRIDGE_CA_BUNDLE"] == str(stack.ca.ca_pem_path)
    assert "client_secret" in config["secret_keys"]
    secret = hop(report, "secret", "secret")["facts"]
    assert secret["auth_method"] == "client_secret_basic"
    assert secret["grant_type"] == "client_credentials"
    assert secret["version_id"]
    assert set(secret["keys"]) >= {"client_id", "client_secret", "token_url", "api_endpoint"}

    for target, server in (("token_host", stack.okta), ("api_host", stack.api)):
        dns = hop(report, target, "dns")["facts"]
        assert dns["addresses"] == ["127.0.0.1"]
        assert dns["private"] == {"127.0.0.1": True}
        assert dns["via_proxy"] is False
        assert dns["port"] == server.port
        tcp = hop(report, target, "tcp")["facts"]
        assert tcp["address"] == "127.0.0.1"
        assert tcp["connect_ms"] >= 0
        tls = hop(report, target, "tls")["facts"]
        assert tls["protocol"] in ("TLSv1.2", "TLSv1.3")
        assert tls["cipher"]
        assert "CN=server" in tls["subject"]
        assert "CN=okta-bridge local CA" in tls["issuer"]
        assert "CN=okta-bridge local CA" in tls["anchor"]
        assert tls["anchor_source"] == "BRIDGE_CA_BUNDLE"
        # Python 3.13 reports the verified chain; 3.11/3.12 match the issuer among the CAs.
        assert tls["anchor_method"] == (
            "verified_chain" if sys.version_info >= (3, 13) else "issuer_match"
        )
        assert tls["hostname_match"] is True
        assert "IP:127.0.0.1" in tls["sans"]
        assert 0 < tls["days_to_expiry"] <= 7

    token = hop(report, "token_host", "token")["facts"]
    assert token["scopes"] == [API_SCOPE]
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == stack.okta.token_lifetime
    assert token["status"] == 200
    assert set(token["rate_limit"]) >= {"limit", "remaining", "reset"}
    assert isinstance(token["rate_limit"]["remaining"], int)

    api = hop(report, "api_host", "api")["facts"]
    assert api["status"] == 200
    assert api["content_type"].startswith("application/json")
    assert api["bytes"] > 0
    assert api["latency_ms"] >= 0
    assert stack.okta.counts["token"] == 1
    assert stack.api.counts["data"] == 1


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("foreign"), common_name="not trusted CA")


def test_wrong_ca_bundle_fails_tls_as_untrusted(
    run_diagnose: Diagnose, foreign_ca: LocalCA
) -> None:
    report = run_diagnose(ca_bundle=foreign_ca.ca_pem_path)

    failed = assert_failed(report, "token_host", "tls", "TLS_UNTRUSTED")
    assert failed["stage"] == "tls"
    assert failed["hint"] == CATALOG["TLS_UNTRUSTED"].hint
    assert any("not trusted CA" in ca for ca in failed["facts"]["ca_bundle_cas"])
    assert failed["facts"]["verify_message"]
    assert_ok(report, "token_host", ("dns", "tcp"))
    assert_skipped(report, "token_host", ("token",), "TLS_UNTRUSTED")
    assert hop(report, "api_host", "tls")["code"] == "TLS_UNTRUSTED"
    assert_skipped(report, "api_host", ("api",), "TLS_UNTRUSTED")


def _server_with(stack: LocalStack, ca: LocalCA, name: str, **issue: object) -> SampleApi:
    cert = ca.issue(name, **issue)  # type: ignore[arg-type]
    return SampleApi(
        server_context(cert),
        issuer=stack.okta.issuer,
        jwks_url=stack.okta.jwks_url,
        ca_bundle=stack.ca.ca_pem_path,
    ).start()


@pytest.fixture
def mismatched_host(stack: LocalStack) -> Iterator[SampleApi]:
    # A certificate from the trusted CA for another name: 127.0.0.1 is not among its SANs.
    server = _server_with(
        stack, stack.ca, "mismatch", dns_names=("other.example",), ip_addresses=()
    )
    yield server
    server.stop()


@pytest.fixture
def expired_host(stack: LocalStack) -> Iterator[SampleApi]:
    server = _server_with(stack, stack.ca, "expired", expired=True)
    yield server
    server.stop()


def test_hostname_mismatch_at_the_token_host(
    run_diagnose: Diagnose, mismatched_host: SampleApi
) -> None:
    report = run_diagnose(token_url=f"{mismatched_host.base_url}{TOKEN_PATH}")

    failed = assert_failed(report, "token_host", "tls", "TLS_HOSTNAME_MISMATCH")
    assert failed["facts"]["server_hostname"] == "127.0.0.1"
    assert_skipped(report, "token_host", ("token",), "TLS_HOSTNAME_MISMATCH")
    # The API host is still checked, but there is no token to call it with.
    assert_ok(report, "api_host", NETWORK)
    assert_skipped(report, "api_host", ("api",), "no access token")


def test_expired_certificate_at_the_api_host(
    run_diagnose: Diagnose, expired_host: SampleApi
) -> None:
    report = run_diagnose(api_base_url=f"{expired_host.base_url}/v1/data")

    assert_ok(report, "token_host", (*NETWORK, "token"))
    assert_failed(report, "api_host", "tls", "TLS_CERT_EXPIRED")
    assert_skipped(report, "api_host", ("api",), "TLS_CERT_EXPIRED")


def test_closed_port_is_tcp_refused(run_diagnose: Diagnose) -> None:
    port = free_port()
    report = run_diagnose(token_url=f"https://127.0.0.1:{port}{TOKEN_PATH}")

    failed = assert_failed(report, "token_host", "tcp", "TCP_REFUSED")
    assert failed["stage"] == "network"
    assert failed["facts"]["port"] == port
    assert hop(report, "token_host", "dns")["facts"]["addresses"] == ["127.0.0.1"]
    assert_skipped(report, "token_host", ("tls", "token"), "TCP_REFUSED")
    assert_ok(report, "api_host", NETWORK)
    assert_skipped(report, "api_host", ("api",), "TCP_REFUSED")


def test_unresolvable_name_is_dns_unresolved(run_diagnose: Diagnose) -> None:
    report = run_diagnose(token_url=f"https://nonexistent.invalid{TOKEN_PATH}")

    failed = assert_failed(report, "token_host", "dns", "DNS_UNRESOLVED")
    assert failed["facts"]["host"] == "nonexistent.invalid"
    assert failed["facts"]["port"] == 443
    assert "nonexistent.invalid" in failed["message"]
    assert_skipped(report, "token_host", ("tcp", "tls", "token"), "DNS_UNRESOLVED")
    assert_skipped(report, "api_host", ("api",), "DNS_UNRESOLVED")


def test_wrong_client_secret_is_token_rejected(stack: LocalStack, run_diagnose: Diagnose) -> None:
    secret = {**stack.secret_value("basic"), "client_secret": "not-the-right-secret-" * 2}
    report = run_diagnose(secret=secret, secret_name="diagnose/wrong-secret")

    failed = assert_failed(report, "token_host", "token", "TOKEN_REJECTED")
    assert failed["stage"] == "token"
    assert failed["facts"]["okta_error"] == "invalid_client"
    assert failed["facts"]["okta_error_description"]
    assert failed["facts"]["status"] == 401
    assert "remaining" in failed["facts"]["rate_limit"]
    assert_ok(report, "token_host", NETWORK)
    assert_ok(report, "api_host", NETWORK)
    assert_skipped(report, "api_host", ("api",), "TOKEN_REJECTED")


def test_scope_not_granted_is_token_scope_invalid(run_diagnose: Diagnose) -> None:
    report = run_diagnose(scopes=("reports.read",))

    failed = assert_failed(report, "token_host", "token", "TOKEN_SCOPE_INVALID")
    assert failed["facts"]["okta_error"] == "invalid_scope"
    assert failed["facts"]["requested_scopes"] == ["reports.read"]
    assert "reports.read" in failed["facts"]["okta_error_description"]
    assert_skipped(report, "api_host", ("api",), "TOKEN_SCOPE_INVALID")


def test_api_answering_500_is_upstream_error(stack: LocalStack, run_diagnose: Diagnose) -> None:
    stack.api.inject(Fault(match="/v1/data", status=500, times=5))
    report = run_diagnose()

    failed = assert_failed(report, "api_host", "api", "UPSTREAM_ERROR")
    assert failed["stage"] == "upstream"
    assert failed["facts"]["status"] == 500
    assert_ok(report, "token_host", (*NETWORK, "token"))
    assert stack.api.counts["data"] == 1  # diagnose does not retry


def test_missing_secret_skips_every_later_hop(run_diagnose: Diagnose) -> None:
    report = run_diagnose(secret_name="diagnose/never-stored", store=False)

    failed = assert_failed(report, "secret", "secret", "SECRET_NOT_FOUND")
    assert failed["facts"]["secret_id"] == "diagnose/never-stored"
    assert hop(report, "config", "config")["status"] == "ok"
    later = report["hops"][2:]
    assert len(later) == len(ORDER) - 2
    assert all(h["status"] == "skipped" and "SECRET_NOT_FOUND" in h["reason"] for h in later)


@pytest.mark.parametrize(
    ("aws_code", "message", "code"),
    [
        (
            "AccessDeniedException",
            "not authorized to perform GetSecretValue",
            "SECRET_ACCESS_DENIED",
        ),
        ("DecryptionFailure", "KMS could not decrypt", "SECRET_DECRYPT_FAILED"),
        ("AccessDeniedException", "Access to KMS is not allowed", "SECRET_DECRYPT_FAILED"),
    ],
)
def test_secret_permission_and_kms_errors_are_told_apart(
    stack: LocalStack, run_diagnose: Diagnose, aws_code: str, message: str, code: str
) -> None:
    stack.secrets_manager.inject_error("GetSecretValue", aws_code, message)
    report = run_diagnose()

    assert_failed(report, "secret", "secret", code)
    assert_skipped(report, "token_host", (*NETWORK, "token"), code)


def test_invalid_secret_names_its_keys_but_shows_no_value(
    stack: LocalStack, run_diagnose: Diagnose
) -> None:
    secret = stack.secret_value("basic")
    del secret["client_secret"]
    secret["a pasted value, not a key name: x7Qp"] = "whatever"
    report = run_diagnose(secret=secret, secret_name="diagnose/invalid")

    failed = assert_failed(report, "secret", "secret", "SECRET_INVALID")
    assert "client_secret" not in failed["facts"]["keys"]
    assert "client_id" in failed["facts"]["keys"]
    assert "(1 more, not shown)" in failed["facts"]["keys"]
    assert "x7Qp" not in str(report)


def test_api_pins_are_checked_on_the_api_host(stack: LocalStack, run_diagnose: Diagnose) -> None:
    der = _der(stack.server_cert.cert_path)
    right = spki_sha256(der)
    report = run_diagnose(api_pins=frozenset({right}))
    assert report["ok"] is True
    assert hop(report, "api_host", "tls")["facts"]["pinned"] is True
    assert "pinned" not in hop(report, "token_host", "tls")["facts"]

    wrong = base64.b64decode(base64.b64encode(bytes(32)))
    report = run_diagnose(api_pins=frozenset({wrong}))
    failed = assert_failed(report, "api_host", "tls", "TLS_PIN_MISMATCH")
    assert failed["facts"]["pinned"] is False
    assert hop(report, "config", "config")["facts"]["variables"]["BRIDGE_API_PINS"] == "1 pin(s)"
    assert_skipped(report, "api_host", ("api",), "TLS_PIN_MISMATCH")


def _der(pem_path: Path) -> bytes:
    import ssl  # noqa: PLC0415

    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


def test_an_exhausted_deadline_fails_fast_without_hanging(run_diagnose: Diagnose) -> None:
    report = run_diagnose(deadline=0.0)

    assert report["ok"] is False
    assert report["first_failure"]["hop"] == "secret"
    assert report["ms"] < 5_000


def test_the_delivery_hop_writes_a_probe_under_the_prefix(
    stack: LocalStack, run_diagnose: Diagnose
) -> None:
    report = run_diagnose()
    facts = hop(report, "delivery", "s3")["facts"]
    assert facts["bucket"] == "okta-bridge-delivery-local"
    assert facts["key"].startswith("okta-bridge/")
    stored = stack.s3.keys()
    assert facts["key"] in stored
    assert "url" not in facts  # a presigned URL is a capability: never in a report


def test_without_a_bucket_the_delivery_hop_is_skipped_and_says_why(
    run_diagnose: Diagnose,
) -> None:
    report = run_diagnose(delivery=False)
    skipped = hop(report, "delivery", "s3")
    assert skipped["status"] == "skipped"
    assert "BRIDGE_DELIVERY_BUCKET" in skipped["reason"]
    assert report["ok"] is True


def test_s3_refusing_the_probe_names_the_grant(stack: LocalStack, run_diagnose: Diagnose) -> None:
    stack.s3.inject_error("PutObject", 403, "AccessDenied")
    report = run_diagnose()
    failed = assert_failed(report, "delivery", "s3", "DELIVERY_DENIED")
    assert "s3:PutObject" in failed["hint"]

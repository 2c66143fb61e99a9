"""Diagnose for a secret whose key is held in KMS: the KMS host's DNS, TCP and TLS, then one
kms:Sign, reported before the token hop (which signs again), each failure with its code."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from okta_bridge.config import AwsSettings, Settings
from okta_bridge_dev.emulators.stack import LocalStack
from tests.diagnose.conftest import Diagnose, Report


def hops(report: Report, target: str) -> dict[str, dict[str, Any]]:
    return {h["hop"]: h for h in report["hops"] if h["target"] == target}


@pytest.mark.parametrize(("kind", "algorithm"), [("kms-rs256", "RS256"), ("kms-es256", "ES256")])
def test_a_kms_signed_secret_reports_the_kms_hops_then_the_token(
    run_diagnose: Diagnose, stack: LocalStack, kind: str, algorithm: str
) -> None:
    report = run_diagnose(kind)
    assert report["ok"], report["first_failure"]
    kms = hops(report, "kms_host")
    assert [kms[h]["status"] for h in ("dns", "tcp", "tls", "sign")] == ["ok"] * 4
    facts = kms["sign"]["facts"]
    assert facts["kms_key_id"] == stack.secret_value(kind)["kms_key_id"]
    assert (facts["key_algorithm"], facts["signature_bytes"] > 0) == (algorithm, True)
    targets = [h["target"] for h in report["hops"]]
    assert targets.index("kms_host") < targets.index("token_host")
    assert stack.kms.counts["Sign"] == 2  # the probe, then the token request's assertion


def test_a_refused_sign_is_the_first_failure_with_its_code_and_hint(
    run_diagnose: Diagnose, stack: LocalStack
) -> None:
    stack.kms.inject_error("Sign", 400, "AccessDeniedException", times=5)
    report = run_diagnose("kms-rs256")
    first = report["first_failure"]
    assert (first["target"], first["hop"], first["code"]) == (
        "kms_host",
        "sign",
        "KMS_ACCESS_DENIED",
    )
    assert "kms:Sign" in first["hint"]


def test_a_secret_without_a_kms_key_has_no_kms_hops(run_diagnose: Diagnose) -> None:
    report = run_diagnose("jwt-es256")
    assert report["ok"]
    assert hops(report, "kms_host") == {}


def test_an_unreachable_kms_skips_the_sign(run_diagnose: Diagnose, stack: LocalStack) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = run_diagnose("kms-rs256", aws=_aws(stack, f"https://127.0.0.1:{port}"))
    kms = hops(report, "kms_host")
    assert (kms["tcp"]["status"], kms["tcp"]["code"]) == ("failed", "TCP_REFUSED")
    assert kms["sign"]["status"] == "skipped"
    assert report["first_failure"]["target"] == "kms_host"


def test_an_http_kms_endpoint_is_refused_as_configuration(
    run_diagnose: Diagnose, stack: LocalStack
) -> None:
    report = run_diagnose("kms-rs256", aws=_aws(stack, "http://127.0.0.1:1"))
    sign = hops(report, "kms_host")["sign"]
    assert (sign["status"], sign["code"]) == ("failed", "CONFIG_INVALID")
    assert "AWS_ENDPOINT_URL_KMS" in sign["message"]


def _aws(stack: LocalStack, kms_endpoint: str) -> AwsSettings:
    return Settings.from_env(stack.environment("x")).aws._replace(kms_endpoint=kms_endpoint)

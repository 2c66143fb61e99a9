"""Diagnose with DPoP (issue 12): whether it is in use, the proof's algorithm, whether each host
wanted a nonce, and DPoP failures named on the right hop; never a proof or a nonce."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.diagnose.conftest import Diagnose, assert_failed, hop


@pytest.fixture
def dpop_required(stack: LocalStack) -> Iterator[None]:
    stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
    yield
    stack.okta.require_dpop(CLIENT_IDS["basic"], on=False)


@pytest.mark.usefixtures("dpop_required")
def test_the_report_says_dpop_is_used_and_who_wanted_a_nonce(
    stack: LocalStack, run_diagnose: Diagnose
) -> None:
    stack.api.require_dpop_nonce = True
    report = run_diagnose(dpop="on")
    assert report["ok"] is True, report["first_failure"]
    token = hop(report, "token_host", "token")["facts"]
    assert token["token_type"] == "DPoP"
    assert (token["dpop"], token["dpop_alg"], token["dpop_nonce_required"]) == (True, "ES256", True)
    api = hop(report, "api_host", "api")["facts"]
    assert (api["dpop"], api["dpop_nonce_required"]) == (True, True)
    text = json.dumps(report)
    assert stack.okta.dpop_nonce not in text
    assert stack.api.dpop_nonce not in text
    assert "eyJ" not in text  # no proof, no token


@pytest.mark.usefixtures("dpop_required")
def test_auto_says_it_learned_dpop(run_diagnose: Diagnose) -> None:
    report = run_diagnose()
    token = hop(report, "token_host", "token")["facts"]
    assert (token["dpop"], token["dpop_learned"]) == (True, True)


def test_without_dpop_the_report_says_so(run_diagnose: Diagnose) -> None:
    report = run_diagnose()
    assert hop(report, "token_host", "token")["facts"]["dpop"] is False
    assert "dpop" not in hop(report, "api_host", "api")["facts"]


@pytest.mark.usefixtures("dpop_required")
def test_off_against_a_dpop_app_fails_the_token_hop(run_diagnose: Diagnose) -> None:
    report = run_diagnose(dpop="off")
    failed = assert_failed(report, "token_host", "token", "TOKEN_DPOP_REQUIRED")
    assert failed["facts"]["dpop"] is False
    assert failed["facts"]["okta_error"] == "invalid_dpop_proof"


@pytest.mark.usefixtures("dpop_required")
def test_a_bearer_only_api_fails_the_api_hop(stack: LocalStack, run_diagnose: Diagnose) -> None:
    stack.api.dpop_support = "bearer_only"
    report = run_diagnose(dpop="on")
    assert hop(report, "token_host", "token")["status"] == "ok"
    assert_failed(report, "api_host", "api", "UPSTREAM_DPOP_UNSUPPORTED")

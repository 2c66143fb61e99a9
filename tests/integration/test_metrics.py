"""The EMF lines the real handler prints, against the local stack: values match what happened."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.config import Settings
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import FakeClock, Harness, LambdaContext, make_harness
from tests.unit.test_metrics import emf_documents

TOKEN_PATH = "/oauth2/default/v1/token"
LIFETIME = 3600


@pytest.fixture(autouse=True)
def _token_lifetime(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack.okta, "token_lifetime", LIFETIME)


class Run:
    """Invokes the handler and returns its answer and the EMF documents it printed."""

    def __init__(self, harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
        self.harness = harness
        self.capsys = capsys

    def __call__(self, event: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.capsys.readouterr()
        answer = self.harness.invoke({} if event is None else event)
        return answer, emf_documents(self.capsys.readouterr().out)


def server_counts(stack: LocalStack) -> dict[str, int]:
    return {
        "SecretReads": stack.secrets_manager.counts["GetSecretValue"],
        "TokenRequests": stack.okta.counts["token"],
        "UpstreamRequests": sum(stack.api.counts.values()),
    }


def test_cold_then_warm(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    run = Run(make_harness(stack, clock=clock), capsys)
    answer, [cold] = run()
    assert answer["statusCode"] == 200
    assert cold["request_id"] == answer["meta"]["request_id"]
    assert (cold["outcome"], cold["Function"]) == ("ok", "local")
    assert cold["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OktaBridge"
    assert {k: cold[k] for k in server_counts(stack)} == server_counts(stack)
    assert (cold["SecretReads"], cold["TokenRequests"], cold["UpstreamRequests"]) == (1, 1, 1)
    assert (cold["TokenCacheHits"], cold["Invocations"], cold["Failures"]) == (0, 1, 0)
    assert (cold["Upstream2xx"], cold["Upstream4xx"], cold["Upstream5xx"]) == (1, 0, 0)
    assert cold["Retries"] == 0
    assert cold["TokenSecondsToExpiry"] == LIFETIME  # the fake clock stands still
    assert cold["UpstreamLatency"] > 0

    stack.reset_counts()
    clock.now += 600
    answer, [warm] = run()
    assert answer["statusCode"] == 200
    assert (warm["SecretReads"], warm["TokenRequests"], warm["UpstreamRequests"]) == (0, 0, 1)
    assert warm["TokenCacheHits"] == 1
    assert warm["TokenSecondsToExpiry"] == LIFETIME - 600
    assert warm["UpstreamLatency"] > 0
    assert warm["request_id"] != cold["request_id"]


def test_a_401_refreshes_the_token(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    run = Run(make_harness(stack, token_refresh_min_age=0.0), capsys)
    run()
    stack.reset_counts()
    stack.api.inject(Fault(status=401, body=b'{"error":"invalid_token"}', times=1))
    answer, [document] = run()
    assert answer["statusCode"] == 200
    assert (document["TokenRequests"], document["UpstreamRequests"]) == (1, 2)
    assert {k: document[k] for k in server_counts(stack)} == server_counts(stack)
    assert document["TokenCacheHits"] == 0  # the invocation needed a new token
    assert (document["Upstream2xx"], document["Upstream4xx"]) == (1, 0)  # the final answer
    assert document["outcome"] == "ok"


def test_retries_of_token_and_api_calls_are_counted(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = make_harness(stack)
    run = Run(harness, capsys)
    stack.okta.inject(Fault(match=TOKEN_PATH, status=503, body=b"{}", times=1))
    stack.api.inject(Fault(status=502, body=b"{}", times=2))
    answer, [document] = run()
    assert answer["statusCode"] == 200
    assert document["Retries"] == 3 == len(harness.sleeps)
    assert (document["TokenRequests"], document["UpstreamRequests"]) == (1, 1)
    assert document["Upstream2xx"] == 1


def test_an_api_500_is_an_upstream_5xx_and_an_error(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(make_harness(stack), capsys)
    stack.api.inject(Fault(status=500, body=b'{"error":"boom"}', times=1))
    answer, [document, errors] = run()
    assert answer["statusCode"] == 502
    assert (document["Upstream5xx"], document["Upstream2xx"], document["Failures"]) == (1, 0, 1)
    assert (document["outcome"], document["error_code"]) == ("error", "UPSTREAM_ERROR")
    assert document["TokenFailures"] == 0
    assert document["UpstreamLatency"] > 0
    assert errors["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Function", "ErrorCode"]]
    assert (errors["ErrorCode"], errors["Errors"]) == ("UPSTREAM_ERROR", 1)
    assert errors["request_id"] == document["request_id"]


def test_a_wrong_secret_is_a_token_failure(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = make_harness(stack, "basic", secret_name="metrics/wrong")
    value = stack.secret_value("basic") | {"client_secret": "wrong-secret-value-0000000000"}
    stack.secrets_manager.put_secret("metrics/wrong", value)
    stack.reset_counts()
    answer, [document, errors] = Run(harness, capsys)()
    assert answer["statusCode"] == 502
    assert (document["TokenFailures"], document["Failures"]) == (1, 1)
    assert {k: document[k] for k in server_counts(stack)} == server_counts(stack)
    assert document["SecretReads"] >= 2  # the first read, then the re-read after invalid_client
    assert (document["UpstreamRequests"], document["TokenCacheHits"]) == (0, 0)
    assert "UpstreamLatency" not in document
    assert "TokenSecondsToExpiry" not in document
    assert errors["ErrorCode"] == document["error_code"] == "TOKEN_REJECTED"


def test_an_unreachable_token_host_is_a_token_failure(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = make_harness(stack)
    stack.okta.inject(Fault(match=TOKEN_PATH, reset=True, times=3))
    answer, [document, errors] = Run(harness, capsys)()
    assert answer["body"]["error"]["code"] == "TOKEN_UNREACHABLE"
    assert document["TokenFailures"] == 1
    assert document["Retries"] == 2 == len(harness.sleeps)
    assert errors["ErrorCode"] == "TOKEN_UNREACHABLE"


def test_a_bad_request_counts_as_a_failure_without_any_call(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(make_harness(stack, allowed_paths=("/v1/items",)), capsys)
    answer, [document, errors] = run({"path": "/v1/admin"})
    assert answer["statusCode"] == 403
    assert errors["ErrorCode"] == "PATH_NOT_ALLOWED"
    assert (document["Failures"], document["TokenRequests"], document["UpstreamRequests"]) == (
        1,
        0,
        0,
    )


def test_no_line_when_metrics_are_off(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(make_harness(stack, metrics=False), capsys)
    answer, documents = run()
    assert answer["statusCode"] == 200
    assert documents == []


def test_the_namespace_comes_from_the_settings(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(make_harness(stack, metrics_namespace="Corp/OktaBridge"), capsys)
    _, [document] = run()
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Corp/OktaBridge"


def test_the_function_dimension_is_lambdas_function_name(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = make_harness(stack)
    handler.set_bridge(harness.bridge)
    context = LambdaContext()
    context.function_name = "okta-bridge-prod-Bridge"  # type: ignore[attr-defined]
    capsys.readouterr()
    handler.lambda_handler({}, context)
    [document] = emf_documents(capsys.readouterr().out)
    assert document["Function"] == "okta-bridge-prod-Bridge"


def test_a_configuration_error_prints_no_metrics(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without settings there is no switch and no namespace; the failure is logged at ERROR.
    monkeypatch.delenv("BRIDGE_SECRET_ID", raising=False)
    handler.set_bridge(None)
    capsys.readouterr()
    answer = handler.lambda_handler({}, LambdaContext())
    assert answer["body"]["error"]["code"] == "CONFIG_INVALID"
    assert emf_documents(capsys.readouterr().out) == []


def test_concurrent_invocations_each_print_their_own_counts(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = make_harness(stack)
    handler.set_bridge(harness.bridge)
    start = threading.Barrier(8)

    def invoke(index: int) -> dict[str, Any]:
        context = LambdaContext()
        context.aws_request_id = f"thread-{index}"
        start.wait()
        return handler.lambda_handler({}, context)

    capsys.readouterr()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(invoke, range(8)))
    assert all(a["statusCode"] == 200 for a in answers)
    documents = emf_documents(capsys.readouterr().out)
    assert sorted(d["request_id"] for d in documents) == sorted(f"thread-{i}" for i in range(8))
    assert all(d["UpstreamRequests"] == 1 for d in documents)
    for name, count in server_counts(stack).items():
        assert sum(d[name] for d in documents) == count, name
    assert sum(d["TokenRequests"] for d in documents) == 1  # single flight
    assert sum(d["TokenCacheHits"] for d in documents) == 7


def test_settings_default_to_metrics_on() -> None:
    settings = Settings.from_env({"BRIDGE_SECRET_ID": "s"})
    assert (settings.metrics, settings.metrics_namespace) == (True, "OktaBridge")

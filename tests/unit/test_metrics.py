"""The EMF documents: the shape CloudWatch Logs extracts metrics from, and the values' rules."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from okta_bridge import metrics
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError, NetworkError, TlsError, TokenError, UpstreamError
from okta_bridge.logs import configure

CONTRACT = {
    "Invocations": "Count",
    "Failures": "Count",
    "SecretReads": "Count",
    "TokenRequests": "Count",
    "TokenFailures": "Count",
    "TokenCacheHits": "Count",
    "Retries": "Count",
    "UpstreamRequests": "Count",
    "Upstream2xx": "Count",
    "Upstream4xx": "Count",
    "Upstream5xx": "Count",
    "UpstreamLatency": "Milliseconds",
    "TokenSecondsToExpiry": "Seconds",
    "Pages": "Count",
    "Truncations": "Count",
    "Deliveries": "Count",
    "DeliveredBytes": "Bytes",
    "SharedCacheHits": "Count",
    "SharedCacheMints": "Count",
    "SharedCacheWaits": "Count",
    "SharedCacheWaitMs": "Milliseconds",
    "SharedCacheFallbacks": "Count",
}
# Declared only by invocations that read a collection, delivered through S3 or consulted the
# shared token cache.
ON_USE = (
    "Pages",
    "Truncations",
    "Deliveries",
    "DeliveredBytes",
    "SharedCacheHits",
    "SharedCacheMints",
    "SharedCacheWaits",
    "SharedCacheWaitMs",
    "SharedCacheFallbacks",
)
EVERY_CALL = {name: unit for name, unit in CONTRACT.items() if name not in ON_USE}
NOW_MS = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z
SETTINGS = Settings(secret_id="okta-bridge/test")


def check_emf(document: dict[str, Any]) -> dict[str, Any]:
    """Assert ``document`` follows the EMF specification; return its one directive."""
    meta = document["_aws"]
    assert set(meta) == {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(meta["Timestamp"], int)
    assert meta["Timestamp"] > 1_600_000_000_000  # milliseconds, not seconds
    [directive] = meta["CloudWatchMetrics"]
    assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
    assert isinstance(directive["Namespace"], str)
    assert directive["Namespace"]
    for dimension_set in directive["Dimensions"]:
        for key in dimension_set:
            assert isinstance(document[key], str), key  # dimension values are strings
    names = [m["Name"] for m in directive["Metrics"]]
    assert len(names) == len(set(names))
    for definition in directive["Metrics"]:
        assert set(definition) == {"Name", "Unit"}
        value = document[definition["Name"]]  # every metric is a top-level member
        assert isinstance(value, int | float)
        assert not isinstance(value, bool)
        assert value >= 0
    return dict(directive)


def emf_documents(text: str) -> list[dict[str, Any]]:
    """The EMF documents among the JSON lines of ``text`` (logs are skipped)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            document = json.loads(line)
            if "_aws" in document:
                check_emf(document)
                found.append(document)
    return found


@pytest.fixture
def recorder() -> Iterator[metrics.Recorder]:
    with metrics.recording("req-1") as recorder:
        yield recorder


def test_the_metric_names_and_units_are_the_contract() -> None:
    assert metrics.METRICS == CONTRACT
    assert list(metrics.METRICS) == list(CONTRACT)


def test_a_successful_invocation_is_one_document_with_every_metric(
    recorder: metrics.Recorder,
) -> None:
    metrics.secret_read()
    metrics.token_request()
    metrics.token_used(3599.96)
    metrics.upstream_call(200, 12.345)
    [document] = metrics.records(
        "OktaBridge", recorder, function="okta-bridge-fn", error=None, timestamp_ms=NOW_MS
    )
    directive = check_emf(document)
    assert document["_aws"]["Timestamp"] == NOW_MS
    assert directive["Namespace"] == "OktaBridge"
    assert directive["Dimensions"] == [["Function"]]
    assert directive["Metrics"] == [{"Name": n, "Unit": u} for n, u in EVERY_CALL.items()]
    assert document["Function"] == "okta-bridge-fn"
    values = {name: document[name] for name in EVERY_CALL}
    assert values == {
        "Invocations": 1,
        "Failures": 0,
        "SecretReads": 1,
        "TokenRequests": 1,
        "TokenFailures": 0,
        "TokenCacheHits": 0,
        "Retries": 0,
        "UpstreamRequests": 1,
        "Upstream2xx": 1,
        "Upstream4xx": 0,
        "Upstream5xx": 0,
        "UpstreamLatency": 12.3,
        "TokenSecondsToExpiry": 3600.0,
    }
    assert document["request_id"] == "req-1"
    assert document["outcome"] == "ok"
    assert "error_code" not in document


def test_the_document_is_also_a_log_line_lambda_keeps() -> None:
    # Lambda's JSON log format filters by "level" (none counts as INFO) and needs an RFC 3339
    # "timestamp"; the level is the configured one, so the filter set from it never drops them.
    recorder = metrics.Recorder("req-2")
    [document] = metrics.records(
        "NS", recorder, function="f", error=None, timestamp_ms=NOW_MS, level="WARNING"
    )
    assert document["timestamp"] == "2026-01-01T00:00:00.123Z"
    assert document["level"] == "WARN"
    assert document["message"] == "invocation metrics"
    assert document["logger"] == "okta_bridge.metrics"


def test_latency_and_expiry_are_declared_only_when_measured(recorder: metrics.Recorder) -> None:
    [document] = metrics.records("NS", recorder, function="f", error=None, timestamp_ms=NOW_MS)
    directive = check_emf(document)
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == set(EVERY_CALL) - {"UpstreamLatency", "TokenSecondsToExpiry"}
    assert "UpstreamLatency" not in document
    assert "TokenSecondsToExpiry" not in document
    assert document["Upstream2xx"] == document["Upstream4xx"] == document["Upstream5xx"] == 0


def test_collections_and_deliveries_declare_their_metrics(recorder: metrics.Recorder) -> None:
    metrics.pages(3, truncated=True)
    metrics.pages(2, truncated=False)
    metrics.delivered(1_500_000)
    metrics.shared_cache("SharedCacheWaits")
    metrics.shared_cache("SharedCacheWaitMs", 120.5)
    metrics.shared_cache("SharedCacheHits")
    [document] = metrics.records("NS", recorder, function="f", error=None, timestamp_ms=NOW_MS)
    directive = check_emf(document)
    declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert {name: declared[name] for name in ON_USE} == {name: CONTRACT[name] for name in ON_USE}
    assert [document[name] for name in ON_USE] == [5, 1, 1, 1_500_000, 1, 0, 1, 120.5, 0]


def test_an_invocation_that_did_not_consult_the_shared_cache_declares_none_of_its_metrics(
    recorder: metrics.Recorder,
) -> None:
    metrics.token_used(100.0)
    [document] = metrics.records("NS", recorder, function="f", error=None, timestamp_ms=NOW_MS)
    assert not [name for name in document if name.startswith("SharedCache")]


def test_a_failure_adds_an_errors_document_with_the_code_as_a_dimension(
    recorder: metrics.Recorder,
) -> None:
    metrics.token_used(100.0)
    metrics.upstream_call(500, 40.0)
    error = UpstreamError("UPSTREAM_ERROR", "HTTP 500 from the API after 1 attempt(s).")
    main, errors = metrics.records("NS", recorder, function="f", error=error, timestamp_ms=NOW_MS)
    assert main["Failures"] == 1
    assert main["Upstream5xx"] == 1
    assert main["TokenFailures"] == 0
    assert main["TokenCacheHits"] == 1
    assert (main["outcome"], main["error_code"]) == ("error", "UPSTREAM_ERROR")
    directive = check_emf(errors)
    assert directive["Dimensions"] == [["Function", "ErrorCode"]]
    assert directive["Metrics"] == [{"Name": "Errors", "Unit": "Count"}]
    assert (errors["Errors"], errors["ErrorCode"], errors["Function"]) == (1, "UPSTREAM_ERROR", "f")
    assert errors["request_id"] == "req-1"
    assert errors["_aws"]["Timestamp"] == NOW_MS


@pytest.mark.parametrize(
    ("error", "reported_by_token_endpoint", "token_failures"),
    [
        (TokenError("TOKEN_REJECTED", "invalid_client"), True, 1),
        (NetworkError("TOKEN_UNREACHABLE", "no route"), True, 1),
        (TlsError("TLS_UNTRUSTED", "unknown CA at the token host"), True, 1),
        (TlsError("TLS_UNTRUSTED", "unknown CA at the API host"), False, 0),
        (UpstreamError("UPSTREAM_ERROR", "HTTP 500"), False, 0),
    ],
)
def test_token_failures_count_failures_getting_a_token(
    recorder: metrics.Recorder,
    error: BridgeError,
    reported_by_token_endpoint: bool,
    token_failures: int,
) -> None:
    if reported_by_token_endpoint:
        metrics.token_failed(error)
    assert recorder.values(error)["TokenFailures"] == token_failures


def test_an_earlier_token_failure_does_not_count_when_the_invocation_fails_otherwise(
    recorder: metrics.Recorder,
) -> None:
    # A refresh failed while the old token was still usable; then the API failed.
    metrics.token_failed(TokenError("TOKEN_ENDPOINT_ERROR", "HTTP 500 from Okta"))
    metrics.token_used(20.0)
    assert recorder.values(UpstreamError("UPSTREAM_ERROR", "HTTP 500"))["TokenFailures"] == 0


def test_a_cache_hit_is_a_token_used_without_a_request(recorder: metrics.Recorder) -> None:
    assert recorder.values(None)["TokenCacheHits"] == 0  # no token used at all
    metrics.token_used(30.0)
    assert recorder.values(None)["TokenCacheHits"] == 1
    metrics.token_request()
    assert recorder.values(None)["TokenCacheHits"] == 0


def test_upstream_calls_sum_latency_and_keep_the_last_status(recorder: metrics.Recorder) -> None:
    metrics.upstream_call(401, 10.0)
    metrics.upstream_call(200, 15.5)
    metrics.retry()
    values = recorder.values(None)
    assert values["UpstreamRequests"] == 2
    assert values["UpstreamLatency"] == 25.5
    assert (values["Upstream2xx"], values["Upstream4xx"]) == (1, 0)
    assert values["Retries"] == 1
    metrics.upstream_call(None, 3.0)  # no answer at all: no status class
    values = recorder.values(None)
    assert values["Upstream2xx"] + values["Upstream4xx"] + values["Upstream5xx"] == 0


def test_reports_outside_an_invocation_are_ignored() -> None:
    metrics.secret_read()
    metrics.token_request()
    metrics.retry()
    metrics.token_used(5.0)
    metrics.upstream_call(200, 1.0)
    metrics.token_failed(TokenError("TOKEN_REJECTED", "x"))
    with metrics.recording("fresh") as recorder:
        assert recorder.values(None)["SecretReads"] == 0
        assert recorder.values(None)["TokenRequests"] == 0


def test_concurrent_invocations_on_threads_keep_their_own_counts() -> None:
    barrier = threading.Barrier(4)
    seen: dict[int, dict[str, float]] = {}

    def invocation(index: int) -> None:
        with metrics.recording(f"req-{index}") as recorder:
            barrier.wait()
            for _ in range(index):
                metrics.secret_read()
                metrics.retry()
            barrier.wait()
            seen[index] = recorder.values(None)

    threads = [threading.Thread(target=invocation, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {i: (v["SecretReads"], v["Retries"]) for i, v in seen.items()} == {
        i: (i, i) for i in range(4)
    }


def test_publish_prints_one_line_per_document() -> None:
    out = io.StringIO()
    with metrics.recording("req-3") as recorder:
        metrics.upstream_call(503, 2.0)
    error = UpstreamError("UPSTREAM_ERROR", "HTTP 503")
    metrics.publish(SETTINGS, recorder, function=None, error=error, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    documents = emf_documents(out.getvalue())
    assert [d["Function"] for d in documents] == ["local", "local"]
    assert documents[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OktaBridge"
    assert documents[1]["ErrorCode"] == "UPSTREAM_ERROR"


def test_publish_uses_the_configured_namespace_and_clock() -> None:
    out = io.StringIO()
    settings = Settings(secret_id="s", metrics_namespace="Corp/Okta")
    metrics.publish(
        settings,
        metrics.Recorder("r"),
        function="fn",
        error=None,
        stream=out,
        wall_clock=lambda: NOW_MS / 1000,
    )
    [document] = emf_documents(out.getvalue())
    assert document["_aws"]["Timestamp"] == NOW_MS
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Corp/Okta"


def test_nothing_is_printed_when_metrics_are_off() -> None:
    out = io.StringIO()
    settings = Settings(secret_id="s", metrics=False)
    metrics.publish(settings, metrics.Recorder("r"), function="f", error=None, stream=out)
    assert out.getvalue() == ""


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stdout closed")


def test_publish_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    logger = configure("INFO")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="okta_bridge"):
            metrics.publish(
                SETTINGS, metrics.Recorder("r"), function="f", error=None, stream=BrokenStream()
            )
    finally:
        logger.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records] == ["metrics not written"]

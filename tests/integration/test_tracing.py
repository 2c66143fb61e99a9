"""Spans through the OpenTelemetry API, recorded by the SDK's in-memory exporter; and proof that
with tracing off (the default) nothing imports opentelemetry at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from okta_bridge import tracing
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import make_harness

ROOT = Path(__file__).resolve().parents[2]
NAMES = {tracing.INVOCATION, tracing.SECRET_READ, tracing.TOKEN_REQUEST, tracing.API_CALL}


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """The SDK as the global provider (it can be set once per process), exporting to memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        found.setdefault(span.name, []).append(span)
    return found


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_cold_call_has_the_four_spans_under_the_invocation(
    stack: LocalStack, spans: InMemorySpanExporter
) -> None:
    harness = make_harness(stack, tracing=True)
    answer = harness.invoke({})
    assert answer["statusCode"] == 200
    found = by_name(spans.get_finished_spans())
    assert set(found) == NAMES
    assert {name: len(items) for name, items in found.items()} == dict.fromkeys(NAMES, 1)
    [root] = found[tracing.INVOCATION]
    assert root.parent is None
    assert root.context is not None
    for name in NAMES - {tracing.INVOCATION}:
        [child] = found[name]
        assert child.parent is not None
        assert child.parent.span_id == root.context.span_id, name
        assert child.context is not None
        assert child.context.trace_id == root.context.trace_id
    assert attributes(root) == {
        "faas.invocation_id": answer["meta"]["request_id"],
        "okta_bridge.event_kind": "direct",
        "http.response.status_code": 200,
    }
    token = attributes(found[tracing.TOKEN_REQUEST][0])
    assert token["oauth.grant_type"] == "client_credentials"
    assert token["oauth.client_auth_method"] == "client_secret_basic"
    assert (token["http.response.status_code"], token["okta_bridge.attempts"]) == (200, 1)
    api = attributes(found[tracing.API_CALL][0])
    assert (api["http.request.method"], api["url.path"]) == ("GET", "/v1/data")
    assert api["http.response.status_code"] == 200
    secret = attributes(found[tracing.SECRET_READ][0])
    assert secret["okta_bridge.secret.stage"] == "AWSCURRENT"
    assert secret["okta_bridge.secret.version_id"]
    assert all(s.status.status_code is StatusCode.UNSET for s in spans.get_finished_spans())


def test_a_warm_call_has_only_the_api_call(stack: LocalStack, spans: InMemorySpanExporter) -> None:
    harness = make_harness(stack, tracing=True)
    harness.invoke({})
    spans.clear()
    harness.invoke({})
    assert sorted(s.name for s in spans.get_finished_spans()) == [
        tracing.API_CALL,
        tracing.INVOCATION,
    ]


def test_a_refused_token_marks_its_span_and_the_invocation(
    stack: LocalStack, spans: InMemorySpanExporter
) -> None:
    harness = make_harness(stack, "basic", secret_name="tracing/wrong", tracing=True)
    value = stack.secret_value("basic") | {"client_secret": "wrong-secret-for-tracing-000"}
    stack.secrets_manager.put_secret("tracing/wrong", value)
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "TOKEN_REJECTED"
    found = by_name(spans.get_finished_spans())
    [root] = found[tracing.INVOCATION]
    for span in (root, *found[tracing.TOKEN_REQUEST]):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "TOKEN_REJECTED"
        assert attributes(span)["error.code"] == "TOKEN_REJECTED"
        assert attributes(span)["error.stage"] == "token"
        assert not span.events  # no recorded exception (no stack trace in the trace)
    assert attributes(found[tracing.TOKEN_REQUEST][0])["http.response.status_code"] == 401
    stages = [attributes(s)["okta_bridge.secret.stage"] for s in found[tracing.SECRET_READ]]
    assert stages[0] == "AWSCURRENT"
    assert "AWSPENDING" in stages  # the re-read after invalid_client looked for a rotation


def test_an_api_error_marks_the_api_span(stack: LocalStack, spans: InMemorySpanExporter) -> None:
    harness = make_harness(stack, tracing=True)
    stack.api.inject(Fault(status=503, body=b"{}", times=3))
    answer = harness.invoke({})
    assert answer["body"]["error"]["code"] == "UPSTREAM_ERROR"
    [api] = by_name(spans.get_finished_spans())[tracing.API_CALL]
    assert attributes(api)["http.response.status_code"] == 503
    assert attributes(api)["okta_bridge.attempts"] == 3
    [root] = by_name(spans.get_finished_spans())[tracing.INVOCATION]
    assert attributes(root)["error.code"] == "UPSTREAM_ERROR"


def test_no_secret_material_in_any_span(stack: LocalStack, spans: InMemorySpanExporter) -> None:
    for kind in ("basic", "post", "jwt-rs256", "jwt-es256", "password"):
        harness = make_harness(stack, kind, tracing=True, token_refresh_min_age=0.0)
        assert harness.invoke({})["statusCode"] == 200
        stack.api.inject(Fault(status=401, body=b"{}", times=1))
        assert harness.invoke({})["statusCode"] == 200
    finished = spans.get_finished_spans()
    assert len(finished) >= 20
    text = json.dumps([json.loads(span.to_json()) for span in finished])
    material = stack.all_secret_material()
    assert material
    assert len(stack.okta.issued_tokens) >= 10
    assert [m[:12] + "..." for m in material if m in text] == []
    assert "Bearer" not in text
    assert "eyJ" not in text  # no JWT (token or client assertion) of any kind


def test_tracing_off_makes_no_spans(stack: LocalStack, spans: InMemorySpanExporter) -> None:
    harness = make_harness(stack)
    assert harness.bridge.settings.tracing is False
    assert harness.invoke({})["statusCode"] == 200
    assert spans.get_finished_spans() == ()
    assert tracing.invocation(False) is tracing.OFF
    assert tracing.span(tracing.API_CALL) is tracing.OFF  # no traced invocation in progress


# -- tracing off costs no import ---------------------------------------------------------------

CHILD = """
import json, sys
protocol, sys.stdout = sys.stdout, sys.stderr
from okta_bridge import handler

class Context:
    aws_request_id = "child-1"
    def get_remaining_time_in_millis(self):
        return 20_000

answer = handler.lambda_handler({}, Context())
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print(json.dumps({"status": answer["statusCode"], "opentelemetry": loaded}), file=protocol)
"""


def run_child(stack: LocalStack, **extra: str) -> dict[str, Any]:
    """A fresh interpreter that imports the handler and serves one call against the stack."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "BRIDGE_", "OTEL_"))
        and name not in LocalStack.UNSET_ENVIRONMENT
        and name.lower() not in {"https_proxy", "http_proxy", "all_proxy", "no_proxy"}
    }
    env |= stack.environment(stack.store_secret("basic", "tracing/child")) | extra
    result = subprocess.run(  # noqa: S603 - this interpreter running our own code
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(result.stdout))


def test_with_tracing_off_opentelemetry_is_never_imported(stack: LocalStack) -> None:
    child = run_child(stack)
    assert child == {"status": 200, "opentelemetry": []}


def test_with_tracing_on_the_api_is_imported(stack: LocalStack) -> None:
    child = run_child(stack, BRIDGE_TRACING="on")
    assert child["status"] == 200
    assert "opentelemetry.trace" in child["opentelemetry"]
    assert "opentelemetry.sdk" not in child["opentelemetry"]  # the API alone: no-op spans

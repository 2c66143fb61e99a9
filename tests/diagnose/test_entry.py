"""Diagnose through the real Lambda entry point, through a proxy, and the leak scan."""

from __future__ import annotations

import gc
import json
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.config import ProxySettings, Settings
from okta_bridge.ops.report import ORDER
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.store import BotoSecretSource
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import LocalStack
from tests.diagnose.conftest import (
    Diagnose,
    LambdaContext,
    assert_failed,
    assert_ok,
    assert_skipped,
    hop,
)
from tests.integration.test_proxy import ConnectProxy, serving_proxy


@pytest.fixture
def lambda_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment a deployed function would have, pointing at the stack."""
    name = stack.store_secret("basic", "diagnose/handler")
    for variable in LocalStack.UNSET_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    env = stack.environment(name)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return env


def test_handler_answers_the_diagnose_event_with_the_report(
    stack: LocalStack, lambda_env: dict[str, str]
) -> None:
    report = handler.lambda_handler({"action": "diagnose"}, LambdaContext("req-diag-1"))

    assert report["action"] == "diagnose"
    assert report["ok"] is True, report["first_failure"]
    assert report["request_id"] == "req-diag-1"
    assert [(h["target"], h["hop"]) for h in report["hops"]] == list(ORDER)
    json.dumps(report)
    # Diagnose closes what it opened: an unclosed socket would warn (an error here) when collected.
    gc.collect()


def test_handler_leaves_other_events_to_the_bridge(lambda_env: dict[str, str]) -> None:
    answer = handler.lambda_handler({"action": "other"}, LambdaContext())

    assert "hops" not in answer
    assert answer["statusCode"] == 400


def test_diagnose_leaves_the_warm_bridge_caches_alone(
    stack: LocalStack, lambda_env: dict[str, str]
) -> None:
    settings = Settings.from_env(lambda_env)
    client = stack.secrets_manager.client(stack.ca.ca_pem_path)
    bridge = Bridge(settings, source=BotoSecretSource(settings, client=client))
    handler.set_bridge(bridge)
    assert handler.lambda_handler({}, LambdaContext())["statusCode"] == 200
    token = bridge.tokens.get(Deadline(5))
    requests, reads = bridge.tokens.requests, bridge.secrets.reads
    okta_tokens = stack.okta.counts["token"]

    report = handler.lambda_handler({"action": "diagnose"}, LambdaContext())

    assert report["ok"] is True
    assert stack.okta.counts["token"] == okta_tokens + 1  # diagnose's own fresh token
    assert bridge.tokens.get(Deadline(5)) is token
    assert (bridge.tokens.requests, bridge.secrets.reads) == (requests, reads)
    client.close()


def test_configuration_error_is_a_failed_config_hop(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_SECRET_ID")
    report = handler.lambda_handler({"action": "diagnose"}, LambdaContext("req-cfg"))

    failed = assert_failed(report, "config", "config", "CONFIG_INVALID")
    assert failed["stage"] == "config"
    assert failed["facts"] == {"variable": "BRIDGE_SECRET_ID"}
    assert "BRIDGE_SECRET_ID" in failed["message"]
    assert report["request_id"] == "req-cfg"
    later = report["hops"][1:]
    assert [(h["target"], h["hop"]) for h in later] == list(ORDER[1:])
    assert all(h["status"] == "skipped" and "configuration" in h["reason"] for h in later)


def test_a_bad_variable_is_named_in_the_config_hop(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_CONNECT_TIMEOUT_SECONDS", "soon")
    report = handler.lambda_handler({"action": "diagnose"}, LambdaContext())

    failed = assert_failed(report, "config", "config", "CONFIG_INVALID")
    assert failed["facts"]["variable"] == "BRIDGE_CONNECT_TIMEOUT_SECONDS"


class BrokenContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> Any:
        return "not a number"


def test_diagnose_never_raises_and_shows_no_trace(lambda_env: dict[str, str]) -> None:
    report = handler.lambda_handler({"action": "diagnose"}, BrokenContext())

    assert report["ok"] is False
    assert report["first_failure"]["code"] == "INTERNAL_ERROR"
    assert "Traceback" not in json.dumps(report)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with serving_proxy() as server:
        yield server


def test_proxy_dns_and_tcp_test_the_proxy_and_tls_tunnels(
    stack: LocalStack, run_diagnose: Diagnose, proxy: ConnectProxy
) -> None:
    port = proxy.server_address[1]
    report = run_diagnose(proxy=ProxySettings(https_proxy=f"http://user:pw@127.0.0.1:{port}"))

    assert report["ok"] is True, report["hops"]
    okta = stack.okta.base_url.removeprefix("https://")
    dns = hop(report, "token_host", "dns")["facts"]
    assert dns["host"] == "127.0.0.1"
    assert dns["port"] == port
    assert dns["via_proxy"] is True
    assert dns["destination"] == okta
    assert hop(report, "token_host", "tcp")["facts"]["port"] == port
    tls = hop(report, "token_host", "tls")["facts"]
    assert tls["tunnel"].startswith("HTTP/1.1 200")
    assert tls["hostname_match"] is True
    assert okta in proxy.targets
    assert stack.api.base_url.removeprefix("https://") in proxy.targets
    variables = hop(report, "config", "config")["facts"]["variables"]
    assert variables["HTTPS_PROXY"] == f"http://127.0.0.1:{port}"
    assert "pw" not in json.dumps(report)


def test_no_proxy_bypasses_the_proxy(run_diagnose: Diagnose, proxy: ConnectProxy) -> None:
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    report = run_diagnose(proxy=ProxySettings(https_proxy=url, no_proxy="127.0.0.1"))

    assert report["ok"] is True
    assert hop(report, "token_host", "dns")["facts"]["via_proxy"] is False
    assert proxy.targets == []


class RefusingProxy(socketserver.ThreadingTCPServer):
    """A proxy that answers every CONNECT with 403, as a corporate proxy's deny rule does."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Refuse)


class _Refuse(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def refusing_proxy() -> Iterator[RefusingProxy]:
    server = RefusingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_proxy_refusing_the_tunnel_fails_the_tls_hop(
    run_diagnose: Diagnose, refusing_proxy: RefusingProxy
) -> None:
    port = refusing_proxy.server_address[1]
    report = run_diagnose(proxy=ProxySettings(https_proxy=f"http://127.0.0.1:{port}"))

    failed = assert_failed(report, "token_host", "tls", "TOKEN_UNREACHABLE")
    assert "403" in failed["message"]
    assert failed["facts"]["via_proxy"] is True
    assert_ok(report, "token_host", ("dns", "tcp"))
    assert_skipped(report, "token_host", ("token",), "TOKEN_UNREACHABLE")
    assert hop(report, "api_host", "tls")["code"] == "UPSTREAM_UNREACHABLE"
    assert_skipped(report, "api_host", ("api",), "UPSTREAM_UNREACHABLE")


def _leaks(stack: LocalStack, text: str) -> list[str]:
    return [m[:12] for m in stack.all_secret_material() if m and m in text]


@pytest.mark.parametrize("kind", ["basic", "post", "jwt-rs256", "jwt-es256", "password"])
def test_report_and_logs_hold_no_secret_material(
    stack: LocalStack, run_diagnose: Diagnose, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = len(stack.okta.issued_tokens)
    report = run_diagnose(kind)

    assert report["ok"] is True, report["first_failure"]
    assert len(stack.okta.issued_tokens) > issued  # the scan covers the tokens diagnose got
    secret = stack.secret_value(kind)
    values = [v for k, v in secret.items() if k in ("client_secret", "private_key", "password")]
    text = json.dumps(report)
    assert values
    assert not [v for v in values if v in text]
    assert not _leaks(stack, text)
    assert not _leaks(stack, capsys.readouterr().out)


def test_failure_reports_hold_no_secret_material(
    stack: LocalStack, run_diagnose: Diagnose, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "wrong-secret-value-that-must-not-leak-0123456789"
    secret = {**stack.secret_value("basic"), "client_secret": wrong}
    rejected = run_diagnose(secret=secret, secret_name="diagnose/leak-rejected")
    assert rejected["first_failure"]["code"] == "TOKEN_REJECTED"
    invalid = run_diagnose(
        secret={**stack.secret_value("password"), "username": ""},
        secret_name="diagnose/leak-invalid",
    )
    assert invalid["first_failure"]["code"] == "SECRET_INVALID"

    for report in (rejected, invalid):
        text = json.dumps(report)
        assert wrong not in text
        assert stack.secret_value("password")["password"] not in text
        assert not _leaks(stack, text)
    out = capsys.readouterr().out
    assert wrong not in out
    assert not _leaks(stack, out)

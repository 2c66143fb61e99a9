"""Fixtures for diagnose: the report of one run against the local stack, faults applied."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.config import Settings, TokenCacheSettings
from okta_bridge.logs import configure
from okta_bridge.ops import diagnose
from okta_bridge.ops.mints import MINTS
from okta_bridge.secret.store import BotoSecretSource
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()  # this directory's own local stack

Report = dict[str, Any]
Diagnose = Callable[..., Report]


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    stack.reset_counts()
    stack.clear_faults()
    configure("INFO")
    MINTS.clear()  # no token remembered from another test's run
    yield
    stack.clear_faults()
    handler.set_bridge(None)
    MINTS.clear()


@pytest.fixture
def run_diagnose(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Diagnose:
    """``run_diagnose(kind=..., secret=..., secret_name=..., deadline=..., delivery=...,
    token_cache=..., **settings)``: store the stack's secret for ``kind`` (or ``secret`` as
    given), run diagnose with the stack's environment (its S3 delivery bucket unless
    ``delivery=False``, its shared token cache with ``token_cache=True`` or as the settings
    given) and ``settings`` overrides, and return the report (checked to be JSON)."""
    env = stack.environment("unused", delivery=True)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(name, env[name])  # the S3 probe signs as the function would

    def run(
        kind: str = "basic",
        *,
        secret: dict[str, str] | None = None,
        secret_name: str | None = None,
        store: bool = True,
        deadline: float = 20.0,
        delivery: bool = True,
        token_cache: bool | TokenCacheSettings = False,
        **overrides: Any,
    ) -> Report:
        # Each run here is its own scenario, asking Okta afresh; the minimum interval between
        # diagnose's token requests is tested in tests/security.
        overrides.setdefault("diagnose_min_interval", 0.0)
        name = secret_name or f"diagnose/{kind}"
        if store:
            stack.secrets_manager.put_secret(name, secret or stack.secret_value(kind))
        environment = stack.environment(name, delivery=delivery, token_cache=bool(token_cache))
        if isinstance(token_cache, TokenCacheSettings):
            overrides["token_cache"] = token_cache
        settings = Settings.from_env(environment)._replace(**overrides)
        client = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
        try:
            source = BotoSecretSource(settings, client=client)
            report = diagnose.run(
                settings, Deadline(deadline), source=source, request_id="diag-test"
            )
        finally:
            client.close()
        assert json.loads(json.dumps(report)) == report
        return report

    return run


def hop(report: Report, target: str, name: str) -> dict[str, Any]:
    """The one hop ``name`` of ``target``."""
    found: list[dict[str, Any]] = [
        h for h in report["hops"] if h["target"] == target and h["hop"] == name
    ]
    assert len(found) == 1, report["hops"]
    return found[0]


def assert_failed(report: Report, target: str, name: str, code: str) -> dict[str, Any]:
    """``target``'s ``name`` hop failed with ``code``, the first failure of the report."""
    failed = hop(report, target, name)
    assert failed["status"] == "failed", failed
    assert failed["code"] == code
    assert failed["hint"]
    assert failed["message"]
    assert report["ok"] is False
    assert report["first_failure"] == {
        key: failed[key] for key in ("target", "hop", "code", "hint", "message")
    }
    return failed


def assert_skipped(report: Report, target: str, names: tuple[str, ...], because: str) -> None:
    """Each of ``names`` is skipped with a reason that mentions ``because``."""
    for name in names:
        skipped = hop(report, target, name)
        assert skipped["status"] == "skipped", skipped
        assert because in skipped["reason"]
        assert "code" not in skipped


def assert_ok(report: Report, target: str, names: tuple[str, ...]) -> None:
    for name in names:
        assert hop(report, target, name)["status"] == "ok", hop(report, target, name)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LambdaContext:
    """The members of Lambda's context object that the handler reads."""

    def __init__(self, request_id: str = "diag-req", remaining_ms: int = 20_000) -> None:
        self.aws_request_id = request_id
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms

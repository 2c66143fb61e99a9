"""Fixtures for the security suite: its own local stack, bridges wired as in production, and an
API that routes the way servlet containers do.

``bridge_for`` builds the bridge through ``Bridge(settings, source=..., http=...)``, so the secret
store, the token provider and their redaction hooks are the production ones; ``env`` adds
``BRIDGE_*`` variables exactly as Lambda's environment would. Each test starts with the servers'
counts zeroed, no faults, and no diagnose token remembered from an earlier test.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from okta_bridge import handler
from okta_bridge.config import Settings
from okta_bridge.logs import REDACTOR, configure
from okta_bridge.request.bridge import Bridge
from okta_bridge.secret.store import BotoSecretSource
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.servers import TLSServer
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture
from tests.integration.conftest import Harness
from tests.rotation.conftest import make_kit

__all__ = ["make_kit"]  # the rotation suite's fixture, for the rotation hazards

stack = stack_fixture()  # this directory's own local stack

ALLOWED_PATHS = ("/v1/data", "/v1/items", "/v1/items/*", "/v1/items/**")


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    stack.reset_counts()
    stack.clear_faults()
    configure("INFO")
    _forget_diagnose_tokens()
    yield
    stack.clear_faults()
    stack.secrets_manager.attach_rotation(None)
    handler.set_bridge(None)
    _forget_diagnose_tokens()


def _forget_diagnose_tokens() -> None:
    module = sys.modules.get("okta_bridge.ops.mints")
    mints = getattr(module, "MINTS", None)
    if mints is not None:
        mints.clear()


@pytest.fixture(scope="package")
def servlet_api(stack: LocalStack) -> SampleApi:
    """An API origin that strips ``;params``, decodes and resolves dot segments before routing,
    as Tomcat and Spring do, and serves ``/admin/keys``: a bypass shows as data served."""
    return stack.start_extra_api(routing="servlet")


@pytest.fixture(scope="package")
def other_api(stack: LocalStack) -> SampleApi:
    """Another origin trusting the same Okta: nothing may ever reach it through a redirect."""
    return stack.start_extra_api()


def bridge_for(
    stack: LocalStack,
    kind: str = "basic",
    *,
    env: dict[str, str] | None = None,
    secret_name: str | None = None,
    api: SampleApi | None = None,
) -> Harness:
    """A bridge for ``kind``'s credentials, ``env`` on top of the stack's environment, reading
    ``api`` (default: the stack's own API) at ``/v1/data`` by default."""
    name = stack.store_secret(kind, secret_name)
    variables = {**stack.environment(name), **(env or {})}
    if api is not None:
        variables.setdefault("BRIDGE_API_BASE_URL", f"{api.base_url}/v1/data")
    settings = Settings.from_env(variables)
    sleeps: list[float] = []
    http = HttpClient(
        settings,
        retry=RetryPolicy(max_retries=settings.max_retries, rng=random.Random(1)),
        sleep=sleeps.append,
    )
    source = BotoSecretSource(settings, client=stack.secrets_manager.client(stack.ca.ca_pem_path))
    bridge = Bridge(settings, source=source, http=http)
    stack.reset_counts()
    return Harness(bridge, sleeps)


def error_code(answer: dict[str, Any]) -> str | None:
    """The error code of an answer in either shape (direct or proxy), or None for a success."""
    body = answer.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"]["code"])
    return None


# -- shared by the DPoP pentests ------------------------------------------------------------------


class FieldLines(dict[str, str]):
    """Response headers that may repeat a name: each pair is one field line on the wire."""

    def __init__(self, *lines: tuple[str, str]) -> None:
        super().__init__(lines)
        self.lines = list(lines)

    def items(self) -> Any:  # what the dev server's _write_head iterates
        return list(self.lines)


class HostileApi(TLSServer):
    """An API whose every answer a test scripts: ``script(request)`` -> Response."""

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(server_context(stack.server_cert))
        self.script: Callable[[RecordedRequest], Response] = lambda _request: Response(200)

    def route(self, request: RecordedRequest) -> PathRoute:
        return PathRoute("hostile", self.script)


@pytest.fixture
def hostile_api(stack: LocalStack) -> Iterator[HostileApi]:
    server = HostileApi(stack).start()
    yield server
    server.stop()


@pytest.fixture
def restore_redactor() -> Iterator[None]:
    """Whatever a test registers with the process-wide redactor is undone afterwards."""
    with REDACTOR._lock:
        literals, pinned = list(REDACTOR._literals), dict(REDACTOR._pinned)
    yield
    with REDACTOR._lock:
        REDACTOR._literals.clear()
        REDACTOR._literals.extend(literals)
        REDACTOR._pinned.clear()
        REDACTOR._pinned.update(pinned)
        REDACTOR._sort()


def claims(proof: str) -> dict[str, Any]:
    """A DPoP proof's (or any JWT's) claims, unverified."""
    return dict(jwt.decode(proof, options={"verify_signature": False}))


def log_lines(text: str) -> list[dict[str, Any]]:
    """The bridge's JSON log lines in captured output (other lines, EMF ones, left out)."""
    lines = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "logger" in entry:
            lines.append(entry)
    return lines

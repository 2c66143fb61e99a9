"""The fault matrix's kit: its own local stack, a bridge wired like production, virtual waits.

The bridge is built the way ``handler.get_bridge()`` builds it (``Bridge(settings)``: the boto3
client from ``make_client``, the redaction hooks), except for its ``HttpClient``, which gets a
recording ``sleep`` and a fixed wall clock. botocore's retry sleep is recorded the same way. The
waits are skipped, yet counted as time passed: the invocation's ``Deadline`` runs on a clock that
includes them, so the bridge decides as it would after really waiting, and a row's duration is
its wall time plus its waits. botocore's jitter comes from the global ``random``, seeded per case.
"""

from __future__ import annotations

import gc
import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.endpoint
import pytest

from okta_bridge import handler
from okta_bridge.config import Settings
from okta_bridge.logs import configure
from okta_bridge.request.bridge import Bridge
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.pki import LocalCA
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture
from tests.integration.conftest import (
    LambdaContext,
)
from tests.support.reliability import Row

stack = stack_fixture()  # this directory's own local stack

TOKEN_PATH = "/oauth2/default/v1/token"
DEFAULT_REMAINING_MS = 20_000


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """The default boto3 session for every case: the bridge's client is created from it per case
    (reading that case's environment), without reloading botocore's models each time."""
    session = boto3.session.Session()
    # Load the models now rather than inside the first case's timing.
    session.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url="https://127.0.0.1:1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    ).close()
    return session


@pytest.fixture(scope="session")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("foreign-ca"), common_name="not trusted CA")


@dataclass
class Matrix:
    """The session's observed rows, by case id, and which of them passed every check."""

    rows: dict[str, Row] = field(default_factory=dict)
    verified: set[str] = field(default_factory=set)


@pytest.fixture(scope="session")
def matrix() -> Matrix:
    return Matrix()


@dataclass
class Outcome:
    """One invocation as observed: the answer, the waits, the bridge's own counters (deltas)."""

    answer: dict[str, Any]
    status: int
    body: Any
    headers: dict[str, str]
    wall: float
    http_waits: list[float]
    boto_waits: list[float]
    secret_reads: int
    token_requests: int
    api_requests: int
    server_calls: dict[str, int]  # requests the stack's own servers received, by hop

    @property
    def error(self) -> dict[str, Any] | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"]
        return None

    @property
    def waits(self) -> list[float]:
        return self.boto_waits + self.http_waits

    @property
    def seconds(self) -> float:
        """How long the invocation would have taken had the waits not been skipped."""
        return self.wall + sum(self.waits)


class _RecordingTime:
    """botocore.endpoint's ``time`` module, with ``sleep`` recorded instead of slept."""

    def __init__(self, record: Callable[[float], None]) -> None:
        self._record = record

    def sleep(self, seconds: float) -> None:
        self._record(float(seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@dataclass
class FaultHarness:
    """A bridge for one case and the kit that records its waits."""

    kit: FaultKit
    bridge: Bridge

    def invoke(self, event: Any, remaining_ms: int = DEFAULT_REMAINING_MS) -> Outcome:
        kit = self.kit
        handler.set_bridge(self.bridge)
        http_before, boto_before = len(kit.http_waits), len(kit.boto_waits)
        reads = self.bridge.secrets.reads
        tokens = self.bridge.tokens.requests
        calls = self.bridge.api.requests
        seen = kit.server_calls()
        random.seed(f"okta-bridge-faults/{kit.case_id}")  # botocore's jitter
        gc.collect()  # a collection now rather than inside the timed call
        started = time.monotonic()
        answer = handler.lambda_handler(event, LambdaContext(remaining_ms))
        wall = time.monotonic() - started
        body = answer.get("body")
        if isinstance(body, str):
            body = json.loads(body)
        return Outcome(
            answer=answer,
            status=int(answer["statusCode"]),
            body=body,
            headers=dict(answer.get("headers") or {}),
            wall=wall,
            http_waits=kit.http_waits[http_before:],
            boto_waits=kit.boto_waits[boto_before:],
            secret_reads=self.bridge.secrets.reads - reads,
            token_requests=self.bridge.tokens.requests - tokens,
            api_requests=self.bridge.api.requests - calls,
            server_calls={hop: n - seen[hop] for hop, n in kit.server_calls().items()},
        )


class FaultKit:
    """What a case's setup uses: the stack, harness building, teardown, free and silent ports."""

    def __init__(
        self,
        stack: LocalStack,
        foreign_ca: LocalCA,
        boto_session: boto3.session.Session,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.stack = stack
        self.boto_session = boto_session
        self.foreign_ca = foreign_ca
        self.case_id = "unnamed"
        self.wall = float(int(time.time()))  # the HttpClient's wall clock: Retry-After dates
        self.http_waits: list[float] = []
        self.boto_waits: list[float] = []
        self._slept = 0.0
        self._monkeypatch = monkeypatch
        self._teardown: list[Callable[[], None]] = []
        self.servers: dict[str, Any] = {}  # extra servers a setup started, for its check
        monkeypatch.setattr(botocore.endpoint, "time", _RecordingTime(self._boto_sleep))
        real_from_context = Deadline.from_context

        def from_context(context: Any, settings: Settings) -> Deadline:
            real = real_from_context(context, settings)
            return Deadline(real.remaining(), clock=self.monotonic)

        monkeypatch.setattr(Deadline, "from_context", staticmethod(from_context))

    # -- virtual time ----------------------------------------------------------------------

    def monotonic(self) -> float:
        """The monotonic clock plus every wait skipped so far."""
        return time.monotonic() + self._slept

    def _http_sleep(self, seconds: float) -> None:
        self.http_waits.append(seconds)
        self._slept += seconds

    def _boto_sleep(self, seconds: float) -> None:
        self.boto_waits.append(seconds)
        self._slept += seconds

    # -- building --------------------------------------------------------------------------

    def harness(
        self,
        kind: str = "basic",
        *,
        secret: dict[str, Any] | str | None = None,
        secrets_endpoint: str | None = None,
        **overrides: Any,
    ) -> FaultHarness:
        """A production-wired bridge for ``kind``'s client, its secret stored under a name of
        its own (``secret`` replaces the value: a dict as JSON, a str as it is)."""
        stack = self.stack
        name = f"faults/{self.case_id}"
        if secret is None:
            stack.store_secret(kind, name)
        elif isinstance(secret, dict):
            stack.secrets_manager.put_secret(name, secret)
        else:
            client = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
            try:
                client.create_secret(Name=name, SecretString=secret)
            finally:
                client.close()
        env = stack.environment(name)
        if secrets_endpoint is not None:
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = secrets_endpoint
        for variable in LocalStack.UNSET_ENVIRONMENT:
            self._monkeypatch.delenv(variable, raising=False)
        for variable, value in env.items():
            self._monkeypatch.setenv(variable, value)
        # boto3.client() (the bridge's make_client) uses the default session; it reads this
        # case's environment when the client is created.
        self._monkeypatch.setattr(boto3, "DEFAULT_SESSION", self.boto_session)
        settings = Settings.from_env(env)._replace(**overrides)
        http = HttpClient(
            settings,
            retry=RetryPolicy(max_retries=settings.max_retries, rng=random.Random(1)),
            sleep=self._http_sleep,
            wall_clock=lambda: self.wall,
        )
        self.later(http.close)
        stack.reset_counts()
        return FaultHarness(self, Bridge(settings, http=http))

    def server_calls(self) -> dict[str, int]:
        """Requests received so far by the stack's Secrets Manager, Okta token route and API."""
        return {
            "secrets": self.stack.secrets_manager.counts["GetSecretValue"],
            "okta": self.stack.okta.counts["token"],
            "api": sum(self.stack.api.counts.values()),
        }

    def later(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the case ends (stop an extra server, undo a server setting)."""
        self._teardown.append(action)

    def closed_port(self) -> int:
        """A port on 127.0.0.1 nothing listens on (connections are refused)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    def silent_port(self) -> int:
        """A port that completes TCP handshakes (the kernel's backlog) but never answers."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.later(listener.close)
        return int(listener.getsockname()[1])

    def close(self) -> None:
        while self._teardown:
            self._teardown.pop()()


@pytest.fixture
def kit(
    stack: LocalStack,
    foreign_ca: LocalCA,
    boto_session: boto3.session.Session,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FaultKit]:
    state = random.getstate()
    stack.reset_counts()
    stack.clear_faults()
    configure("DEBUG")  # every line the bridge can log is scanned for secrets
    faults = FaultKit(stack, foreign_ca, boto_session, monkeypatch)
    try:
        yield faults
    finally:
        faults.close()
        stack.clear_faults()
        handler.set_bridge(None)
        configure("INFO")
        random.setstate(state)

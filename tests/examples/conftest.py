"""The examples under ``examples/``: each handler run in-process against the local stack.

The secret comes from the stack's Secrets Manager over TLS and the records from its API, as in
Lambda; S3 is moto's, the stack's (``stack.s3``, over TLS on 127.0.0.1), reached by an unmodified
boto3 client through ``AWS_ENDPOINT_URL_S3`` and ``AWS_CA_BUNDLE`` (no ``mock_aws``: that would
intercept every boto3 call of the process, the Secrets Manager reads included).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from okta_bridge.logs import configure
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()  # this directory's own local stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    stack.reset_counts()
    stack.clear_faults()
    stack.api.clear_requests()
    configure("INFO")
    yield
    stack.clear_faults()


class LambdaContext:
    """The two members of Lambda's context object that the client and the handlers read."""

    def __init__(self, request_id: str, remaining_ms: int = 20_000) -> None:
        self.aws_request_id = request_id
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@pytest.fixture(scope="package")
def s3_endpoint(stack: LocalStack) -> str:
    """The stack's moto S3 over TLS (``AWS_ENDPOINT_URL_S3`` must be https)."""
    return stack.s3.endpoint_url


@pytest.fixture
def lambda_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set the environment a deployed example function has: the ``BRIDGE_*`` and ``AWS_*``
    variables pointing at the stack (with ``kind``'s secret stored), and ``extra``."""

    def apply(kind: str = "basic", **extra: str) -> None:
        secret = stack.store_secret(kind)
        for name in LocalStack.UNSET_ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
        for name, value in {**stack.environment(secret), **extra}.items():
            monkeypatch.setenv(name, value)

    return apply


@pytest.fixture
def load_example(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import ``examples/<name>/src/handler.py`` afresh, as a new execution environment would
    (its module-level client, settings and boto3 client built from the current environment)."""

    def load(name: str) -> ModuleType:
        module_name = f"example_{name.replace('-', '_')}_handler"
        spec = importlib.util.spec_from_file_location(
            module_name, EXAMPLES / name / "src" / "handler.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, module_name, module)  # dataclasses look it up
        spec.loader.exec_module(module)
        return module

    return load


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of the test itself (to create buckets and read what was written)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto accepts any credentials
    )

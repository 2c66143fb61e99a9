"""The library (``okta_bridge.Client``) against the local stack over real TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from okta_bridge.logs import configure
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()  # this directory's own local stack


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    stack.reset_counts()
    stack.clear_faults()
    configure("INFO")
    yield
    stack.clear_faults()


class LambdaContext:
    """The two members of Lambda's context object that the client reads."""

    def __init__(self, remaining_ms: int = 20_000, request_id: str = "req-library") -> None:
        self.aws_request_id = request_id
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms

"""Fixtures for the hostile-input tests: their own local stack, a harness per test.

The ``stack`` fixture (tests/conftest.py) gives this directory its own local stack, started only
when a test asks for it (the pure policy tests never do); ``make_harness`` comes from
tests/integration/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import strategies as st

from okta_bridge import handler
from okta_bridge.logs import configure
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture
from tests.integration.conftest import (
    Harness,
    make_harness,
)

stack = stack_fixture()  # this directory's own local stack

ALLOWED_PATHS = ("/v1/data", "/v1/items", "/v1/items/*")


@pytest.fixture(scope="session", autouse=True)
def _unicode_tables() -> None:
    """Have Hypothesis build its Unicode tables before the first test starts.

    Without a ``.hypothesis`` directory (a fresh CI checkout) the first text strategy spends about
    a second building them, which the first test's input-generation health check would count.
    """
    st.text().validate()


@pytest.fixture(scope="package")
def extra_api(stack: LocalStack) -> SampleApi:
    """A second API origin trusting the same Okta: no hostile event may ever reach it."""
    return stack.start_extra_api()


@pytest.fixture
def harness(stack: LocalStack) -> Iterator[Harness]:
    """One bridge per test, shared by all of that test's Hypothesis examples.

    Sharing is what a warm Lambda environment does, and no example changes the stack (no fault is
    injected), so examples stay independent; each one compares the servers' records before and
    after its own invocation.
    """
    configure("INFO")
    stack.clear_faults()
    # Proxy events here are built without an AWS identity: they probe paths and event shapes;
    # refusing anonymous proxy callers is tests/security's subject.
    yield make_harness(stack, allowed_paths=ALLOWED_PATHS, allow_anonymous_proxy=True)
    handler.set_bridge(None)

"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from okta_bridge.auth.dpop import DPOP
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL
from okta_bridge_dev.emulators.stack import LocalStack


@pytest.fixture(autouse=True)
def _fresh_dpop_state() -> Iterator[None]:
    """Each test starts as a new execution environment would: no DPoP key, no nonce a server gave
    an earlier test, nothing learned about whether a token endpoint requires DPoP."""
    DPOP.clear()
    yield
    DPOP.clear()


@pytest.fixture(autouse=True)
def _function_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's AWS credentials, as Lambda always puts them in its environment (the
    bridge signs kms:Sign with them; moto takes any): set unless a test set its own."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(name):
            monkeypatch.setenv(name, DUMMY_CREDENTIAL)


def stack_fixture() -> Callable[..., Any]:
    """A package-scoped ``stack`` fixture for the conftest that assigns it.

    Each test directory's conftest declares ``stack = stack_fixture()`` and so gets a local stack
    (CA, Secrets Manager, Okta, API over TLS) of its own, so no directory's Okta or API state can
    reach another's. A package-scoped fixture defined here instead would be one stack for the
    whole ``tests`` package: pytest scopes it to the package that defines it.
    """

    @pytest.fixture(scope="package")
    def stack() -> Iterator[LocalStack]:
        with LocalStack() as local:
            yield local

    return stack


def clean_stack_fixture() -> Callable[..., Any]:
    """An autouse fixture for a directory whose tests invoke the handler against its ``stack``:
    counts zeroed, faults cleared and INFO logs before each test; faults cleared and the
    handler's bridge forgotten after it."""

    @pytest.fixture(autouse=True)
    def clean_stack(stack: LocalStack) -> Iterator[None]:
        from okta_bridge import handler  # noqa: PLC0415 - only the directories that use it
        from okta_bridge.logs import configure  # noqa: PLC0415

        stack.reset_counts()
        stack.clear_faults()
        configure("INFO")
        yield
        stack.clear_faults()
        handler.set_bridge(None)

    return clean_stack

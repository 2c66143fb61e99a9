"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from okta_bridge_dev.stack import LocalStack


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    """The local stack (CA, Secrets Manager, Okta, API over TLS): one per test directory, so
    no directory's Okta or API state can reach another's."""
    with LocalStack() as local:
        yield local

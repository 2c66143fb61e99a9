"""The attack corpus is large, distinct, aimed at the allow-list, and genuinely dangerous.

A later test that sends the corpus through the bridge and finds ``/admin/keys`` never served
means something only if these hold: most payloads *would* reach a protected resource on some
common server stack if the bridge forwarded them verbatim.
"""

from __future__ import annotations

import collections

import pytest

from tests.security.corpus import ALLOWED_PATHS, FAMILIES, PAYLOADS, TARGETS, reaches_target
from tests.security.normalizers import MODELS

MIN_PAYLOADS = 250
MIN_DANGEROUS = 200
# Aimed at a bridge that decodes, splits or re-joins a path itself, not at any one server's
# reading of it: none of these reaches a target when sent verbatim.
BRIDGE_ONLY_FAMILIES = frozenset({"encoded_semicolons", "double_encoding", "absolute_urls"})


def test_corpus_is_large_and_distinct() -> None:
    assert len(PAYLOADS) >= MIN_PAYLOADS
    assert len(set(PAYLOADS)) == len(PAYLOADS)
    assert all(isinstance(payload, str) and payload for payload in PAYLOADS)


def test_families_partition_the_corpus() -> None:
    """No family repeats another's payload, so the per-family counts are honest."""
    generated = [payload for family in FAMILIES.values() for payload in family]
    assert collections.Counter(generated).most_common(1)[0][1] == 1
    assert tuple(generated) == PAYLOADS
    assert all(FAMILIES.values())


def test_every_payload_starts_inside_the_allow_list() -> None:
    """Each payload looks, to a naive prefix check, like a path the allow-list admits."""
    prefixes = tuple(pattern.rstrip("/*") for pattern in ALLOWED_PATHS)
    assert prefixes == ("/v1/data", "/v1/items", "/v1/items", "/v1/items")
    assert all(payload.startswith(prefixes) for payload in PAYLOADS)


def test_every_payload_names_a_target() -> None:
    """Every payload is aimed at a protected resource (spelled plainly or otherwise)."""
    spelled_plainly = [p for p in PAYLOADS if any(t.rsplit("/", 1)[-1] in p for t in TARGETS)]
    assert len(spelled_plainly) >= len(PAYLOADS) - 20  # the rest use look-alike letters


def test_most_payloads_reach_a_target_verbatim() -> None:
    dangerous = [payload for payload in PAYLOADS if reaches_target(payload)]
    assert len(dangerous) >= MIN_DANGEROUS


def test_every_model_is_exercised() -> None:
    """Each modelled server is fooled by some payload: no stack's quirks are left untested."""
    fooled = collections.Counter(server for p in PAYLOADS for server in reaches_target(p))
    assert set(fooled) == set(MODELS)
    assert min(fooled.values()) >= 50


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_server_family_reaches_a_target(family: str) -> None:
    """A family meant for server parsers that fools none of them is a dead family."""
    reaching = [p for p in FAMILIES[family] if reaches_target(p)]
    if family in BRIDGE_ONLY_FAMILIES:
        assert reaching == []
    else:
        assert reaching


@pytest.mark.parametrize(
    ("raw", "servers"),
    [
        ("/v1/items/..;/..;/admin/keys", {"servlet"}),
        ("/v1/items/..%5c..%5cadmin/keys", {"aspnet"}),
        ("/v1/items/..%2f..%2finternal/config", {"nginx", "go", "aspnet"}),
        ("/v1/items/%2e%2e/%2e%2e/admin/keys", set(MODELS)),
        ("/v1/items/../../admin/keys/", set(MODELS)),  # a trailing slash still serves it
        ("/v1/items/7", set()),
        ("/v1/items/../../admin/keys/x", set()),
        ("/v1/items/%252e%252e/%252e%252e/admin/keys", set()),
    ],
)
def test_reaches_target(raw: str, servers: set[str]) -> None:
    assert reaches_target(raw) == servers

"""Diagnose with the shared token cache (``BRIDGE_TOKEN_CACHE``): a ``token_cache`` target after
the secret (DynamoDB's DNS, TCP and TLS, the item ``read``, its key ``open``ed in KMS), facts
without secret material, and a cache failure that skips neither the token nor the API hops."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.config import Settings
from okta_bridge_dev.emulators.stack import TOKEN_CACHE_TABLE, LocalStack
from tests.diagnose.conftest import (
    Diagnose,
    LambdaContext,
    Report,
    assert_failed,
    assert_ok,
    assert_skipped,
    free_port,
    hop,
)

NETWORK = ("dns", "tcp", "tls")
FALLS_BACK = "falls back to minting"


def targets(report: Report) -> list[str]:
    return list(dict.fromkeys(h["target"] for h in report["hops"]))


def assert_calls_ran(report: Report) -> None:
    """The token and API hops ran and passed, whatever the cache met."""
    assert_ok(report, "token_host", (*NETWORK, "token"))
    assert_ok(report, "api_host", (*NETWORK, "api"))


def assert_no_writes(stack: LocalStack) -> None:
    """Diagnose reads the table and never writes to it."""
    assert [stack.dynamodb.counts.get(a) for a in ("PutItem", "UpdateItem")] == [None, None]


def assert_no_secret(report: Report, stack: LocalStack) -> None:
    text = json.dumps(report)
    leaked = [value for value in stack.all_secret_material() if value in text]
    assert leaked == []


def fill_cache(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, secret_id: str) -> None:
    """One invocation of a bridge with the cache on: it mints and publishes the fleet's token."""
    for variable in LocalStack.UNSET_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in stack.environment(secret_id, token_cache=True).items():
        monkeypatch.setenv(variable, value)
    handler.set_bridge(None)
    try:
        assert handler.lambda_handler({}, LambdaContext("fill"))["statusCode"] == 200
    finally:
        handler.set_bridge(None)
    assert stack.dynamodb.counts.get("PutItem") == 1  # the token, published for the fleet
    stack.reset_counts()


def test_a_cached_token_is_read_and_opened_and_nothing_secret_is_reported(
    run_diagnose: Diagnose, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = stack.store_secret("basic", "diagnose/cache-hit")
    fill_cache(stack, monkeypatch, name)

    report = run_diagnose(secret_name=name, store=False, token_cache=True)

    assert report["ok"], report["first_failure"]
    order = targets(report)
    assert order.index("secret") < order.index("token_cache") < order.index("token_host")
    assert_ok(report, "token_cache", (*NETWORK, "read", "open"))
    read = hop(report, "token_cache", "read")["facts"]
    assert (read["table"], read["item"], read["token"], read["fresh"]) == (
        TOKEN_CACHE_TABLE,
        True,
        True,
        True,
    )
    assert read["key"].startswith("token#")
    assert 0 < read["refresh_in"] < read["expires_in"] <= 3600
    assert read["issued_ago"] >= 0
    assert read["lease_held"] is False
    opened = hop(report, "token_cache", "open")["facts"]
    assert (opened["kms_action"], opened["opened"], opened["token_type"]) == (
        "Decrypt",
        True,
        "Bearer",
    )
    assert opened["encryption_context"] == {"okta-bridge:purpose": "token-cache"}
    # One read and one Decrypt; diagnose never writes to the table.
    assert stack.dynamodb.counts.get("GetItem") == 1
    assert stack.kms.counts.get("Decrypt") == 1
    assert_no_writes(stack)
    assert_no_secret(report, stack)
    stored = stack.dynamodb.items(TOKEN_CACHE_TABLE)
    text = json.dumps(report)
    assert stored
    for item in stored:  # nor the sealed item's bytes
        for attribute in ("ct", "edk"):
            sealed = item[attribute]["B"]
            assert base64.b64encode(sealed).decode() not in text
            assert sealed.hex() not in text


def test_an_empty_item_proves_the_grant_with_one_data_key(
    run_diagnose: Diagnose, stack: LocalStack
) -> None:
    report = run_diagnose(secret_name="diagnose/cache-empty", token_cache=True)

    assert report["ok"], report["first_failure"]
    read = hop(report, "token_cache", "read")["facts"]
    assert (read["item"], read["token"]) == (False, False)
    assert "expires_in" not in read
    opened = hop(report, "token_cache", "open")["facts"]
    assert (opened["kms_action"], opened["data_key_bytes"]) == ("GenerateDataKey", 32)
    assert opened["encrypted_key_bytes"] > 0
    assert "opened" not in opened
    assert stack.kms.counts.get("GenerateDataKey") == 1
    assert not stack.kms.counts.get("Decrypt")
    assert_no_writes(stack)
    assert_no_secret(report, stack)


def test_a_refused_read_is_reported_and_the_token_and_api_hops_still_run(
    run_diagnose: Diagnose, stack: LocalStack
) -> None:
    stack.dynamodb.inject_error("GetItem", "AccessDeniedException", times=5)

    report = run_diagnose(secret_name="diagnose/cache-denied", token_cache=True)

    failed = assert_failed(report, "token_cache", "read", "TOKEN_CACHE_REFUSED")
    assert "AccessDeniedException" in failed["message"]
    assert failed["facts"]["aws_error"] == "AccessDeniedException"
    assert FALLS_BACK in failed["facts"]["fallback"]
    assert failed["stage"] == "token_cache"
    assert_ok(report, "token_cache", NETWORK)
    assert_skipped(report, "token_cache", ("open",), FALLS_BACK)
    assert_calls_ran(report)
    assert_no_secret(report, stack)


def test_a_refused_data_key_fails_the_open_hop_only(
    run_diagnose: Diagnose, stack: LocalStack
) -> None:
    stack.kms.inject_error("GenerateDataKey", 400, "AccessDeniedException", times=5)

    report = run_diagnose(secret_name="diagnose/cache-no-grant", token_cache=True)

    failed = assert_failed(report, "token_cache", "open", "TOKEN_CACHE_REFUSED")
    assert failed["facts"]["aws_error"] == "AccessDeniedException"
    assert FALLS_BACK in failed["facts"]["fallback"]
    assert_ok(report, "token_cache", (*NETWORK, "read"))
    assert_calls_ran(report)


def test_an_unreachable_dynamodb_skips_the_read_and_the_calls_still_run(
    run_diagnose: Diagnose, stack: LocalStack
) -> None:
    cache = Settings.from_env(stack.environment("x", token_cache=True)).token_cache
    assert cache is not None
    closed = cache._replace(endpoint=f"https://127.0.0.1:{free_port()}")

    report = run_diagnose(secret_name="diagnose/cache-unreachable", token_cache=closed)

    assert_failed(report, "token_cache", "tcp", "TCP_REFUSED")
    assert_skipped(report, "token_cache", ("tls", "read", "open"), "TCP_REFUSED")
    assert_skipped(report, "token_cache", ("read", "open"), FALLS_BACK)
    assert_calls_ran(report)


def test_without_the_cache_there_is_no_token_cache_target(run_diagnose: Diagnose) -> None:
    report = run_diagnose(secret_name="diagnose/cache-off")
    assert report["ok"], report["first_failure"]
    assert "token_cache" not in targets(report)


CHILD = r"""
import json, sys
import okta_bridge.handler as handler
class Context:
    aws_request_id = "req-diag-cache"
    def get_remaining_time_in_millis(self):
        return 20_000
report = handler.lambda_handler({"action": "diagnose"}, Context())
targets = sorted({h["target"] for h in report["hops"]})
fleet = sorted(m for m in sys.modules if m.startswith("okta_bridge.fleet"))
print(json.dumps({"ok": report["ok"], "targets": targets, "fleet": fleet}))
"""


@pytest.mark.parametrize("cache", [False, True])
def test_diagnose_imports_the_fleet_only_with_the_cache(stack: LocalStack, cache: bool) -> None:
    name = stack.store_secret("basic", f"diagnose/cache-imports-{cache}")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", CHILD],
        env={**base, **stack.environment(name, token_cache=cache)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["ok"] is True
    assert ("token_cache" in found["targets"]) is cache
    assert bool(found["fleet"]) is cache  # the control: with the cache, the probe sees it loaded


def test_an_altered_item_is_reported_corrupt_and_the_calls_still_run(
    run_diagnose: Diagnose, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = stack.store_secret("basic", "diagnose/cache-altered")
    fill_cache(stack, monkeypatch, name)
    key = hop(run_diagnose(secret_name=name, store=False, token_cache=True), "token_cache", "read")
    item = next(
        i for i in stack.dynamodb.items(TOKEN_CACHE_TABLE) if i["pk"]["S"] == key["facts"]["key"]
    )
    sealed = item["ct"]["B"]
    stack.dynamodb.put_raw_item(
        TOKEN_CACHE_TABLE, {**item, "ct": {"B": sealed[:-1] + bytes([sealed[-1] ^ 1])}}
    )

    report = run_diagnose(secret_name=name, store=False, token_cache=True)

    failed = assert_failed(report, "token_cache", "open", "TOKEN_CACHE_CORRUPT")
    assert FALLS_BACK in failed["facts"]["fallback"]
    assert_ok(report, "token_cache", (*NETWORK, "read"))
    assert_calls_ran(report)

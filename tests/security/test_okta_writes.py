"""Finding 7: Okta Management writes are never retried blindly.

Creating a client secret, adding a key, a lifecycle change and a password change are not
idempotent. The transport used to retry them after a 502/503/504 or a reset, as it does a read:
a create whose answer was lost became two secrets (or hit Okta's two-secret limit), a key was
added twice. Now a write is retried only when it surely never reached Okta; when its outcome is
unknown, the rotation looks the result up and decides.

Each fault below lets the Okta-like server do the work and then answers 503 (or resets), so the
write happened but its answer was lost: the hardest case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.config import Settings
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.rotation.okta_admin import JWKS, SECRETS, OktaAdmin
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack

APP = CLIENT_IDS["basic"]
KEY_APP = CLIENT_IDS["jwt-es256"]


@pytest.fixture
def admin(stack: LocalStack) -> Iterator[OktaAdmin]:
    """The rotation's Management API client; the apps get back their original credentials."""
    settings = Settings.from_env(stack.environment(stack.store_secret("basic")))
    http = HttpClient(settings)
    credentials = parse_admin_secret(json.dumps(stack.admin_secret_value()))
    client = OktaAdmin(credentials, http, TokenEndpoint(http))
    secrets = {s.id for s in stack.okta.client_secrets(APP)}
    keys = {k.id for k in stack.okta.client_keys(KEY_APP)}
    yield client
    stack.clear_faults()
    for app, kind, kept, listed in (
        (APP, SECRETS, secrets, stack.okta.client_secrets(APP)),
        (KEY_APP, JWKS, keys, stack.okta.client_keys(KEY_APP)),
    ):
        for item in listed:
            if item.id not in kept:
                if item.status == "ACTIVE":
                    client.set_status(app, kind, item.id, Deadline(10.0), active=False)
                client.delete(app, kind, item.id, Deadline(10.0))


def posts(stack: LocalStack, path: str) -> int:
    return sum(1 for r in stack.okta.requests if r.method == "POST" and r.path == path)


def lost_answer(path: str, *, reset: bool = False) -> Fault:
    """The server acts on the POST, then the answer is lost (503) or never comes (reset)."""
    if reset:
        return Fault(match=path, method="POST", reset=True)
    return Fault(match=path, method="POST", status=503)


def test_a_client_secret_whose_answer_was_lost_is_not_created_twice(
    stack: LocalStack, admin: OktaAdmin
) -> None:
    path = f"/api/v1/apps/{APP}/credentials/secrets"
    before = {s.id for s in stack.okta.client_secrets(APP)}
    stack.okta.clear_requests()
    stack.okta.inject(lost_answer(path))
    created, value = admin.create_secret(APP, Deadline(20.0), status="INACTIVE")
    held = stack.okta.client_secrets(APP)
    new = [s for s in held if s.id not in before]
    # The secret whose value was lost is gone; exactly one new secret, the one we hold.
    assert [(s.id, s.status) for s in new] == [(created.id, "INACTIVE")]
    assert new[0].value == value
    assert posts(stack, path) == 2


def test_a_reset_before_okta_acted_costs_one_more_create(
    stack: LocalStack, admin: OktaAdmin
) -> None:
    path = f"/api/v1/apps/{APP}/credentials/secrets"
    before = {s.id for s in stack.okta.client_secrets(APP)}
    stack.okta.clear_requests()
    stack.okta.inject(lost_answer(path, reset=True))
    created, _ = admin.create_secret(APP, Deadline(20.0), status="INACTIVE")
    new = [s.id for s in stack.okta.client_secrets(APP) if s.id not in before]
    assert new == [created.id]


def test_a_key_whose_answer_was_lost_is_found_not_added_again(
    stack: LocalStack, admin: OktaAdmin
) -> None:
    from okta_bridge.rotation.keys import new_key_like  # noqa: PLC0415

    path = f"/api/v1/apps/{KEY_APP}/credentials/jwks"
    pair = new_key_like(stack.secret_value("jwt-es256")["private_key"])
    stack.okta.clear_requests()
    stack.okta.inject(lost_answer(path))
    added = admin.add_key(KEY_APP, pair.jwk, Deadline(20.0), status="INACTIVE")
    assert added.kid == pair.kid
    assert [k.kid for k in stack.okta.client_keys(KEY_APP)].count(pair.kid) == 1
    assert posts(stack, path) == 1  # looked up, not sent again


def test_a_lifecycle_change_whose_answer_was_lost_is_looked_up(
    stack: LocalStack, admin: OktaAdmin
) -> None:
    created, _ = admin.create_secret(APP, Deadline(20.0), status="INACTIVE")
    path = f"/api/v1/apps/{APP}/credentials/secrets/{created.id}/lifecycle/activate"
    stack.okta.clear_requests()
    stack.okta.inject(lost_answer(path))
    admin.set_status(APP, SECRETS, created.id, Deadline(20.0), active=True)
    assert next(s.status for s in stack.okta.client_secrets(APP) if s.id == created.id) == "ACTIVE"
    assert posts(stack, path) == 1

"""Full rotations, each step run twice, failures after each step, and the bridge during rotation."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from typing import Any

import jwt
import pytest

from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.errors import BridgeError, RotationError
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.rotation.okta_admin import OktaAdmin
from okta_bridge.rotation.versions import STEPS, RotationRequest
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import ADMIN_CLIENT_ID, PASSWORD_USER, LocalStack
from tests.rotation.conftest import Kit

SECRET_KINDS = ("basic", "post")
KEY_KINDS = ("jwt-rs256", "jwt-es256")
KMS_KINDS = ("kms-rs256", "kms-es256")  # issue 16: keys in KMS, see test_kms_rotation
ALL_KINDS = (*SECRET_KINDS, *KEY_KINDS, "password")


def assert_rotated(kit: Kit, token: str, old_version: str) -> None:
    """The end state of a good rotation, whatever happened on the way."""
    stages = kit.stages()
    assert stages[token] == ["AWSCURRENT"]
    assert stages[old_version] == ["AWSPREVIOUS"]
    assert not [v for v, labels in stages.items() if "AWSPENDING" in labels]
    new, old = kit.version("AWSCURRENT"), kit.version("AWSPREVIOUS")
    okta = kit.stack.okta
    if kit.kind in SECRET_KINDS:
        held = okta.client_secrets(kit.client_id)
        assert [(s.id, s.status) for s in held] == [(new.okta_secret_id, "ACTIVE")]
        assert held[0].value == new.client_secret
    elif kit.kind in (*KEY_KINDS, *KMS_KINDS):
        held_keys = okta.client_keys(kit.client_id)
        assert [(k.kid, k.status) for k in held_keys] == [(new.key_id, "ACTIVE")]
    else:
        assert okta.user_password(PASSWORD_USER) == new.password
    assert kit.token_outcome(new) == "ok"
    # A retired KMS key cannot even sign (test_kms_rotation shows Okta refuses its kid too).
    refused = {"password": "TOKEN_GRANT_INVALID", **dict.fromkeys(KMS_KINDS, "KMS_KEY_DISABLED")}
    assert kit.token_outcome(old) == refused.get(kit.kind, "TOKEN_REJECTED")


def current_version(kit: Kit) -> str:
    return str(kit.sm.get_secret_value(SecretId=kit.secret_id)["VersionId"])


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_full_rotation_leaves_only_the_new_credential(make_kit: Any, kind: str) -> None:
    kit: Kit = make_kit(kind)
    harness = kit.harness()
    assert harness.invoke({})["statusCode"] == 200
    before, old_version = kit.raw("AWSCURRENT"), current_version(kit)

    token = kit.rotate()

    assert_rotated(kit, token, old_version)
    after = kit.raw("AWSCURRENT")
    changed = {key for key in after if after[key] != before.get(key)}
    expected = {
        "basic": {"client_secret", "okta_secret_id"},
        "post": {"client_secret", "okta_secret_id"},
        "jwt-rs256": {"private_key", "key_id"},
        "jwt-es256": {"private_key", "key_id"},
        "password": {"password"},
    }[kind]
    assert changed == expected
    # The warm bridge keeps its token; once it needs a new one, it re-reads and carries on.
    assert harness.invoke({})["statusCode"] == 200
    harness.bridge.tokens.clear()
    assert harness.invoke({})["statusCode"] == 200


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_a_new_key_keeps_the_family_and_gets_a_unique_kid(make_kit: Any, kind: str) -> None:
    kit: Kit = make_kit(kind)
    old = kit.version("AWSCURRENT")
    kit.rotate()
    new = kit.version("AWSCURRENT")
    assert new.key_id != old.key_id
    assert new.key_id is not None
    assert new.key_id.startswith("okta-bridge-")
    header = jwt.get_unverified_header(_assertion(kit, new))
    assert header["alg"] == ("RS256" if kind == "jwt-rs256" else "ES256")
    assert header["kid"] == new.key_id


def _assertion(kit: Kit, credentials: Any) -> str:
    from okta_bridge.auth.client_auth import authenticate  # noqa: PLC0415

    return authenticate(credentials).form["client_assertion"]


@pytest.mark.parametrize("kind", ["basic", "jwt-es256", "password"])
def test_each_step_run_twice_gives_the_same_result(make_kit: Any, kind: str) -> None:
    kit: Kit = make_kit(kind)
    old_version = current_version(kit)
    token = kit.begin()
    for step in STEPS:
        kit.step(step, token)
        snapshot = (kit.stages(), _okta_state(kit))
        kit.step(step, token)
        assert (kit.stages(), _okta_state(kit)) == snapshot, step
    assert_rotated(kit, token, old_version)


def _okta_state(kit: Kit) -> Any:
    okta = kit.stack.okta
    if kit.kind in SECRET_KINDS:
        return [(s.id, s.status) for s in okta.client_secrets(kit.client_id)]
    if kit.kind in (*KEY_KINDS, *KMS_KINDS):
        return [(k.id, k.kid, k.status) for k in okta.client_keys(kit.client_id)]
    return okta.user_password(PASSWORD_USER)


def _fail_step(kit: Kit, step: str) -> None:
    """Make ``step`` fail the way production would see it, once the step has started."""
    stack = kit.stack
    credentials = "secrets" if kit.kind in SECRET_KINDS else "jwks"
    lifecycle = f"/api/v1/apps/{kit.client_id}/credentials/{credentials}/"
    if step == "finishSecret" and kit.kind == "password":
        # A password has nothing to retire in Okta: fail the promotion itself.
        stack.secrets_manager.inject_error(
            "UpdateSecretVersionStage", "InternalServiceError", "injected", status=500, times=50
        )
    elif step == "createSecret":
        # Okta made the new credential, then storing it in Secrets Manager failed.
        stack.secrets_manager.inject_error(
            "PutSecretValue", "InternalServiceError", "injected", status=500, times=50
        )
    elif step in ("setSecret", "finishSecret"):
        path = f"/api/v1/users/{stack.okta.user_id(PASSWORD_USER)}/credentials/"
        match = path if kit.kind == "password" else lifecycle
        body = {"errorCode": "E0000009", "errorSummary": "Internal Server Error", "errorCauses": []}
        stack.okta.inject(Fault(match=match, status=500, body=json.dumps(body).encode(), times=50))
    else:
        body = {"error": "invalid_client", "error_description": "injected"}
        token_path = urllib.parse.urlsplit(stack.okta.token_url).path
        stack.okta.inject(
            Fault(match=token_path, status=401, body=json.dumps(body).encode(), times=1)
        )


@pytest.mark.parametrize("kind", ["basic", "jwt-rs256", "kms-rs256", "password"])
@pytest.mark.parametrize("failing", STEPS)
def test_a_failure_in_any_step_then_a_retry_ends_right(
    make_kit: Any, kind: str, failing: str
) -> None:
    kit: Kit = make_kit(kind)
    old_version = current_version(kit)
    token = kit.begin()
    for step in STEPS[: STEPS.index(failing)]:
        kit.step(step, token)
    _fail_step(kit, failing)
    with pytest.raises(BridgeError):
        kit.step(failing, token)
    kit.stack.clear_faults()
    # AWSCURRENT works meanwhile: a bridge that has just started reads it and gets a token.
    assert kit.harness().invoke({})["statusCode"] == 200
    # Secrets Manager retries the whole rotation with the same version.
    for step in STEPS:
        kit.step(step, token)
    assert_rotated(kit, token, old_version)


def test_a_leftover_inactive_secret_from_a_failed_run_is_cleaned_up(make_kit: Any) -> None:
    kit: Kit = make_kit("basic")
    kit.stack.okta.add_client_secret(kit.client_id, status="INACTIVE")
    old_version = current_version(kit)
    token = kit.rotate()
    assert_rotated(kit, token, old_version)


def test_two_active_secrets_the_secret_does_not_know_are_named_not_guessed(
    make_kit: Any,
) -> None:
    kit: Kit = make_kit("basic")
    extra = kit.stack.okta.add_client_secret(kit.client_id)
    before = _okta_state(kit)
    token = kit.begin()
    with pytest.raises(RotationError) as caught:
        kit.step("createSecret", token)
    assert caught.value.code == "ROTATION_SECRET_LIMIT"
    for secret_id, _ in before:
        assert secret_id in caught.value.message
    assert extra.id in caught.value.message
    assert _okta_state(kit) == before
    assert kit.token_outcome(kit.version("AWSCURRENT")) == "ok"


def test_an_unknown_active_secret_besides_the_known_one_stops_the_rotation(
    make_kit: Any,
) -> None:
    kit: Kit = make_kit("basic")
    kit.rotate()  # now the secret knows its okta_secret_id
    extra = kit.stack.okta.add_client_secret(kit.client_id)
    with pytest.raises(RotationError) as caught:
        kit.step("createSecret", kit.begin())
    assert caught.value.code == "ROTATION_SECRET_LIMIT"
    assert extra.id in caught.value.message
    assert len(kit.stack.okta.client_secrets(kit.client_id)) == 2


@pytest.mark.parametrize("kind", ["basic", "jwt-es256"])
def test_a_test_secret_failure_leaves_awscurrent_untouched_and_working(
    make_kit: Any, kind: str
) -> None:
    kit: Kit = make_kit(kind)
    old_version = current_version(kit)
    token = kit.begin()
    kit.step("createSecret", token)
    kit.step("setSecret", token)
    pending = kit.version("AWSPENDING")
    _deactivate_in_okta(kit, pending)  # the new credential stops working
    with pytest.raises(RotationError) as caught:
        kit.step("testSecret", token)
    assert caught.value.code == "ROTATION_TEST_FAILED"
    assert "AWSCURRENT" in kit.stages()[old_version]
    assert kit.token_outcome(kit.version("AWSCURRENT")) == "ok"
    assert kit.harness().invoke({})["statusCode"] == 200
    for step in STEPS:  # the retry re-activates it and completes
        kit.step(step, token)
    assert_rotated(kit, token, old_version)


def _deactivate_in_okta(kit: Kit, pending: Any) -> None:
    http = HttpClient(kit.settings)
    admin = OktaAdmin(
        parse_admin_secret(json.dumps(kit.stack.admin_secret_value())),
        http,
        TokenEndpoint(http),
    )
    deadline = Deadline(10.0)
    app = kit.client_id
    if kit.kind in SECRET_KINDS:
        admin.set_status(app, "secrets", pending.okta_secret_id, deadline, active=False)
    else:
        key = next(k for k in admin.list_keys(app, deadline) if k.kid == pending.key_id)
        admin.set_status(app, "jwks", key.id, deadline, active=False)


def test_a_directory_mastered_password_fails_safely(make_kit: Any) -> None:
    kit: Kit = make_kit("password")
    okta = kit.stack.okta
    okta.set_user_provider(PASSWORD_USER, "ACTIVE_DIRECTORY", "corp.example.com")
    try:
        password = okta.user_password(PASSWORD_USER)
        token = kit.begin()
        with pytest.raises(RotationError) as caught:
            kit.step("createSecret", token)
        assert caught.value.code == "ROTATION_PASSWORD_DIRECTORY_MASTERED"
        assert "ACTIVE_DIRECTORY" in caught.value.message
        assert okta.user_password(PASSWORD_USER) == password
        with pytest.raises(kit.sm.exceptions.ResourceNotFoundException):
            kit.sm.get_secret_value(SecretId=kit.secret_id, VersionId=token)  # nothing stored
        assert kit.token_outcome(kit.version("AWSCURRENT")) == "ok"
    finally:
        okta.set_user_provider(PASSWORD_USER, "OKTA", "OKTA")


class Traffic:
    """The bridge invoked on threads without pause until stopped; every answer is kept."""

    def __init__(self, invoke: Any, threads: int = 4) -> None:
        self._invoke = invoke
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.statuses: list[int] = []
        self.failures: list[Any] = []
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self._threads)

    def _loop(self) -> None:
        while not self._stop.is_set():
            answer = self._invoke({})
            with self._lock:
                self.statuses.append(answer["statusCode"])
                if answer["statusCode"] != 200:
                    self.failures.append(answer["body"])


@pytest.mark.parametrize("kind", ["basic", "jwt-es256", "kms-rs256", "password"])
def test_the_bridge_never_fails_during_a_rotation(make_kit: Any, kind: str) -> None:
    kit: Kit = make_kit(kind)
    harness = kit.harness()
    assert harness.invoke({})["statusCode"] == 200
    old_version = current_version(kit)
    token = kit.begin()
    with Traffic(harness.invoke) as traffic:
        for step in STEPS:
            kit.step(step, token)
            # Make the bridge need a new token in every state the rotation passes through.
            harness.bridge.tokens.clear()
            assert harness.invoke({})["statusCode"] == 200
    assert traffic.failures == []
    assert len(traffic.statuses) >= 4
    assert_rotated(kit, token, old_version)
    harness.bridge.tokens.clear()
    first = len(kit.stack.okta.requests)
    assert harness.invoke({})["statusCode"] == 200
    token_requests = [r for r in kit.stack.okta.requests[first:] if r.path.endswith("/v1/token")]
    assert token_requests
    assert _credential_used(token_requests[-1]) == _credential_of(kit.version("AWSCURRENT"))


def _credential_used(request: Any) -> str:
    form = dict(urllib.parse.parse_qsl(request.body.decode()))
    if "client_assertion" in form:
        return str(jwt.get_unverified_header(form["client_assertion"])["kid"])
    if "password" in form:
        return form["password"]
    encoded = request.headers["authorization"].split(" ", 1)[1]
    return base64.b64decode(encoded).decode().split(":", 1)[1]


def _credential_of(credentials: Any) -> str:
    if credentials.username:
        return str(credentials.password)
    if credentials.private_key or credentials.kms_key_id:
        return str(credentials.key_id)
    return str(credentials.client_secret)


def test_guards_refuse_what_is_not_a_rotation_in_progress(make_kit: Any) -> None:
    kit: Kit = make_kit("basic")
    old_version = current_version(kit)
    token = kit.rotate()

    def code(step: str, version: str, secret_id: str | None = None) -> str:
        request = RotationRequest(step=step, secret_id=secret_id or kit.arn, token=version)
        with pytest.raises(RotationError) as caught:
            kit.rotator.run(request, Deadline(10.0))
        return caught.value.code

    assert code("createSecret", "no-such-version") == "ROTATION_VERSION_UNKNOWN"
    assert code("setSecret", old_version) == "ROTATION_VERSION_NOT_PENDING"
    assert code("createSecret", token, "arn:aws:secretsmanager:x:1:secret:other") == (
        "ROTATION_SECRET_MISMATCH"
    )
    # A step for the version that is already AWSCURRENT is done: nothing changes.
    state = (kit.stages(), _okta_state(kit))
    kit.step("createSecret", token)
    kit.step("finishSecret", token)
    assert (kit.stages(), _okta_state(kit)) == state


def test_rotation_must_be_enabled(stack: LocalStack, make_kit: Any) -> None:
    kit: Kit = make_kit("basic")
    name = stack.store_secret("basic", "rotation/not-enabled")
    from okta_bridge.rotation.handler import build_rotator  # noqa: PLC0415

    settings = type(kit.settings).from_env(stack.environment(name))
    rotator = build_rotator(settings, kit.admin_id, client=kit.sm)
    version = kit.sm.get_secret_value(SecretId=name)["VersionId"]
    with pytest.raises(RotationError) as caught:
        rotator.run(RotationRequest("createSecret", name, version), Deadline(10.0))
    assert caught.value.code == "ROTATION_NOT_ENABLED"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "JSON object"),
        ({"Step": "deleteSecret", "SecretId": "s", "ClientRequestToken": "t"}, "Step must be"),
        ({"Step": "createSecret", "ClientRequestToken": "t"}, "'SecretId'"),
        ({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": ""}, "ClientRequestToken"),
    ],
)
def test_a_malformed_event_is_refused(event: Any, message: str) -> None:
    with pytest.raises(RotationError) as caught:
        RotationRequest.parse(event)
    assert caught.value.code == "ROTATION_STEP_INVALID"
    assert message in caught.value.message


@pytest.mark.parametrize("kind", ["basic", "jwt-es256", "password"])
def test_a_full_rotation_with_dpop_required_on_the_app_and_the_admin_app(
    make_kit: Any, kind: str
) -> None:
    """Issue 12: the admin app's Management API calls and testSecret's token carry proofs."""
    kit: Kit = make_kit(kind)
    okta = kit.stack.okta
    okta.require_dpop(kit.client_id, on=True)
    okta.require_dpop(ADMIN_CLIENT_ID, on=True)
    try:
        harness = kit.harness()
        assert harness.invoke({})["statusCode"] == 200
        old_version = current_version(kit)
        okta.reset_counts()
        token = kit.rotate()
        assert_rotated_with_dpop(kit, token, old_version)
        assert okta.dpop_counts["bound_token"] >= 2  # the admin's and testSecret's tokens
        assert okta.dpop_counts.get("bearer_refused", 0) == 0
        harness.bridge.tokens.clear()
        assert harness.invoke({})["statusCode"] == 200
    finally:
        okta.require_dpop(kit.client_id, on=False)
        okta.require_dpop(ADMIN_CLIENT_ID, on=False)


def assert_rotated_with_dpop(kit: Kit, token: str, old_version: str) -> None:
    """As ``assert_rotated``, the token outcomes asked with DPoP proofs."""
    stages = kit.stages()
    assert stages[token] == ["AWSCURRENT"]
    assert stages[old_version] == ["AWSPREVIOUS"]
    endpoint = TokenEndpoint(HttpClient(kit.settings), dpop_mode="on")
    endpoint.request(kit.version("AWSCURRENT"), Deadline(10.0))
    with pytest.raises(BridgeError) as refused:
        endpoint.request(kit.version("AWSPREVIOUS"), Deadline(10.0))
    expected = "TOKEN_GRANT_INVALID" if kit.kind == "password" else "TOKEN_REJECTED"
    assert refused.value.code == expected

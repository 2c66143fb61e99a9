"""Rotation against the local stack: moto's Secrets Manager, the Okta-like server and its
Management API, the bridge. Secrets Manager's own part (staging an AWSPENDING version and invoking
the function's steps) is played by ``SecretsManagerServer.begin_rotation``/``attach_rotation``.

Each test starts from fresh Okta credentials under its own secret name, so no test sees another's
rotated state.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from okta_bridge import handler
from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError
from okta_bridge.logs import configure
from okta_bridge.rotation.handler import build_rotator
from okta_bridge.rotation.kms_keys import KmsKeys, KmsRotationSettings, make_kms_client
from okta_bridge.rotation.rotator import Rotator
from okta_bridge.rotation.versions import STEPS, RotationRequest
from okta_bridge.secret.credentials import Credentials, parse_secret
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL
from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.conftest import stack_fixture
from tests.integration.conftest import Harness, make_harness

stack = stack_fixture()  # this directory's own local stack

_names = itertools.count(1)
DELETION_DAYS = 9  # not KMS's default 30: the tests see that the setting is used


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    stack.reset_counts()
    stack.clear_faults()
    configure("INFO")
    yield
    stack.clear_faults()
    stack.secrets_manager.attach_rotation(None)
    handler.set_bridge(None)


@dataclass
class Kit:
    """One credentials secret with rotation on, its rotator, and ways to look at the result."""

    stack: LocalStack
    kind: str
    secret_id: str
    admin_id: str
    settings: Settings
    rotator: Rotator
    sm: Any
    kms: Any  # a boto3 KMS client on the stack's KMS, to look at the keys
    arn: str = ""
    endpoint: TokenEndpoint = field(init=False)

    def __post_init__(self) -> None:
        self.endpoint = TokenEndpoint(HttpClient(self.settings))
        self.arn = self.sm.describe_secret(SecretId=self.secret_id)["ARN"]

    @property
    def client_id(self) -> str:
        return CLIENT_IDS[self.kind]

    def lambda_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The rotation function's environment on this stack (its secret), as Lambda sets it."""
        for name, value in self.stack.environment(self.secret_id).items():
            monkeypatch.setenv(name, value)

    def begin(self) -> str:
        """Stage AWSPENDING on a new empty version, as RotateSecret does; its id."""
        _, token = self.stack.secrets_manager.begin_rotation(self.secret_id)
        return token

    def step(self, step: str, token: str) -> None:
        request = RotationRequest(step=step, secret_id=self.arn, token=token)
        self.rotator.run(request, Deadline(30.0))

    def rotate(self) -> str:
        token = self.begin()
        for step in STEPS:
            self.step(step, token)
        return token

    def stages(self) -> dict[str, list[str]]:
        versions = self.sm.describe_secret(SecretId=self.secret_id)["VersionIdsToStages"]
        return {k: sorted(v) for k, v in versions.items()}

    def version(self, stage: str) -> Credentials:
        text = self.sm.get_secret_value(SecretId=self.secret_id, VersionStage=stage)
        return parse_secret(text["SecretString"], self.settings)

    def raw(self, stage: str) -> dict[str, Any]:
        text = self.sm.get_secret_value(SecretId=self.secret_id, VersionStage=stage)
        return dict(json.loads(text["SecretString"]))

    def token_outcome(self, credentials: Credentials) -> str:
        """``ok`` or the bridge's error code for a token request with ``credentials`` (a KMS
        key that can no longer sign gives a ``KMS_*`` code)."""
        try:
            self.endpoint.request(credentials, Deadline(10.0))
        except BridgeError as exc:
            return exc.code
        return "ok"

    def harness(self, **overrides: Any) -> Harness:
        """A bridge reading this secret (no new version is stored)."""
        return make_harness(
            self.stack, self.kind, secret_name=self.secret_id, store=False, **overrides
        )


def kms_client(settings: Settings) -> Any:
    """A boto3 KMS client on the stack's KMS (no retries: tests count calls)."""
    return make_kms_client(
        settings.aws, max_attempts=1, access_key=DUMMY_CREDENTIAL, secret_key=DUMMY_CREDENTIAL
    )


@pytest.fixture
def make_kit(stack: LocalStack) -> Any:
    """``make_kit(kind)``: fresh Okta credentials for ``kind`` in a new secret, rotation on
    (the bridge's kms:Sign takes AWS credentials from the environment: tests/conftest.py)."""
    admin_id = stack.store_admin_secret()

    def make(kind: str = "basic", kms_settings: KmsRotationSettings | None = None) -> Kit:
        name = f"rotation/{kind}/{next(_names)}"
        stack.rotate_client_secret(kind, name)
        stack.secrets_manager.enable_rotation(name)
        settings = Settings.from_env(stack.environment(name))
        sm = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
        kms = kms_client(settings)
        keys = KmsKeys(kms, kms_settings or KmsRotationSettings(deletion_days=DELETION_DAYS))
        rotator = build_rotator(settings, admin_id, client=sm, http=HttpClient(settings), kms=keys)
        return Kit(stack, kind, name, admin_id, settings, rotator, sm, kms)

    return make

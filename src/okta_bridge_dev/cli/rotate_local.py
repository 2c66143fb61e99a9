"""``okta-bridge rotate --now --local``: the emergency rotation on the local stack, while the
bridge serves on threads the whole time; its failed invocations are reported (there must be none).

Like the demo, this is a local-stack scenario: it lives in a clone, not in the wheel, and the CLI
reaches it only through ``okta_bridge_dev.cli.local``, which says where the local stack is when
this import fails.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from okta_bridge import handler
from okta_bridge.config import Settings
from okta_bridge.request.bridge import Bridge
from okta_bridge.rotation.handler import build_rotator
from okta_bridge.rotation.kms_keys import KmsKeys, KmsRotationSettings, make_kms_client
from okta_bridge.rotation.versions import RotationRequest
from okta_bridge.secret.store import BotoSecretSource
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.console import Console
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL
from okta_bridge_dev.emulators.stack import LocalStack
from okta_bridge_dev.release.errors import RotationFailed
from okta_bridge_dev.release.rotate_now import rotate_now

LOCAL_SECRET = "prod/okta_api_creds"  # noqa: S105 - the design document's secret name


@dataclass
class Traffic:
    """The bridge invoked in a loop on threads, counting outcomes, until ``stop``."""

    threads: int = 4
    served: int = 0
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the invoking threads."""
        for number in range(self.threads):
            worker = threading.Thread(target=self._loop, name=f"traffic-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        """Stop and join the threads (bounded)."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            answer = handler.lambda_handler({}, _Context())
            with self._lock:
                if answer.get("statusCode") == 200:
                    self.served += 1
                else:
                    self.failed.append(json.dumps(answer.get("body"))[:300])


@dataclass
class _Context:
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def run_local(kind: str, console: Console) -> None:
    """``make rotate-now LOCAL=1``: the whole emergency rotation against the local stack.

    Raises ``RotationFailed`` as ``rotate_now`` does, or when the bridge failed an invocation
    during the rotation.
    """
    console.say("Starting the local stack (private CA, Secrets Manager, Okta-like server, API)...")
    with LocalStack() as stack, _local_aws_credentials():
        secret_id = stack.store_secret(kind, LOCAL_SECRET)
        admin_id = stack.store_admin_secret()
        # The bridge's per-invocation metrics lines would bury the progress report here.
        settings = Settings.from_env(stack.environment(secret_id))._replace(metrics=False)
        sm = stack.secrets_manager.client(stack.ca.ca_pem_path)
        kms = make_kms_client(
            settings.aws, access_key=DUMMY_CREDENTIAL, secret_key=DUMMY_CREDENTIAL
        )
        # KMS-signed kinds: the old key is disabled and its deletion scheduled (7 days, KMS's
        # shortest waiting period: nothing is kept of a local stack anyway).
        keys = KmsKeys(kms, KmsRotationSettings(deletion_days=7))
        rotator = build_rotator(settings, admin_id, client=sm, kms=keys)
        stack.secrets_manager.attach_rotation(
            lambda event: rotator.run(RotationRequest.parse(event), Deadline(60.0))
        )
        stack.secrets_manager.enable_rotation(secret_id)
        bridge = Bridge(settings, source=BotoSecretSource(settings, sm))
        handler.set_bridge(bridge)
        console.say(f"  secret {secret_id!r} ({kind}); the bridge is serving on 4 threads\n")
        traffic = Traffic()
        traffic.start()
        failed: RotationFailed | None = None
        try:
            try:
                rotate_now(sm, secret_id, settings, console, timeout=120.0, poll=0.2)
            except RotationFailed as exc:
                failed = exc  # the bridge's side is reported first, as it was observed
            # The bridge's cached token is still good; expire it to show the next token request.
            before = bridge.tokens.requests
            bridge.tokens.clear()
            answer = handler.lambda_handler({}, _Context())
        finally:
            traffic.stop()
            handler.set_bridge(None)
        console.say(
            f"\nbridge: {traffic.served} invocations served during the rotation, "
            f"{len(traffic.failed)} failed"
        )
        console.say(
            f"bridge after its token expired: HTTP {answer.get('statusCode')}, "
            f"{bridge.tokens.requests - before} token request(s), now with the new credential"
        )
        for failure in traffic.failed[:5]:
            console.error(f"failed invocation: {failure}")
        if failed is not None:
            raise failed
        if traffic.failed:
            raise RotationFailed(f"the bridge failed {len(traffic.failed)} invocation(s)")
        if answer.get("statusCode") != 200:
            raise RotationFailed(f"the bridge answered HTTP {answer.get('statusCode')}")


@contextmanager
def _local_aws_credentials() -> Iterator[None]:
    """The stack's dummy AWS credentials in the environment while it runs: the bridge's
    ``kms:Sign`` (KMS-signed kinds) takes the function's credentials from there, as in Lambda."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, DUMMY_CREDENTIAL))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

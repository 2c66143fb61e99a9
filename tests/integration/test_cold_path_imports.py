"""What the bridge's cold path loads (issue 18): the import list is the contract, the timings are
the benchmark's (``make bench``).

Two checks in fresh interpreters: importing the handler (Init), and importing it then serving one
invocation against the local stack, which reads the secret, gets a token and calls the API, for
each kind of client. Neither may load what that client does not use: each module below costs
cold-start milliseconds (measured figures in README's design section).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from okta_bridge_dev.emulators.stack import CLIENT_IDS, LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()  # this module's own local stack

# Never on the cold path of any client.
NEVER = (
    "jwt",  # PyJWT (~98 ms): okta_bridge.auth.jose makes the JWS, cryptography signs
    "urllib.request",  # NO_PROXY matching, only when a proxy is set (~15 ms)
    "importlib.metadata",  # urllib3's HTTP/2 opt-in checks h2's version with it (~8 ms): deferred
    "inspect",  # only dataclasses needed it (~11 ms, with ast, dis and tokenize)
    "dataclasses",  # ~1 ms per class defined on the cold path: NamedTuples and plain classes
    "zipfile",  # importlib.metadata's
    "shutil",  # mTLS client key files only
    "tempfile",  # mTLS client key files only
    "pathlib",  # paths stay strings (~2.5 ms)
    "uuid",  # jti values are os.urandom's; a request id only when Lambda gives none
    "concurrent.futures",  # BRIDGE_SECRET_SOURCE=sdk only (boto3's calls on a worker)
    "boto3",  # the bridge signs its own AWS requests (SigV4)
    "okta_bridge.fleet",  # the shared token cache: only with BRIDGE_TOKEN_CACHE
    "botocore",
    "opentelemetry",  # BRIDGE_TRACING=on only
    "okta_bridge.delivery",  # S3 delivery of large answers, when configured and needed
    "okta_bridge.ops",  # diagnose, SnapStart hooks
    "okta_bridge.rotation",  # the rotation function
    "okta_bridge_dev",  # the CLI and the local stack
    "moto",
)
# Loaded only by the clients that use them.
KEYS_ONLY = ("cryptography",)  # a PEM key in the secret, or DPoP proofs
KMS_ONLY = ("okta_bridge.auth.kms_signing",)  # a secret naming kms_key_id
# cryptography's serialization package (its SSH key module) loads these when a PEM is parsed.
PEM_ONLY = ("inspect", "dataclasses")

CHILD = r"""
import json, sys
import okta_bridge.handler as handler
imported = set(sys.modules)
answer = None
if sys.argv[1] == "invoke":
    class Context:
        aws_request_id = "req-cold-path"
        def get_remaining_time_in_millis(self):
            return 20_000
    answer = handler.lambda_handler({}, Context()).get("statusCode")
print(json.dumps({"init": sorted(imported), "all": sorted(sys.modules), "status": answer}))
"""


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages included) are among ``modules``."""
    return [m for m in names if any(n == m or n.startswith(m + ".") for n in modules)]


def run(mode: str, env: dict[str, str] | None = None) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", CHILD, mode],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_importing_the_handler_loads_nothing_it_does_not_need_yet() -> None:
    report = run("import")
    modules = report["init"]
    assert isinstance(modules, list)
    assert loaded(modules, NEVER + KEYS_ONLY + KMS_ONLY) == []
    # The control: the same probe sees what the handler does import.
    assert loaded(modules, ("okta_bridge.transport.client", "urllib3", "ssl")) == [
        "okta_bridge.transport.client",
        "urllib3",
        "ssl",
    ]


def _secret(stack: LocalStack, kind: str) -> str:
    if kind == "dpop":
        stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
        return stack.secrets_manager.put_secret(
            "cold-path/dpop", {**stack.secret_value("basic"), "dpop": True}
        )
    return stack.store_secret(kind, f"cold-path/{kind}")


@pytest.mark.parametrize(
    ("kind", "allowed"),
    [
        ("basic", ()),
        ("post", ()),
        ("jwt-rs256", KEYS_ONLY + PEM_ONLY),
        ("jwt-es256", KEYS_ONLY + PEM_ONLY),
        ("kms-es256", KMS_ONLY),
        ("dpop", KEYS_ONLY),
    ],
)
def test_a_cold_invocation_loads_only_what_its_client_uses(
    stack: LocalStack, kind: str, allowed: tuple[str, ...]
) -> None:
    try:
        report = run("invoke", stack.environment(_secret(stack, kind)))
    finally:
        stack.okta.require_dpop(CLIENT_IDS["basic"], on=False)
    assert report["status"] == 200  # the invocation did read the secret, get a token, call the API
    modules = report["all"]
    assert isinstance(modules, list)
    refused = tuple(m for m in NEVER + KEYS_ONLY + KMS_ONLY if m not in allowed)
    assert loaded(modules, refused) == []
    assert loaded(modules, allowed) == list(allowed)  # the control: what it uses is seen

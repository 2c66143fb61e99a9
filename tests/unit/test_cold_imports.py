"""What importing the bridge's handler loads (issue 18's groundwork): none of what only a
PEM key, KMS signing, diagnose, rotation, tracing, S3 delivery, boto3 or the local stack needs.
Each costs cold-start milliseconds that a client without that feature must not pay; the list is
the contract, the timings are the benchmark's."""

from __future__ import annotations

import json
import subprocess
import sys

# Loaded later, by the code that needs them, or never in the bridge.
NOT_AT_IMPORT = (
    "jwt",  # PyJWT: only a PEM-keyed private_key_jwt client, at its first token request
    "cryptography",  # PEM keys and DPoP proofs, on first use
    "urllib.request",  # NO_PROXY matching, only when a proxy is set (~15 ms)
    "boto3",
    "botocore",
    "opentelemetry",  # BRIDGE_TRACING=on only
    "okta_bridge.auth.kms_signing",  # a secret naming kms_key_id, at its first token request
    "okta_bridge.delivery",
    "okta_bridge.ops",
    "okta_bridge.rotation",
    "okta_bridge_dev",
    "moto",
)


def test_importing_the_handler_loads_nothing_it_does_not_need_yet() -> None:
    code = (
        "import json, sys, okta_bridge.handler; "
        f"print(json.dumps([m for m in {list(NOT_AT_IMPORT)!r} "
        "if any(n == m or n.startswith(m + '.') for n in sys.modules)]))"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


def test_the_check_sees_a_module_that_is_loaded() -> None:
    """The control: the same probe finds what the handler does import."""
    code = "import sys, okta_bridge.handler; print('okta_bridge.transport.client' in sys.modules)"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"

"""The trust store parsed during Init on a thread (``transport.trust``)."""

from __future__ import annotations

import subprocess
import sys

from okta_bridge.transport import trust


def test_a_process_that_exits_while_the_store_parses_exits_cleanly() -> None:
    """Importing the handler starts the parse; a script that exits at once must wait for it
    (a daemon thread still inside OpenSSL when the process exits crashed about every other
    run: OpenSSL's exit-time cleanup freed what the parse was using)."""
    code = "import okta_bridge.secret.sources, okta_bridge.handler; print('ok')"
    for _ in range(20):
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


def test_the_prepared_context_goes_to_one_caller_and_every_context_verifies() -> None:
    trust.prepare()
    first, second = trust.context(None), trust.context(None)
    assert first is not second
    for built in (first, second):
        assert built.verify_mode.name == "CERT_REQUIRED"
        assert built.check_hostname
        assert built.minimum_version.name == "TLSv1_2"
        assert built.cert_store_stats()["x509_ca"] > 0

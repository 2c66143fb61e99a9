"""``python -m okta_bridge_dev.emulators.stack``: a local stack to poke at by hand from a shell.

Prints the exports that point the bridge and boto3 at the stack (those of the opt-in shared
token cache as comments), then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from typing import TYPE_CHECKING

from okta_bridge_dev.emulators.stack import LocalStack

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["serve"]


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds through LocalStack.__exit__: servers stop, keys are removed


def serve() -> int:
    """Start a stack, store the "basic" secret, print shell exports, serve until Ctrl-C."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with LocalStack() as stack:
        name = stack.store_secret("basic")
        for variable in LocalStack.UNSET_ENVIRONMENT:
            print(f"unset {variable}")
        environment = stack.environment(name)
        for variable, value in environment.items():
            print(f"export {variable}={shlex.quote(value)}")
        print("# the shared token cache is opt in: export these too to turn it on")
        for variable, value in stack.environment(name, token_cache=True).items():
            if variable not in environment:
                print(f"# export {variable}={shlex.quote(value)}")
        print(f"# secret {name!r} holds the client_secret_basic credentials", flush=True)
        print("# local stack running on 127.0.0.1; Ctrl-C stops it", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0

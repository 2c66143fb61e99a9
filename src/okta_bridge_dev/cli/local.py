"""The commands that run on the local stack: ``demo``, ``rotate --now --local`` and
``okta-jwk --local``.

The local stack (``okta_bridge_dev.emulators``: moto, werkzeug, the fake Okta) is the dev extra's
and is not part of the installed package's promise, so it is imported here, inside the functions,
and only when one of these commands runs: ``okta-bridge --help``, ``deploy`` or ``invoke`` start
without it. When it is missing, the command says where the local stack lives instead of failing
with a traceback.
"""

from __future__ import annotations

import argparse
import importlib

from okta_bridge_dev.cli.exit_codes import EXIT_OK
from okta_bridge_dev.console import Console
from okta_bridge_dev.release.errors import UsageError

__all__ = [
    "LOCAL_STACK_MISSING",
    "cmd_demo",
    "cmd_okta_jwk_local",
    "cmd_rotate_local",
    "local_stack_missing",
]

LOCAL_STACK_MODULES = (
    "okta_bridge_dev.emulators",
    "okta_bridge_dev.cli.demo",  # the two scenarios: in a clone, not in the wheel
    "okta_bridge_dev.cli.rotate_local",
    "moto",
    "werkzeug",
    "flask",
)
"""What the local stack imports that an install without the dev extra may lack."""

LOCAL_STACK_MISSING = (
    "the local stack is not part of the installed package ({missing} is missing): run it from "
    "a clone of the repository (`make demo`, `make rotate-now LOCAL=1`), or "
    "`pip install -e '.[dev]'` in the clone"
)


def local_stack_missing(exc: ModuleNotFoundError) -> bool:
    """Whether ``exc`` is the local stack (or one of its dependencies) being absent."""
    name = exc.name or ""
    return any(name == module or name.startswith(f"{module}.") for module in LOCAL_STACK_MODULES)


def _missing(exc: ModuleNotFoundError) -> UsageError:
    name = exc.name or "?"
    if not name.startswith("okta_bridge_dev."):
        name = name.split(".")[0]  # the distribution to install: moto, not moto.moto_server
    return UsageError(LOCAL_STACK_MISSING.format(missing=name))


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    """``make demo``: the real handler on the local stack, one cold call then warm ones."""
    try:
        demo = importlib.import_module("okta_bridge_dev.cli.demo")  # the dev extra, on demand
    except ModuleNotFoundError as exc:
        if not local_stack_missing(exc):
            raise
        raise _missing(exc) from exc
    code: int = demo.run(args.auth, args.verbose)
    return code


def cmd_rotate_local(args: argparse.Namespace, console: Console) -> int:
    """``make rotate-now LOCAL=1``: the emergency rotation against the local stack."""
    try:
        drill = importlib.import_module("okta_bridge_dev.cli.rotate_local")  # on demand
    except ModuleNotFoundError as exc:
        if not local_stack_missing(exc):
            raise
        raise _missing(exc) from exc
    drill.run_local(args.kind, console)
    return EXIT_OK


def cmd_okta_jwk_local(args: argparse.Namespace, console: Console) -> int:
    """``okta-bridge okta-jwk --local``: the JWK of a key in the local stack's KMS, by default the
    key of the kms-rs256 app (the stack is started, read and stopped; nothing is created)."""
    try:
        stacks = importlib.import_module("okta_bridge_dev.emulators.stack")  # on demand
    except ModuleNotFoundError as exc:
        if not local_stack_missing(exc):
            raise
        raise _missing(exc) from exc
    from okta_bridge_dev.cli.okta_jwk import print_jwk, signing_jwk  # noqa: PLC0415

    with stacks.LocalStack() as stack:
        key_id = args.key_id or stack.secret_value("kms-rs256")["kms_key_id"]
        kms = stack.kms.client(stack.ca.ca_pem_path)
        try:
            print_jwk(signing_jwk(kms, key_id), console)
        finally:
            kms.close()
    return EXIT_OK

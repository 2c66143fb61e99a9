"""``okta-bridge``: one command tree to build, deploy, invoke, diagnose and operate the bridge.

Never part of the Lambda artifact. The commands that talk to AWS need only the runtime
dependencies; ``demo`` and ``rotate --now --local`` need the local stack (``cli.local``). The
stack is found as ``make deploy`` finds it (``samconfig.toml``, ``OKTA_BRIDGE_STACK``,
``AWS_REGION``, flags); boto3's own credentials and endpoints apply. Secret values are never
taken from the command line. Colour only on a terminal and without ``NO_COLOR``; ``--json``
prints raw JSON. Expected failures are one ``error:`` line and an exit code (``exit_codes``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

from okta_bridge_dev.cli import local
from okta_bridge_dev.cli.exit_codes import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    explain,
)
from okta_bridge_dev.cli.function_commands import cmd_diagnose, cmd_invoke
from okta_bridge_dev.cli.okta_jwk import add_arguments as add_okta_jwk_arguments
from okta_bridge_dev.cli.options import add_stack_arguments
from okta_bridge_dev.cli.stack_commands import (
    cmd_deploy,
    cmd_destroy,
    cmd_outputs,
    cmd_package,
    cmd_rotate_deployed,
    cmd_secret_put,
    cmd_sign_layer,
    cmd_whoami,
)
from okta_bridge_dev.console import Console
from okta_bridge_dev.release.deploy import DEFAULT_LAYER_ZIP, DEFAULT_TEMPLATE, DEFAULT_ZIP
from okta_bridge_dev.release.errors import Cancelled
from okta_bridge_dev.release.wheels import ARCHITECTURES

__all__ = ["build_parser", "main"]

KINDS = ("basic", "post", "jwt-rs256", "jwt-es256", "kms-rs256", "kms-es256", "password")
STACK_KEEPS_GOING = "interrupted (a stack operation already started keeps going)"

Handler = Callable[[argparse.Namespace, Console], int]


def _version() -> str:
    try:
        return metadata.version("okta-bridge")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``okta-bridge`` parser; every command has ``--help``."""
    stack = argparse.ArgumentParser(add_help=False)
    add_stack_arguments(stack.add_argument_group("stack (as make deploy finds it)"))

    parser = argparse.ArgumentParser(
        prog="okta-bridge",
        description="Build, deploy, invoke and diagnose the okta-bridge, store its credentials, "
        "rotate them, run the local demo. Configuration: samconfig.toml, then "
        "OKTA_BRIDGE_STACK / AWS_REGION / OKTA_BRIDGE_BUCKET, then flags; a later one wins.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *, parents: bool = True) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[stack] if parents else [],
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=EXIT_CODES,
        )

    _invoke(command("invoke", "invoke the deployed function and print its answer"))
    _diagnose(
        command(
            "diagnose",
            "check each hop (config, secret, DNS, TCP, TLS, token, API) and say which one fails",
        )
    )
    _secret(commands.add_parser(
        "secret",
        help="store credentials in the stack's secret",
        description="Store credentials in the stack's secret.",
        epilog=EXIT_CODES,
    ), stack)  # fmt: skip
    _rotate(
        command("rotate", "rotate the Okta credentials at once and confirm the old one is refused")
    )
    _demo(
        command("demo", "what make demo runs: the real handler on the local stack", parents=False)
    )
    _deploy(
        command(
            "deploy",
            "upload the function and layer zips and create or update the stack (make deploy)",
        )
    )
    _sign_layer(
        command(
            "sign-layer",
            "sign a layer zip (AWS's ADOT layer) with CodeSigningProfileVersionArn's profile and "
            "publish it in your account; print its ARN",
        )
    )
    add_okta_jwk_arguments(
        command(
            "okta-jwk",
            "print the public JWK of a KMS signing key for the Okta app, and the secret's fields",
            parents=False,
        )
    )
    outputs = command("outputs", "print the stack's outputs, or one of them")
    outputs.add_argument(
        "key",
        nargs="?",
        help="print only this output's value (FunctionName...); stack_name and region: what "
        "make deploy uses",
    )
    outputs.set_defaults(run=cmd_outputs)
    command(
        "whoami",
        "print your IAM principal ARN and the AdminPrincipalArns line to paste (make whoami)",
    ).set_defaults(run=cmd_whoami)
    destroy = command("destroy", "delete the stack (make destroy)")
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    destroy.add_argument("--timeout", type=float, default=60, help="minutes (default: 60)")
    destroy.set_defaults(run=cmd_destroy, interrupted=STACK_KEEPS_GOING)
    _package(
        command(
            "package",
            "build dist/okta-bridge.zip for Lambda (make package), or its layer (make layer)",
            parents=False,
        )
    )
    return parser


def _function_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--function",
        metavar="NAME",
        help="function name or ARN (default: the stack's FunctionName output)",
    )


def _invoke(sub: argparse.ArgumentParser) -> None:
    source = sub.add_mutually_exclusive_group()
    source.add_argument(
        "--event",
        type=Path,
        metavar="FILE",
        help="JSON event file ('-' for standard input), e.g. events/apigw-http-v2.json",
    )
    source.add_argument("--path", metavar="P", help="direct event {'path': P} (default: {})")
    sub.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="query parameter of the --path event (repeatable)",
    )
    _function_option(sub)
    sub.add_argument("--json", action="store_true", help="print the raw JSON answer")
    sub.set_defaults(run=cmd_invoke)


def _diagnose(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--local",
        action="store_true",
        help="run here with the bridge's BRIDGE_* configuration from this environment, "
        "instead of in the deployed function",
    )
    sub.add_argument("--json", action="store_true", help="print the raw JSON report")
    sub.add_argument(
        "--verbose", action="store_true", help="every fact of each hop, not the key ones"
    )
    _function_option(sub)
    sub.add_argument(
        "--timeout", type=float, default=30.0, help="with --local: seconds (default: 30)"
    )
    sub.set_defaults(run=cmd_diagnose)


def _secret(secret: argparse.ArgumentParser, stack: argparse.ArgumentParser) -> None:
    actions = secret.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = actions.add_parser(
        "put",
        parents=[stack],
        help="validate the Okta credentials and store them",
        description="Validate the Okta credentials and store them as the secret's AWSCURRENT "
        "value. Never from the command line: a file, standard input or a no-echo prompt.",
        epilog=EXIT_CODES,
    )
    put.add_argument(
        "--file", type=Path, help="JSON file ('-' for standard input); else prompts, no echo"
    )
    put.add_argument(
        "--admin",
        action="store_true",
        help="the Okta admin app's credentials (org_url, client_id, private_key, key_id), "
        "for the rotation function",
    )
    put.set_defaults(run=cmd_secret_put)


def _rotate(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--now",
        action="store_true",
        required=True,
        help="rotate immediately (the schedule rotates every RotationDays on its own)",
    )
    sub.add_argument(
        "--local", action="store_true", help="against the local stack (no AWS account)"
    )
    sub.add_argument(
        "--kind", default="basic", choices=KINDS, help="with --local: the credential's kind"
    )
    sub.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default: 300)")
    sub.add_argument(
        "--ca-bundle", type=Path, help="PEM of a private CA in front of Okta, to confirm"
    )
    sub.set_defaults(run=_rotate_now)


def _rotate_now(args: argparse.Namespace, console: Console) -> int:
    if args.local:
        return local.cmd_rotate_local(args, console)
    return cmd_rotate_deployed(args, console)


def _demo(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--auth",
        default="basic",
        choices=(*KINDS, "kms"),
        help="Okta client authentication to show (kms: kms-rs256, the key inside KMS)",
    )
    sub.add_argument("--verbose", action="store_true", help="show the bridge's JSON logs")
    sub.set_defaults(run=local.cmd_demo)


def _deploy(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--bucket",
        help="artifact bucket (default: samconfig s3_bucket, "
        "OKTA_BRIDGE_BUCKET, else okta-bridge-artifacts-<account>-<region>)",
    )
    sub.add_argument("--prefix", help="key prefix in the bucket (default: okta-bridge)")
    sub.add_argument(
        "--parameter",
        action="append",
        metavar="KEY=VALUE",
        help="template parameter, over samconfig parameter_overrides (repeatable)",
    )
    sub.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="default: %(default)s")
    sub.add_argument(
        "--layer-zip", type=Path, default=DEFAULT_LAYER_ZIP, help="default: %(default)s"
    )
    sub.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: %(default)s")
    sub.add_argument(
        "--no-execute", action="store_true", help="create the change set, print it, stop"
    )
    sub.add_argument("--timeout", type=float, default=60, help="minutes (default: 60)")
    sub.set_defaults(run=cmd_deploy, interrupted=STACK_KEEPS_GOING)


def _sign_layer(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--zip", type=Path, required=True, help="the layer zip to sign")
    sub.add_argument("--layer-name", help="default: signed-<the zip's name>")
    sub.add_argument(
        "--architecture",
        choices=sorted(ARCHITECTURES),
        help="compatible architecture (default: samconfig Architecture, else arm64)",
    )
    sub.add_argument(
        "--parameter",
        action="append",
        metavar="KEY=VALUE",
        help="as deploy's (CodeSigningProfileVersionArn=... over samconfig's)",
    )
    sub.add_argument("--bucket", help="artifact bucket (default: as deploy's)")
    sub.add_argument("--prefix", help="key prefix in the bucket (default: okta-bridge)")
    sub.set_defaults(run=cmd_sign_layer)


def _package(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--python",
        required=True,
        help="a CPython 3.13 interpreter: compiles the .pyc for the python3.13 runtime",
    )
    sub.add_argument(
        "--ca-bundle",
        type=Path,
        help="PEM file of enterprise CA certificates, shipped as certs/<name>",
    )
    sub.add_argument(
        "--arch", default="arm64", choices=sorted(ARCHITECTURES), help="default: arm64"
    )
    sub.add_argument(
        "--layer",
        action="store_true",
        help="build the Lambda layer instead: the same content under python/ (make layer)",
    )
    sub.add_argument(
        "--output",
        type=Path,
        help="default: dist/okta-bridge.zip, with --layer dist/okta-bridge-layer.zip",
    )
    sub.add_argument(
        "--build-dir",
        type=Path,
        default=Path("build"),
        help="staging directory, emptied per architecture (default: %(default)s)",
    )
    sub.add_argument(
        "--root",
        type=Path,
        default=Path(),
        help="repository root holding requirements.lock and src/ (default: the current directory)",
    )
    sub.set_defaults(run=cmd_package)


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """The ``okta-bridge`` console script: run one command, return its exit code."""
    console = console or Console()
    if environ is not None:
        console.environ = environ
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, or a usage error (argparse says which)
        return _system_exit_code(exc)
    handler: Handler = args.run
    try:
        return handler(args, console)
    except KeyboardInterrupt:
        print(f"\n{getattr(args, 'interrupted', 'interrupted')}", file=console.err, flush=True)
        return EXIT_INTERRUPTED
    except Cancelled as exc:  # the person said no: already a normal answer, not an error
        console.say(str(exc))
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - expected failures become a line and an exit code
        message, code = explain(exc)
        console.error(message)
        return code


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    return exc.code if isinstance(exc.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

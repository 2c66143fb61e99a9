"""The commands that build, deploy and operate the stack: each reads its flags, calls one release
function and returns ``EXIT_OK``; failures are raised and mapped in ``main``."""

from __future__ import annotations

import argparse

from okta_bridge_dev.cli.exit_codes import EXIT_OK
from okta_bridge_dev.cli.options import deploy_config
from okta_bridge_dev.console import Console
from okta_bridge_dev.release import deploy, package, rotate_now, secret, sign_layer, whoami
from okta_bridge_dev.release.aws import DeployConfig

__all__ = [
    "cmd_deploy",
    "cmd_destroy",
    "cmd_outputs",
    "cmd_package",
    "cmd_rotate_deployed",
    "cmd_secret_put",
    "cmd_sign_layer",
    "cmd_whoami",
]


def _config(args: argparse.Namespace, console: Console) -> DeployConfig:
    """The merged configuration, after a warning when AWS_REGION overrides samconfig's region:
    CloudShell and many SSO setups export AWS_REGION, and the stack would quietly go there."""
    config = deploy_config(args, console.environ)
    if config.region_warning:
        console.say(f"warning: {config.region_warning}")
    return config


def cmd_deploy(args: argparse.Namespace, console: Console) -> int:
    """Upload the function and layer zips and create or update the stack."""
    deploy.deploy(
        _config(args, console),
        console,
        zip_path=args.zip,
        layer_zip=args.layer_zip,
        template_path=args.template,
        execute=not args.no_execute,
        timeout_minutes=args.timeout,
    )
    return EXIT_OK


def cmd_sign_layer(args: argparse.Namespace, console: Console) -> int:
    """Upload a layer zip, sign it with the stack's profile, publish it; print its ARN."""
    sign_layer.sign_layer(
        _config(args, console),
        console,
        zip_path=args.zip,
        layer_name=args.layer_name,
        architecture=args.architecture,
    )
    return EXIT_OK


def cmd_outputs(args: argparse.Namespace, console: Console) -> int:
    """Print the stack's outputs, or one of them."""
    deploy.outputs(deploy_config(args, console.environ), console, args.key)
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace, console: Console) -> int:
    """Print the caller's IAM principal ARN and the AdminPrincipalArns line to paste."""
    whoami.whoami(_config(args, console), console)
    return EXIT_OK


def cmd_destroy(args: argparse.Namespace, console: Console) -> int:
    """Delete the stack."""
    deploy.destroy(
        _config(args, console),
        console,
        yes=args.yes,
        timeout_minutes=args.timeout,
    )
    return EXIT_OK


def cmd_secret_put(args: argparse.Namespace, console: Console) -> int:
    """Validate the credentials and store them; prompts without echo."""
    secret.put_secret(_config(args, console), console, file=args.file, admin=args.admin)
    return EXIT_OK


def cmd_rotate_deployed(args: argparse.Namespace, console: Console) -> int:
    """Rotate the deployed stack's credentials at once; confirm Okta refuses the old one."""
    rotate_now.rotate_deployed(
        _config(args, console),
        console,
        ca_bundle=args.ca_bundle,
        timeout=args.timeout,
    )
    return EXIT_OK


def cmd_package(args: argparse.Namespace, console: Console) -> int:
    """Build the function's zip, or with ``--layer`` the layer's, and print its summary."""
    layout = package.LAYER if args.layer else package.FUNCTION
    result = package.build(
        root=args.root,
        python=args.python,
        output=args.output or layout.output,
        build_dir=args.build_dir,
        arch=args.arch,
        ca_bundle=args.ca_bundle,
        layout=layout,
    )
    console.say(package.report(result))
    return EXIT_OK

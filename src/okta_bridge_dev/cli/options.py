"""The options that find the stack, shared by every command that talks to it, and their
translation into ``release.aws.ConfigOptions`` (the CLI's argv never goes further)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from okta_bridge_dev.release.aws import ConfigOptions, DeployConfig, load_config

__all__ = ["add_stack_arguments", "config_options", "deploy_config"]


def add_stack_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--stack-name``, ``--region``, ``--profile``, ``--config-file``, ``--config-env``."""
    group.add_argument("--stack-name", help="default: OKTA_BRIDGE_STACK, else samconfig stack_name")
    group.add_argument(
        "--region",
        help="default: AWS_REGION (it wins over samconfig region; a warning says when they "
        "differ), else samconfig region, else the profile's",
    )
    group.add_argument("--profile", help="AWS profile (default: samconfig profile, AWS_PROFILE)")
    group.add_argument("--config-file", type=Path, help="default: samconfig.toml when it exists")
    group.add_argument("--config-env", default="default", help="samconfig environment")


def config_options(args: argparse.Namespace) -> ConfigOptions:
    """What the parsed command line says about the stack (deploy's own options included)."""
    return ConfigOptions(
        stack_name=args.stack_name,
        region=args.region,
        profile=args.profile,
        config_file=args.config_file,
        config_env=args.config_env,
        bucket=getattr(args, "bucket", None),
        prefix=getattr(args, "prefix", None),
        parameters=tuple(getattr(args, "parameter", None) or ()),
    )


def deploy_config(args: argparse.Namespace, environ: Mapping[str, str]) -> DeployConfig:
    """The merged configuration: defaults, samconfig.toml, ``environ``, then these flags."""
    return load_config(config_options(args), environ)

"""``okta-bridge sign-layer``: a layer zip from elsewhere (AWS's ADOT layer, guide 7.5) signed
with the stack's profile and published in the reader's account, so a function whose code signing
configuration is in Enforce mode may use it.

The same steps as ``make deploy``'s signing: the profile is checked before anything is uploaded,
the zip goes to the (versioned) artifact bucket, a Signer job signs that object version, and the
signed object becomes a new layer version.
"""

from __future__ import annotations

import re
from pathlib import Path

from okta_bridge_dev.console import Console
from okta_bridge_dev.release import deploy, signing
from okta_bridge_dev.release import principal as who
from okta_bridge_dev.release.aws import Aws, DeployConfig
from okta_bridge_dev.release.errors import UsageError

__all__ = ["sign_layer"]

RUNTIME = "python3.13"


def default_layer_name(zip_path: Path) -> str:
    """``signed-<the zip's name>``, in the characters a layer name may hold."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", zip_path.stem).strip("-") or "layer"
    return f"signed-{stem}"[:140]


def sign_layer(
    config: DeployConfig,
    console: Console,
    *,
    zip_path: Path,
    layer_name: str | None = None,
    architecture: str | None = None,
) -> str:
    """Upload, sign and publish ``zip_path`` as a layer version; print and return its ARN.

    The profile is ``CodeSigningProfileVersionArn`` of samconfig's ``parameter_overrides`` or
    ``--parameter``. Raises ``UsageError`` (no zip, no or an unusable profile, an unversioned
    bucket) before anything is uploaded, ``DeployError`` when the signing job fails.
    """
    if not zip_path.is_file():
        raise UsageError(f"no layer zip at {zip_path}")
    aws = Aws.connect(config)
    account = who.resolve(aws.client("sts"), aws.client("iam")).account
    signer = signing.for_deploy(aws, config.parameters, account)
    if signer is None:
        raise UsageError(
            f"no signing profile: set {signing.PARAMETER} in samconfig.toml's "
            f"parameter_overrides (or --parameter {signing.PARAMETER}=<profile version ARN>)"
        )
    bucket = deploy.artifact_bucket(aws, config, account, console, signer=signer)
    signed_bucket, signed_key, signed_version = deploy.upload_zip(
        aws,
        zip_path,
        bucket=bucket,
        prefix=config.prefix,
        account=account,
        console=console,
        signer=signer,
    )
    content = {"S3Bucket": signed_bucket, "S3Key": signed_key}
    if signed_version:
        content["S3ObjectVersion"] = signed_version  # the version Signer wrote, not a later one
    name = layer_name or default_layer_name(zip_path)
    architectures = architecture or config.parameters.get("Architecture") or "arm64"
    published = aws.client("lambda").publish_layer_version(
        LayerName=name,
        Description=f"{zip_path.name} signed by {signer.profile.name}/{signer.profile.version}",
        Content=content,
        CompatibleRuntimes=[RUNTIME],
        CompatibleArchitectures=[architectures],
    )
    arn = str(published["LayerVersionArn"])
    console.say(f"published layer {name} version {published['Version']} ({architectures}):")
    console.say(arn)
    return arn

"""Where and how to reach AWS: the configuration (samconfig.toml, environment, flags), the boto3
session, and the artifact bucket.

Configuration, lowest to highest precedence: defaults, ``samconfig.toml``
(``[default.deploy.parameters]``, as the SAM CLI reads it), the environment
(``OKTA_BRIDGE_STACK``, ``AWS_REGION``, ``OKTA_BRIDGE_BUCKET``), then flags. Credentials and
endpoints are boto3's own (``AWS_PROFILE``, ``AWS_ENDPOINT_URL[_<SERVICE>]``...), so the same
commands run against AWS or a local emulator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from okta_bridge_dev.release.errors import DeployError, UsageError

__all__ = [
    "Aws",
    "ConfigOptions",
    "DeployConfig",
    "default_bucket",
    "ensure_bucket",
    "error_code",
    "load_config",
    "parse_key_values",
    "read_samconfig",
    "s3_url",
    "upload_artifact",
]

DEFAULT_STACK = "okta-bridge"
DEFAULT_PREFIX = "okta-bridge"
DEFAULT_CONFIG = Path("samconfig.toml")

BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    user_agent_extra="okta-bridge-deploy",
)


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployConfig:
    """Where and what to deploy, merged from defaults, samconfig.toml, environment and flags."""

    stack_name: str = DEFAULT_STACK
    region: str | None = None
    bucket: str | None = None
    prefix: str = DEFAULT_PREFIX
    profile: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    region_warning: str | None = field(default=None, compare=False)
    """Set when ``AWS_REGION`` and samconfig's ``region`` disagree (no ``--region``)."""


@dataclass(frozen=True)
class ConfigOptions:
    """What the command line says about the stack; None where it says nothing."""

    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None
    config_file: Path | None = None
    config_env: str = "default"
    bucket: str | None = None
    prefix: str | None = None
    parameters: Sequence[str] = ()
    """``KEY=VALUE`` items (``--parameter``), over samconfig's ``parameter_overrides``."""


def parse_key_values(value: object, what: str) -> dict[str, str]:
    """``Key=Value Key2="a b"`` (a string, as SAM writes it, or a list of such) -> dict."""
    if value is None or value == "":
        return {}
    items: list[str] = []
    if isinstance(value, str):
        items = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        for entry in value:
            items.extend(shlex.split(entry))
    else:
        raise UsageError(f"{what} must be a string like 'Key=Value Key2=Value2' or a list of them")
    result: dict[str, str] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what}: {item!r} is not Key=Value")
        result[key] = val
    return result


def read_samconfig(path: Path, env: str, *, required: bool) -> dict[str, Any]:
    """``[<env>.global.parameters]`` overlaid by ``[<env>.deploy.parameters]``; {} if absent."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise UsageError(f"no config file at {path}") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    section = data.get(env, {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [{env}] must be a table")
    merged: dict[str, Any] = {}
    for command in ("global", "deploy"):
        params = section.get(command, {}).get("parameters", {})
        if not isinstance(params, dict):
            raise UsageError(f"{path}: [{env}.{command}.parameters] must be a table")
        merged.update(params)
    return merged


def load_config(options: ConfigOptions, environ: Mapping[str, str]) -> DeployConfig:
    """Merge the sources; each later one wins for the keys it sets."""
    file_values = read_samconfig(
        options.config_file or DEFAULT_CONFIG,
        options.config_env,
        required=options.config_file is not None,
    )

    def pick(flag: str | None, env_name: str | None, key: str) -> str | None:
        candidates = (flag, environ.get(env_name) if env_name else None, file_values.get(key))
        for candidate in candidates:
            if candidate not in (None, ""):
                return str(candidate)
        return None

    parameters = parse_key_values(
        file_values.get("parameter_overrides"), "samconfig parameter_overrides"
    )
    env_region, file_region = environ.get("AWS_REGION"), file_values.get("region")
    region_warning = None
    if not options.region and env_region and file_region and str(file_region) != env_region:
        region_warning = (
            f"AWS_REGION={env_region} (environment) overrides region = {file_region} in "
            f"{options.config_file or DEFAULT_CONFIG} [{options.config_env}]; using "
            f"{env_region} (unset AWS_REGION, or pass --region, to choose)"
        )
    parameters.update(parse_key_values(list(options.parameters), "--parameter"))
    return DeployConfig(
        stack_name=pick(options.stack_name, "OKTA_BRIDGE_STACK", "stack_name") or DEFAULT_STACK,
        region=pick(options.region, "AWS_REGION", "region"),
        bucket=pick(options.bucket, "OKTA_BRIDGE_BUCKET", "s3_bucket"),
        prefix=(pick(options.prefix, None, "s3_prefix") or DEFAULT_PREFIX).strip("/"),
        profile=pick(options.profile, None, "profile"),
        parameters=parameters,
        tags=parse_key_values(file_values.get("tags"), "samconfig tags"),
        region_warning=region_warning,
    )


# -- AWS -------------------------------------------------------------------------------------


@dataclass
class Aws:
    """One boto3 session and its clients, created on first use."""

    session: Any
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def connect(cls, config: DeployConfig) -> Aws:
        """A session for the configured profile and region; refuse when no region is known."""
        session = boto3.session.Session(profile_name=config.profile, region_name=config.region)
        if not session.region_name:
            raise UsageError(
                "no AWS region: set region in samconfig.toml, AWS_REGION, or pass --region"
            )
        return cls(session)

    @property
    def region(self) -> str:
        """The session's region."""
        return str(self.session.region_name)

    @property
    def partition(self) -> str:
        """``aws``, ``aws-cn``, ``aws-us-gov``...: ARNs and S3 URLs differ per partition."""
        return str(self.session.get_partition_for_region(self.region))

    def client(self, service: str) -> Any:
        """A cached client; endpoints come from boto3's own configuration."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=BOTO_CONFIG)
        return self._clients[service]

    def account(self) -> str:
        """The caller's account id."""
        return str(self.client("sts").get_caller_identity()["Account"])


def default_bucket(account: str, region: str) -> str:
    """The artifact bucket created when none is configured: one per account and region."""
    return f"okta-bridge-artifacts-{account}-{region}"


def error_code(error: ClientError) -> str:
    """AWS's error code of a refused call ("AccessDenied", "404"...), or ""."""
    return str(error.response.get("Error", {}).get("Code", ""))


def ensure_bucket(
    s3: Any, bucket: str, *, account: str, region: str, create: bool, partition: str = "aws"
) -> bool:
    """Make sure ``bucket`` exists and is ours; create the default one hardened. True if created.

    ``ExpectedBucketOwner`` guards against a same-named bucket in someone else's account (the
    default name is predictable): uploading the code there would let them replace it.
    """
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("403", "AccessDenied", "Forbidden"):
            raise DeployError(
                f"bucket {bucket} exists but is not in account {account} or is not readable: "
                "set s3_bucket in samconfig.toml (or OKTA_BRIDGE_BUCKET) to a bucket you own"
            ) from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
        if not create:
            raise DeployError(
                f"bucket {bucket} (s3_bucket / OKTA_BRIDGE_BUCKET) does not exist: create it, "
                "or leave s3_bucket unset to use the default artifact bucket"
            ) from None
    else:
        return False
    _create_bucket(s3, bucket, region, partition)
    return True


def _create_bucket(s3: Any, bucket: str, region: str, partition: str) -> None:
    """Private, encrypted, versioned (a rollback can still fetch old code), TLS only."""
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            f"arn:{partition}:s3:::{bucket}",
                            f"arn:{partition}:s3:::{bucket}/*",
                        ],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )


def upload_artifact(
    s3: Any, bucket: str, key: str, data: bytes, digest: str, *, account: str
) -> tuple[str | None, bool]:
    """Upload the zip under its SHA-256 unless it is already there; (version id, uploaded).

    The key is content-addressed, so an unchanged build uploads nothing and leaves the stack's
    CodeUri unchanged (no needless function update). "Already there" is S3's own SHA-256 of the
    object (which S3 checked on upload), not the key or its metadata: anyone who may write to the
    bucket may name an object after the digest of a build it does not hold (and Signer would sign
    whatever that object holds).
    """
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    try:
        head = s3.head_object(
            Bucket=bucket, Key=key, ExpectedBucketOwner=account, ChecksumMode="ENABLED"
        )
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        if (
            head.get("ChecksumSHA256") == checksum
            and head.get("Metadata", {}).get("sha256") == digest
            and head.get("ContentLength", len(data)) == len(data)
        ):
            return head.get("VersionId"), False
    put = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType="application/zip",
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=checksum,
        Metadata={"sha256": digest},
        ExpectedBucketOwner=account,
    )
    return put.get("VersionId"), True


def s3_url(bucket: str, region: str, key: str) -> str:
    """The virtual-hosted URL CloudFormation expects for ``TemplateURL``."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"

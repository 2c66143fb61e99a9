"""``make deploy | secret | destroy``: the okta-bridge stack, from the built zip to its outputs.

Configuration, lowest to highest precedence: defaults, ``samconfig.toml``
(``[default.deploy.parameters]``, as the SAM CLI reads it), the environment
(``OKTA_BRIDGE_STACK``, ``AWS_REGION``, ``OKTA_BRIDGE_BUCKET``), then flags. Credentials and
endpoints are boto3's own (``AWS_PROFILE``, ``AWS_ENDPOINT_URL[_<SERVICE>]``...), so the same
commands run against AWS or a local emulator.

Secret values are never accepted on the command line (shell history, ``ps``): they come from a
file, standard input or a no-echo prompt, and are never printed.

Exit codes: 0 done (including "no changes"), 1 the stack operation failed, 2 bad configuration
or input, 3 AWS refused or could not be reached (credentials, permissions, missing stack).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import getpass
import hashlib
import json
import os
import secrets
import shlex
import stat
import sys
import tomllib
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserError

from okta_bridge.auth.client_auth import KEYS
from okta_bridge.config import Settings
from okta_bridge.errors import RotationError, SecretError
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.secret.credentials import parse_secret
from okta_bridge_dev.release import rotate_now as rotate
from okta_bridge_dev.release import template as cfn_steps
from okta_bridge_dev.release.template import DeployError, StackNotFound, UsageError

__all__ = ["DeployConfig", "load_config", "main", "parse_key_values"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AWS = 3

DEFAULT_STACK = "okta-bridge"
DEFAULT_PREFIX = "okta-bridge"
DEFAULT_CONFIG = Path("samconfig.toml")
DEFAULT_ZIP = Path("dist/okta-bridge.zip")
DEFAULT_TEMPLATE = Path("template.yaml")
POLL_SECONDS = 5.0
CHANGE_SET_TIMEOUT = 600.0

SECRET_KEYS = (
    "client_id",
    "client_secret",
    "token_url",
    "api_endpoint",
    "auth_method",
    "private_key",
    "key_id",
    "username",
    "password",
    "scopes",
    "dpop",
    "client_certificate",
    "client_key",
    "app_id",
    "okta_secret_id",
)
"""The keys the bridge reads (README, "The secret"); others are stored but ignored."""

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


def load_config(args: argparse.Namespace, environ: Mapping[str, str]) -> DeployConfig:
    """Merge the sources; each later one wins for the keys it sets."""
    file_values = read_samconfig(
        args.config_file or DEFAULT_CONFIG,
        args.config_env,
        required=args.config_file is not None,
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
    parameters.update(parse_key_values(getattr(args, "parameter", None) or [], "--parameter"))
    return DeployConfig(
        stack_name=pick(args.stack_name, "OKTA_BRIDGE_STACK", "stack_name") or DEFAULT_STACK,
        region=pick(args.region, "AWS_REGION", "region"),
        bucket=pick(getattr(args, "bucket", None), "OKTA_BRIDGE_BUCKET", "s3_bucket"),
        prefix=(pick(getattr(args, "prefix", None), None, "s3_prefix") or DEFAULT_PREFIX).strip(
            "/"
        ),
        profile=pick(args.profile, None, "profile"),
        parameters=parameters,
        tags=parse_key_values(file_values.get("tags"), "samconfig tags"),
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


def _error_code(error: ClientError) -> str:
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
        code = _error_code(exc)
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
    CodeUri unchanged (no needless function update).
    """
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=account)
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        if head.get("Metadata", {}).get("sha256") == digest:
            return head.get("VersionId"), False
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    put = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType="application/zip",
        ChecksumSHA256=checksum,
        Metadata={"sha256": digest},
        ExpectedBucketOwner=account,
    )
    return put.get("VersionId"), True


def _s3_url(bucket: str, region: str, key: str) -> str:
    """The virtual-hosted URL CloudFormation expects for ``TemplateURL``."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


# -- commands --------------------------------------------------------------------------------


@dataclass
class Console:
    """Where commands write and read; injectable so tests drive the prompts."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    ask: Callable[[str], str] = input
    ask_secret: Callable[[str], str] = getpass.getpass
    interactive: Callable[[], bool] = field(default_factory=lambda: sys.stdin.isatty)

    def say(self, text: str = "") -> None:
        """A line of normal output."""
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        """A line on standard error, prefixed ``error:`` (no stack trace: it is expected)."""
        print(f"error: {text}", file=self.err, flush=True)


def cmd_deploy(args: argparse.Namespace, config: DeployConfig, console: Console) -> int:
    """Upload, translate, change set, execute, stream events, print outputs."""
    zip_path: Path = args.zip
    if not zip_path.is_file():
        raise UsageError(f"no artifact at {zip_path}: build it with `make package` (or pass --zip)")
    template = cfn_steps.load_template(args.template)
    parameters = cfn_steps.resolve_parameters(template, config.parameters)
    check_architecture(zip_path, parameters.get("Architecture"))

    aws = Aws.connect(config)
    account = aws.account()
    location = _upload(aws, config, account, zip_path, console)
    translated = cfn_steps.translate(
        cfn_steps.set_code_uri(template, *location), parameters, aws.session
    )
    template_arg = _template_argument(aws, config, account, location[0], translated)

    cfn = aws.client("cloudformation")
    stack = config.stack_name
    kind = cfn_steps.change_set_type(cfn_steps.stack_status(cfn, stack), stack)
    name = datetime.datetime.now(datetime.UTC).strftime("okta-bridge-%Y%m%d-%H%M%S-")
    name += secrets.token_hex(2)
    console.say(f"{'creating' if kind == 'CREATE' else 'updating'} stack {stack} in {aws.region}")
    change_set = cfn_steps.create_change_set(
        cfn,
        stack=stack,
        name=name,
        kind=kind,
        template=template_arg,
        parameters=parameters,
        tags=config.tags,
        poll_seconds=POLL_SECONDS,
        timeout_seconds=CHANGE_SET_TIMEOUT,
    )
    if change_set.empty:
        if change_set.id:
            cfn.delete_change_set(ChangeSetName=change_set.id)
        console.say(f"no changes: stack {stack} is already up to date")
        _print_outputs(console, cfn_steps.stack_outputs(cfn, stack))
        return EXIT_OK
    if change_set.status != "CREATE_COMPLETE":
        console.error(f"change set {name} failed: {change_set.reason}")
        return EXIT_FAILED
    console.say(f"change set {name}:")
    console.say(
        cfn_steps.format_table(
            ("action", "resource", "type", "replacement"),
            cfn_steps.change_rows(change_set.changes),
        )
    )
    if args.no_execute:
        console.say(f"not executed (--no-execute): review and execute {change_set.id}")
        return EXIT_OK
    return _execute(cfn, change_set, stack, args.timeout, console)


def _upload(
    aws: Aws, config: DeployConfig, account: str, zip_path: Path, console: Console
) -> tuple[str, str, str | None]:
    """Ensure the bucket, upload the zip by its SHA-256; return (bucket, key, version)."""
    s3 = aws.client("s3")
    bucket = config.bucket or default_bucket(account, aws.region)
    created = ensure_bucket(
        s3,
        bucket,
        account=account,
        region=aws.region,
        create=not config.bucket,
        partition=aws.partition,
    )
    if created:
        console.say(f"created artifact bucket s3://{bucket} (private, encrypted, versioned)")
    data = zip_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = f"{config.prefix}/{digest}.zip"
    version, uploaded = upload_artifact(s3, bucket, key, data, digest, account=account)
    console.say(
        f"{'uploaded' if uploaded else 'already uploaded'} {zip_path} ({_size(len(data))}, "
        f"sha256 {digest[:12]}...) -> s3://{bucket}/{key}"
    )
    return bucket, key, version


def _template_argument(
    aws: Aws, config: DeployConfig, account: str, bucket: str, template: Mapping[str, Any]
) -> dict[str, str]:
    """``TemplateBody``, or ``TemplateURL`` via the bucket when over CloudFormation's limit."""
    body = cfn_steps.template_json(template).encode()
    if len(body) <= cfn_steps.TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body.decode()}
    key = f"{config.prefix}/templates/{hashlib.sha256(body).hexdigest()}.json"
    aws.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ExpectedBucketOwner=account,
    )
    return {"TemplateURL": _s3_url(bucket, aws.region, key)}


def _execute(
    cfn: Any, change_set: cfn_steps.ChangeSet, stack: str, timeout: float, console: Console
) -> int:
    """Execute the change set and follow the stack to its end; print outputs or failures."""
    stream = cfn_steps.EventStream(cfn, change_set.stack_id or stack, out=console.out)
    stream.prime()
    cfn.execute_change_set(ChangeSetName=change_set.id)
    status = cfn_steps.wait_for_stack(
        cfn,
        stream,
        poll_seconds=POLL_SECONDS,
        timeout_seconds=timeout * 60,
        progress=cfn_steps.Progress(out=console.err),
    )
    if status not in cfn_steps.SUCCESS:
        return _report_failure(console, stack, status, stream)
    console.say(f"stack {stack}: {status}")
    _print_outputs(console, cfn_steps.stack_outputs(cfn, stack))
    return EXIT_OK


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    return f"{size / 1024:.1f} KiB"


ELF_MACHINES = {183: "arm64", 62: "x86_64"}


def zip_architecture(path: Path) -> str | None:
    """The architecture of the zip's native libraries (``arm64``/``x86_64``), None if it has none.

    Read from the ELF headers: abi3 library names (cryptography's) do not carry the machine.
    """
    found: set[str] = set()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".so") and ".so." not in info.filename:
                continue
            with archive.open(info) as library:
                header = library.read(20)
            if header[:4] == b"\x7fELF":
                machine = ELF_MACHINES.get(int.from_bytes(header[18:20], "little"))
                if machine:
                    found.add(machine)
    if len(found) > 1:
        raise UsageError(f"{path} mixes native libraries for {' and '.join(sorted(found))}")
    return found.pop() if found else None


def check_architecture(path: Path, architecture: str | None) -> None:
    """Refuse a zip built for the other architecture than the function's.

    The bridge would start, and fail only when cryptography is first imported (key-based
    clients), in production: refusing here is cheaper.
    """
    try:
        built = zip_architecture(path)
    except zipfile.BadZipFile:
        raise UsageError(f"{path} is not a zip file: rebuild it with `make package`") from None
    if built and architecture and built != architecture:
        raise UsageError(
            f"{path} is built for {built} but the function's Architecture is {architecture}: "
            f"`make package ARCH={architecture}`, or set Architecture={built} in "
            "parameter_overrides"
        )


def _report_failure(
    console: Console, stack: str, status: str, stream: cfn_steps.EventStream
) -> int:
    console.error(f"stack {stack} ended {status}")
    reasons = cfn_steps.failure_reasons(stream.failures)
    if reasons:
        console.say("failed resources:")
        for line in reasons:
            console.say(f"  {line}")
    if status == "ROLLBACK_COMPLETE":
        console.say("the first deployment failed: run `make destroy` before deploying again")
    return EXIT_FAILED


def _print_outputs(console: Console, outputs: Mapping[str, str]) -> None:
    if not outputs:
        console.say("(the stack has no outputs)")
        return
    console.say(cfn_steps.format_table(("output", "value"), sorted(outputs.items())))


def cmd_outputs(args: argparse.Namespace, config: DeployConfig, console: Console) -> int:
    """Print the stack's outputs as a table, or one output's bare value for scripts.

    ``FN=$(python -m okta_bridge_dev.release.deploy outputs FunctionName)``
    """
    cfn = Aws.connect(config).client("cloudformation")
    outputs = cfn_steps.stack_outputs(cfn, config.stack_name)
    if args.key is None:
        _print_outputs(console, outputs)
        return EXIT_OK
    if args.key not in outputs:
        raise UsageError(
            f"stack {config.stack_name} has no output {args.key} (it has: "
            f"{', '.join(sorted(outputs)) or 'none'})"
        )
    console.say(outputs[args.key])
    return EXIT_OK


def cmd_destroy(args: argparse.Namespace, config: DeployConfig, console: Console) -> int:
    """Delete the stack (after confirmation) and stream its events until it is gone."""
    aws = Aws.connect(config)
    cfn = aws.client("cloudformation")
    stack = config.stack_name
    description = cfn_steps.describe_stack(cfn, stack)
    if description is None:
        console.say(f"stack {stack} does not exist in {aws.region}: nothing to delete")
        return EXIT_OK
    if not args.yes:
        if not console.interactive():
            raise UsageError(f"deleting stack {stack} needs confirmation: pass --yes")
        answer = console.ask(
            f"Delete stack {stack} in {aws.region} (function, role, secret and its value)? "
            "Type the stack name to confirm: "
        )
        if answer.strip() != stack:
            console.say("not deleted")
            return EXIT_USAGE
    stack_id = str(description["StackId"])
    stream = cfn_steps.EventStream(cfn, stack_id, out=console.out)
    stream.prime()
    cfn.delete_stack(StackName=stack_id)
    status = cfn_steps.wait_for_stack(
        cfn,
        stream,
        poll_seconds=POLL_SECONDS,
        timeout_seconds=args.timeout * 60,
        progress=cfn_steps.Progress(out=console.err),
    )
    if status != "DELETE_COMPLETE":
        return _report_failure(console, stack, status, stream)
    console.say(f"stack {stack}: DELETE_COMPLETE (the artifact bucket is kept)")
    return EXIT_OK


def cmd_secret(args: argparse.Namespace, config: DeployConfig, console: Console) -> int:
    """Validate the credentials and store them as the stack's secret value."""
    aws = Aws.connect(config)
    cfn = aws.client("cloudformation")
    outputs = cfn_steps.stack_outputs(cfn, config.stack_name)
    if args.admin:
        return _store_admin_secret(args, aws, outputs, console)
    secret_arn = outputs.get("SecretArn")
    if not secret_arn:
        raise DeployError(f"stack {config.stack_name} has no SecretArn output: is it okta-bridge?")
    if args.file is not None:
        text = _read_secret_file(args.file, console)
    else:
        if not console.interactive():
            raise UsageError("no terminal to prompt on: pass --file creds.json (or --file -)")
        text = json.dumps(prompt_credentials(console))
    keys = validate_secret(text, cfn_steps.stack_parameters(cfn, config.stack_name))
    unknown = sorted(set(keys) - set(SECRET_KEYS))
    if unknown:
        console.say(f"note: the bridge ignores the key(s) {', '.join(unknown)}")
    stored = aws.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=text)
    console.say(f"stored {', '.join(sorted(keys))} in {secret_arn}")
    console.say(
        f"version {stored.get('VersionId', '?')} is AWSCURRENT; warm functions pick it up within "
        "BRIDGE_SECRET_TTL_SECONDS, or at once on Okta's invalid_client"
    )
    return EXIT_OK


def _store_admin_secret(
    args: argparse.Namespace, aws: Aws, outputs: Mapping[str, str], console: Console
) -> int:
    """The Okta admin app's credentials, for the rotation function only."""
    secret_arn = outputs.get("AdminSecretArn")
    if not secret_arn:
        raise DeployError("the stack has no AdminSecretArn output: redeploy this version first")
    if args.file is not None:
        text = _read_secret_file(args.file, console)
    else:
        if not console.interactive():
            raise UsageError("no terminal to prompt on: pass --file admin.json (or --file -)")
        text = json.dumps(prompt_admin_credentials(console))
    validate_admin_secret(text)
    aws.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=text)
    console.say(f"stored the admin app's credentials in {secret_arn}")
    return EXIT_OK


def validate_admin_secret(text: str) -> None:
    """Refuse an admin secret the rotation function could not use, naming the key at fault."""
    try:
        admin = parse_admin_secret(text)
        KEYS.load(admin.private_key or "")
    except (RotationError, SecretError) as exc:
        raise UsageError(f"the admin credentials were not stored: {exc.message}") from None


def ask_dpop(console: Console) -> bool:
    """Whether the Okta app requires DPoP (Okta's default for new API Services apps)."""
    answer = console.ask(
        "dpop: does the app require DPoP (Okta's default for new API Services apps)? [Y/n]: "
    )
    return answer.strip().lower() not in ("n", "no", "false")


def prompt_admin_credentials(console: Console) -> dict[str, Any]:
    """Ask for the admin app's org URL, client id, private key file, kid and DPoP."""
    values = {
        "org_url": console.ask("org_url (https://<your-org>.okta.com, not an auth server): "),
        "client_id": console.ask("client_id (the okta-bridge-admin API Services app): "),
    }
    key_path = console.ask("private_key: path of the PEM file: ").strip()
    try:
        values["private_key"] = Path(key_path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the private key file {key_path!r}: {exc}") from None
    values["key_id"] = console.ask("key_id (the kid Okta shows for the key): ")
    answers: dict[str, Any] = {
        key: value.strip() if key != "private_key" else value for key, value in values.items()
    }
    answers["dpop"] = ask_dpop(console)
    return answers


def cmd_rotate_now(args: argparse.Namespace, config: DeployConfig, console: Console) -> int:
    """Rotate the Okta credentials at once and confirm the old one is refused."""
    if args.local:
        return rotate.run_local(args.kind, console)
    aws = Aws.connect(config)
    cfn = aws.client("cloudformation")
    outputs = cfn_steps.stack_outputs(cfn, config.stack_name)
    secret_arn = outputs.get("SecretArn")
    if not secret_arn:
        raise DeployError(f"stack {config.stack_name} has no SecretArn output: is it okta-bridge?")
    settings = rotate.stack_settings(
        cfn_steps.stack_parameters(cfn, config.stack_name), args.ca_bundle, secret_arn
    )
    return rotate.rotate_now(
        aws.client("secretsmanager"), secret_arn, settings, console, timeout=args.timeout
    )


def _read_secret_file(path: Path, console: Console) -> str:
    if str(path) == "-":
        return sys.stdin.read().strip()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise UsageError(f"--file {path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"--file {path} is not UTF-8 JSON") from None
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        console.say(f"warning: {path} is readable by other users; delete it once stored")
    return text


def validate_secret(text: str, stack_parameters: Mapping[str, str]) -> list[str]:
    """The keys of a secret the bridge accepts; ``UsageError`` naming the key otherwise.

    The stack's TokenUrl/ApiBaseUrl parameters become ``BRIDGE_TOKEN_URL``/``BRIDGE_API_BASE_URL``
    and replace the matching secret keys, so a secret without them is valid for such a stack.
    """
    settings = Settings(
        secret_id="x",  # noqa: S106 - parse_secret only needs a placeholder id
        token_url=stack_parameters.get("TokenUrl") or None,
        api_base_url=stack_parameters.get("ApiBaseUrl") or None,
    )
    try:
        parse_secret(text, settings)
    except SecretError as exc:
        raise UsageError(f"the credentials were not stored: {exc.message}") from None
    data = json.loads(text)
    return [str(key) for key in data]


def prompt_credentials(console: Console) -> dict[str, Any]:
    """Ask for each key: no echo for secrets, a file path for the private key."""
    values: dict[str, Any] = {}

    def ask(key: str, prompt: str, *, secret: bool = False, default: str = "") -> str:
        asker = console.ask_secret if secret else console.ask
        answer = asker(prompt).strip() or default
        if answer:
            values[key] = answer
        return answer

    ask("client_id", "client_id (the Okta app's client id): ")
    ask("token_url", "token_url (https://<okta>/oauth2/<server>/v1/token): ")
    ask("api_endpoint", "api_endpoint (https://internal-api.../v1/data): ")
    method = ask(
        "auth_method",
        "auth_method [client_secret_basic] (client_secret_post, private_key_jwt): ",
        default="client_secret_basic",
    )
    if method == "private_key_jwt":
        key_path = console.ask("private_key: path of the PEM file: ").strip()
        try:
            values["private_key"] = Path(key_path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the private key file {key_path!r}: {exc}") from None
        ask("key_id", "key_id (the kid registered in Okta, recommended): ")
    else:
        ask("client_secret", "client_secret (not echoed): ", secret=True)
    if ask("username", "username (only for the password grant; Enter to skip): "):
        ask("password", "password (not echoed): ", secret=True)
    ask("scopes", "scopes (space-separated; Enter for the stack's default): ")
    values["dpop"] = ask_dpop(console)
    return values


# -- CLI -------------------------------------------------------------------------------------


def add_stack_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The options that find the stack, as ``load_config`` reads them (this CLI and okta-bridge)."""
    group.add_argument("--stack-name", help="default: samconfig stack_name, OKTA_BRIDGE_STACK")
    group.add_argument("--region", help="default: AWS_REGION, samconfig region, the profile's")
    group.add_argument("--profile", help="AWS profile (default: samconfig profile, AWS_PROFILE)")
    group.add_argument("--config-file", type=Path, help="default: samconfig.toml when it exists")
    group.add_argument("--config-env", default="default", help="samconfig environment")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_stack_arguments(common)

    parser = argparse.ArgumentParser(
        prog="python -m okta_bridge_dev.release.deploy",
        description="Deploy the okta-bridge stack, store its credentials, show its outputs, "
        "delete it. Configuration: samconfig.toml, then OKTA_BRIDGE_STACK / AWS_REGION / "
        "OKTA_BRIDGE_BUCKET, then flags.",
        epilog="Exit codes: 0 done, 1 stack operation failed, 2 bad configuration or input, "
        "3 AWS refused or unreachable. See samconfig.toml.example.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    deploy = commands.add_parser(
        "deploy",
        parents=[common],
        help="upload the zip and create or update the stack",
        description="Upload the zip and create or update the stack.",
    )
    deploy.add_argument(
        "--bucket",
        help="artifact bucket (default: samconfig s3_bucket, "
        "OKTA_BRIDGE_BUCKET, else okta-bridge-artifacts-<account>-<region>)",
    )
    deploy.add_argument("--prefix", help="key prefix in the bucket (default: okta-bridge)")
    deploy.add_argument(
        "--parameter",
        action="append",
        metavar="KEY=VALUE",
        help="template parameter, over samconfig parameter_overrides (repeatable)",
    )
    deploy.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="default: %(default)s")
    deploy.add_argument(
        "--template", type=Path, default=DEFAULT_TEMPLATE, help="default: %(default)s"
    )
    deploy.add_argument(
        "--no-execute", action="store_true", help="create the change set, print it, stop"
    )
    deploy.add_argument("--timeout", type=float, default=60, help="minutes (default: 60)")
    deploy.set_defaults(handler=cmd_deploy)

    secret = commands.add_parser(
        "secret",
        parents=[common],
        help="store the Okta credentials in the stack's secret",
        description="Store the Okta credentials in the stack's secret.",
    )
    secret.add_argument(
        "--file",
        type=Path,
        help="JSON file with the credentials ('-' for standard input); else prompts, no echo",
    )
    secret.add_argument(
        "--admin",
        action="store_true",
        help="store the Okta admin app's credentials (org_url, client_id, private_key, key_id) "
        "in the admin secret, for the rotation function",
    )
    secret.set_defaults(handler=cmd_secret)

    rotate_now = commands.add_parser(
        "rotate-now",
        parents=[common],
        help="rotate the Okta credentials at once and confirm the old one is refused",
        description="Rotate the Okta credentials at once (after a leak): RotateSecret, follow "
        "the rotation, then confirm Okta refuses the old credential. Exit 0 only if it does.",
    )
    rotate_now.add_argument(
        "--local", action="store_true", help="run against the local stack (no AWS account)"
    )
    rotate_now.add_argument(
        "--kind",
        default="basic",
        choices=["basic", "post", "jwt-rs256", "jwt-es256", "password"],
        help="with --local: which kind of credential to rotate (default: basic)",
    )
    rotate_now.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait (default: 300)"
    )
    rotate_now.add_argument(
        "--ca-bundle",
        type=Path,
        help="PEM of a private CA in front of Okta, for the confirmation request",
    )
    rotate_now.set_defaults(handler=cmd_rotate_now)

    destroy = commands.add_parser(
        "destroy", parents=[common], help="delete the stack", description="Delete the stack."
    )
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    destroy.add_argument("--timeout", type=float, default=60, help="minutes (default: 60)")
    destroy.set_defaults(handler=cmd_destroy)

    outputs = commands.add_parser(
        "outputs",
        parents=[common],
        help="print the stack's outputs",
        description="Print the stack's outputs.",
    )
    outputs.add_argument("key", nargs="?", help="print only this output's value (FunctionName...)")
    outputs.set_defaults(handler=cmd_outputs)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """CLI entry: run the command; expected failures print one line and map to an exit code."""
    args = _parser().parse_args(argv)
    console = console or Console()
    try:
        config = load_config(args, os.environ if environ is None else environ)
        handler: Callable[[argparse.Namespace, DeployConfig, Console], int] = args.handler
        return handler(args, config, console)
    except KeyboardInterrupt:
        print("\ninterrupted (a stack operation already started keeps going)", file=console.err)
        return 130
    except Exception as exc:  # noqa: BLE001 - mapped to a message and an exit code below
        message, code = explain(exc)
        console.error(message)
        return code


def explain(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit code for an expected failure; re-raise anything else."""
    if isinstance(exc, UsageError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, StackNotFound):
        return str(exc), EXIT_AWS
    if isinstance(exc, DeployError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, ProfileNotFound):
        return f"{exc}: check --profile, samconfig profile or AWS_PROFILE", EXIT_USAGE
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE (after `aws sso login`) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            EXIT_AWS,
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION or --region", EXIT_AWS
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return (
            f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}",
            EXIT_AWS,
        )
    if isinstance(exc, BotoCoreError):
        return f"AWS: {exc}", EXIT_AWS
    if isinstance(exc, ResponseParserError):
        return (
            "the AWS endpoint answered something that is not an AWS response "
            "(a proxy's page? a wrong AWS_ENDPOINT_URL?)",
            EXIT_AWS,
        )
    raise exc


if __name__ == "__main__":
    sys.exit(main())

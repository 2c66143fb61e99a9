"""Deploy, outputs, destroy: the okta-bridge stack from the built zip to its outputs.

Each function takes the merged ``DeployConfig`` and a ``Console``, says what happens on it, and
raises an ``okta_bridge_dev.release.errors`` exception when the operation fails; the CLI maps
those to exit codes.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import secrets
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from okta_bridge_dev.console import Console
from okta_bridge_dev.release import principal as who
from okta_bridge_dev.release import signing, stacks
from okta_bridge_dev.release import template as sam
from okta_bridge_dev.release.aws import (
    Aws,
    DeployConfig,
    default_bucket,
    ensure_bucket,
    s3_url,
    upload_artifact,
)
from okta_bridge_dev.release.errors import Cancelled, DeployError, UsageError

__all__ = [
    "DEFAULT_LAYER_ZIP",
    "DEFAULT_TEMPLATE",
    "DEFAULT_ZIP",
    "PSEUDO_OUTPUTS",
    "artifact_bucket",
    "check_architecture",
    "check_deployer",
    "deploy",
    "destroy",
    "outputs",
    "report_failure",
    "upload_zip",
    "zip_architecture",
]

DEFAULT_ZIP = Path("dist/okta-bridge.zip")
DEFAULT_LAYER_ZIP = Path("dist/okta-bridge-layer.zip")
DEFAULT_TEMPLATE = Path("template.yaml")
POLL_SECONDS = 5.0
CHANGE_SET_TIMEOUT = 600.0


def deploy(
    config: DeployConfig,
    console: Console,
    *,
    zip_path: Path = DEFAULT_ZIP,
    layer_zip: Path = DEFAULT_LAYER_ZIP,
    template_path: Path = DEFAULT_TEMPLATE,
    execute: bool = True,
    timeout_minutes: float = 60,
) -> None:
    """Upload, translate, change set, execute, stream events, print outputs.

    The layer zip is uploaded too when the template publishes ``BridgeLayer``; with
    ``CodeSigningProfileVersionArn`` set, each upload is signed and the stack takes the signed
    object (``signing``). "No changes" is a success. ``execute=False`` stops after printing the
    change set. Raises ``UsageError`` (no zip, bad template or parameters, an unusable signing
    profile), ``DeployError`` (a signing job, the change set or the stack failed).
    """
    if not zip_path.is_file():
        raise UsageError(f"no artifact at {zip_path}: build it with `make package` (or pass --zip)")
    template = sam.load_template(template_path)
    with_layer = sam.LAYER_ID in template["Resources"]
    if with_layer and not layer_zip.is_file():
        raise UsageError(
            f"no layer at {layer_zip}: the template publishes {sam.LAYER_ID}, build it with "
            "`make layer` (or pass --layer-zip)"
        )
    parameters = sam.resolve_parameters(template, config.parameters)
    check_architecture(zip_path, parameters.get("Architecture"))
    if with_layer:
        check_architecture(layer_zip, parameters.get("Architecture"), make_target="layer")

    aws = Aws.connect(config)
    caller = who.resolve(aws.client("sts"), aws.client("iam"))
    check_deployer(caller, parameters, console)
    account = caller.account
    signer = signing.for_deploy(aws, parameters, account)
    bucket = artifact_bucket(aws, config, account, console, signer=signer)

    upload = functools.partial(
        upload_zip, aws, bucket=bucket, prefix=config.prefix, account=account, console=console
    )
    packaged = sam.set_code_uri(template, *upload(zip_path, signer=signer))
    if with_layer:
        packaged = sam.set_content_uri(packaged, *upload(layer_zip, signer=signer))
    translated = sam.translate(packaged, parameters, aws.session)
    template_arg = _template_argument(aws, config, account, bucket, translated)

    cfn = aws.client("cloudformation")
    stack = config.stack_name
    kind = stacks.change_set_type(stacks.stack_status(cfn, stack), stack)
    name = datetime.datetime.now(datetime.UTC).strftime("okta-bridge-%Y%m%d-%H%M%S-")
    name += secrets.token_hex(2)
    console.say(f"{'creating' if kind == 'CREATE' else 'updating'} stack {stack} in {aws.region}")
    change_set = stacks.create_change_set(
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
        print_outputs(console, stacks.stack_outputs(cfn, stack))
        return
    if change_set.status != "CREATE_COMPLETE":
        raise DeployError(f"change set {name} failed: {change_set.reason}")
    console.say(f"change set {name}:")
    console.say(
        stacks.format_table(
            ("action", "resource", "type", "replacement"),
            stacks.change_rows(change_set.changes),
        )
    )
    if not execute:
        console.say(f"not executed (--no-execute): review and execute {change_set.id}")
        return
    _execute(cfn, change_set, stack, timeout_minutes, console)


def check_deployer(caller: who.Principal, parameters: Mapping[str, str], console: Console) -> None:
    """Refuse, before anything is uploaded, a caller the secrets' policies would deny.

    Such a deploy would fail on the secret and leave a stack that only the account root user
    can clean up; ``parameters`` are the ones the deploy passes (every one, explicitly).
    """
    admins = who.parse_arns(parameters.get("AdminPrincipalArns"))
    deployers = who.parse_arns(parameters.get("DeployerPrincipalArns"))
    placeholder = (
        " (still the placeholder of samconfig.toml.example)" if who.PLACEHOLDER in admins else ""
    )
    who.require(
        caller,
        [*admins, *deployers],
        f"not deployed, nothing uploaded: {caller.arn} is in neither AdminPrincipalArns"
        f"{placeholder} nor DeployerPrincipalArns; the secrets' policies would deny it, so the "
        "deploy would fail on the secret and leave a stack that only the account root user can "
        "clean up, and `make secret` would be refused",
        console.say,
        deployer=True,
    )


def artifact_bucket(
    aws: Aws,
    config: DeployConfig,
    account: str,
    console: Console,
    *,
    signer: signing.Signer | None = None,
) -> str:
    """The artifact bucket, created (private, encrypted, versioned) if it is the default one;
    with a ``signer``, refused unless versioned (Signer signs object versions)."""
    bucket = config.bucket or default_bucket(account, aws.region)
    created = ensure_bucket(
        aws.client("s3"),
        bucket,
        account=account,
        region=aws.region,
        create=not config.bucket,
        partition=aws.partition,
    )
    if created:
        console.say(f"created artifact bucket s3://{bucket} (private, encrypted, versioned)")
    if signer:
        signing.check_bucket_versioning(aws.client("s3"), bucket, account=account)
    return bucket


def upload_zip(
    aws: Aws,
    zip_path: Path,
    *,
    bucket: str,
    prefix: str,
    account: str,
    console: Console,
    signer: signing.Signer | None = None,
) -> tuple[str, str, str | None]:
    """Upload the zip under its SHA-256 (once); return (bucket, key, version) of the upload,
    or with a ``signer`` of its signed copy."""
    s3 = aws.client("s3")
    data = zip_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = f"{prefix}/{digest}.zip"
    version, uploaded = upload_artifact(s3, bucket, key, data, digest, account=account)
    console.say(
        f"{'uploaded' if uploaded else 'already uploaded'} {zip_path} ({_size(len(data))}, "
        f"sha256 {digest[:12]}...) -> s3://{bucket}/{key}"
    )
    if signer:
        return signing.sign_upload(signer, (bucket, key, version), prefix=prefix, say=console.say)
    return bucket, key, version


def _template_argument(
    aws: Aws, config: DeployConfig, account: str, bucket: str, template: Mapping[str, Any]
) -> dict[str, str]:
    """``TemplateBody``, or ``TemplateURL`` via the bucket when over CloudFormation's limit."""
    body = sam.template_json(template).encode()
    if len(body) <= sam.TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body.decode()}
    key = f"{config.prefix}/templates/{hashlib.sha256(body).hexdigest()}.json"
    aws.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ExpectedBucketOwner=account,
    )
    return {"TemplateURL": s3_url(bucket, aws.region, key)}


def _execute(
    cfn: Any, change_set: stacks.ChangeSet, stack: str, timeout: float, console: Console
) -> None:
    """Execute the change set and follow the stack to its end; print outputs or failures."""
    stream = stacks.EventStream(cfn, change_set.stack_id or stack, out=console.out)
    stream.prime()
    cfn.execute_change_set(ChangeSetName=change_set.id)
    status = stacks.wait_for_stack(
        cfn,
        stream,
        poll_seconds=POLL_SECONDS,
        timeout_seconds=timeout * 60,
        progress=stacks.Progress(out=console.err),
    )
    if status not in stacks.SUCCESS:
        report_failure(console, stack, status, stream)
    console.say(f"stack {stack}: {status}")
    print_outputs(console, stacks.stack_outputs(cfn, stack))


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


def check_architecture(
    path: Path, architecture: str | None, *, make_target: str = "package"
) -> None:
    """Refuse a zip (the function's, or the layer's) built for another architecture.

    The bridge would start, and fail only when cryptography is first imported (key-based
    clients), in production: refusing here is cheaper.
    """
    try:
        built = zip_architecture(path)
    except zipfile.BadZipFile:
        raise UsageError(
            f"{path} is not a zip file: rebuild it with `make {make_target}`"
        ) from None
    if built and architecture and built != architecture:
        raise UsageError(
            f"{path} is built for {built} but the function's Architecture is {architecture}: "
            f"`make {make_target} ARCH={architecture}`, or set Architecture={built} in "
            "parameter_overrides"
        )


def report_failure(console: Console, stack: str, status: str, stream: stacks.EventStream) -> None:
    """Print the failed resources and their reasons; raise ``DeployError`` naming the status."""
    reasons = stacks.failure_reasons(stream.failures)
    if reasons:
        console.say("failed resources:")
        for line in reasons:
            console.say(f"  {line}")
    if status == "ROLLBACK_COMPLETE":
        console.say("the first deployment failed: run `make destroy` before deploying again")
    raise DeployError(f"stack {stack} ended {status}")


def print_outputs(console: Console, values: Mapping[str, str]) -> None:
    """The stack's outputs as a table (or a note that it has none)."""
    if not values:
        console.say("(the stack has no outputs)")
        return
    console.say(stacks.format_table(("output", "value"), sorted(values.items())))


PSEUDO_OUTPUTS = ("stack_name", "region")
"""Keys ``outputs`` answers from the configuration itself, as ``make deploy`` resolves it."""


def outputs(config: DeployConfig, console: Console, key: str | None = None) -> None:
    """Print the stack's outputs as a table, or one output's bare value for scripts.

    ``FN=$(okta-bridge outputs FunctionName)``; ``stack_name`` and ``region`` print what
    ``make deploy`` would use (samconfig.toml, environment, flags), without calling AWS.
    """
    aws = Aws.connect(config)
    if key == "stack_name":
        console.say(config.stack_name)
        return
    if key == "region":
        console.say(aws.region)
        return
    cfn = aws.client("cloudformation")
    values = stacks.stack_outputs(cfn, config.stack_name)
    if key is None:
        print_outputs(console, values)
        return
    if key not in values:
        raise UsageError(
            f"stack {config.stack_name} has no output {key} (it has: "
            f"{', '.join(sorted(values)) or 'none'})"
        )
    console.say(values[key])


def destroy(
    config: DeployConfig, console: Console, *, yes: bool = False, timeout_minutes: float = 60
) -> None:
    """Delete the stack (after confirmation) and stream its events until it is gone.

    Raises ``UsageError`` when confirmation is needed but there is no terminal, ``Cancelled``
    when the person does not type the stack's name, ``DeployError`` when the deletion fails.
    """
    aws = Aws.connect(config)
    cfn = aws.client("cloudformation")
    stack = config.stack_name
    description = stacks.describe_stack(cfn, stack)
    if description is None:
        console.say(f"stack {stack} does not exist in {aws.region}: nothing to delete")
        return
    if not yes:
        if not console.interactive():
            raise UsageError(f"deleting stack {stack} needs confirmation: pass --yes")
        answer = console.ask(
            f"Delete stack {stack} in {aws.region} (function, role, secret and its value)? "
            "Type the stack name to confirm: "
        )
        if answer.strip() != stack:
            raise Cancelled("not deleted")
    stack_id = str(description["StackId"])
    stream = stacks.EventStream(cfn, stack_id, out=console.out)
    stream.prime()
    cfn.delete_stack(StackName=stack_id)
    status = stacks.wait_for_stack(
        cfn,
        stream,
        poll_seconds=POLL_SECONDS,
        timeout_seconds=timeout_minutes * 60,
        progress=stacks.Progress(out=console.err),
    )
    if status != "DELETE_COMPLETE":
        report_failure(console, stack, status, stream)
    console.say(f"stack {stack}: DELETE_COMPLETE (the artifact bucket is kept)")

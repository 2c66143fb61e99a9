"""Attacks on ``make deploy``'s code signing, the deployer check and ``secret put``'s paths.

The attacker of the signing tests may write to the artifact bucket (objects, the signed-object
index, the signed objects) but not to Lambda or CloudFormation: with the stack's code signing
config in Enforce mode, the worst they should manage is a refused deploy, never a stack that runs
another build than the local zip (an older signed one, or code of their own that Signer signed).

Against moto's server over TLS, with Signer's signing jobs from ``signer_shim`` (which "signs"
by copying the source version as it is, so a signed object's bytes are the source's).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from okta_bridge_dev.console import Console
from okta_bridge_dev.release import aws as release_aws
from okta_bridge_dev.release import deploy as release_deploy
from okta_bridge_dev.release import principal as who
from okta_bridge_dev.release import secret, signing
from okta_bridge_dev.release.errors import DeployError, UsageError

from .conftest import REGION, Moto, deploy_argv
from .signer_shim import Jobs
from .test_deploy import VALID, moto_user, run

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse .* not supported by moto:UserWarning"
)

PREFIX = "okta-bridge"
TEMPLATES: dict[str, Any] = {}
"""The templates of the stacks ``deploy`` destroyed, by stack name."""


def session() -> Any:
    return boto3.session.Session(region_name=REGION)


def s3() -> Any:
    return session().client("s3")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "POLL_SECONDS", 0)
    TEMPLATES.clear()


def build(path: Path, release: str) -> Path:
    """A stand-in for the function's zip; ``release`` makes each build's bytes different."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "okta_bridge/handler.py",
            f"RELEASE = {release!r}\ndef lambda_handler(event, context):\n    return {{}}\n",
        )
    return path


Deploy = Callable[..., tuple[int, str]]


@pytest.fixture
def deploy(aws: Moto, template: Path, fake_layer_zip: Path, profile_arn: str) -> Deploy:
    """``deploy(stack, zip, *"KEY=VALUE")``, signed with the profile, the caller as the admin.

    Each deploy of a test creates its own stack (moto holds one at a time: the previous one is
    destroyed first, its template kept): what matters is the code a new stack gets.
    """

    def run_deploy(stack: str, zip_path: Path, *parameters: str) -> tuple[int, str]:
        cfn = session().client("cloudformation")
        for summary in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]:
            name = summary["StackName"]
            TEMPLATES[name] = cfn.get_template(StackName=name)["TemplateBody"]
            assert run("destroy", "--stack-name", name, "--yes")[0] == 0
        admin = f"AdminPrincipalArns={moto_user(aws.account)}"
        signed = f"CodeSigningProfileVersionArn={profile_arn}"
        argv = deploy_argv(stack, zip_path, fake_layer_zip, template, admin, signed, *parameters)
        return run(*argv)

    return run_deploy


def template_of(stack: str) -> Any:
    if stack in TEMPLATES:
        return TEMPLATES[stack]
    return session().client("cloudformation").get_template(StackName=stack)["TemplateBody"]


def code_of(stack: str, logical_id: str = "BridgeFunction") -> bytes:
    """The bytes the stack's function code names: its pinned version, else the key's latest."""
    body = template_of(stack)
    code = body["Resources"][logical_id]["Properties"]["Code"]
    version = {"VersionId": code["S3ObjectVersion"]} if "S3ObjectVersion" in code else {}
    got = s3().get_object(Bucket=code["S3Bucket"], Key=code["S3Key"], **version)
    return bytes(got["Body"].read())


def put_as_attacker(bucket: str, key: str, data: bytes, **extra: Any) -> None:
    """A write by someone with s3:PutObject on the bucket (with a checksum S3 would accept)."""
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    s3().put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=checksum,
        **extra,
    )


def index_records(bucket: str) -> dict[str, dict[str, Any]]:
    """Index key -> record of every signed-object record in the bucket."""
    listed = s3().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/signed/index/")
    return {
        item["Key"]: json.loads(s3().get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        for item in listed.get("Contents", [])
    }


def function_job(zip_path: Path) -> Any:
    """The last signing job of ``zip_path``'s upload."""
    key = f"{PREFIX}/{hashlib.sha256(zip_path.read_bytes()).hexdigest()}.zip"
    return [job for job in Jobs.started if job.source["key"] == key][-1]


# -- the source object ------------------------------------------------------------------------


def test_a_planted_object_named_after_the_local_zip_is_not_what_gets_signed(
    bucket: str, deploy: Deploy, tmp_path: Path
) -> None:
    """Fixed: the upload reused any object at ``<prefix>/<sha256>.zip`` whose *metadata* said
    that digest, so an attacker who planted their code there (before the deploy) had it signed
    by the stack's profile and deployed. S3's own SHA-256 of the object now decides."""
    local = build(tmp_path / "okta-bridge.zip", "2.0")
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    evil = build(tmp_path / "evil.zip", "attacker").read_bytes()
    put_as_attacker(bucket, f"{PREFIX}/{digest}.zip", evil, Metadata={"sha256": digest})

    code, text = deploy("planted", local)

    assert code == 0, text
    assert f"already uploaded {local}" not in text
    job = function_job(local)
    signed_source = (
        s3()
        .get_object(Bucket=bucket, Key=job.source["key"], VersionId=job.source["version"])["Body"]
        .read()
    )
    assert signed_source == local.read_bytes()
    assert code_of("planted") == local.read_bytes()
    assert code_of("planted", "RotationFunction") == local.read_bytes()


def test_a_write_over_the_source_between_upload_and_signing_is_not_signed(
    bucket: str, deploy: Deploy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resisted: Signer signs the object *version* the upload made, not the key's latest."""
    local = build(tmp_path / "okta-bridge.zip", "2.0")
    evil = build(tmp_path / "evil.zip", "attacker").read_bytes()
    start = signing.Signer._start

    def racing_start(self: signing.Signer, bucket: str, key: str, version: str, **kw: Any) -> str:
        put_as_attacker(bucket, key, evil)
        return start(self, bucket, key, version, **kw)

    monkeypatch.setattr(signing.Signer, "_start", racing_start)
    code, text = deploy("raced", local)

    assert code == 0, text
    assert code_of("raced") == local.read_bytes()


# -- the signed-object index ------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["older-job", "older-key-only"])
def test_an_index_record_pointing_at_an_older_signed_build_does_not_roll_back(
    bucket: str, deploy: Deploy, tmp_path: Path, forged: str
) -> None:
    """Fixed: the index record was trusted as it stood, so pointing the current build's record
    at an older signed object made the next deploy ship that older build (a rollback Lambda
    accepts: it is signed by the same profile). The record now only names a job, and Signer's
    description of that job must match the source version and the profile version."""
    old = build(tmp_path / "old.zip", "1.0")
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    assert deploy("old", old)[0] == 0
    old_job = function_job(old)
    assert deploy("new", new)[0] == 0
    new_job = function_job(new)
    records = index_records(bucket)
    (index_key,) = [
        key for key, record in records.items() if record["source"]["key"] == new_job.source["key"]
    ]
    record = records[index_key]
    record["signed"]["key"] = old_job.signed_key
    record["signed"].pop("version", None)
    if forged == "older-job":
        record["signed"]["jobId"] = old_job.job_id
    put_as_attacker(bucket, index_key, json.dumps(record).encode())

    code, text = deploy("next", new)

    assert code == 0, text
    assert code_of("next") == new.read_bytes()
    assert old_job.signed_key not in text
    if forged == "older-job":
        assert f"warning: the record {index_key} names signing job {old_job.job_id}" in text


@pytest.mark.parametrize("garbage", [b"not json", b'{"signed": {}}', b'{"signed": {"jobId": 7}}'])
def test_an_unreadable_index_record_signs_again(
    bucket: str, deploy: Deploy, tmp_path: Path, garbage: bytes
) -> None:
    """Resisted: a record that names no job Signer knows is not reused."""
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    assert deploy("first", new)[0] == 0
    for index_key in index_records(bucket):
        put_as_attacker(bucket, index_key, garbage)
    started = len(Jobs.started)

    code, text = deploy("second", new)

    assert code == 0, text
    assert len(Jobs.started) == started + 2  # the function's zip and the layer's
    assert code_of("second") == new.read_bytes()


# -- the signed objects -----------------------------------------------------------------------


def test_a_signed_object_written_over_is_not_reused(
    bucket: str, deploy: Deploy, tmp_path: Path
) -> None:
    """Fixed: the stack named the signed object by key only, so copying an older signed zip
    over it (a new version of the same key) made the next stack that reused it run the older
    build. The stack now names the version Signer wrote, and a rewritten key is signed again."""
    old = build(tmp_path / "old.zip", "1.0")
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    assert deploy("old", old)[0] == 0
    old_signed = s3().get_object(Bucket=bucket, Key=function_job(old).signed_key)["Body"].read()
    assert deploy("new", new)[0] == 0
    put_as_attacker(bucket, function_job(new).signed_key, old_signed)

    code, text = deploy("next", new)

    assert code == 0, text
    assert code_of("next") == new.read_bytes()
    assert "was written over, deleted or replaced after the job: signing again" in text


def test_a_signed_object_deleted_and_replaced_by_an_older_build_is_not_reused(
    bucket: str, deploy: Deploy, tmp_path: Path
) -> None:
    """Fixed: with s3:DeleteObjectVersion as well, an attacker deleted the version Signer wrote
    and put an older signed zip under the key, one version again. The object now must date from
    no later than the job's completion (Signer's completedAt), or the zip is signed again."""
    old = build(tmp_path / "old.zip", "1.0")
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    assert deploy("old", old)[0] == 0
    old_signed = s3().get_object(Bucket=bucket, Key=function_job(old).signed_key)["Body"].read()
    assert deploy("new", new)[0] == 0
    job = function_job(new)
    listed = s3().list_object_versions(Bucket=bucket, Prefix=job.signed_key)["Versions"]
    for version in listed:
        s3().delete_object(Bucket=bucket, Key=job.signed_key, VersionId=version["VersionId"])
    put_as_attacker(bucket, job.signed_key, old_signed)
    job.completed_at -= 3600  # the job completed an hour before the attacker's write

    code, text = deploy("next", new)

    assert code == 0, text
    assert code_of("next") == new.read_bytes()
    assert "was written over, deleted or replaced after the job: signing again" in text


def test_a_write_over_the_signed_object_after_signing_does_not_reach_the_stack(
    bucket: str, deploy: Deploy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixed (TOCTOU between signing and the change set): the stack's code is the signed
    object's version Signer wrote, so a later write over that key changes nothing."""
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    evil = build(tmp_path / "evil.zip", "attacker").read_bytes()
    sign_upload = signing.sign_upload

    def then_overwrite(*args: Any, **kwargs: Any) -> tuple[str, str, str | None]:
        location = sign_upload(*args, **kwargs)
        put_as_attacker(location[0], location[1], evil)
        return location

    monkeypatch.setattr(signing, "sign_upload", then_overwrite)
    code, text = deploy("raced", new)

    assert code == 0, text
    assert code_of("raced") == new.read_bytes()
    assert code_of("raced", "RotationFunction") == new.read_bytes()


def test_a_write_over_the_signed_object_while_the_job_runs_stops_the_deploy(
    bucket: str, deploy: Deploy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixed: a signing job's output with more than one version was written over by someone
    else (Signer writes it once): the deploy stops before the stack."""
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    evil = build(tmp_path / "evil.zip", "attacker").read_bytes()
    wait = signing.Signer._wait

    def racing_wait(self: signing.Signer, job_id: str, source: str) -> dict[str, Any]:
        described = wait(self, job_id, source)
        put_as_attacker(bucket, described["signedObject"]["s3"]["key"], evil)
        return described

    monkeypatch.setattr(signing.Signer, "_wait", racing_wait)
    code, text = deploy("raced", new)

    assert code == 1, text
    assert "was written over (or deleted) while the job ran" in text
    stacks = session().client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []


def test_the_signed_output_key_comes_from_signer_not_from_the_bucket(
    bucket: str, deploy: Deploy, tmp_path: Path
) -> None:
    """Resisted: the stack's code key is Signer's ``signedObject`` key under ``<prefix>/signed/``
    (the job's destination), whatever the index holds."""
    new = build(tmp_path / "okta-bridge.zip", "2.0")
    assert deploy("first", new)[0] == 0
    for index_key, record in index_records(bucket).items():
        record["signed"]["key"] = "../../elsewhere/evil.zip"
        record["signed"]["bucket"] = "someone-elses-bucket"
        put_as_attacker(bucket, index_key, json.dumps(record).encode())

    code, text = deploy("second", new)

    assert code == 0, text
    body = template_of("second")
    code_location = body["Resources"]["BridgeFunction"]["Properties"]["Code"]
    assert code_location["S3Bucket"] == bucket
    assert code_location["S3Key"] == function_job(new).signed_key
    assert code_location["S3Key"].startswith(f"{PREFIX}/signed/")


def test_sign_layer_publishes_the_version_signer_wrote(
    bucket: str, profile_arn: str, fake_layer_zip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixed: ``sign-layer`` published the signed key's latest version, so a write over it
    between signing and publishing became the layer."""
    evil = build(fake_layer_zip.with_name("evil.zip"), "attacker").read_bytes()
    sign_upload = signing.sign_upload
    published: list[dict[str, Any]] = []

    def then_overwrite(*args: Any, **kwargs: Any) -> tuple[str, str, str | None]:
        location = sign_upload(*args, **kwargs)
        put_as_attacker(location[0], location[1], evil)
        return location

    client = release_aws.Aws.client

    def spying_client(self: release_aws.Aws, service: str) -> Any:
        made = client(self, service)
        if service == "lambda" and not getattr(made, "_spied", False):
            made.meta.events.register(
                "provide-client-params.lambda.PublishLayerVersion",
                lambda params, **_: published.append(dict(params)),
            )
            made._spied = True
        return made

    monkeypatch.setattr(signing, "sign_upload", then_overwrite)
    monkeypatch.setattr(release_aws.Aws, "client", spying_client)
    code, text = run(
        "sign-layer",
        "--zip",
        str(fake_layer_zip),
        "--parameter",
        f"CodeSigningProfileVersionArn={profile_arn}",
    )

    assert code == 0, text
    (params,) = published
    content = params["Content"]
    got = s3().get_object(
        Bucket=content["S3Bucket"], Key=content["S3Key"], VersionId=content["S3ObjectVersion"]
    )
    assert got["Body"].read() == fake_layer_zip.read_bytes()


# -- the profile ARN (samconfig.toml / --parameter) --------------------------------------------


@pytest.mark.parametrize("change", ["partition", "account"])
def test_a_profile_arn_naming_another_partition_or_account_is_refused_before_upload(
    bucket: str, deploy: Deploy, tmp_path: Path, profile_arn: str, change: str
) -> None:
    """Fixed: only the region, name and version were compared, so an ARN of the same profile
    name and version in another partition (or naming an account that does not hold it) passed
    the check, the zips were uploaded and signed with the local profile, and the code signing
    config named a profile that signed nothing."""
    head, tail = profile_arn.split(":/signing-profiles/", 1)
    if change == "partition":
        head = head.replace("arn:aws:", "arn:aws-us-gov:", 1)
    else:
        account = head.rsplit(":", 1)[1]
        head = head.replace(f":{account}", ":210987654321")
    hostile = f"{head}:/signing-profiles/{tail}"
    new = build(tmp_path / "okta-bridge.zip", "2.0")

    code, text = deploy("hostile", new, f"CodeSigningProfileVersionArn={hostile}")

    assert code == 2, text
    assert "not deployed, nothing uploaded: signing profile" in text
    assert f"the profile Signer signs with is {profile_arn}" in text
    assert s3().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert Jobs.started == []


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:signer:us-east-1:123456789012:/signing-profiles/../x/abc",
        "arn:aws:signer:us-east-1:123456789012:/signing-profiles/x/abc/../def",
        "arn:aws:signer:us-east-1:123456789012:/signing-profiles/x y/abc",
        "arn:aws:signer:us-east-1:123456789012:/signing-profiles/x/abc\n",
        "arn:aws:signer:us-east-1:12345678901:/signing-profiles/x/abc",
    ],
)
def test_a_profile_arn_with_traversal_or_junk_is_not_parsed(arn: str) -> None:
    """Resisted: the name and version are ``[A-Za-z0-9_]``/``[A-Za-z0-9]`` only."""
    if arn.endswith("\n"):  # a trailing newline is stripped, as a pasted value has one
        assert signing.parse_profile_arn(arn).version == "abc"
        return
    with pytest.raises(UsageError, match="is not a signing profile version ARN"):
        signing.parse_profile_arn(arn)


# -- the deployer check -----------------------------------------------------------------------

ACCOUNT = "111122223333"


def principal(arn: str, *, path_known: bool = True) -> who.Principal:
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/{arn.rsplit('/', 1)[1]}/me"
    name = arn.rsplit("/", 1)[1]
    return who.Principal(caller, arn, ACCOUNT, "aws", "role", name, path_known=path_known)


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(out=out, err=out, environ={}), out


@pytest.mark.parametrize(
    "listed",
    [
        "arn:aws:iam::444455556666:role/aws-reserved/sso.amazonaws.com/Deploy",  # other account
        f"arn:aws:iam::{ACCOUNT}:user/Deploy",  # a user of the role's name
        f"arn:aws:iam::{ACCOUNT}:role/deploy",  # another case
        f"arn:aws:iam::{ACCOUNT}:role/Deploy-ci",  # a longer name
    ],
)
def test_a_role_whose_path_is_unknown_is_not_admitted_by_a_lookalike(listed: str) -> None:
    """Resisted: without iam:GetRole the role is matched by account and exact name only (role
    names are unique in an account, whatever their path)."""
    caller = principal(f"arn:aws:iam::{ACCOUNT}:role/Deploy", path_known=False)
    out_console, _ = console()
    with pytest.raises(DeployError) as refused:
        release_deploy.check_deployer(
            caller, {"AdminPrincipalArns": listed, "DeployerPrincipalArns": ""}, out_console
        )
    message = str(refused.value)
    assert f"add AdminPrincipalArns=arn:aws:iam::{ACCOUNT}:role/Deploy" in message
    assert "iam:GetRole was denied" in message


def test_a_listed_arn_with_the_callers_arn_as_a_prefix_does_not_admit_it() -> None:
    """Resisted: exact matches only (no prefix, wildcard or substring)."""
    caller = principal(f"arn:aws:iam::{ACCOUNT}:role/Deploy")
    listed = f"arn:aws:iam::{ACCOUNT}:role/Deploy*,arn:aws:iam::{ACCOUNT}:role/Deploy/x"
    assert not who.admission(caller, who.parse_arns(listed)).admitted
    out_console, _ = console()
    with pytest.raises(DeployError, match="is in neither AdminPrincipalArns"):
        release_deploy.check_deployer(caller, {"DeployerPrincipalArns": listed}, out_console)


def test_a_federated_caller_listed_verbatim_gets_the_use_a_role_advice() -> None:
    """Resisted: a federated user (not an IAM user or role) is told to use a role."""
    caller = who.resolve(_Sts(f"arn:aws:sts::{ACCOUNT}:federated-user/alice"), iam=None)
    out_console, _ = console()
    with pytest.raises(DeployError, match="is not an IAM user or role: use a role"):
        release_deploy.check_deployer(caller, {"AdminPrincipalArns": ""}, out_console)


class _Sts:
    def __init__(self, arn: str) -> None:
        self.arn = arn

    def get_caller_identity(self) -> dict[str, str]:
        return {"Arn": self.arn, "Account": ACCOUNT}


# -- secret put: paths and values -------------------------------------------------------------


def test_expand_path_substitutes_once_and_runs_nothing(tmp_path: Path) -> None:
    """Resisted: only ``$NAME``/``${NAME}`` of the environment, in one pass; no command
    substitution, default values or globbing, and a value holding ``$X`` is not expanded again."""
    environ = {"HOME": str(tmp_path), "DIR": "$HOME/nested", "X": "x"}
    assert secret.expand_path("$DIR/a", environ) == Path("$HOME/nested/a")
    assert secret.expand_path("$(id)/a", environ) == Path("$(id)/a")
    assert secret.expand_path("`id`/a", environ) == Path("`id`/a")
    assert secret.expand_path("${NOPE:-/etc}/passwd", environ) == Path("${NOPE:-/etc}/passwd")
    assert secret.expand_path("*.json", environ) == Path("*.json")
    assert secret.expand_path("${X}y", environ) == Path("xy")


def test_refused_credentials_are_not_echoed() -> None:
    """Resisted: a refusal names the key at fault, never a value."""
    values = dict(VALID, token_url="http://not-https.example/" + VALID["client_secret"])
    with pytest.raises(UsageError) as refused:
        secret.validate_secret(json.dumps(values), {})
    assert VALID["client_secret"] not in str(refused.value)
    assert "token_url" in str(refused.value)
    broken = json.dumps(VALID)[:-1]  # not JSON
    with pytest.raises(UsageError) as refused:
        secret.validate_secret(broken, {})
    assert VALID["client_secret"] not in str(refused.value)

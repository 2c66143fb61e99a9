"""``deploy``, ``secret``, ``outputs`` and ``destroy`` end to end against moto's server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.cloudformation import parsing

from okta_bridge_dev.cli import exit_codes
from okta_bridge_dev.cli import main as cli
from okta_bridge_dev.console import Console
from okta_bridge_dev.release import aws as release_aws
from okta_bridge_dev.release import template as steps
from okta_bridge_dev.release.principal import PLACEHOLDER

from . import moto_shims
from .conftest import REGION, REPO, Moto, find_python313

pytestmark = pytest.mark.filterwarnings(
    # moto warns (in its server thread) about each resource type it cannot create;
    # test_moto_takes_every_resource_type_of_the_template names any such type instead.
    "ignore:Tried to parse .* not supported by moto:UserWarning"
)

STACK = "okta-bridge-test"
VALID = {
    "client_id": "0oa1example",
    "client_secret": "s3cr3t-value-never-shown",
    "token_url": "https://yourcompany.okta.com/oauth2/default/v1/token",
    "api_endpoint": "https://internal-api.yourcompany.com/v1/data",
}


class Captured(Console):
    """A console whose output the test reads and whose prompts it answers."""

    def __init__(self, answers: list[str] | None = None, *, tty: bool = False) -> None:
        answers = list(answers or [])
        super().__init__(
            out=io.StringIO(),
            err=io.StringIO(),
            ask=lambda prompt: answers.pop(0),
            ask_secret=lambda prompt: answers.pop(0),
            interactive=lambda: tty,
        )

    @property
    def text(self) -> str:
        assert isinstance(self.out, io.StringIO)
        assert isinstance(self.err, io.StringIO)
        return self.out.getvalue() + self.err.getvalue()


def run(*argv: str, console: Captured | None = None) -> tuple[int, str]:
    console = console or Captured()
    code = cli.main(list(argv), console=console)
    return code, console.text


@pytest.fixture
def artifact_bucket(aws: Moto) -> str:
    """The default artifact bucket, created ahead (moto cannot honour its TLS-only policy)."""
    name = release_aws.default_bucket(aws.account, REGION)
    boto3.session.Session(region_name=REGION).client("s3").create_bucket(Bucket=name)
    return name


def moto_user(account: str) -> str:
    """The IAM ARN of moto's default caller (``arn:aws:sts::<account>:user/moto``)."""
    return f"arn:aws:iam::{account}:user/moto"


@pytest.fixture
def zip_flags(fake_zip: Path, fake_layer_zip: Path, aws: Moto) -> tuple[str, ...]:
    """The deploy flags naming the two artifacts the stack takes, and the caller as the admin
    (else the deploy is refused before anything is uploaded)."""
    return (
        "--zip",
        str(fake_zip),
        "--layer-zip",
        str(fake_layer_zip),
        "--parameter",
        f"AdminPrincipalArns={moto_user(aws.account)}",
    )


@pytest.fixture
def deployed(artifact_bucket: str, zip_flags: tuple[str, ...], template: Path) -> str:
    code, text = run(
        "deploy",
        "--stack-name",
        STACK,
        *zip_flags,
        "--template",
        str(template),
    )
    assert code == 0, text
    return text


def test_deploy_creates_the_stack(
    aws: Moto, deployed: str, artifact_bucket: str, fake_zip: Path
) -> None:
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    session = boto3.session.Session(region_name=REGION)
    function = session.client("lambda").get_function(FunctionName=outputs["FunctionName"])
    config = function["Configuration"]
    assert config["Runtime"] == "python3.13"
    assert config["Handler"] == "okta_bridge.handler.lambda_handler"
    secret_arn = outputs["SecretArn"]
    assert secret_arn.startswith(f"arn:aws:secretsmanager:{REGION}:{aws.account}:secret:")
    assert config["Environment"]["Variables"]["BRIDGE_SECRET_ID"] == secret_arn

    secrets = session.client("secretsmanager")
    described = secrets.describe_secret(SecretId=secret_arn)
    assert described["Name"] == "prod/okta_api_creds"
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId=secret_arn)  # created empty: `make secret` fills it

    role_name = outputs["RoleArn"].rsplit("/", 1)[-1]
    assert session.client("iam").get_role(RoleName=role_name)["Role"]["Arn"] == outputs["RoleArn"]
    assert config["Role"] == outputs["RoleArn"]

    digest = hashlib.sha256(fake_zip.read_bytes()).hexdigest()
    objects = session.client("s3").list_objects_v2(Bucket=artifact_bucket)["Contents"]
    assert f"okta-bridge/{digest}.zip" in [o["Key"] for o in objects]
    code = session.client("lambda").get_function(FunctionName=outputs["FunctionName"])["Code"]
    assert code["RepositoryType"] == "S3"

    # The rotation function runs the same uploaded zip, with both secrets' ARNs.
    rotation = session.client("lambda").get_function(FunctionName=outputs["RotationFunctionName"])
    assert rotation["Configuration"]["Handler"] == "okta_bridge.rotation.handler.lambda_handler"
    assert rotation["Configuration"]["Environment"]["Variables"] == {
        "BRIDGE_SECRET_ID": secret_arn,
        "BRIDGE_ADMIN_SECRET_ID": outputs["AdminSecretArn"],
        "BRIDGE_LOG_LEVEL": "INFO",
        "BRIDGE_METRICS_NAMESPACE": "OktaBridge",
        "BRIDGE_DPOP": "auto",
        "BRIDGE_SCOPES": "api.access",
    }
    assert rotation["Configuration"]["CodeSha256"] == config["CodeSha256"]
    admin = secrets.describe_secret(SecretId=outputs["AdminSecretArn"])
    assert admin["Name"] == outputs["AdminSecretName"] == "prod/okta_api_creds-admin"
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId=outputs["AdminSecretArn"])
    assert "CREATE_COMPLETE" in deployed
    assert "SecretArn" in deployed  # the outputs table
    assert secret_arn in deployed


def test_second_deploy_reports_no_changes(
    deployed: str, zip_flags: tuple[str, ...], template: Path
) -> None:
    code, text = run(
        "deploy",
        "--stack-name",
        STACK,
        *zip_flags,
        "--template",
        str(template),
    )
    assert code == 0, text
    assert "already uploaded" in text
    assert "no changes" in text
    assert "SecretArn" in text


def test_secret_file_stores_valid_credentials(aws: Moto, deployed: str, tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps(VALID))
    creds.chmod(0o600)
    code, text = run("secret", "put", "--stack-name", STACK, "--file", str(creds))
    assert code == 0, text
    assert "stored api_endpoint, client_id, client_secret, token_url" in text
    assert VALID["client_secret"] not in text
    session = boto3.session.Session(region_name=REGION)
    cfn = session.client("cloudformation")
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    }
    stored = session.client("secretsmanager").get_secret_value(SecretId=outputs["SecretArn"])
    assert json.loads(stored["SecretString"]) == VALID


def test_secret_file_path_may_name_home_as_a_variable(
    aws: Moto, deployed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--file '$HOME/.okta-bridge/creds.json'`` (quoted, so unexpanded) reads that file."""
    monkeypatch.setenv("HOME", str(tmp_path))
    private = tmp_path / ".okta-bridge"
    private.mkdir(mode=0o700)
    (private / "creds.json").write_text(json.dumps(VALID))
    (private / "creds.json").chmod(0o600)
    code, text = run(
        "secret", "put", "--stack-name", STACK, "--file", "$HOME/.okta-bridge/creds.json"
    )
    assert code == 0, text
    assert "stored api_endpoint, client_id, client_secret, token_url" in text
    code, text = run("secret", "put", "--stack-name", STACK, "--file", "$NOPE/creds.json")
    assert code == 2, text
    assert "--file $NOPE/creds.json: no such file ($NOPE is not set)" in text


def test_secret_file_refuses_invalid_credentials(aws: Moto, deployed: str, tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({**VALID, "token_url": "http://plain.example/token"}))
    code, text = run("secret", "put", "--stack-name", STACK, "--file", str(creds))
    assert code == exit_codes.EXIT_USAGE
    assert "'token_url'" in text
    assert "not stored" in text
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({k: v for k, v in VALID.items() if k != "client_id"}))
    code, text = run("secret", "put", "--stack-name", STACK, "--file", str(missing))
    assert code == exit_codes.EXIT_USAGE
    assert "'client_id'" in text
    assert VALID["client_secret"] not in text


def test_destroy_removes_the_stack(aws: Moto, deployed: str) -> None:
    code, text = run("destroy", "--stack-name", STACK, "--yes")
    assert code == 0, text
    assert "DELETE_COMPLETE" in text
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    live = [
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert STACK not in live
    code, text = run("destroy", "--stack-name", STACK, "--yes")
    assert code == 0
    assert "nothing to delete" in text


def test_the_default_artifact_bucket_is_created_private_encrypted_versioned(aws: Moto) -> None:
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    name = release_aws.default_bucket(aws.account, REGION)
    assert release_aws.ensure_bucket(s3, name, account=aws.account, region=REGION, create=True)
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert not release_aws.ensure_bucket(s3, name, account=aws.account, region=REGION, create=True)


def test_a_configured_bucket_must_exist(
    aws: Moto, zip_flags: tuple[str, ...], template: Path
) -> None:
    code, text = run(
        "deploy",
        "--bucket",
        "no-such-bucket",
        *zip_flags,
        "--template",
        str(template),
    )
    assert code == exit_codes.EXIT_FAILED
    assert "bucket no-such-bucket (s3_bucket / OKTA_BRIDGE_BUCKET) does not exist" in text


def test_no_execute_leaves_the_change_set_for_review(
    artifact_bucket: str, zip_flags: tuple[str, ...], template: Path
) -> None:
    code, text = run(
        "deploy",
        "--stack-name",
        STACK,
        *zip_flags,
        "--template",
        str(template),
        "--no-execute",
    )
    assert code == 0, text
    assert "Add" in text
    assert "not executed (--no-execute)" in text
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"


def test_secret_prompts_without_echo_when_there_is_no_file(aws: Moto, deployed: str) -> None:
    answers = [
        VALID["client_id"],
        VALID["token_url"],
        VALID["api_endpoint"],
        "",  # auth_method: the default client_secret_basic
        VALID["client_secret"],  # asked with getpass
        "",  # no username: client credentials grant
        "",  # scopes: the stack's default
        "",  # dpop: yes, Okta's default for new apps
    ]
    secret_prompts: list[str] = []
    console = Captured(answers, tty=True)
    ask_secret = console.ask_secret

    def recording_ask_secret(prompt: str) -> str:
        secret_prompts.append(prompt)
        return ask_secret(prompt)

    console.ask_secret = recording_ask_secret
    code, text = run("secret", "put", "--stack-name", STACK, console=console)
    assert code == 0, text
    assert secret_prompts == ["client_secret (not echoed): "]
    assert VALID["client_secret"] not in text
    session = boto3.session.Session(region_name=REGION)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in session.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0][
            "Outputs"
        ]
    }
    stored = json.loads(
        session.client("secretsmanager").get_secret_value(SecretId=outputs["SecretArn"])[
            "SecretString"
        ]
    )
    assert stored == {**VALID, "auth_method": "client_secret_basic", "dpop": True}


def test_secret_without_a_file_or_a_terminal_is_refused(aws: Moto, deployed: str) -> None:
    code, text = run("secret", "put", "--stack-name", STACK)
    assert code == exit_codes.EXIT_USAGE
    assert "pass --file" in text


def test_commands_on_a_missing_stack_exit_3(aws: Moto, tmp_path: Path) -> None:
    for command in (["outputs"], ["secret", "put"]):
        code, text = run(*command, "--stack-name", "absent")
        assert code == exit_codes.EXIT_AWS
        assert "stack absent does not exist" in text


@pytest.mark.parametrize("limit", [None, 10**9])
def test_the_template_goes_through_the_bucket_only_when_over_the_limit(
    artifact_bucket: str,
    zip_flags: tuple[str, ...],
    template: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit: int | None,
) -> None:
    """The translated template (~61 KB) is over CloudFormation's 51,200-byte TemplateBody: with
    the real limit (None) it is uploaded and passed as TemplateURL; under a raised limit it is not.
    """
    if limit is not None:
        monkeypatch.setattr(steps, "TEMPLATE_BODY_LIMIT", limit)
    code, text = run(
        "deploy",
        "--stack-name",
        STACK,
        *zip_flags,
        "--template",
        str(template),
    )
    assert code == 0, text
    assert "CREATE_COMPLETE" in text
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=artifact_bucket)["Contents"]]
    uploaded = [k for k in keys if k.startswith("okta-bridge/templates/") and k.endswith(".json")]
    assert bool(uploaded) is (limit is None)


def test_outputs_prints_the_table_or_one_value(deployed: str) -> None:
    code, table = run("outputs", "--stack-name", STACK)
    assert code == 0
    assert table.splitlines()[0].split() == ["output", "value"]
    for key in ("FunctionArn", "FunctionName", "SecretArn", "SecretName", "RoleArn"):
        assert key in table
    code, value = run("outputs", "--stack-name", STACK, "SecretName")
    assert (code, value) == (0, "prod/okta_api_creds\n")
    code, text = run("outputs", "--stack-name", STACK, "Nope")
    assert code == exit_codes.EXIT_USAGE
    assert (
        "has no output Nope (it has: AdminSecretArn, AdminSecretName, ConsumerPolicyArn, "
        "DashboardUrl" in text
    )


def test_moto_takes_every_resource_type_of_the_template(template: Path) -> None:
    """Each type is created by moto or stood in for by moto_shims (else moto skips it)."""
    moto_shims.install()
    sam = steps.load_template(template)
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    packaged = steps.set_code_uri(sam, "bucket", "key.zip", None)
    translated = steps.translate(
        steps.set_content_uri(packaged, "bucket", "layer.zip", None),
        steps.resolve_parameters(sam, {}),
        session,
    )
    types = {resource["Type"] for resource in translated["Resources"].values()}
    missing = sorted(t for t in types if parsing.resource_class_from_type(t) is None)
    assert not missing, f"moto cannot create {missing}: add them to moto_shims.PLACEHOLDER_TYPES"


@pytest.fixture
def repo_samconfig(aws: Moto) -> Iterator[Path]:
    """samconfig.toml in the repository as the guide has one made: the example, its placeholder
    replaced by what `make whoami` prints; removed afterwards (a real one is left alone)."""
    path = REPO / "samconfig.toml"
    if path.exists():
        pytest.skip(f"{path} exists: `make deploy` would deploy with it")
    example = (REPO / "samconfig.toml.example").read_text(encoding="utf-8")
    path.write_text(example.replace(PLACEHOLDER, moto_user(aws.account)), encoding="utf-8")
    try:
        yield path
    finally:
        path.unlink()


def test_make_deploy_end_to_end(aws: Moto, artifact_bucket: str, repo_samconfig: Path) -> None:
    """The user's command itself: `make deploy` packages the real zip, uploads and deploys it."""
    py313 = find_python313()
    if py313 is None:
        pytest.skip("make deploy packages with python3.13, which is not installed here")
    env = {**os.environ, "OKTA_BRIDGE_STACK": "okta-bridge-make", "PY313": py313}
    result = subprocess.run(  # noqa: S603 - make, with the repository's own Makefile
        ["make", "--no-print-directory", "-C", str(REPO), "deploy"],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "okta-bridge.zip" in result.stdout
    assert "CREATE_COMPLETE" in result.stdout
    session = boto3.session.Session(region_name=REGION)
    stack = session.client("cloudformation").describe_stacks(StackName="okta-bridge-make")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}
    config = session.client("lambda").get_function(FunctionName=outputs["FunctionName"])[
        "Configuration"
    ]
    assert (config["Runtime"], config["Handler"]) == (
        "python3.13",
        "okta_bridge.handler.lambda_handler",
    )
    assert config["Environment"]["Variables"]["BRIDGE_SECRET_ID"] == outputs["SecretArn"]
    assert config["Role"] == outputs["RoleArn"]
    built = (REPO / "dist" / "okta-bridge.zip").read_bytes()
    keys = [
        o["Key"] for o in session.client("s3").list_objects_v2(Bucket=artifact_bucket)["Contents"]
    ]
    assert f"okta-bridge/{hashlib.sha256(built).hexdigest()}.zip" in keys
    assert "okta-bridge-layer.zip" in result.stdout  # make deploy builds and uploads the layer
    layer = (REPO / "dist" / "okta-bridge-layer.zip").read_bytes()
    assert f"okta-bridge/{hashlib.sha256(layer).hexdigest()}.zip" in keys


# -- the library: the layer, the consumer policy, ConsumerRoleArns ------------------------------

CONSUMER = "arn:aws:iam::{account}:role/team-a/orders-sync"


def stack_outputs(stack: str = STACK) -> dict[str, str]:
    cfn = boto3.session.Session(region_name=REGION).client("cloudformation")
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def test_deploy_publishes_the_uploaded_layer_for_python313(
    deployed: str, artifact_bucket: str, fake_layer_zip: Path
) -> None:
    session = boto3.session.Session(region_name=REGION)
    digest = hashlib.sha256(fake_layer_zip.read_bytes()).hexdigest()
    keys = [
        o["Key"] for o in session.client("s3").list_objects_v2(Bucket=artifact_bucket)["Contents"]
    ]
    assert f"okta-bridge/{digest}.zip" in keys
    assert f"uploaded {fake_layer_zip}" in deployed
    layer_arn = stack_outputs()["LayerArn"]
    name, version = layer_arn.split(":layer:", 1)[1].rsplit(":", 1)
    layer = session.client("lambda").get_layer_version(LayerName=name, VersionNumber=int(version))
    assert layer["LayerVersionArn"] == layer_arn
    assert ":layer:okta-bridge-test-client:" in layer_arn
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]


def test_the_consumer_policy_grants_reading_and_decrypting_the_secret_only(
    deployed: str,
) -> None:
    outputs = stack_outputs()
    iam = boto3.session.Session(region_name=REGION).client("iam")
    policy = iam.get_policy(PolicyArn=outputs["ConsumerPolicyArn"])["Policy"]
    document = iam.get_policy_version(
        PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
    )["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert [
        (s["Effect"], s["Action"], s["Resource"], s.get("Condition")) for s in document["Statement"]
    ] == [
        ("Allow", "secretsmanager:GetSecretValue", outputs["SecretArn"], None),
        (
            "Allow",
            "kms:Decrypt",
            outputs["KmsKeyArn"],
            {
                "StringEquals": {
                    "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
                    "kms:EncryptionContext:SecretARN": outputs["SecretArn"],
                }
            },
        ),
    ]


def admitted(aws: Moto, outputs: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """Who the deployed secret policy lets through, who it keeps to reading, and the principals
    of the key policy's consumer statement."""
    session = boto3.session.Session(region_name=REGION)
    policy = session.client("secretsmanager").get_resource_policy(SecretId=outputs["SecretArn"])
    statements = {s["Sid"]: s for s in json.loads(policy["ResourcePolicy"])["Statement"]}
    let_through = statements["DenyEveryoneButTheNamedPrincipals"]["Condition"]["ArnNotLike"]
    read_only = statements.get("DenyTheConsumersAllButReading", {"Condition": {"ArnLike": {}}})
    key_id = outputs["KmsKeyArn"].rsplit("/", 1)[-1]
    key_policy = session.client("kms").get_key_policy(KeyId=key_id, PolicyName="default")
    document = key_policy["Policy"]  # moto keeps the template's object (and NoValue as None)
    document = json.loads(document) if isinstance(document, str) else document
    key = {s["Sid"]: s for s in document["Statement"] if s is not None}
    consumers = key.get("ConsumersDecryptTheSecretThroughSecretsManager")
    return (
        let_through["aws:PrincipalArn"],
        read_only["Condition"]["ArnLike"].get("aws:PrincipalArn", []),
        consumers["Condition"]["ArnEquals"]["aws:PrincipalArn"] if consumers else [],
    )


def test_without_consumer_roles_the_secret_and_the_key_admit_nobody_new(
    aws: Moto, deployed: str
) -> None:
    outputs = stack_outputs()
    let_through, read_only, key_consumers = admitted(aws, outputs)
    assert let_through == [
        outputs["RoleArn"],
        let_through[1],  # the rotation function's role (no output)
        f"arn:aws:iam::{aws.account}:root",
        moto_user(aws.account),  # AdminPrincipalArns
    ]
    assert ":role/" in let_through[1]
    assert (read_only, key_consumers) == ([], [])


def test_named_consumer_roles_may_read_the_secret_and_decrypt_it(
    aws: Moto, artifact_bucket: str, zip_flags: tuple[str, ...], template: Path
) -> None:
    consumer = CONSUMER.format(account=aws.account)
    code, text = run(
        "deploy",
        "--stack-name",
        STACK,
        *zip_flags,
        "--template",
        str(template),
        "--parameter",
        f"ConsumerRoleArns={consumer}",
    )
    assert code == 0, text
    let_through, read_only, key_consumers = admitted(aws, stack_outputs())
    assert let_through[-1] == consumer
    assert len(let_through) == 5
    assert read_only == [consumer]
    assert key_consumers == [consumer]

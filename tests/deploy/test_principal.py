"""Who deploys and who stores the secret: `whoami`, the deploy's and `secret put`'s refusals,
and `outputs stack_name|region`, against moto's server (and stubs where moto cannot go)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from okta_bridge_dev.cli import exit_codes
from okta_bridge_dev.release import aws as release_aws
from okta_bridge_dev.release import principal as who
from okta_bridge_dev.release import secret as release_secret
from okta_bridge_dev.release.errors import DeployError

from .conftest import REGION, REPO, Moto, deploy_argv
from .test_deploy import (  # noqa: F401 - fixtures
    STACK,
    VALID,
    artifact_bucket,
    moto_user,
    run,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse .* not supported by moto:UserWarning"
)

SSO_PATH = "/aws-reserved/sso.amazonaws.com/ap-northeast-1/"
SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
)


# -- the ARN mapping, without AWS ----------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("arn:aws:iam::123456789012:root", ("arn:aws:iam::123456789012:root", "root", None)),
        (
            "arn:aws:iam::123456789012:user/ops/alice",
            ("arn:aws:iam::123456789012:user/ops/alice", "user", None),
        ),
        (
            "arn:aws:sts::123456789012:user/moto",
            ("arn:aws:iam::123456789012:user/moto", "user", None),
        ),
        (
            f"arn:aws:sts::123456789012:assumed-role/{SSO_ROLE}/me@example.com",
            (f"arn:aws:iam::123456789012:role/{SSO_ROLE}", "role", SSO_ROLE),
        ),
        (
            "arn:aws-cn:sts::123456789012:assumed-role/deployer/ci",
            ("arn:aws-cn:iam::123456789012:role/deployer", "role", "deployer"),
        ),
        (
            "arn:aws:sts::123456789012:federated-user/bob",
            ("arn:aws:sts::123456789012:federated-user/bob", "other", None),
        ),
    ],
)
def test_the_caller_arn_maps_to_the_iam_arn(caller: str, expected: tuple[str, str, None]) -> None:
    assert who.iam_arn(caller) == expected


class DeniedIam:
    """An IAM client that refuses iam:GetRole, as for a role without that permission."""

    def get_role(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetRole")


class FixedSts:
    def __init__(self, arn: str) -> None:
        self.arn = arn

    def get_caller_identity(self) -> dict[str, str]:
        return {"Arn": self.arn, "Account": "123456789012"}


def test_get_role_denied_gives_the_pathless_arn_and_says_so() -> None:
    caller = who.resolve(
        FixedSts(f"arn:aws:sts::123456789012:assumed-role/{SSO_ROLE}/me"), DeniedIam()
    )
    assert caller.arn == f"arn:aws:iam::123456789012:role/{SSO_ROLE}"
    assert not caller.path_known
    assert f"aws iam get-role --role-name {SSO_ROLE} --query Role.Arn" in who.path_hint(caller)
    listed = f"arn:aws:iam::123456789012:role{SSO_PATH}{SSO_ROLE}"
    verdict = who.admission(caller, [listed])
    assert verdict.admitted
    assert verdict.note
    assert "iam:GetRole was denied" in verdict.note
    other_account = listed.replace("123456789012", "210987654321")
    assert not who.admission(caller, [other_account]).admitted


def test_root_is_always_admitted_and_a_pathless_arn_never_matches_a_known_path() -> None:
    root = who.Principal("arn:aws:iam::1:root", "arn:aws:iam::1:root", "1", "aws", "root")
    assert who.admission(root, []).admitted
    role = who.Principal(
        "arn:aws:sts::123456789012:assumed-role/r/s",
        "arn:aws:iam::123456789012:role/team/r",
        "123456789012",
        "aws",
        "role",
        "r",
    )
    assert not who.admission(role, ["arn:aws:iam::123456789012:role/r"]).admitted
    assert not who.admission(role, ["arn:aws:iam::123456789012:role/team/R"]).admitted
    assert who.admission(role, ["arn:aws:iam::123456789012:role/team/r"]).admitted


class DeniedSecrets:
    def put_secret_value(self, **_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "PutSecretValue"
        )


class FakeAws:
    def client(self, service: str) -> Any:
        assert service == "secretsmanager"
        return DeniedSecrets()


def test_put_secret_value_denied_names_admin_principal_arns_and_whoami() -> None:
    with pytest.raises(DeployError) as raised:
        release_secret._put(FakeAws(), "arn:aws:secretsmanager:x", "{}")  # type: ignore[arg-type]
    assert "AdminPrincipalArns" in str(raised.value)
    assert "make whoami" in str(raised.value)


# -- against moto ------------------------------------------------------------------------


def assume_sso_role(aws: Moto, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create an SSO-like role (with a regional path), assume it, use its credentials; its ARN."""
    session = boto3.session.Session(region_name=REGION)
    role = session.client("iam").create_role(
        RoleName=SSO_ROLE, Path=SSO_PATH, AssumeRolePolicyDocument=TRUST
    )["Role"]
    creds = session.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="me")[
        "Credentials"
    ]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    return str(role["Arn"])


def test_whoami_prints_the_sso_role_with_its_path(
    aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    role_arn = assume_sso_role(aws, monkeypatch)
    assert role_arn == f"arn:aws:iam::{aws.account}:role{SSO_PATH}{SSO_ROLE}"
    code, text = run("whoami")
    assert code == 0, text
    assert f"assumed-role/{SSO_ROLE}/me" in text
    assert f"principal: {role_arn} (read with iam:GetRole)" in text
    assert f"  AdminPrincipalArns={role_arn}\n" in text
    assert "stack okta-bridge: not deployed" in text


def test_whoami_for_an_iam_user_and_its_membership(aws: Moto, deployed_as_admin: str) -> None:
    code, text = run("whoami", "--stack-name", STACK)
    assert code == 0, text
    assert f"AdminPrincipalArns={moto_user(aws.account)}" in text
    assert f"stack {STACK}: this principal is in AdminPrincipalArns" in text
    assert f"stack {STACK}: this principal is not in DeployerPrincipalArns" in text


@pytest.fixture
def deploy_flags(
    fake_zip: Path, fake_layer_zip: Path, request: pytest.FixtureRequest
) -> tuple[str, ...]:
    """Deploy flags without any principal parameter (the artifact bucket created ahead)."""
    request.getfixturevalue("artifact_bucket")
    template_copy = request.getfixturevalue("template")
    return tuple(deploy_argv(STACK, fake_zip, fake_layer_zip, template_copy))


@pytest.fixture
def deployed_as_admin(
    aws: Moto,
    deploy_flags: tuple[str, ...],
) -> str:
    code, text = run(*deploy_flags, "--parameter", f"AdminPrincipalArns={moto_user(aws.account)}")
    assert code == 0, text
    return text


def nothing_deployed(aws: Moto) -> None:
    """The artifact bucket is empty and there is no stack."""
    bucket = release_aws.default_bucket(aws.account, REGION)
    session = boto3.session.Session(region_name=REGION)
    assert "Contents" not in session.client("s3").list_objects_v2(Bucket=bucket)
    live = [
        s["StackName"]
        for s in session.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert STACK not in live


def test_deploy_without_the_caller_in_either_list_is_refused_before_uploading(
    aws: Moto,
    deploy_flags: tuple[str, ...],
) -> None:
    code, text = run(*deploy_flags)
    assert code == exit_codes.EXIT_FAILED, text
    user = moto_user(aws.account)
    assert f"not deployed, nothing uploaded: {user} is in neither AdminPrincipalArns" in text
    assert f"add AdminPrincipalArns={user} (or DeployerPrincipalArns={user}" in text
    assert "Traceback" not in text
    nothing_deployed(aws)


def test_deploy_as_a_deployer_goes_on_and_secret_put_is_then_refused(
    aws: Moto,
    deploy_flags: tuple[str, ...],
    tmp_path: Path,
) -> None:
    user = moto_user(aws.account)
    code, text = run(*deploy_flags, "--parameter", f"DeployerPrincipalArns={user}")
    assert code == 0, text
    assert "CREATE_COMPLETE" in text
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps(VALID))
    for admin in ([], ["--admin"]):
        code, text = run("secret", "put", "--stack-name", STACK, "--file", str(creds), *admin)
        assert code == exit_codes.EXIT_FAILED, text
        assert f"not stored: {user} is not in the deployed stack's AdminPrincipalArns" in text
        assert f"add AdminPrincipalArns={user}" in text
    assert VALID["client_secret"] not in text


def test_the_sso_role_is_admitted_only_with_its_path(
    aws: Moto,
    deploy_flags: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role_arn = assume_sso_role(aws, monkeypatch)
    pathless = f"arn:aws:iam::{aws.account}:role/{SSO_ROLE}"
    code, text = run(*deploy_flags, "--parameter", f"AdminPrincipalArns={pathless}")
    assert code == exit_codes.EXIT_FAILED, text
    assert f"add AdminPrincipalArns={role_arn}" in text
    nothing_deployed(aws)
    code, text = run(*deploy_flags, "--parameter", f"AdminPrincipalArns={role_arn}")
    assert code == 0, text
    assert "CREATE_COMPLETE" in text


def test_the_example_placeholder_is_refused_naming_the_real_principal(
    aws: Moto,
    deploy_flags: tuple[str, ...],
) -> None:
    shutil.copyfile(REPO / "samconfig.toml.example", Path.cwd() / "samconfig.toml")
    code, text = run(*deploy_flags)
    assert code == exit_codes.EXIT_FAILED, text
    assert "still the placeholder of samconfig.toml.example" in text
    assert f"add AdminPrincipalArns={moto_user(aws.account)}" in text
    nothing_deployed(aws)


# -- outputs stack_name | region -----------------------------------------------------------


def test_outputs_prints_stack_name_and_region_as_deploy_resolves_them(
    aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    (Path.cwd() / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "okta-bridge-x"\n'
        'region = "ap-northeast-1"\n',
        encoding="utf-8",
    )
    monkeypatch.delenv("AWS_REGION")
    assert run("outputs", "stack_name") == (0, "okta-bridge-x\n")
    assert run("outputs", "region") == (0, "ap-northeast-1\n")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # the environment wins over samconfig.toml
    assert run("outputs", "region") == (0, "eu-west-1\n")
    monkeypatch.setenv("OKTA_BRIDGE_STACK", "from-env")
    assert run("outputs", "stack_name", "--stack-name", "from-flag") == (0, "from-flag\n")
    assert run("outputs", "stack_name") == (0, "from-env\n")


@pytest.mark.parametrize(
    "argv",
    [
        ("whoami",),
        ("deploy", "--zip", "missing.zip"),
        ("secret", "put", "--file", "creds.json"),
        ("rotate", "--now"),
    ],
    ids=["whoami", "deploy", "secret-put", "rotate"],
)
def test_aws_region_overriding_samconfig_region_is_warned_about(
    aws: Moto, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    """CloudShell and SSO setups export AWS_REGION: say which region wins, before anything."""
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nregion = "eu-west-1"\n'
    )
    _, text = run(*argv)
    warning = (
        f"warning: AWS_REGION={REGION} (environment) overrides region = eu-west-1 in "
        f"samconfig.toml [default]; using {REGION} (unset AWS_REGION, or pass --region, to "
        "choose)\n"
    )
    assert text.startswith(warning), text
    _, text = run(*argv, "--region", REGION)
    assert "warning: AWS_REGION" not in text

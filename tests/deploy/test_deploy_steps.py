"""The parts of ``deploy`` that need no AWS: configuration, the template, events, failures."""

from __future__ import annotations

import datetime
import io
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from okta_bridge_dev.cli import exit_codes
from okta_bridge_dev.cli import main as cli
from okta_bridge_dev.cli.options import config_options
from okta_bridge_dev.console import Console
from okta_bridge_dev.release import deploy, stacks
from okta_bridge_dev.release import template as steps
from okta_bridge_dev.release.aws import ConfigOptions, load_config, parse_key_values
from okta_bridge_dev.release.errors import DeployError, UsageError
from okta_bridge_dev.release.principal import PLACEHOLDER

from .conftest import REPO

# -- configuration ---------------------------------------------------------------------------

SAMCONFIG = """\
version = 0.1

[default.global.parameters]
region = "eu-west-1"

[default.deploy.parameters]
stack_name = "okta-bridge-prod"
region = "ap-northeast-1"
s3_prefix = "bridge/"
parameter_overrides = 'SecretName=prod/creds AllowedPaths=/v1/data,/v1/x/* Scopes="a.read a.write"'
tags = "team=platform"

[staging.deploy.parameters]
stack_name = "okta-bridge-staging"
parameter_overrides = ["SecretName=staging/okta", "LogLevel=DEBUG"]
"""


def args_for(*argv: str) -> ConfigOptions:
    """What ``okta-bridge deploy ARGV`` hands the release tooling."""
    return config_options(cli.build_parser().parse_args(["deploy", *argv]))


def test_samconfig_is_read_like_the_sam_cli(tmp_path: Path) -> None:
    config_file = tmp_path / "samconfig.toml"
    config_file.write_text(SAMCONFIG)
    config = load_config(args_for("--config-file", str(config_file)), {})
    assert config.stack_name == "okta-bridge-prod"
    assert config.region == "ap-northeast-1"
    assert config.prefix == "bridge"
    assert config.bucket is None
    assert config.parameters == {
        "SecretName": "prod/creds",
        "AllowedPaths": "/v1/data,/v1/x/*",
        "Scopes": "a.read a.write",
    }
    assert config.tags == {"team": "platform"}


def test_environment_overrides_samconfig_and_flags_override_both(tmp_path: Path) -> None:
    config_file = tmp_path / "samconfig.toml"
    config_file.write_text(SAMCONFIG)
    environ = {
        "OKTA_BRIDGE_STACK": "from-env",
        "AWS_REGION": "us-west-2",
        "OKTA_BRIDGE_BUCKET": "env-bucket",
    }
    config = load_config(args_for("--config-file", str(config_file)), environ)
    assert (config.stack_name, config.region, config.bucket) == (
        "from-env",
        "us-west-2",
        "env-bucket",
    )
    flags = args_for(
        "--config-file",
        str(config_file),
        "--stack-name",
        "from-flag",
        "--region",
        "eu-central-1",
        "--bucket",
        "flag-bucket",
        "--parameter",
        "LogLevel=DEBUG",
        "--parameter",
        "SecretName=other",
    )
    config = load_config(flags, environ)
    assert (config.stack_name, config.region, config.bucket) == (
        "from-flag",
        "eu-central-1",
        "flag-bucket",
    )
    assert config.parameters["LogLevel"] == "DEBUG"
    assert config.parameters["SecretName"] == "other"
    assert config.parameters["Scopes"] == "a.read a.write"
    assert config.region_warning is None  # --region decides explicitly


def test_aws_region_over_a_different_samconfig_region_is_warned_about(tmp_path: Path) -> None:
    config_file = tmp_path / "samconfig.toml"
    config_file.write_text(SAMCONFIG)
    options = args_for("--config-file", str(config_file))
    config = load_config(options, {"AWS_REGION": "us-west-2"})
    assert config.region == "us-west-2"  # the precedence is kept
    assert config.region_warning == (
        f"AWS_REGION=us-west-2 (environment) overrides region = ap-northeast-1 in {config_file} "
        "[default]; using us-west-2 (unset AWS_REGION, or pass --region, to choose)"
    )
    assert load_config(options, {"AWS_REGION": "ap-northeast-1"}).region_warning is None
    assert load_config(options, {}).region_warning is None


def test_another_samconfig_environment_and_list_overrides(tmp_path: Path) -> None:
    config_file = tmp_path / "samconfig.toml"
    config_file.write_text(SAMCONFIG)
    argv = ("--config-file", str(config_file), "--config-env", "staging")
    config = load_config(args_for(*argv), {})
    assert config.stack_name == "okta-bridge-staging"
    assert config.region is None
    assert config.parameters == {"SecretName": "staging/okta", "LogLevel": "DEBUG"}


def test_no_samconfig_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(args_for(), {})
    assert (config.stack_name, config.prefix, config.parameters) == (
        "okta-bridge",
        "okta-bridge",
        {},
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[default.deploy.parameters]\nparameter_overrides = 'Broken'\n",
            "'Broken' is not Key=Value",
        ),
        ("[default.deploy.parameters\n", "not valid TOML"),
        ("[default.deploy.parameters]\nparameter_overrides = 3\n", "must be a string"),
    ],
)
def test_bad_samconfig_is_refused_with_exit_2(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "samconfig.toml"
    config_file.write_text(content)
    code = cli.main(["outputs", "--config-file", str(config_file)], environ={})
    assert code == exit_codes.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_missing_artifact_says_to_run_make_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["deploy", "--zip", str(tmp_path / "none.zip")], environ={})
    assert code == exit_codes.EXIT_USAGE
    assert "make package" in capsys.readouterr().err


def test_a_missing_layer_says_to_run_make_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before AWS is asked anything: the template publishes BridgeLayer."""
    function = lambda_zip(tmp_path / "okta-bridge.zip", 183)
    code = cli.main(
        ["deploy", "--zip", str(function), "--layer-zip", str(tmp_path / "none.zip"),
         "--template", str(REPO / "template.yaml")],
        environ={},
    )  # fmt: skip
    assert code == exit_codes.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"no layer at {tmp_path / 'none.zip'}" in err
    assert "build it with `make layer` (or pass --layer-zip)" in err


# -- the template ----------------------------------------------------------------------------

SAM = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  SecretName: {Type: String, Default: prod/okta_api_creds}
  Required: {Type: String}
Conditions:
  HasProxy: !Not [!Equals [!Ref SecretName, ""]]
Resources:
  BridgeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: dist/okta-bridge.zip
      Runtime: python3.13
      Handler: okta_bridge.handler.lambda_handler
      Role: !GetAtt BridgeRole.Arn
      Environment:
        Variables:
          A: !Sub "${AWS::Region}-x"
          B: !If [HasProxy, !Ref SecretName, !Ref AWS::NoValue]
          C: !Join [",", [a, b]]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_short_intrinsics_are_read_as_cloudformation_json(tmp_path: Path) -> None:
    template = steps.load_template(write(tmp_path, SAM))
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    props = template["Resources"]["BridgeFunction"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["BridgeRole", "Arn"]}
    variables = props["Environment"]["Variables"]
    assert variables["A"] == {"Fn::Sub": "${AWS::Region}-x"}
    assert variables["B"] == {
        "Fn::If": ["HasProxy", {"Ref": "SecretName"}, {"Ref": "AWS::NoValue"}]
    }
    assert variables["C"] == {"Fn::Join": [",", ["a", "b"]]}
    assert template["Conditions"]["HasProxy"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SecretName"}, ""]}]
    }


def test_code_uri_points_at_the_uploaded_object_without_touching_the_original(
    tmp_path: Path,
) -> None:
    template = steps.load_template(write(tmp_path, SAM))
    packaged = steps.set_code_uri(template, "bucket", "okta-bridge/abc.zip", "v1")
    assert packaged["Resources"]["BridgeFunction"]["Properties"]["CodeUri"] == {
        "Bucket": "bucket",
        "Key": "okta-bridge/abc.zip",
        "Version": "v1",
    }
    assert template["Resources"]["BridgeFunction"]["Properties"]["CodeUri"] == (
        "dist/okta-bridge.zip"
    )


def test_every_function_of_the_bridges_zip_points_at_the_uploaded_object(tmp_path: Path) -> None:
    shared = "\n".join(
        [
            "  RotationFunction:",
            "    Type: AWS::Serverless::Function",
            "    Properties: {CodeUri: dist/okta-bridge.zip, Handler: okta_bridge.rotation.h}",
            "  OtherFunction:",
            "    Type: AWS::Serverless::Function",
            "    Properties: {CodeUri: s3://elsewhere/other.zip, Handler: other.h}",
        ]
    )
    template = steps.load_template(write(tmp_path, SAM + shared + "\n"))
    packaged = steps.set_code_uri(template, "bucket", "okta-bridge/abc.zip", None)
    resources = packaged["Resources"]
    location = {"Bucket": "bucket", "Key": "okta-bridge/abc.zip"}
    assert resources["BridgeFunction"]["Properties"]["CodeUri"] == location
    assert resources["RotationFunction"]["Properties"]["CodeUri"] == location
    assert resources["OtherFunction"]["Properties"]["CodeUri"] == "s3://elsewhere/other.zip"


LAYER = """\
  BridgeLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: dist/okta-bridge-layer.zip, CompatibleRuntimes: [python3.13]}
  OtherLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: s3://elsewhere/other.zip}
"""


def test_content_uri_points_at_the_uploaded_layer_without_touching_the_original(
    tmp_path: Path,
) -> None:
    template = steps.load_template(write(tmp_path, SAM + LAYER))
    packaged = steps.set_content_uri(template, "bucket", "okta-bridge/layer.zip", "v2")
    resources = packaged["Resources"]
    assert resources["BridgeLayer"]["Properties"]["ContentUri"] == {
        "Bucket": "bucket",
        "Key": "okta-bridge/layer.zip",
        "Version": "v2",
    }
    assert resources["OtherLayer"]["Properties"]["ContentUri"] == "s3://elsewhere/other.zip"
    assert resources["BridgeFunction"]["Properties"]["CodeUri"] == "dist/okta-bridge.zip"
    original = template["Resources"]["BridgeLayer"]["Properties"]["ContentUri"]
    assert original == "dist/okta-bridge-layer.zip"
    without = steps.load_template(write(tmp_path, SAM))
    assert steps.set_content_uri(without, "bucket", "key.zip", None) == without


def test_parameters_are_checked_against_the_template(tmp_path: Path) -> None:
    template = steps.load_template(write(tmp_path, SAM))
    with pytest.raises(UsageError, match="sets Typo, which the template does not declare"):
        steps.check_parameters(template, {"Required": "x", "Typo": "1"})
    with pytest.raises(UsageError, match="requires Required"):
        steps.check_parameters(template, {})
    steps.check_parameters(template, {"Required": "x"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SAM.replace(
                "Transform: AWS::Serverless-2016-10-31", "Transform: [AWS::LanguageExtensions]"
            ),
            "only CloudFormation can run",
        ),
        (SAM.replace("BridgeFunction:", "OtherFunction:"), "no BridgeFunction"),
        ("Resources: [", "not valid YAML"),
    ],
)
def test_templates_this_tool_cannot_deploy_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        steps.load_template(write(tmp_path, text))


def test_sam_is_translated_locally(tmp_path: Path) -> None:
    template = steps.load_template(write(tmp_path, SAM))
    packaged = steps.set_code_uri(template, "bucket", "key.zip", None)
    session = boto3.session.Session(
        region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    result = steps.translate(packaged, {"Required": "x"}, session)
    function = result["Resources"]["BridgeFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Code"] == {"S3Bucket": "bucket", "S3Key": "key.zip"}
    assert "Transform" not in result


# -- stack states, events, failures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "CREATE"),
        ("REVIEW_IN_PROGRESS", "CREATE"),
        ("CREATE_COMPLETE", "UPDATE"),
        ("UPDATE_ROLLBACK_COMPLETE", "UPDATE"),
    ],
)
def test_change_set_type_follows_the_stack(status: str | None, expected: str) -> None:
    assert stacks.change_set_type(status, "s") == expected


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("ROLLBACK_COMPLETE", "make destroy"),
        ("UPDATE_IN_PROGRESS", "busy"),
        ("UPDATE_ROLLBACK_FAILED", "continue the rollback"),
    ],
)
def test_stacks_that_cannot_change_now_are_refused(status: str, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        stacks.change_set_type(status, "s")


def event(
    n: int, logical: str, status: str, reason: str = "", kind: str = "AWS::IAM::Role"
) -> dict[str, Any]:
    return {
        "EventId": f"e{n}",
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": datetime.datetime(2025, 1, 1, 12, 0, n, tzinfo=datetime.UTC),
    }


class FakeCloudFormation:
    """Scripted describe_stack_events (newest first, paged by 2) and describe_stacks."""

    def __init__(self, statuses: list[str]) -> None:
        self.events: list[dict[str, Any]] = []
        self.statuses = statuses

    def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> Any:  # noqa: N803
        newest_first = list(reversed(self.events))
        start = int(NextToken or 0)
        page = newest_first[start : start + 2]
        token = str(start + 2) if start + 2 < len(newest_first) else None
        return {"StackEvents": page, **({"NextToken": token} if token else {})}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Stacks": [{"StackName": StackName, "StackStatus": status}]}


def test_only_new_events_are_printed_oldest_first_across_pages() -> None:
    cfn = FakeCloudFormation(["CREATE_COMPLETE"])
    cfn.events = [  # a history longer than one page (the fake pages by 2)
        event(n, "stack", "UPDATE_COMPLETE", kind="AWS::CloudFormation::Stack") for n in (0, 1)
    ]
    cfn.events.insert(0, event(9, "BridgeRole", "CREATE_COMPLETE"))
    out = io.StringIO()
    stream = stacks.EventStream(cfn, "stack", out=out)
    stream.prime()
    cfn.events += [
        event(2, "BridgeRole", "CREATE_IN_PROGRESS"),
        event(3, "BridgeRole", "CREATE_COMPLETE"),
        event(4, "BridgeFunction", "CREATE_IN_PROGRESS", kind="AWS::Lambda::Function"),
        event(5, "BridgeFunction", "CREATE_COMPLETE", kind="AWS::Lambda::Function"),
    ]
    assert [e["EventId"] for e in stream.poll()] == ["e2", "e3", "e4", "e5"]
    assert stream.poll() == []
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("12:00:02  CREATE_IN_PROGRESS")
    assert "BridgeRole (AWS::IAM::Role)" in lines[0]
    assert stream.counts() == (2, 0)


def test_a_failed_stack_reports_the_resources_and_their_reasons() -> None:
    cfn = FakeCloudFormation(["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"])
    out, err = io.StringIO(), io.StringIO()
    stream = stacks.EventStream(cfn, "stack", out=out)
    cfn.events = [
        event(1, "BridgeRole", "CREATE_COMPLETE"),
        event(
            2,
            "BridgeFunction",
            "CREATE_FAILED",
            'Resource handler returned message: "Error occurred while GetObject. S3 Error '
            'Code: NoSuchKey"',
            kind="AWS::Lambda::Function",
        ),
        event(
            3,
            "BridgeLogGroup",
            "CREATE_FAILED",
            "Resource creation cancelled",
            kind="AWS::Logs::LogGroup",
        ),
        event(
            4,
            "okta-bridge",
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [BridgeFunction].",
            kind="AWS::CloudFormation::Stack",
        ),
    ]
    sleeps: list[float] = []
    status = stacks.wait_for_stack(
        cfn,
        stream,
        poll_seconds=1,
        timeout_seconds=60,
        progress=stacks.Progress(out=err),
        sleep=sleeps.append,
    )
    assert status == "ROLLBACK_COMPLETE"
    assert sleeps == [1, 1]
    console = Console(out=io.StringIO(), err=io.StringIO())
    with pytest.raises(DeployError, match="stack okta-bridge ended ROLLBACK_COMPLETE") as caught:
        deploy.report_failure(console, "okta-bridge", status, stream)
    assert exit_codes.explain(caught.value)[1] == exit_codes.EXIT_FAILED
    text = console.out.getvalue()  # type: ignore[attr-defined]
    assert "BridgeFunction (AWS::Lambda::Function): Resource handler returned message" in text
    assert "NoSuchKey" in text
    assert "BridgeLogGroup" not in text  # a cascade, not a cause
    assert "make destroy" in text


def test_progress_rewrites_one_line_on_a_terminal_and_beats_slowly_in_logs() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    progress = stacks.Progress(out=tty)
    progress.update(3, "CREATE_IN_PROGRESS", 1, 2)
    progress.clear()
    assert "\r\x1b[2K[    3s] CREATE_IN_PROGRESS: 1 resources done, 2 in progress" in tty.getvalue()
    log = io.StringIO()
    progress = stacks.Progress(out=log, heartbeat_seconds=60)
    for second in (5, 30, 61, 90, 125):
        progress.update(second, "UPDATE_IN_PROGRESS", 0, 1)
    assert log.getvalue().count("\n") == 2


def test_outputs_table() -> None:
    table = stacks.format_table(("output", "value"), [("A", "1"), ("LongerKey", "two")])
    assert table.splitlines() == [
        "output     value",
        "---------  -----",
        "A          1",
        "LongerKey  two",
    ]


def test_an_empty_change_set_is_recognised_in_both_of_cloudformations_wordings() -> None:
    aws_wording = "The submitted information didn't contain changes. Submit different information"
    assert stacks.ChangeSet("id", "s", "FAILED", aws_wording).empty
    assert stacks.ChangeSet("", "", "FAILED", "No updates are to be performed.").empty
    assert not stacks.ChangeSet("id", "s", "FAILED", "Template format error").empty
    assert not stacks.ChangeSet("id", "s", "CREATE_COMPLETE", "").empty


def test_every_parameter_is_passed_explicitly(tmp_path: Path) -> None:
    template = steps.load_template(write(tmp_path, SAM))
    assert steps.resolve_parameters(template, {"Required": "x"}) == {
        "SecretName": "prod/okta_api_creds",
        "Required": "x",
    }


def lambda_zip(path: Path, machine: int) -> Path:
    header = b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little") + bytes(12)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("okta_bridge/handler.py", "")
        archive.writestr("cryptography/hazmat/bindings/_rust.abi3.so", header)
    return path


def test_a_zip_for_the_other_architecture_is_refused(tmp_path: Path) -> None:
    arm = lambda_zip(tmp_path / "arm.zip", 183)
    intel = lambda_zip(tmp_path / "intel.zip", 62)
    assert deploy.zip_architecture(arm) == "arm64"
    assert deploy.zip_architecture(intel) == "x86_64"
    deploy.check_architecture(arm, "arm64")
    with pytest.raises(UsageError, match=r"built for x86_64 .* `make package ARCH=arm64`"):
        deploy.check_architecture(intel, "arm64")
    not_a_zip = tmp_path / "broken.zip"
    not_a_zip.write_bytes(b"nope")
    with pytest.raises(UsageError, match="not a zip file"):
        deploy.check_architecture(not_a_zip, "arm64")
    with pytest.raises(UsageError, match=r"built for x86_64 .* `make layer ARCH=arm64`"):
        deploy.check_architecture(intel, "arm64", make_target="layer")


def test_the_example_samconfig_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    example = REPO / "samconfig.toml.example"
    config = load_config(args_for("--config-file", str(example)), {})
    assert config.stack_name == "okta-bridge"
    assert config.prefix == "okta-bridge"
    assert config.bucket is None
    assert config.parameters == {
        "SecretName": "prod/okta_api_creds",
        "AllowedPaths": "/v1/data",
        "AdminPrincipalArns": PLACEHOLDER,
    }
    staging = load_config(args_for("--config-file", str(example), "--config-env", "staging"), {})
    assert staging.parameters["LogLevel"] == "DEBUG"
    assert staging.parameters["AdminPrincipalArns"] == PLACEHOLDER
    template = REPO / "template.yaml"
    if template.exists():  # the example's parameters are the template's
        for chosen in (config, staging):
            steps.check_parameters(steps.load_template(template), chosen.parameters)


def test_every_example_parameter_line_names_the_admin_placeholder() -> None:
    """The commented examples too: a copied line still has AdminPrincipalArns to replace."""
    lines = [
        line.lstrip("# ").split("=", 1)[1].strip()
        for line in (REPO / "samconfig.toml.example").read_text(encoding="utf-8").splitlines()
        if line.lstrip("# ").startswith("parameter_overrides =")
    ]
    assert len(lines) == 4  # default, Function URL, relay, staging
    template = steps.load_template(REPO / "template.yaml")
    for line in lines:
        values = parse_key_values(tomllib.loads(f"v = {line}")["v"], "example")
        assert values["AdminPrincipalArns"] == PLACEHOLDER, line
        steps.check_parameters(template, values)

"""The examples' SAM templates: cfn-lint clean, and saying what the handlers and READMEs rely on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint import api as cfnlint
from cfnlint.decode import decode

from tests.examples.conftest import EXAMPLES

NAMES = ("scheduled-export", "enrich-api")
CONSUMER_PARAMETERS = {"LayerArn", "ConsumerPolicyArn", "SecretArn"}


def template(name: str) -> dict[str, Any]:
    """The template as cfn-lint reads it (``!Ref X`` as ``{"Ref": "X"}``, and so on)."""
    decoded, errors = decode(str(EXAMPLES / name / "template.yaml"))
    assert errors == []
    assert isinstance(decoded, dict)
    return decoded


def resources(name: str, kind: str) -> dict[str, dict[str, Any]]:
    found = template(name)["Resources"].items()
    return {key: value for key, value in found if value["Type"] == kind}


def only(name: str, kind: str) -> dict[str, Any]:
    (resource,) = resources(name, kind).values()
    return resource["Properties"]  # type: ignore[no-any-return]


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    policies = role["Properties"]["Policies"]
    return [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("name", NAMES)
def test_the_template_is_cfn_lint_clean(name: str) -> None:
    matches = cfnlint.lint_file(Path(EXAMPLES / name / "template.yaml"))
    assert [str(match) for match in matches] == []


@pytest.mark.parametrize("name", NAMES)
def test_the_function_runs_the_handler_with_the_layer_and_the_consumer_policy(name: str) -> None:
    parameters = template(name)["Parameters"]
    assert set(parameters) >= CONSUMER_PARAMETERS
    function = only(name, "AWS::Serverless::Function")
    module, _, attribute = function["Handler"].partition(".")
    source = (EXAMPLES / name / function["CodeUri"] / f"{module}.py").read_text()
    assert f"def {attribute}(" in source
    assert function["Runtime"] == "python3.13"
    assert function["Layers"] == [{"Ref": "LayerArn"}]
    assert function["Environment"]["Variables"]["BRIDGE_SECRET_ID"] == {"Ref": "SecretArn"}
    assert "BRIDGE_ALLOWED_PATHS" in function["Environment"]["Variables"]
    role = template(name)["Resources"][function["Role"]["Fn::GetAtt"][0]]
    assert role["Properties"]["ManagedPolicyArns"] == [{"Ref": "ConsumerPolicyArn"}]
    for statement in statements(role):
        assert "*" not in str(statement["Action"])  # no wildcard actions


def test_the_export_sets_every_variable_the_handler_requires() -> None:
    variables = only("scheduled-export", "AWS::Serverless::Function")["Environment"]["Variables"]
    source = (EXAMPLES / "scheduled-export" / "src" / "handler.py").read_text()
    required = set(re.findall(r'env\["(EXPORT_[A-Z_]+)"\]', source))
    optional = set(re.findall(r'env\.get\("(EXPORT_[A-Z_]+)"', source))
    assert required == {"EXPORT_BUCKET", "EXPORT_KMS_KEY_ARN"}
    assert set(variables) >= required
    assert {name for name in variables if name.startswith("EXPORT_")} <= required | optional


def test_the_export_role_writes_only_under_its_prefix_and_encrypts_only_through_s3() -> None:
    resources_ = template("scheduled-export")["Resources"]
    prefix = resources_["ExportFunction"]["Properties"]["Environment"]["Variables"]["EXPORT_PREFIX"]
    by_sid = {s.get("Sid"): s for s in statements(resources_["ExportRole"])}
    write = by_sid["WriteExportsOnly"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == {"Fn::Sub": f"${{ExportBucket.Arn}}/{prefix}*"}
    encrypt = by_sid["EncryptThroughS3ForThisBucket"]
    assert set(encrypt["Action"]) == {"kms:GenerateDataKey", "kms:Encrypt"}
    assert encrypt["Resource"] == {"Ref": "KmsKeyArn"}
    assert encrypt["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "s3.${AWS::Region}.amazonaws.com"
    }
    s3_actions = [s["Action"] for s in by_sid.values() if str(s["Action"]).startswith("s3:")]
    assert s3_actions == ["s3:PutObject"]


def test_the_export_bucket_is_private_tls_only_kms_encrypted_and_expires_its_objects() -> None:
    bucket = only("scheduled-export", "AWS::S3::Bucket")
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Ref": "KmsKeyArn"},
    }
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireExports"]["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"]
    policy = only("scheduled-export", "AWS::S3::BucketPolicy")["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    tls = by_sid["DenyInsecureTransport"]
    assert (tls["Effect"], tls["Action"]) == ("Deny", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert by_sid["DenyObjectsWithoutTheKey"]["Effect"] == "Deny"


def test_a_failed_run_is_retried_then_kept_in_the_queue() -> None:
    resources_ = template("scheduled-export")["Resources"]
    target = only("scheduled-export", "AWS::Scheduler::Schedule")["Target"]
    queue = {"Fn::GetAtt": ["FailedRunsQueue", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"] == {"Arn": queue}
    assert "<aws.scheduler.scheduled-time>" in target["Input"]
    function = resources_["ExportFunction"]["Properties"]
    assert function["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": queue}
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] >= 1


def test_the_enrich_api_route_is_iam_authenticated() -> None:
    api = only("enrich-api", "AWS::Serverless::HttpApi")
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    function = only("enrich-api", "AWS::Serverless::Function")
    (event,) = function["Events"].values()
    assert event["Properties"]["Path"] == "/records/{id}"
    assert event["Properties"]["Method"] == "GET"
    assert function["Environment"]["Variables"]["BRIDGE_ALLOWED_PATHS"] == "/v1/items/*"

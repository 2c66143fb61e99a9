"""template.yaml for a team's own function: BridgeLayer, ConsumerPolicy and ConsumerRoleArns.

A consumer role is admitted by the credentials secret's policy and the key's policy only when
ConsumerRoleArns names it, and then only to read the secret; ConsumerPolicy grants exactly what
the bridge's role has for the secret. Evaluated as in test_template.py (``"<X>"`` is ``Ref X``).
"""

from __future__ import annotations

from typing import Final

import pytest

from tests.support.cfn import LAYER_ARTIFACT, Evaluator, Json, parameter_errors, parameter_values
from tests.support.policies import denied

from .conftest import ADMINS, SCENARIOS, _translated, evaluator, sam_template

ACCOUNT: Final = "arn:aws:iam::123456789012:root"
KEY: Final = "<BridgeKey.Arn>"
CONSUMER: Final = "arn:aws:iam::123456789012:role/team-a/orders-sync"
OTHER_CONSUMER: Final = "arn:aws:iam::123456789012:role/inventory-enricher"
CONSUMERS: Final = f"{CONSUMER},{OTHER_CONSUMER}"
STRANGER: Final = "arn:aws:iam::123456789012:role/can-create-stacks"
ADMIN: Final = ADMINS.split(",")[0]
SECRET_PATTERN: Final = (
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/okta_api_creds-??????"
)
READ: Final = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
WRITE: Final = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:UpdateSecretVersionStage",
)


BUCKETS: Final = "arn:aws:s3:::orders-export,arn:aws:s3:::inventory-export"


def resources(scenario: str, consumers: str = "", buckets: str = "") -> dict[str, dict[str, Json]]:
    translated = _translated(scenario)
    values = {**SCENARIOS[scenario], "ConsumerRoleArns": consumers, "ConsumerBucketArns": buckets}
    return Evaluator(translated, parameter_values(translated, values)).resources()


def secret_statements(scenario: str, consumers: str = "") -> list[dict[str, Json]]:
    policy = resources(scenario, consumers)["CredentialsSecretPolicy"]["Properties"]
    statements: list[dict[str, Json]] = policy["ResourcePolicy"]["Statement"]
    return statements


def key_statements(
    scenario: str, consumers: str = "", buckets: str = ""
) -> dict[str, dict[str, Json]]:
    key = resources(scenario, consumers, buckets)["BridgeKey"]["Properties"]["KeyPolicy"]
    return {statement["Sid"]: statement for statement in key["Statement"]}


# -- the layer -------------------------------------------------------------------------------


def test_the_sam_layer_is_the_built_zip_for_python313_and_is_retained() -> None:
    layer = sam_template()["Resources"]["BridgeLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "dist/okta-bridge-layer.zip"
    assert layer["Properties"]["RetentionPolicy"] == "Retain"


@pytest.mark.parametrize(("scenario", "arch"), [("defaults", "arm64"), ("options", "x86_64")])
def test_the_layer_is_published_for_python313_on_the_stacks_architecture(
    scenario: str, arch: str
) -> None:
    (layer,) = [r for r in resources(scenario).values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert layer["DeletionPolicy"] == "Retain"  # consumers pin a version: see the template
    properties = layer["Properties"]
    assert properties["Content"] == {
        "S3Bucket": LAYER_ARTIFACT["Bucket"],
        "S3Key": LAYER_ARTIFACT["Key"],
    }
    assert properties["CompatibleRuntimes"] == ["python3.13"]
    assert properties["CompatibleArchitectures"] == [arch]
    assert properties["LayerName"] == "okta-bridge-client"


def test_the_outputs_name_the_layer_version_and_the_consumer_policy() -> None:
    outputs = evaluator("defaults").outputs()
    (layer_id,) = [
        name
        for name, resource in resources("defaults").items()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    ]
    assert layer_id.startswith("BridgeLayer")
    assert outputs["LayerArn"] == f"<{layer_id}>"  # Ref of a layer version is its ARN
    assert outputs["ConsumerPolicyArn"] == "<ConsumerPolicy>"  # Ref of a managed policy: its ARN


# -- ConsumerPolicy ----------------------------------------------------------------------------


def test_consumer_policy_grants_exactly_reading_and_decrypting_the_credentials_secret(
    scenario: str,
) -> None:
    policy = resources(scenario)["ConsumerPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    properties = policy["Properties"]
    assert not {"Roles", "Users", "Groups"} & set(properties)  # the consumer's role attaches it
    assert properties["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ReadTheCredentialsSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "<CredentialsSecret>",
        },
        {
            "Sid": "DecryptTheSecretThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": KEY,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                    "kms:EncryptionContext:SecretARN": "<CredentialsSecret>",
                }
            },
        },
    ]


def test_consumer_policy_is_the_bridge_roles_own_secret_statements() -> None:
    """Same conditions as the bridge's role: one definition of reading the secret."""
    created = resources("defaults")
    bridge = {
        s["Sid"]: s
        for s in created["BridgeRolePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    }
    consumer = created["ConsumerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert consumer == [bridge[s["Sid"]] for s in consumer]


# -- ConsumerRoleArns --------------------------------------------------------------------------


def test_consumer_role_arns_is_a_list_of_roles_of_this_form() -> None:
    template = sam_template()
    spec = template["Parameters"]["ConsumerRoleArns"]
    assert (spec["Type"], spec["Default"]) == ("CommaDelimitedList", "")

    def errors(value: str) -> list[str]:
        return parameter_errors(template, parameter_values(template, {"ConsumerRoleArns": value}))

    assert errors("") == []
    assert errors(CONSUMERS) == []
    assert errors("arn:aws-cn:iam::123456789012:role/a") == []
    for bad in (
        "arn:aws:iam::123456789012:role/*",  # no wildcard: it would admit any matching role
        "arn:aws:iam::123456789012:user/alice",  # roles of functions only
        "arn:aws:iam::123456789012:root",
        f"{CONSUMER},arn:aws:iam::12345:role/short-account",
        "orders-sync",
    ):
        assert errors(bad), bad


@pytest.mark.parametrize("scenario", ["defaults", "options"])
def test_without_consumers_nobody_new_is_admitted(scenario: str) -> None:
    statements = secret_statements(scenario)
    assert "DenyTheConsumersAllButReading" not in [s.get("Sid") for s in statements]
    for action in (*READ, *WRITE):
        assert denied(statements, CONSUMER, action), action
        assert denied(statements, STRANGER, action), action
    assert "ConsumersDecryptTheSecretThroughSecretsManager" not in key_statements(scenario)
    assert "ConsumersEncryptTheirS3ObjectsThroughS3" not in key_statements(scenario)
    assert "ConsumerRoleArns" not in str(statements)


@pytest.mark.parametrize("scenario", ["defaults", "options"])
def test_the_named_consumers_may_read_the_secret_and_nothing_else(scenario: str) -> None:
    statements = secret_statements(scenario, CONSUMERS)
    for consumer in (CONSUMER, OTHER_CONSUMER):
        for action in READ:
            assert not denied(statements, consumer, action), (consumer, action)
        for action in WRITE:
            assert denied(statements, consumer, action), (consumer, action)
    for action in (*READ, *WRITE):
        assert denied(statements, STRANGER, action), action
        for named in ("<BridgeRole.Arn>", "<RotationRole.Arn>", ACCOUNT):
            assert not denied(statements, named, action), (named, action)


def test_naming_consumers_adds_them_and_changes_nothing_else() -> None:
    before = secret_statements("options")
    after = secret_statements("options", CONSUMERS)
    assert len(after) == len(before) + 1
    assert after[0] == before[0]  # no TLS, no access
    named = before[1]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert after[1] == {
        **before[1],
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": [*named, CONSUMER, OTHER_CONSUMER]}},
    }
    assert after[2:-1] == before[2:]  # the deployers' statement
    assert after[-1] == {
        "Sid": "DenyTheConsumersAllButReading",
        "Effect": "Deny",
        "Principal": "*",
        "NotAction": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
        "Resource": "*",
        "Condition": {
            "ArnLike": {"aws:PrincipalArn": [CONSUMER, OTHER_CONSUMER]},
            "ArnNotLike": {"aws:PrincipalArn": ADMINS.split(",")},
        },
    }


def test_an_admin_listed_as_a_consumer_keeps_the_admins_access() -> None:
    statements = secret_statements("options", f"{CONSUMER},{ADMIN}")
    for action in (*READ, *WRITE):
        assert not denied(statements, ADMIN, action), action
    assert denied(statements, CONSUMER, "secretsmanager:PutSecretValue")


@pytest.mark.parametrize("scenario", ["defaults", "options"])
def test_the_key_admits_the_named_consumers_as_it_admits_the_function(scenario: str) -> None:
    before = key_statements(scenario)
    after = key_statements(scenario, CONSUMERS)
    consumers = after.pop("ConsumersDecryptTheSecretThroughSecretsManager")
    assert after == before  # no bucket named: no data keys through S3 for anyone
    writes = key_statements(scenario, CONSUMERS, BUCKETS)["ConsumersEncryptTheirS3ObjectsThroughS3"]
    # What a consumer writes to S3 (examples/scheduled-export): new data keys through S3 only,
    # for objects of the named buckets only.
    assert writes == {
        "Sid": "ConsumersEncryptTheirS3ObjectsThroughS3",
        "Effect": "Allow",
        "Principal": {"AWS": ACCOUNT},
        "Action": "kms:GenerateDataKey",
        "Resource": "*",
        "Condition": {
            "ArnEquals": {"aws:PrincipalArn": [CONSUMER, OTHER_CONSUMER]},
            "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
            "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": [
                    "arn:aws:s3:::orders-export",
                    "arn:aws:s3:::inventory-export",
                    "arn:aws:s3:::orders-export/*",
                    "arn:aws:s3:::inventory-export/*",
                ]
            },
        },
    }
    assert "ConsumersEncryptTheirS3ObjectsThroughS3" not in key_statements(scenario, "", BUCKETS)
    function = before["FunctionDecryptsTheSecretThroughSecretsManager"]
    assert consumers == {
        **function,
        "Sid": "ConsumersDecryptTheSecretThroughSecretsManager",
        "Condition": {
            **function["Condition"],
            "ArnEquals": {"aws:PrincipalArn": [CONSUMER, OTHER_CONSUMER]},
        },
    }
    assert consumers["Principal"] == {"AWS": ACCOUNT}
    assert consumers["Action"] == "kms:Decrypt"
    assert consumers["Condition"]["StringLike"] == {
        "kms:EncryptionContext:SecretARN": SECRET_PATTERN
    }
    assert consumers["Condition"]["StringEquals"] == {
        "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"
    }

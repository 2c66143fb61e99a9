"""template.yaml for issue 16: the KMS key that signs the client assertions (KmsSigningKeySpec),
who may sign with it (the bridge's role, and the rotation's to confirm Okta refuses it; only with
the key's one algorithm, on a digest), the rotation's key management, the public-JWK custom
resource and its function, the KMS endpoint (CreateKmsEndpoint). With the option off, nothing of
it exists. Evaluated as in test_template.py (``"<X>"`` is ``Ref X``, ``"<X.Y>"`` is ``GetAtt``).
"""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from typing import Final

import pytest

from tests.support.cfn import (
    ARTIFACT,
    Evaluator,
    Json,
    parameter_errors,
    parameter_values,
    translate,
)
from tests.support.policies import as_list

from .conftest import ADMINS, SCENARIOS, sam_template

KMS_SIGNING: Final = frozenset(
    {
        "KmsSigningKey",
        "KmsSigningKeyAlias",
        "PublicJwkRole",
        "PublicJwkLogGroup",
        "PublicJwkFunction",
        "PublicJwk",
    }
)
"""Created by KmsSigningKeySpec (test_template.py's list of optional resources adds these)."""
KMS_ENDPOINT: Final = frozenset({"KmsEndpointSecurityGroup", "BridgeToKmsEndpoint", "KmsEndpoint"})
"""Created by CreateKmsEndpoint in a VPC."""

ACCOUNT: Final = "arn:aws:iam::123456789012:root"
SIGNING_KEY: Final = "<KmsSigningKey.Arn>"
SECRET: Final = "<CredentialsSecret>"
ANY_KEY: Final = "arn:aws:kms:eu-west-1:123456789012:key/*"
ALGORITHMS: Final = {"RSA_2048": "RSASSA_PKCS1_V1_5_SHA_256", "ECC_NIST_P256": "ECDSA_SHA_256"}

KMS_SCENARIOS: Final[dict[str, dict[str, str]]] = {
    "defaults": {},
    "rsa": {"KmsSigningKeySpec": "RSA_2048"},
    "ec-admins": {
        "KmsSigningKeySpec": "ECC_NIST_P256",
        "KmsKeyDeletionDays": "7",
        "AdminPrincipalArns": ADMINS,
    },
    # The relay as the proxy, both endpoints: the functions reach both around the relay.
    "relay-endpoints": {
        **SCENARIOS["relay"],
        "KmsSigningKeySpec": "RSA_2048",
        "CreateKmsEndpoint": "true",
    },
    # The KMS endpoint alone (a key of one's own, no Secrets Manager endpoint).
    "relay-kms-endpoint": {
        **SCENARIOS["relay-explicit"],
        "HttpsProxy": "",
        "NoProxy": "",
        "CreateKmsEndpoint": "true",
    },
    "relay": SCENARIOS["relay"],  # the base of relay-endpoints' comparisons
}
SPEC: Final = {"rsa": "RSA_2048", "ec-admins": "ECC_NIST_P256", "relay-endpoints": "RSA_2048"}
"""The scenarios that create the signing key, and its spec."""


@cache
def _translated(name: str) -> dict[str, Json]:
    values = parameter_values(sam_template(), KMS_SCENARIOS[name])
    return translate(sam_template(), values)


@cache
def _resources(name: str) -> dict[str, dict[str, Json]]:
    translated = _translated(name)
    return Evaluator(translated, parameter_values(translated, KMS_SCENARIOS[name])).resources()


def resources(name: str) -> dict[str, dict[str, Json]]:
    return json.loads(json.dumps(_resources(name)))  # a copy: a test cannot change the next one's


def outputs(name: str) -> dict[str, Json]:
    translated = _translated(name)
    return Evaluator(translated, parameter_values(translated, KMS_SCENARIOS[name])).outputs()


def props(name: str, logical_id: str) -> dict[str, Json]:
    properties: dict[str, Json] = resources(name)[logical_id]["Properties"]
    return properties


def policy_statements(name: str, policy_id: str) -> list[dict[str, Json]]:
    statements: list[dict[str, Json]] = props(name, policy_id)["PolicyDocument"]["Statement"]
    return statements


def key_statements(name: str) -> dict[str, dict[str, Json]]:
    policy = props(name, "KmsSigningKey")["KeyPolicy"]
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def grants(statement: dict[str, Json], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"]))


def base(name: str) -> str:
    """The scenario without the option that ``name`` adds it to."""
    return "relay" if name == "relay-endpoints" else "defaults"


def added(name: str, policy_id: str) -> list[dict[str, Json]]:
    """The statements the option adds to a policy (test_template.py checks the others)."""
    before = {json.dumps(s, sort_keys=True) for s in policy_statements(base(name), policy_id)}
    return [
        s for s in policy_statements(name, policy_id) if json.dumps(s, sort_keys=True) not in before
    ]


def signing_condition(spec: str) -> dict[str, Json]:
    return {"kms:SigningAlgorithm": ALGORITHMS[spec], "kms:MessageType": "DIGEST"}


# -- the parameters -------------------------------------------------------------------------------


def test_the_parameters_default_to_no_key_and_a_30_day_waiting_period() -> None:
    declared = sam_template()["Parameters"]
    assert declared["KmsSigningKeySpec"]["Default"] == "none"
    assert declared["KmsSigningKeySpec"]["AllowedValues"] == ["none", "RSA_2048", "ECC_NIST_P256"]
    days = declared["KmsKeyDeletionDays"]
    assert (days["MinValue"], days["MaxValue"]) == (7, 30)  # KMS's own bounds
    assert str(declared["KmsKeyDeletionDays"]["Default"]) == "30"
    assert declared["CreateKmsEndpoint"]["Default"] == "false"


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"KmsSigningKeySpec": "RSA_4096"}, 1),
        ({"KmsSigningKeySpec": "SYMMETRIC_DEFAULT"}, 1),
        ({"KmsKeyDeletionDays": "6"}, 1),
        ({"KmsKeyDeletionDays": "31"}, 1),
        ({"KmsKeyDeletionDays": "7"}, 0),
        ({"CreateKmsEndpoint": "yes"}, 1),
    ],
)
def test_cloudformation_refuses_values_outside_the_contract(
    values: dict[str, str], refused: int
) -> None:
    template = sam_template()
    assert len(parameter_errors(template, parameter_values(template, values))) == refused


def test_the_kms_endpoint_needs_a_vpc() -> None:
    template = sam_template()
    failed = Evaluator(
        template, parameter_values(template, {"CreateKmsEndpoint": "true"})
    ).failed_rules()
    assert failed == ["NetworkOptionsNeedAVpc: CreateKmsEndpoint needs VpcId."]


# -- nothing when the option is off ---------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_without_the_option_there_is_no_signing_key_and_no_kms_sign(scenario: str) -> None:
    translated = _translated("defaults") if scenario == "defaults" else None
    values = parameter_values(sam_template(), SCENARIOS[scenario])
    translated = translated or translate(sam_template(), values)
    evaluator = Evaluator(translated, parameter_values(translated, SCENARIOS[scenario]))
    created = evaluator.resources()
    assert not (KMS_SIGNING | KMS_ENDPOINT) & set(created)
    text = json.dumps(created)
    for action in ("kms:Sign", "kms:CreateKey", "kms:GetPublicKey", "kms:ListKeys"):
        assert action not in text
    assert "BRIDGE_KMS_" not in text
    assert not {"KmsSigningKeyArn", "KmsPublicJwk"} & set(evaluator.outputs())


# -- the key --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_option_creates_exactly_the_key_its_alias_and_the_public_jwk_resource(
    name: str,
) -> None:
    extra = KMS_SIGNING | (KMS_ENDPOINT if name == "relay-endpoints" else frozenset())
    assert set(resources(name)) - set(resources(base(name))) == extra
    assert set(resources(base(name))) <= set(resources(name))


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_key_is_an_asymmetric_signing_key_of_the_chosen_spec(name: str) -> None:
    key = resources(name)["KmsSigningKey"]
    assert key["Type"] == "AWS::KMS::Key"
    properties = key["Properties"]
    assert properties["KeySpec"] == SPEC[name]
    assert properties["KeyUsage"] == "SIGN_VERIFY"
    assert "EnableKeyRotation" not in properties  # KMS cannot rotate asymmetric keys
    days = KMS_SCENARIOS[name].get("KmsKeyDeletionDays", "30")
    assert properties["PendingWindowInDays"] == days
    assert properties["Tags"] == [{"Key": "okta-bridge:stack", "Value": "okta-bridge"}]


def test_the_alias_names_the_stack() -> None:
    alias = props("rsa", "KmsSigningKeyAlias")
    assert alias == {
        "AliasName": "alias/okta-bridge-okta-signing",
        "TargetKeyId": "<KmsSigningKey>",
    }


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_key_policy_names_who_may_do_what(name: str) -> None:
    statements = key_statements(name)
    assert set(statements) == {
        "AccountAndAdminsAdministerTheKey",
        "FunctionSignsClientAssertions",
        "RotationRetiresTheKey",
        "RotationSignsToConfirmOktaRefusesTheKey",
    }
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] != "*"
        assert not any(action in ("kms:*", "*") for action in as_list(statement["Action"]))
        assert not grants(statement, "kms:CreateGrant")  # no way around this policy


@pytest.mark.parametrize("name", sorted(SPEC))
def test_only_the_bridge_and_the_rotation_may_sign_and_only_the_keys_algorithm_on_a_digest(
    name: str,
) -> None:
    signers = {
        sid: statement
        for sid, statement in key_statements(name).items()
        if grants(statement, "kms:Sign")
    }
    assert set(signers) == {
        "FunctionSignsClientAssertions",
        "RotationSignsToConfirmOktaRefusesTheKey",
    }
    roles = {"FunctionSignsClientAssertions": "<BridgeRole.Arn>"}
    roles["RotationSignsToConfirmOktaRefusesTheKey"] = "<RotationRole.Arn>"
    for sid, statement in signers.items():
        assert statement["Action"] == "kms:Sign"
        assert statement["Principal"] == {"AWS": ACCOUNT}  # and the role's own policy: both
        assert statement["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": roles[sid]},
            "StringEquals": signing_condition(SPEC[name]),
        }


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_account_and_the_admins_administer_the_key_without_signing(name: str) -> None:
    administer = key_statements(name)["AccountAndAdminsAdministerTheKey"]
    admins = ADMINS.split(",") if "AdminPrincipalArns" in KMS_SCENARIOS[name] else []
    assert as_list(administer["Principal"]["AWS"]) == [ACCOUNT, *admins]
    for action in ("kms:Sign", "kms:Verify", "kms:CreateGrant", "kms:Decrypt"):
        assert not grants(administer, action)
    for action in ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:GetPublicKey"):
        assert grants(administer, action)


def test_the_rotation_retires_the_key_with_the_actions_it_needs_only() -> None:
    retire = key_statements("rsa")["RotationRetiresTheKey"]
    assert sorted(as_list(retire["Action"])) == [
        "kms:DescribeKey",
        "kms:DisableKey",
        "kms:GetPublicKey",
        "kms:ListResourceTags",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
    ]
    assert retire["Condition"] == {"ArnEquals": {"aws:PrincipalArn": "<RotationRole.Arn>"}}


# -- the roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_bridge_role_may_sign_with_exactly_the_signing_key(name: str) -> None:
    assert added(name, "BridgeRolePolicy") == [
        {
            "Sid": "SignClientAssertionsWithTheSigningKey",
            "Effect": "Allow",
            "Action": "kms:Sign",
            "Resource": SIGNING_KEY,
            "Condition": {"StringEquals": signing_condition(SPEC[name])},
        }
    ]
    everything = policy_statements(name, "BridgeRolePolicy")
    kms_actions = {
        action
        for statement in everything
        for action in as_list(statement["Action"])
        if action.startswith("kms:")
    }
    assert kms_actions == {"kms:Decrypt", "kms:GenerateDataKey", "kms:Sign"}  # no kms:*


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_rotation_role_manages_only_the_keys_of_its_secret(name: str) -> None:
    spec = SPEC[name]
    by_sid = {statement.pop("Sid"): statement for statement in added(name, "RotationRolePolicy")}
    assert by_sid == {
        "CreateSigningKeysForTheCredentialsSecret": {
            "Effect": "Allow",
            "Action": "kms:CreateKey",
            "Resource": "*",  # CreateKey has no resource: the request's tags and spec decide
            "Condition": {
                "StringEquals": {
                    "aws:RequestTag/okta-bridge:secret": SECRET,
                    "kms:KeySpec": spec,
                    "kms:KeyUsage": "SIGN_VERIFY",
                }
            },
        },
        "TagSigningKeysWithTheCredentialsSecret": {
            "Effect": "Allow",
            "Action": "kms:TagResource",
            "Resource": ANY_KEY,
            "Condition": {"StringEquals": {"aws:RequestTag/okta-bridge:secret": SECRET}},
        },
        "ListKeys": {"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"},
        "ReadTheTagsOfKeys": {
            "Effect": "Allow",
            "Action": "kms:ListResourceTags",
            "Resource": ANY_KEY,
        },
        "RetireTheStackSigningKey": {
            "Effect": "Allow",
            "Action": [
                "kms:DescribeKey",
                "kms:DisableKey",
                "kms:GetPublicKey",
                "kms:ScheduleKeyDeletion",
            ],
            "Resource": SIGNING_KEY,
        },
        "ManageTheSigningKeysOfTheCredentialsSecret": {
            "Effect": "Allow",
            "Action": [
                "kms:DescribeKey",
                "kms:DisableKey",
                "kms:GetKeyPolicy",
                "kms:GetPublicKey",
                "kms:ScheduleKeyDeletion",
            ],
            "Resource": ANY_KEY,
            "Condition": {"StringEquals": {"aws:ResourceTag/okta-bridge:secret": SECRET}},
        },
        "SignWithTheStackSigningKey": {
            "Effect": "Allow",
            "Action": "kms:Sign",
            "Resource": SIGNING_KEY,
            "Condition": {"StringEquals": signing_condition(spec)},
        },
        "SignWithTheSigningKeysOfTheCredentialsSecret": {
            "Effect": "Allow",
            "Action": "kms:Sign",
            "Resource": ANY_KEY,
            "Condition": {
                "StringEquals": {
                    "aws:ResourceTag/okta-bridge:secret": SECRET,
                    **signing_condition(spec),
                }
            },
        },
    }


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_rotation_function_knows_the_waiting_period_and_the_roles(name: str) -> None:
    variables = props(name, "RotationFunction")["Environment"]["Variables"]
    assert variables["BRIDGE_KMS_DELETION_DAYS"] == KMS_SCENARIOS[name].get(
        "KmsKeyDeletionDays", "30"
    )
    assert variables["BRIDGE_KMS_SIGNER_ROLE_ARN"] == "<BridgeRole.Arn>"
    assert variables["BRIDGE_KMS_ADMIN_ROLE_ARN"] == "<RotationRole.Arn>"
    assert not any(
        v.startswith("BRIDGE_KMS")
        for v in props(name, "BridgeFunction")["Environment"]["Variables"]
    )


# -- the public JWK: custom resource, function, role ----------------------------------------------


@pytest.mark.parametrize("name", ["rsa", "relay-endpoints"])
def test_the_public_jwk_function_runs_the_artifact_outside_the_vpc_without_the_proxy(
    name: str,
) -> None:
    function = resources(name)["PublicJwkFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    properties = function["Properties"]
    bridge = props(name, "BridgeFunction")
    assert (
        properties["Code"]
        == bridge["Code"]
        == {"S3Bucket": ARTIFACT["Bucket"], "S3Key": ARTIFACT["Key"]}
    )
    assert properties["Handler"] == "okta_bridge.ops.public_jwk.lambda_handler"
    assert properties["Runtime"] == bridge["Runtime"] == "python3.13"
    assert properties["Role"] == "<PublicJwkRole.Arn>"
    assert properties["LoggingConfig"]["LogGroup"] == "<PublicJwkLogGroup>"
    assert properties["TracingConfig"] == {"Mode": "PassThrough"}
    assert "VpcConfig" not in properties
    if name == "relay-endpoints":
        assert "VpcConfig" in bridge  # the bridge is in the VPC; this function is not
    variables = properties["Environment"]["Variables"]
    assert not {"HTTPS_PROXY", "NO_PROXY"} & set(variables)
    assert properties["Timeout"] < 300  # answers before the custom resource's ServiceTimeout


def test_the_custom_resource_reads_the_signing_key() -> None:
    resource = resources("rsa")["PublicJwk"]
    assert resource["Type"] == "Custom::PublicJwk"
    assert resource["Properties"] == {
        "ServiceToken": "<PublicJwkFunction.Arn>",
        "ServiceTimeout": 300,
        "KeyId": SIGNING_KEY,
    }


def test_the_public_jwk_role_may_read_the_public_key_and_write_its_logs_only() -> None:
    role = props("rsa", "PublicJwkRole")
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert not {"ManagedPolicyArns", "PermissionsBoundary"} & set(role)
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ReadThePublicKeyOfTheSigningKey",
            "Effect": "Allow",
            "Action": "kms:GetPublicKey",
            "Resource": SIGNING_KEY,
        },
        {
            "Sid": "WriteThePublicJwkLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "<PublicJwkLogGroup.Arn>",
        },
    ]
    attached = [
        r
        for r in resources("rsa").values()
        if r["Type"].startswith("AWS::IAM::")
        and "<PublicJwkRole>"
        in [r["Properties"].get("RoleName"), *r["Properties"].get("Roles", [])]
    ]
    assert attached == []


def test_the_public_jwk_logs_are_encrypted_with_the_stack_key() -> None:
    group = props("rsa", "PublicJwkLogGroup")
    assert group["LogGroupName"] == "/aws/lambda/okta-bridge-public-jwk"
    assert group["KmsKeyId"] == "<BridgeKey.Arn>"
    key = props("rsa", "BridgeKey")["KeyPolicy"]["Statement"]
    (logs,) = [s for s in key if s["Sid"] == "CloudWatchLogsEncryptsTheStackLogGroups"]
    arns = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert (
        arns[-1]
        == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/okta-bridge-public-jwk"
    )


@pytest.mark.parametrize("name", sorted(SPEC))
def test_the_outputs_are_the_key_arn_and_the_public_jwk(name: str) -> None:
    found = outputs(name)
    assert found["KmsSigningKeyArn"] == SIGNING_KEY
    assert found["KmsPublicJwk"] == "<PublicJwk.Jwk>"
    assert set(found) - set(outputs("defaults")) == {"KmsSigningKeyArn", "KmsPublicJwk"}


# -- the KMS endpoint -----------------------------------------------------------------------------


def test_the_kms_endpoint_admits_the_two_functions_kms_calls_only() -> None:
    endpoint = props("relay-endpoints", "KmsEndpoint")
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.kms"
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["SecurityGroupIds"] == ["<KmsEndpointSecurityGroup>"]
    statements = {s["Sid"]: s for s in endpoint["PolicyDocument"]["Statement"]}
    assert statements["TheFunctionSignsClientAssertions"]["Action"] == "kms:Sign"
    assert statements["TheFunctionSignsClientAssertions"]["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": "<BridgeRole.Arn>"}
    }
    rotation = statements["TheRotationManagesSigningKeys"]
    assert rotation["Condition"] == {"ArnEquals": {"aws:PrincipalArn": "<RotationRole.Arn>"}}
    granted = {
        a
        for s in policy_statements("relay-endpoints", "RotationRolePolicy")
        for a in as_list(s["Action"])
        if a.startswith("kms:")
    }
    assert set(rotation["Action"]) == granted - {"kms:Decrypt", "kms:GenerateDataKey"}
    ingress = props("relay-endpoints", "KmsEndpointSecurityGroup")["SecurityGroupIngress"]
    assert [rule["SourceSecurityGroupId"] for rule in ingress] == ["<BridgeSecurityGroup>"]
    egress = props("relay-endpoints", "BridgeToKmsEndpoint")
    assert egress["DestinationSecurityGroupId"] == "<KmsEndpointSecurityGroup>"
    assert (egress["FromPort"], egress["ToPort"]) == (443, 443)


@pytest.mark.parametrize(
    ("name", "no_proxy"),
    [
        ("relay-endpoints", "secretsmanager.eu-west-1.amazonaws.com,kms.eu-west-1.amazonaws.com"),
        ("relay-kms-endpoint", "kms.eu-west-1.amazonaws.com"),
    ],
)
def test_behind_the_relay_the_functions_reach_the_kms_endpoint_directly(
    name: str, no_proxy: str
) -> None:
    for function in ("BridgeFunction", "RotationFunction"):
        variables = props(name, function)["Environment"]["Variables"]
        assert variables["HTTPS_PROXY"].endswith(":3128")
        assert variables["NO_PROXY"] == no_proxy


def test_a_rotated_key_is_administered_as_the_stacks_key_is() -> None:
    """The rotation writes each new key's policy itself (rotation/kms_keys.py): the account's
    administration is the same list as KmsSigningKey's, so no rotated key grants more."""
    from okta_bridge.rotation import kms_keys  # noqa: PLC0415 - only this test needs it

    administer = key_statements("rsa")["AccountAndAdminsAdministerTheKey"]
    assert sorted(as_list(administer["Action"])) == sorted(kms_keys._ADMINISTRATION)

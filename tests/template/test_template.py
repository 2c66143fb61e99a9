"""template.yaml: translated with aws-sam-translator and evaluated for every scenario.

The scenarios (conftest.SCENARIOS) are the default deployment, every optional setting, and each
network mode. Resource references stay symbolic: ``"<X>"`` is ``Ref X``, ``"<X.Y>"`` is
``GetAtt X.Y``; the stack is ``okta-bridge`` in account 123456789012, region eu-west-1.
"""

from __future__ import annotations

import json
import re
from typing import Final

import pytest

from .cfn import Evaluator, Json, parameter_errors, parameter_values
from .conftest import ADMINS, FULL_LISTS, SCENARIOS, _translated, evaluator

ACCOUNT: Final = "arn:aws:iam::123456789012:root"
KEY: Final = "<BridgeKey.Arn>"

# -- the deployment contract -------------------------------------------------------------------

CONTRACT_PARAMETERS: Final = {
    "SecretName": "prod/okta_api_creds",
    "Architecture": "arm64",
    "MemorySize": "256",
    "Timeout": "30",
    "ReservedConcurrency": "10",
    "LogRetentionDays": "90",
    "LogLevel": "INFO",
    "Scopes": "api.access",
    "AllowedPaths": "",
    "TokenUrl": "",
    "ApiBaseUrl": "",
    "CaBundleFile": "",
    "ApiPins": "",
    "HttpsProxy": "",
    "NoProxy": "",
    "AlarmEmail": "",
    "CodeSigningProfileVersionArn": "",
    "AdminPrincipalArns": "",
    "VpcId": "",
    "SubnetIds": "",
    "CorporateCidrs": "",
    "OktaCidrs": "",
    "CreateSecretsManagerEndpoint": "false",
    "CorporateNetwork": "none",
    "RouteTableIds": "",
    "PeeringConnectionId": "",
    "TransitGatewayId": "",
    "RelaySubnetId": "",
    "RelayInstanceType": "t4g.small",
    "RelayAmiParameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    "CustomerGatewayIp": "",
    "CustomerGatewayBgpAsn": "65000",
    "EnableFlowLogs": "false",
}
CONTRACT_OUTPUTS: Final = {
    "FunctionArn": "<BridgeFunction.Arn>",
    "FunctionName": "<BridgeFunction>",
    "SecretArn": "<CredentialsSecret>",
    "SecretName": "prod/okta_api_creds",
    "RoleArn": "<BridgeRole.Arn>",
    "LogGroupName": "<BridgeLogGroup>",
    "DashboardUrl": (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#dashboards/dashboard/<BridgeDashboard>"
    ),
    "KmsKeyArn": "<BridgeKey.Arn>",
}

# -- which resources each scenario creates -----------------------------------------------------

ALWAYS: Final = frozenset(
    {
        "BridgeKey",
        "BridgeKeyAlias",
        "CredentialsSecret",
        "CredentialsSecretPolicy",
        "BridgeRole",
        "BridgeRolePolicy",
        "BridgeLogGroup",
        "BridgeFunction",
        "BridgeFunctionEventInvokeConfig",
        "FailureQueue",
        "FailureQueuePolicy",
        "AlarmTopic",
        "AlarmTopicPolicy",
        "BridgeFailureMetricFilter",
        "ErrorRateAlarm",
        "DurationP99Alarm",
        "ThrottlesAlarm",
        "ConcurrencyAnomalyDetector",
        "ConcurrencyAnomalyAlarm",
        "FailedInvocationsAlarm",
        "BridgeDashboard",
    }
)
ENDPOINT: Final = {
    "SecretsManagerEndpointSecurityGroup",
    "BridgeToSecretsManagerEndpoint",
    "SecretsManagerEndpoint",
}
FLOW_LOGS: Final = {"FlowLogGroup", "FlowLogRole", "VpcFlowLog"}
RELAY: Final = {
    "RelaySecurityGroup",
    "BridgeToRelay",
    "RelayRole",
    "RelayInstanceProfile",
    "RelayLaunchTemplate",
    "RelayInstance",
}
VPN: Final = {
    "CustomerGateway",
    "VpnGateway",
    "VpnGatewayAttachment",
    "VpnConnection",
    "VpnRoutePropagation",
}


def _corporate_egress(count: int) -> set[str]:
    return {f"BridgeHttpsToCorporateCidr{i}" for i in range(1, count + 1)}


def _routes(tables: int, cidrs: int) -> set[str]:
    return {f"CorporateRouteT{t}C{c}" for t in range(1, tables + 1) for c in range(1, cidrs + 1)}


OPTIONAL: Final[dict[str, set[str]]] = {
    "defaults": set(),
    "options": {"BridgeCodeSigningConfig", "AlarmEmailSubscription"},
    "vpc": {"BridgeSecurityGroup", "BridgeHttpsToAnyAddress"},
    "vpc-locked-down": {
        "BridgeSecurityGroup",
        "BridgeHttpsToOktaCidr1",
        "BridgeHttpsToOktaCidr2",
        *_corporate_egress(1),
        *ENDPOINT,
        *FLOW_LOGS,
    },
    "peering": {
        "BridgeSecurityGroup",
        "BridgeHttpsToAnyAddress",
        *_corporate_egress(2),
        *_routes(2, 2),
    },
    "peering-full-lists": {
        "BridgeSecurityGroup",
        *{f"BridgeHttpsToOktaCidr{i}" for i in range(1, 9)},
        *_corporate_egress(4),
        *_routes(2, 4),
        *ENDPOINT,
    },
    "transit-gateway": {
        "BridgeSecurityGroup",
        "BridgeHttpsToAnyAddress",
        *_corporate_egress(4),
        *_routes(1, 4),
    },
    "relay": {"BridgeSecurityGroup", *RELAY, *ENDPOINT},
    "relay-explicit": {"BridgeSecurityGroup", *RELAY},
    "site-to-site-vpn": {
        "BridgeSecurityGroup",
        "BridgeHttpsToAnyAddress",
        *_corporate_egress(4),
        *ENDPOINT,
        *VPN,
        *{f"VpnRouteC{i}" for i in range(1, 5)},
    },
}
IN_VPC: Final = frozenset(name for name, values in SCENARIOS.items() if "VpcId" in values)


def created(scenario: str) -> dict[str, dict[str, Json]]:
    return evaluator(scenario).resources()


def props(scenario: str, logical_id: str) -> dict[str, Json]:
    properties: dict[str, Json] = created(scenario)[logical_id]["Properties"]
    return properties


def as_list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else [value]


# -- the template as written ---------------------------------------------------------------


def test_parameters_are_exactly_the_contract_with_its_defaults(template: dict[str, Json]) -> None:
    declared = template["Parameters"]
    assert {name: str(spec.get("Default")) for name, spec in declared.items()} == (
        CONTRACT_PARAMETERS
    )


def test_outputs_are_exactly_the_contract(template: dict[str, Json]) -> None:
    assert set(template["Outputs"]) == set(CONTRACT_OUTPUTS)
    assert evaluator("defaults").outputs() == CONTRACT_OUTPUTS


def test_the_function_is_sam_with_the_packaged_zip(template: dict[str, Json]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function = template["Resources"]["BridgeFunction"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert function["Properties"]["CodeUri"] == "dist/okta-bridge.zip"


def test_every_scenario_is_a_valid_parameter_set(scenario: str, template: dict[str, Json]) -> None:
    values = parameter_values(template, SCENARIOS[scenario])
    assert parameter_errors(template, values) == []
    assert evaluator(scenario).failed_rules() == []


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"CorporateCidrs": "10.0.0.0/8,10.1.0.0/16,10.2.0.0/16,10.3.0.0/16,10.4.0.0/16"}, 1),
        ({"OktaCidrs": ",".join(["192.0.2.0/24"] * 9)}, 1),
        ({"RouteTableIds": "rtb-01,rtb-02,rtb-03"}, 1),
        ({"CorporateCidrs": "10.0.0.0/8, 10.1.0.0/16"}, 1),
        ({"AdminPrincipalArns": "arn:aws:iam::123456789012:root"}, 1),
        ({"TokenUrl": "http://plain.example/token"}, 1),
        ({"CaBundleFile": "../etc/passwd"}, 1),
        ({"RelayAmiParameter": "not-a-path"}, 1),
        ({"CorporateNetwork": "direct-connect"}, 1),
        ({"ReservedConcurrency": "0"}, 1),
        (FULL_LISTS, 0),
        ({"AdminPrincipalArns": ADMINS}, 0),
    ],
)
def test_parameter_patterns_refuse_bad_values_and_over_long_lists(
    template: dict[str, Json], values: dict[str, str], refused: int
) -> None:
    errors = parameter_errors(template, parameter_values(template, values))
    assert len(errors) == refused, errors


@pytest.mark.parametrize(
    ("values", "failed"),
    [
        ({"VpcId": "vpc-0123456789abcdef0"}, ["SubnetsNeedAVpc"]),
        ({"CorporateNetwork": "relay"}, ["NetworkOptionsNeedAVpc", "RelayParameters"]),
        ({"EnableFlowLogs": "true"}, ["NetworkOptionsNeedAVpc"]),
        (
            {
                "VpcId": "vpc-0123456789abcdef0",
                "SubnetIds": "subnet-0aaa1111bbbb2222c",
                "CorporateNetwork": "peering",
            },
            ["RoutedNetworkParameters", "RoutedNetworkParameters", "PeeringParameters"],
        ),
        (
            {
                "VpcId": "vpc-0123456789abcdef0",
                "SubnetIds": "subnet-0aaa1111bbbb2222c",
                "CorporateNetwork": "site-to-site-vpn",
                "RouteTableIds": "rtb-0aaa1111bbbb2222c",
                "CorporateCidrs": "10.20.0.0/16",
            },
            ["SiteToSiteVpnParameters"],
        ),
        (
            {
                "VpcId": "vpc-0123456789abcdef0",
                "SubnetIds": "subnet-0aaa1111bbbb2222c",
                "OktaCidrs": "198.51.100.0/24",
            },
            ["SecretsManagerReachable"],
        ),
    ],
)
def test_rules_refuse_inconsistent_parameter_sets(
    template: dict[str, Json], values: dict[str, str], failed: list[str]
) -> None:
    failures = Evaluator(template, parameter_values(template, values)).failed_rules()
    assert [failure.split(":")[0] for failure in failures] == failed


def test_the_translated_template_fits_in_a_template_body() -> None:
    """Under CloudFormation's 51,200-byte TemplateBody limit: no template upload needed."""
    body = json.dumps(_translated("defaults"), separators=(",", ":"), ensure_ascii=False)
    assert len(body.encode()) < 51_200


# -- which resources exist -----------------------------------------------------------------------


def test_each_scenario_creates_exactly_its_resources(scenario: str) -> None:
    assert set(created(scenario)) == ALWAYS | OPTIONAL[scenario]


def test_every_optional_resource_is_created_by_some_scenario() -> None:
    template = _translated("defaults")
    conditional = {
        name for name, resource in template["Resources"].items() if "Condition" in resource
    }
    assert conditional == set().union(*OPTIONAL.values())
    assert not conditional & ALWAYS


# -- the function -------------------------------------------------------------------------------


def test_function_runtime_handler_and_architecture(scenario: str) -> None:
    function = created(scenario)["BridgeFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["DependsOn"] == "BridgeRolePolicy"
    p = function["Properties"]
    values = parameter_values(_translated(scenario), SCENARIOS[scenario])
    assert p["Runtime"] == "python3.13"
    assert p["Handler"] == "okta_bridge.handler.lambda_handler"
    assert p["Architectures"] == ["x86_64" if scenario == "options" else "arm64"]
    assert p["Code"] == {
        "S3Bucket": "okta-bridge-artifacts-123456789012-eu-west-1",
        "S3Key": "okta-bridge/a.zip",
    }
    assert p["Role"] == "<BridgeRole.Arn>"
    assert p["TracingConfig"] == {"Mode": "Active"}
    assert (p["MemorySize"], p["Timeout"], p["ReservedConcurrentExecutions"]) == (
        values["MemorySize"],
        values["Timeout"],
        values["ReservedConcurrency"],
    )
    assert p["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "WARN" if scenario == "options" else "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": "<BridgeLogGroup>",
    }
    if scenario == "options":
        assert p["CodeSigningConfigArn"] == "<BridgeCodeSigningConfig>"
    else:
        assert "CodeSigningConfigArn" not in p
    if scenario in IN_VPC:
        assert p["VpcConfig"] == {
            "SecurityGroupIds": ["<BridgeSecurityGroup>"],
            "SubnetIds": ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"],
        }
    else:
        assert "VpcConfig" not in p


def test_code_signing_enforces_the_profile() -> None:
    assert props("options", "BridgeCodeSigningConfig") == {
        "Description": "okta-bridge (okta-bridge) accepts only artifacts signed by its profile",
        "AllowedPublishers": {
            "SigningProfileVersionArns": [SCENARIOS["options"]["CodeSigningProfileVersionArn"]]
        },
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"},
    }


BASE_ENVIRONMENT: Final = {
    "BRIDGE_SECRET_ID": "<CredentialsSecret>",
    "BRIDGE_LOG_LEVEL": "INFO",
    "BRIDGE_SCOPES": "api.access",
}
ENVIRONMENT: Final[dict[str, dict[str, str]]] = {
    "options": {
        "BRIDGE_SECRET_ID": "<CredentialsSecret>",
        "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_ALLOWED_PATHS": "/v1/items,/v1/items/*",
        "BRIDGE_TOKEN_URL": "https://yourcompany.okta.com/oauth2/default/v1/token",
        "BRIDGE_API_BASE_URL": "https://internal-api.yourcompany.com/v1/data",
        "BRIDGE_CA_BUNDLE": "/var/task/certs/corp-root.pem",
        "BRIDGE_API_PINS": (
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=,"
            "57DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        ),
        "HTTPS_PROXY": "http://proxy.yourcompany.com:443",
        "NO_PROXY": "secretsmanager.eu-west-1.amazonaws.com",
    },
    "relay": {
        **BASE_ENVIRONMENT,
        "HTTPS_PROXY": "http://<RelayInstance.PrivateIp>:3128",
        "NO_PROXY": "secretsmanager.eu-west-1.amazonaws.com",
    },
    "relay-explicit": {
        **BASE_ENVIRONMENT,
        "HTTPS_PROXY": "http://10.0.1.10:3128",
        "NO_PROXY": "internal.example",
    },
}


def test_function_environment_has_the_secret_and_only_the_set_variables(scenario: str) -> None:
    variables = props(scenario, "BridgeFunction")["Environment"]["Variables"]
    assert variables == ENVIRONMENT.get(scenario, BASE_ENVIRONMENT)


def test_failed_async_invocations_go_to_the_encrypted_failure_queue(scenario: str) -> None:
    invoke = props(scenario, "BridgeFunctionEventInvokeConfig")
    assert invoke["FunctionName"] == "<BridgeFunction>"
    assert invoke["Qualifier"] == "$LATEST"
    assert invoke["DestinationConfig"] == {"OnFailure": {"Destination": "<FailureQueue.Arn>"}}
    assert props(scenario, "FailureQueue")["KmsMasterKeyId"] == KEY
    (deny,) = props(scenario, "FailureQueuePolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_log_group_is_encrypted_with_retention(scenario: str) -> None:
    values = parameter_values(_translated(scenario), SCENARIOS[scenario])
    assert props(scenario, "BridgeLogGroup") == {
        "LogGroupName": "/aws/lambda/okta-bridge-bridge",
        "RetentionInDays": values["LogRetentionDays"],
        "KmsKeyId": KEY,
    }


# -- the role ------------------------------------------------------------------------------------

ENI_ACTIONS: Final = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
)
ROLE_PAIRS: Final = [
    (("secretsmanager:GetSecretValue",), "<CredentialsSecret>"),
    (("kms:Decrypt",), KEY),
    (("logs:CreateLogStream", "logs:PutLogEvents"), "<BridgeLogGroup.Arn>"),
    (("xray:PutTelemetryRecords", "xray:PutTraceSegments"), "*"),
    (("sqs:SendMessage",), "<FailureQueue.Arn>"),
    (("kms:Decrypt", "kms:GenerateDataKey"), KEY),
]
VPC_ROLE_PAIRS: Final = [
    (("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"), "*"),
    (ENI_ACTIONS, "arn:aws:ec2:eu-west-1:123456789012:network-interface/*"),
    (ENI_ACTIONS, "arn:aws:ec2:eu-west-1:123456789012:security-group/*"),
    (ENI_ACTIONS, "arn:aws:ec2:eu-west-1:123456789012:subnet/*"),
]
STAR_RESOURCE_SIDS: Final = {
    "SendTraces",  # X-Ray: no resource-level permissions
    "DescribeNetworkInterfaces",  # EC2 Describe*: no resource-level permissions
}


def role_statements(scenario: str) -> list[dict[str, Json]]:
    """Every statement granted to BridgeRole: inline policies and attached policy resources."""
    resources = created(scenario)
    role = resources["BridgeRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert "PermissionsBoundary" not in role
    statements = [
        statement
        for policy in role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    policy_types = ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    for resource in resources.values():
        attached = resource["Properties"]
        roles = [attached.get("RoleName"), *attached.get("Roles", [])]
        if resource["Type"] in policy_types and "<BridgeRole>" in roles:
            statements.extend(attached["PolicyDocument"]["Statement"])
    return statements


def test_role_is_assumed_by_lambda_only(scenario: str) -> None:
    (trust,) = props(scenario, "BridgeRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_role_grants_exactly_the_allowed_actions_on_exactly_the_allowed_resources(
    scenario: str,
) -> None:
    statements = role_statements(scenario)
    pairs = sorted(
        (tuple(sorted(as_list(statement["Action"]))), resource)
        for statement in statements
        for resource in as_list(statement["Resource"])
    )
    expected = ROLE_PAIRS + (VPC_ROLE_PAIRS if scenario in IN_VPC else [])
    assert pairs == sorted(expected)
    assert all(statement["Effect"] == "Allow" for statement in statements)


def test_role_has_no_wildcard_action_and_star_resources_only_where_aws_requires(
    scenario: str,
) -> None:
    for statement in role_statements(scenario):
        assert all(not action.endswith("*") for action in as_list(statement["Action"]))
        if "*" in as_list(statement["Resource"]):
            assert statement["Sid"] in STAR_RESOURCE_SIDS
            assert as_list(statement["Resource"]) == ["*"]
            assert all(
                action.startswith(("xray:Put", "ec2:Describe"))
                for action in as_list(statement["Action"])
            )


def test_role_uses_the_key_only_through_secrets_manager_and_sqs(scenario: str) -> None:
    kms = {
        statement["Sid"]: statement
        for statement in role_statements(scenario)
        if any(action.startswith("kms:") for action in as_list(statement["Action"]))
    }
    assert kms["DecryptTheSecretThroughSecretsManager"]["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:SecretARN": "<CredentialsSecret>",
        }
    }
    assert kms["EncryptFailedInvocationsThroughSqs"]["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "sqs.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:aws:sqs:arn": "<FailureQueue.Arn>",
        }
    }
    assert len(kms) == 2


def test_network_interface_actions_are_limited_to_the_vpc() -> None:
    (eni,) = [s for s in role_statements("vpc") if s["Sid"] == "ManageNetworkInterfacesInTheVpc"]
    assert eni["Condition"] == {
        "ArnEqualsIfExists": {
            "ec2:Vpc": "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0123456789abcdef0"
        }
    }


# -- the key ---------------------------------------------------------------------------------

CRYPTO_ACTIONS: Final = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt")


def key_statements(scenario: str) -> dict[str, dict[str, Json]]:
    key = props(scenario, "BridgeKey")
    assert key["EnableKeyRotation"] is True
    return {statement["Sid"]: statement for statement in key["KeyPolicy"]["Statement"]}


def test_key_policy_names_who_may_use_the_key(scenario: str) -> None:
    statements = key_statements(scenario)
    expected = {
        "AccountAndAdminsAdministerTheKey",
        "FunctionDecryptsTheSecretThroughSecretsManager",
        "FunctionSendsFailedInvocationsThroughSqs",
        "CloudWatchLogsEncryptsTheStackLogGroups",
        "CloudWatchAlarmsPublishToTheEncryptedTopic",
    }
    if scenario == "options":
        expected.add("AdminsUseTheKeyThroughSecretsManagerAndSqs")
    assert set(statements) == expected
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] != "*"
        assert "kms:*" not in as_list(statement["Action"])


def test_key_administrators_cannot_use_the_key(scenario: str) -> None:
    administer = key_statements(scenario)["AccountAndAdminsAdministerTheKey"]
    admins = ADMINS.split(",") if scenario == "options" else []
    assert as_list(administer["Principal"]["AWS"]) == [ACCOUNT, *admins]
    actions = as_list(administer["Action"])
    assert "kms:PutKeyPolicy" in actions  # no lock-out
    assert "kms:CreateGrant" not in actions
    assert not [a for a in actions if a.startswith(CRYPTO_ACTIONS)]
    assert "Condition" not in administer


def test_the_account_principal_uses_the_key_only_as_the_function_role(scenario: str) -> None:
    for sid, statement in key_statements(scenario).items():
        crypto = [a for a in as_list(statement["Action"]) if a.startswith(CRYPTO_ACTIONS)]
        if crypto and statement["Principal"] == {"AWS": ACCOUNT}:
            assert statement["Condition"]["ArnEquals"] == {
                "aws:PrincipalArn": "<BridgeRole.Arn>"
            }, sid


def test_function_role_uses_the_key_only_through_secrets_manager_and_sqs(scenario: str) -> None:
    statements = key_statements(scenario)
    secret = statements["FunctionDecryptsTheSecretThroughSecretsManager"]
    assert secret["Action"] == "kms:Decrypt"
    assert secret["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": "<BridgeRole.Arn>"},
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:SecretARN": (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/okta_api_creds-??????"
            )
        },
    }
    queue = statements["FunctionSendsFailedInvocationsThroughSqs"]
    assert sorted(queue["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert queue["Condition"]["StringEquals"] == {"kms:ViaService": "sqs.eu-west-1.amazonaws.com"}


def test_admins_use_the_key_only_through_secrets_manager_and_sqs() -> None:
    admins = key_statements("options")["AdminsUseTheKeyThroughSecretsManagerAndSqs"]
    assert admins["Principal"] == {"AWS": ADMINS.split(",")}
    assert admins["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                "secretsmanager.eu-west-1.amazonaws.com",
                "sqs.eu-west-1.amazonaws.com",
            ]
        }
    }


def test_cloudwatch_logs_may_use_the_key_for_the_stack_log_groups_only(scenario: str) -> None:
    logs = key_statements(scenario)["CloudWatchLogsEncryptsTheStackLogGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    groups = [props(scenario, "BridgeLogGroup")["LogGroupName"]]
    if "FlowLogGroup" in created(scenario):
        groups.append(props(scenario, "FlowLogGroup")["LogGroupName"])
    prefix = "arn:aws:logs:eu-west-1:123456789012:log-group:"
    assert logs["Condition"] == {
        "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [prefix + g for g in groups]}
    }


def test_alias_is_the_stack_name() -> None:
    assert props("defaults", "BridgeKeyAlias") == {
        "AliasName": "alias/okta-bridge",
        "TargetKeyId": "<BridgeKey>",
    }


# -- the secret ------------------------------------------------------------------------------------


def test_secret_is_created_without_a_value_and_encrypted_with_the_key(scenario: str) -> None:
    secret = props(scenario, "CredentialsSecret")
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    assert secret["Name"] == "prod/okta_api_creds"
    assert secret["KmsKeyId"] == KEY


def test_secret_policy_denies_non_tls_and_everyone_but_the_named_principals(
    scenario: str,
) -> None:
    policy = props(scenario, "CredentialsSecretPolicy")
    assert policy["SecretId"] == "<CredentialsSecret>"
    assert policy["BlockPublicPolicy"] is True
    tls, others = policy["ResourcePolicy"]["Statement"]
    for deny in (tls, others):
        assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Resource"]) == (
            "Deny",
            "*",
            "secretsmanager:*",
            "*",
        )
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allowed = [
        "<BridgeRole.Arn>",
        ACCOUNT,
        "arn:aws:iam::123456789012:role/okta-bridge-secret-rotation",
    ]
    if scenario == "options":
        allowed += ADMINS.split(",")
    assert others["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": allowed},
        "ForAllValues:StringNotEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"},
    }


# -- alarms and dashboard ----------------------------------------------------------------------

ALARMS: Final = {
    "ErrorRateAlarm": "okta-bridge-error-rate",
    "DurationP99Alarm": "okta-bridge-duration-p99",
    "ThrottlesAlarm": "okta-bridge-throttles",
    "ConcurrencyAnomalyAlarm": "okta-bridge-concurrency-anomaly",
    "FailedInvocationsAlarm": "okta-bridge-failed-async-invocations",
}
FUNCTION_DIMENSION: Final = [{"Name": "FunctionName", "Value": "<BridgeFunction>"}]


def test_alarms_notify_the_encrypted_topic() -> None:
    resources = created("defaults")
    for logical_id, name in ALARMS.items():
        alarm = resources[logical_id]["Properties"]
        assert alarm["AlarmName"] == name
        assert alarm["AlarmActions"] == ["<AlarmTopic>"]
        assert alarm["OKActions"] == ["<AlarmTopic>"]
    assert props("defaults", "AlarmTopic")["KmsMasterKeyId"] == KEY
    statements = props("defaults", "AlarmTopicPolicy")["PolicyDocument"]["Statement"]
    publish, tls = statements
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert tls["Effect"] == "Deny"
    assert props("options", "AlarmEmailSubscription") == {
        "TopicArn": "<AlarmTopic>",
        "Protocol": "email",
        "Endpoint": "platform-oncall@yourcompany.com",
    }


def test_error_rate_alarm_counts_lambda_errors_and_the_bridges_5xx_answers() -> None:
    alarm = props("defaults", "ErrorRateAlarm")
    metrics = {metric["Id"]: metric for metric in alarm["Metrics"]}
    assert metrics["errors"]["MetricStat"]["Metric"] == {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": FUNCTION_DIMENSION,
    }
    assert metrics["invocations"]["MetricStat"]["Metric"]["MetricName"] == "Invocations"
    assert metrics["invocations"]["MetricStat"]["Metric"]["Dimensions"] == FUNCTION_DIMENSION
    assert metrics["answered"]["MetricStat"]["Metric"] == {
        "Namespace": "okta-bridge/okta-bridge",
        "MetricName": "FailedInvocations",
    }
    bridge_filter = props("defaults", "BridgeFailureMetricFilter")
    assert bridge_filter["FilterPattern"] == (
        '{ $.message = "invocation failed" && $.level = "ERROR" }'
    )
    assert bridge_filter["MetricTransformations"][0]["MetricName"] == "FailedInvocations"
    rate = metrics["error_rate"]
    assert rate["Expression"] == (
        "IF(invocations > 0, 100 * (errors + FILL(answered, 0)) / invocations, 0)"
    )
    assert [m["Id"] for m in alarm["Metrics"] if m["ReturnData"]] == ["error_rate"]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 1)


def test_duration_throttle_and_concurrency_alarms() -> None:
    duration = props("defaults", "DurationP99Alarm")
    assert (duration["MetricName"], duration["ExtendedStatistic"]) == ("Duration", "p99")
    assert (duration["ComparisonOperator"], duration["Threshold"]) == ("GreaterThanThreshold", 5000)
    assert duration["Dimensions"] == FUNCTION_DIMENSION
    throttles = props("defaults", "ThrottlesAlarm")
    assert (throttles["MetricName"], throttles["Statistic"]) == ("Throttles", "Sum")
    assert (throttles["ComparisonOperator"], throttles["Threshold"]) == ("GreaterThanThreshold", 0)
    anomaly = props("defaults", "ConcurrencyAnomalyAlarm")
    metrics = {metric["Id"]: metric for metric in anomaly["Metrics"]}
    assert metrics["concurrency"]["MetricStat"]["Metric"] == {
        "Namespace": "AWS/Lambda",
        "MetricName": "ConcurrentExecutions",
        "Dimensions": FUNCTION_DIMENSION,
    }
    assert metrics["band"]["Expression"].startswith("ANOMALY_DETECTION_BAND(concurrency,")
    assert anomaly["ThresholdMetricId"] == "band"
    assert anomaly["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    detector = props("defaults", "ConcurrencyAnomalyDetector")["SingleMetricAnomalyDetector"]
    assert detector == {
        "Namespace": "AWS/Lambda",
        "MetricName": "ConcurrentExecutions",
        "Dimensions": FUNCTION_DIMENSION,
        "Stat": metrics["concurrency"]["MetricStat"]["Stat"],
    }


def test_dashboard_shows_invocations_errors_duration_throttles_and_the_alarms() -> None:
    dashboard = props("defaults", "BridgeDashboard")
    assert dashboard["DashboardName"] == "okta-bridge-eu-west-1"
    body = json.loads(dashboard["DashboardBody"])
    series = [
        (
            metric[1] if metric[0] != "..." else "Duration",
            *[option["stat"] for option in metric if isinstance(option, dict) and "stat" in option],
        )
        for widget in body["widgets"]
        for metric in widget["properties"].get("metrics", [])
    ]
    assert series == [
        ("Invocations",),
        ("Errors",),
        ("Duration", "p50"),
        ("Duration", "p99"),
        ("Throttles",),
        ("ConcurrentExecutions",),
    ]
    assert all("<BridgeFunction>" in json.dumps(widget) for widget in body["widgets"][:4])
    (alarms,) = [w["properties"]["alarms"] for w in body["widgets"] if w["type"] == "alarm"]
    prefix = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:"
    assert alarms == [prefix + name for name in ALARMS.values()]


# -- network -----------------------------------------------------------------------------------

SG_PLACEHOLDER: Final = {
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
    "CidrIp": "255.255.255.255/32",
    "Description": "Matches no traffic; replaces the default allow-all egress rule",
}
EGRESS: Final[dict[str, set[tuple[int, str]]]] = {
    "vpc": {(443, "0.0.0.0/0")},
    "vpc-locked-down": {
        (443, "198.51.100.0/24"),
        (443, "203.0.113.0/24"),
        (443, "10.20.0.0/16"),
        (443, "<SecretsManagerEndpointSecurityGroup>"),
    },
    "peering": {(443, "0.0.0.0/0"), (443, "10.20.0.0/16"), (443, "10.30.0.0/16")},
    "peering-full-lists": {
        *{(443, cidr) for cidr in FULL_LISTS["CorporateCidrs"].split(",")},
        *{(443, cidr) for cidr in FULL_LISTS["OktaCidrs"].split(",")},
        (443, "<SecretsManagerEndpointSecurityGroup>"),
    },
    "transit-gateway": {
        (443, "0.0.0.0/0"),
        *{(443, f"10.{n}.0.0/16") for n in (20, 30, 40, 50)},
    },
    "relay": {(3128, "<RelaySecurityGroup>"), (443, "<SecretsManagerEndpointSecurityGroup>")},
    "relay-explicit": {(3128, "<RelaySecurityGroup>")},
    "site-to-site-vpn": {
        (443, "0.0.0.0/0"),
        *{(443, f"10.{n}.0.0/16") for n in (20, 30, 40, 50)},
        (443, "<SecretsManagerEndpointSecurityGroup>"),
    },
}


def test_function_security_group_allows_only_the_listed_egress(scenario: str) -> None:
    if scenario not in IN_VPC:
        assert "BridgeSecurityGroup" not in created(scenario)
        return
    group = props(scenario, "BridgeSecurityGroup")
    assert group["VpcId"] == "vpc-0123456789abcdef0"
    assert "SecurityGroupIngress" not in group
    assert group["SecurityGroupEgress"] == [SG_PLACEHOLDER]
    rules = [
        r["Properties"]
        for r in created(scenario).values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress"
    ]
    assert all(r["GroupId"] == "<BridgeSecurityGroup>" for r in rules)
    assert all(r["IpProtocol"] == "tcp" and r["FromPort"] == r["ToPort"] for r in rules)
    assert all(r.get("Description") for r in rules)
    egress = [(r["FromPort"], r.get("CidrIp", r.get("DestinationSecurityGroupId"))) for r in rules]
    assert len(egress) == len(set(egress))
    assert set(egress) == EGRESS[scenario]


def test_secrets_manager_endpoint_is_private_and_for_the_function_only() -> None:
    endpoint = props("vpc-locked-down", "SecretsManagerEndpoint")
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.secretsmanager"
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["SubnetIds"] == ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"]
    assert endpoint["SecurityGroupIds"] == ["<SecretsManagerEndpointSecurityGroup>"]
    (statement,) = endpoint["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "secretsmanager:GetSecretValue",
        "<CredentialsSecret>",
    )
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": "<BridgeRole.Arn>"}}
    group = props("vpc-locked-down", "SecretsManagerEndpointSecurityGroup")
    (ingress,) = group["SecurityGroupIngress"]
    assert (ingress["FromPort"], ingress["SourceSecurityGroupId"]) == (443, "<BridgeSecurityGroup>")
    assert group["SecurityGroupEgress"] == [SG_PLACEHOLDER]


def test_flow_logs_go_to_an_encrypted_log_group_with_their_own_role() -> None:
    resources = created("vpc-locked-down")
    flow = resources["VpcFlowLog"]["Properties"]
    assert (flow["ResourceType"], flow["ResourceId"]) == ("VPC", "vpc-0123456789abcdef0")
    assert flow["LogGroupName"] == "<FlowLogGroup>"
    assert flow["DeliverLogsPermissionArn"] == "<FlowLogRole.Arn>"
    group = resources["FlowLogGroup"]["Properties"]
    assert group["KmsKeyId"] == KEY
    assert group["RetentionInDays"] == "90"
    role = resources["FlowLogRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    (policy,) = role["Policies"]
    assert [s["Resource"] for s in policy["PolicyDocument"]["Statement"]] == ["<FlowLogGroup.Arn>"]
    assert "ManagedPolicyArns" not in role


ROUTES: Final[dict[str, set[tuple[str, str, str]]]] = {
    "peering": {
        (table, cidr, "pcx-0123456789abcdef0")
        for table in ("rtb-0aaa1111bbbb2222c", "rtb-0ddd3333eeee4444f")
        for cidr in ("10.20.0.0/16", "10.30.0.0/16")
    },
    "peering-full-lists": {
        (table, cidr, "pcx-0123456789abcdef0")
        for table in FULL_LISTS["RouteTableIds"].split(",")
        for cidr in FULL_LISTS["CorporateCidrs"].split(",")
    },
    "transit-gateway": {
        ("rtb-0aaa1111bbbb2222c", f"10.{n}.0.0/16", "tgw-0123456789abcdef0")
        for n in (20, 30, 40, 50)
    },
}


def test_routes_send_corporate_cidrs_to_the_peering_or_transit_gateway(scenario: str) -> None:
    routes = [r["Properties"] for r in created(scenario).values() if r["Type"] == "AWS::EC2::Route"]
    found = set()
    for route in routes:
        targets = [route[k] for k in ("VpcPeeringConnectionId", "TransitGatewayId") if k in route]
        assert len(targets) == 1
        found.add((route["RouteTableId"], route["DestinationCidrBlock"], targets[0]))
    assert len(found) == len(routes)
    assert found == ROUTES.get(scenario, set())


def test_relay_is_a_private_ssm_only_connect_proxy() -> None:
    resources = created("relay")
    instance = resources["RelayInstance"]["Properties"]
    assert "KeyName" not in instance
    assert instance["ImageId"] == (
        "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64}}"
    )
    assert instance["InstanceType"] == "t4g.small"
    assert instance["IamInstanceProfile"] == "<RelayInstanceProfile>"
    (nic,) = instance["NetworkInterfaces"]
    assert nic["AssociatePublicIpAddress"] is False
    assert nic["SubnetId"] == "subnet-0bbb5555cccc6666d"
    assert nic["GroupSet"] == ["<RelaySecurityGroup>"]
    assert instance["LaunchTemplate"]["LaunchTemplateId"] == "<RelayLaunchTemplate>"
    template = resources["RelayLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert template["MetadataOptions"]["HttpTokens"] == "required"
    assert all(d["Ebs"]["Encrypted"] is True for d in template["BlockDeviceMappings"])
    role = resources["RelayRole"]["Properties"]
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    assert "Policies" not in role
    assert resources["RelayInstanceProfile"]["Properties"]["Roles"] == ["<RelayRole>"]
    group = resources["RelaySecurityGroup"]["Properties"]
    (ingress,) = group["SecurityGroupIngress"]
    assert ingress == {
        "IpProtocol": "tcp",
        "FromPort": 3128,
        "ToPort": 3128,
        "SourceSecurityGroupId": "<BridgeSecurityGroup>",
        "Description": "CONNECT proxy, from the okta-bridge function only",
    }
    assert {
        (e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in group["SecurityGroupEgress"]
    } == {
        ("tcp", 443, 443),
        ("udp", 443, 443),
    }
    squid = instance["UserData"]
    assert "dnf install -y squid" in squid
    for line in (
        "http_port 3128",
        "acl tls_port port 443",
        "http_access deny !CONNECT",
        "http_access deny !tls_port",
        "http_access deny link_local",
        "http_access deny all",
    ):
        assert re.search(rf"^\s*{re.escape(line)}$", squid, re.MULTILINE), line


def test_relay_ami_can_be_pinned() -> None:
    instance = props("relay-explicit", "RelayInstance")
    assert instance["ImageId"] == "ami-0123456789abcdef0"
    assert instance["InstanceType"] == "t3.small"


def test_site_to_site_vpn_routes_corporate_cidrs_and_propagates_them() -> None:
    resources = created("site-to-site-vpn")
    gateway = resources["CustomerGateway"]["Properties"]
    assert (gateway["Type"], gateway["IpAddress"], gateway["BgpAsn"]) == (
        "ipsec.1",
        "203.0.113.10",
        "65010",
    )
    assert resources["VpnGatewayAttachment"]["Properties"] == {
        "VpcId": "vpc-0123456789abcdef0",
        "VpnGatewayId": "<VpnGateway>",
    }
    connection = resources["VpnConnection"]["Properties"]
    assert connection["StaticRoutesOnly"] is True
    assert (connection["CustomerGatewayId"], connection["VpnGatewayId"]) == (
        "<CustomerGateway>",
        "<VpnGateway>",
    )
    static = {
        r["Properties"]["DestinationCidrBlock"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPNConnectionRoute"
    }
    assert static == set(FULL_LISTS["CorporateCidrs"].split(","))
    propagation = resources["VpnRoutePropagation"]
    assert propagation["DependsOn"] == "VpnGatewayAttachment"
    assert propagation["Properties"]["RouteTableIds"] == [
        "rtb-0aaa1111bbbb2222c",
        "rtb-0ddd3333eeee4444f",
    ]

"""template.yaml: translated with aws-sam-translator and evaluated for every scenario.

The scenarios (conftest.SCENARIOS) are the default deployment, every optional setting, and each
network mode. Resource references stay symbolic: ``"<X>"`` is ``Ref X``, ``"<X.Y>"`` is
``GetAtt X.Y``; the stack is ``okta-bridge`` in account 123456789012, region eu-west-1.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Final

import pytest

from okta_bridge_dev.release import template as steps
from tests.support.cfn import Evaluator, Json, parameter_errors, parameter_values
from tests.support.policies import as_list, denied

from .conftest import (
    ADMINS,
    CALLER_ROUTES,
    DEPLOYERS,
    FULL_LISTS,
    SCENARIOS,
    _translated,
    evaluator,
)
from .test_kms_signing import KMS_ENDPOINT, KMS_SIGNING
from .test_token_cache import TOKEN_CACHE, TOKEN_CACHE_NETWORK, TOKEN_CACHE_OUTPUTS

ACCOUNT: Final = "arn:aws:iam::123456789012:root"
KEY: Final = "<BridgeKey.Arn>"

# -- the deployment contract -------------------------------------------------------------------

CONTRACT_PARAMETERS: Final = {
    "SecretName": "prod/okta_api_creds",
    "RotationDays": "90",
    "Architecture": "arm64",
    "MemorySize": "256",
    "Timeout": "30",
    "ReservedConcurrency": "10",
    "LogRetentionDays": "90",
    "LogLevel": "INFO",
    "MetricsNamespace": "OktaBridge",
    "Tracing": "off",
    "LatencyAlarmMs": "1000",
    "Scopes": "api.access",
    "AllowedPaths": "",
    "AllowedQuery": "",
    "CallerRoutes": "",
    "AllowAnonymousProxy": "off",
    "FunctionUrl": "off",
    "Diagnose": "on",
    "TokenBudgetPerMinute": "10",
    "Dpop": "auto",
    "TokenUrl": "",
    "ApiBaseUrl": "",
    "CaBundleFile": "",
    "ApiPins": "",
    "HttpsProxy": "",
    "NoProxy": "",
    "AlarmEmail": "",
    "CodeSigningProfileVersionArn": "",
    "AdminPrincipalArns": "",
    "DeployerPrincipalArns": "",
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
    "RelayAllowedDomains": "",
    "RelayInstanceType": "t4g.small",
    "RelayAmiParameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    "CustomerGatewayIp": "",
    "CustomerGatewayBgpAsn": "65000",
    "EnableFlowLogs": "false",
    "ConsumerRoleArns": "",
    "ConsumerBucketArns": "",
    # issue 15: routes with methods, whole collections, large answers through S3
    "AllowedRoutes": "",
    "NextLink": "",
    "MaxPages": "100",
    "DeliveryUrlSeconds": "300",
    "MaxDeliveryBytes": "1000000000",
    "CreateS3Endpoint": "false",
    "S3PrefixListId": "",
    # issue 16: client assertions signed in KMS (tests/template/test_kms_signing.py)
    "KmsSigningKeySpec": "none",
    "KmsKeyDeletionDays": "30",
    "CreateKmsEndpoint": "false",
    # issue 20: the shared token cache (tests/template/test_token_cache.py)
    "TokenCache": "off",
    "TokenCacheLeaseSeconds": "5",
    "CreateDynamoDbEndpoint": "false",
    "DynamoDbPrefixListId": "",
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
    "RotationFunctionName": "<RotationFunction>",
    "AdminSecretArn": "<AdminSecret>",
    "AdminSecretName": "prod/okta_api_creds-admin",
    "LayerArn": "<BridgeLayer>",  # SAM names each version BridgeLayer<hash>: see layer_version
    "ConsumerPolicyArn": "<ConsumerPolicy>",
    "DeliveryBucketName": "<DeliveryBucket>",
}
OPTIONAL_OUTPUTS: Final = {"FunctionUrl": "<BridgeFunctionUrl.FunctionUrl>"}
KMS_OUTPUTS: Final = {"KmsSigningKeyArn", "KmsPublicJwk"}  # test_kms_signing.py

# -- which resources each scenario creates -----------------------------------------------------

ALWAYS: Final = frozenset(
    {
        "BridgeKey",
        "BridgeKeyAlias",
        "CredentialsSecret",
        "CredentialsSecretPolicy",
        "AdminSecret",
        "AdminSecretPolicy",
        "BridgeRole",
        "BridgeRolePolicy",
        "BridgeLogGroup",
        "BridgeFunction",
        "BridgeFunctionEventInvokeConfig",
        "FailureQueue",
        "FailureQueuePolicy",
        "RotationRole",
        "RotationRolePolicy",
        "RotationLogGroup",
        "RotationFunction",
        "RotationPermission",
        "RotationSchedule",
        "AlarmTopic",
        "AlarmTopicPolicy",
        "BridgeFailureMetricFilter",
        "ErrorRateAlarm",
        "DurationP99Alarm",
        "ThrottlesAlarm",
        "ConcurrencyAnomalyDetector",
        "ConcurrencyAnomalyAlarm",
        "FailedInvocationsAlarm",
        "RotationFailedAlarm",
        "TokenFailuresAlarm",
        "Upstream5xxRateAlarm",
        "UpstreamLatencyAlarm",
        "BridgeDashboard",
        "ErrorsByCodeQuery",
        "SlowInvocationsQuery",
        "TokenRequestsQuery",
        "RotationsQuery",
        "MonthlyAuditQuery",
        "BridgeLayer",  # BridgeLayer<hash> once translated: see layer_version
        "ConsumerPolicy",
        "DeliveryBucket",
        "DeliveryBucketPolicy",
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
    "options": {"BridgeCodeSigningConfig", "AlarmEmailSubscription", "BridgeFunctionUrl"},
    "vpc": {"BridgeSecurityGroup", "BridgeHttpsToAnyAddress"},
    "vpc-s3-endpoint": {
        "BridgeSecurityGroup",
        "BridgeHttpsToOktaCidr1",
        *ENDPOINT,
        "S3Endpoint",
        "BridgeHttpsToS3",
    },
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


def layer_version(name: Json) -> Json:
    """``BridgeLayer<hash>`` (SAM's logical id of one layer version, ``<...>`` when a reference)
    as ``BridgeLayer``: the hash changes with the content and the architecture."""
    if isinstance(name, str):
        return re.sub(r"^(<?)BridgeLayer[0-9a-f]{10}\b", r"\1BridgeLayer", name)
    return name


def props(scenario: str, logical_id: str) -> dict[str, Json]:
    properties: dict[str, Json] = created(scenario)[logical_id]["Properties"]
    return properties


# -- the template as written ---------------------------------------------------------------


def test_parameters_are_exactly_the_contract_with_its_defaults(template: dict[str, Json]) -> None:
    declared = template["Parameters"]
    assert {name: str(spec.get("Default")) for name, spec in declared.items()} == (
        CONTRACT_PARAMETERS
    )


def test_outputs_are_exactly_the_contract(template: dict[str, Json]) -> None:
    assert set(template["Outputs"]) == (
        set(CONTRACT_OUTPUTS) | set(OPTIONAL_OUTPUTS) | KMS_OUTPUTS | TOKEN_CACHE_OUTPUTS
    )
    defaults, options = (
        {key: layer_version(value) for key, value in evaluator(name).outputs().items()}
        for name in ("defaults", "options")
    )
    assert defaults == CONTRACT_OUTPUTS
    assert options == {**CONTRACT_OUTPUTS, **OPTIONAL_OUTPUTS}


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
        ({"RotationDays": "0"}, 1),
        ({"RotationDays": "1001"}, 1),
        ({"SecretName": "s" * 507}, 1),  # <SecretName>-admin would exceed 512 characters
        ({"RotationDays": "1000", "SecretName": "s" * 506}, 0),
        ({"MetricsNamespace": "AWS/Lambda"}, 1),  # AWS's own namespaces
        ({"MetricsNamespace": "Okta Bridge"}, 1),  # the bridge refuses spaces
        ({"MetricsNamespace": ":OktaBridge"}, 1),
        ({"MetricsNamespace": "n" * 256}, 1),
        ({"MetricsNamespace": "Corp/Okta-Bridge_1.prod#eu:west", "LatencyAlarmMs": "1"}, 0),
        ({"Tracing": "true"}, 1),
        ({"LatencyAlarmMs": "0"}, 1),
        (FULL_LISTS, 0),
        ({"AdminPrincipalArns": ADMINS}, 0),
        ({"DeployerPrincipalArns": f"{DEPLOYERS},{ADMINS}"}, 0),
        ({"DeployerPrincipalArns": "arn:aws:iam::123456789012:root"}, 1),
        ({"DeployerPrincipalArns": "*"}, 1),
        ({"FunctionUrl": "NONE"}, 1),  # never a public URL
        ({"FunctionUrl": "AWS_IAM", "AllowAnonymousProxy": "on", "Diagnose": "off"}, 0),
        ({"AllowAnonymousProxy": "true"}, 1),
        ({"Diagnose": "false"}, 1),
        ({"TokenBudgetPerMinute": "0"}, 1),
        ({"TokenBudgetPerMinute": "601"}, 1),
        ({"TokenBudgetPerMinute": "600"}, 0),
        ({"AllowedQuery": "page,limit", "CallerRoutes": CALLER_ROUTES}, 0),
        ({"AllowedQuery": "page, limit"}, 1),
        ({"CallerRoutes": "reporting=/v1/reports/*"}, 1),  # not a JSON object
        ({"RelayAllowedDomains": ".okta.com,internal-api.yourcompany.com,xn--80ak6aa92e.com"}, 0),
        ({"RelayAllowedDomains": "10.20.30.40"}, 1),  # an IP address is no domain
        ({"RelayAllowedDomains": ".okta.com, api.corp.example"}, 1),
        ({"RelayAllowedDomains": "*.okta.com"}, 1),
        ({"RelayAllowedDomains": "api.corp.example\nhttp_access allow all"}, 1),
        ({"RelayAllowedDomains": "api.corp.example;reboot"}, 1),
        ({"RelayAllowedDomains": "[::1]"}, 1),
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
        (
            {"CorporateNetwork": "relay"},
            ["NetworkOptionsNeedAVpc", "RelayParameters", "RelayParameters"],
        ),
        (
            {
                "VpcId": "vpc-0123456789abcdef0",
                "SubnetIds": "subnet-0aaa1111bbbb2222c",
                "CorporateNetwork": "relay",
                "RelaySubnetId": "subnet-0bbb5555cccc6666d",
                "CreateSecretsManagerEndpoint": "true",
            },
            ["RelayParameters"],  # RelayAllowedDomains is required
        ),
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


TEMPLATE_URL_LIMIT: Final = 1_000_000
"""CloudFormation's limit for a template passed by ``TemplateURL`` (an S3 object)."""


@pytest.mark.parametrize("scenario_name", ["defaults", "options"])
def test_the_translated_template_is_uploaded_and_fits_a_template_url(scenario_name: str) -> None:
    """Over the 51,200-byte TemplateBody limit, so ``make deploy`` uploads it to the artifact
    bucket (tests/deploy covers that path); far under the 1,000,000 bytes of a TemplateURL.
    """
    body = steps.template_json(_translated(scenario_name)).encode()
    assert steps.TEMPLATE_BODY_LIMIT == 51_200
    assert steps.TEMPLATE_BODY_LIMIT < len(body) < TEMPLATE_URL_LIMIT


# -- which resources exist -----------------------------------------------------------------------


def test_each_scenario_creates_exactly_its_resources(scenario: str) -> None:
    assert {layer_version(name) for name in created(scenario)} == ALWAYS | OPTIONAL[scenario]


def test_every_optional_resource_is_created_by_some_scenario() -> None:
    template = _translated("defaults")
    conditional = {
        name for name, resource in template["Resources"].items() if "Condition" in resource
    }
    assert conditional == set().union(
        *OPTIONAL.values(), KMS_SIGNING, KMS_ENDPOINT, TOKEN_CACHE, TOKEN_CACHE_NETWORK
    )
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
    "BRIDGE_METRICS_NAMESPACE": "OktaBridge",
    "BRIDGE_TRACING": "off",
    "BRIDGE_DPOP": "auto",
    # The switches and the number are always set; the empty lists are left out.
    "BRIDGE_ALLOW_ANONYMOUS_PROXY": "off",
    "BRIDGE_DIAGNOSE": "on",
    "BRIDGE_TOKEN_BUDGET_PER_MINUTE": "10",
    # Whole collections and large answers: always set (the bucket is always created).
    "BRIDGE_MAX_PAGES": "100",
    "BRIDGE_DELIVERY_BUCKET": "<DeliveryBucket>",
    "BRIDGE_DELIVERY_PREFIX": "okta-bridge/",
    "BRIDGE_DELIVERY_KMS_KEY": KEY,
    "BRIDGE_DELIVERY_URL_SECONDS": "300",
    "BRIDGE_MAX_DELIVERY_BYTES": "1000000000",
}
ENVIRONMENT: Final[dict[str, dict[str, str]]] = {
    "options": {
        "BRIDGE_SECRET_ID": "<CredentialsSecret>",
        "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_METRICS_NAMESPACE": "Corp/OktaBridge-prod",
        "BRIDGE_TRACING": "on",
        "BRIDGE_DPOP": "on",
        "BRIDGE_ALLOW_ANONYMOUS_PROXY": "off",
        "BRIDGE_DIAGNOSE": "off",
        "BRIDGE_TOKEN_BUDGET_PER_MINUTE": "30",
        "BRIDGE_ALLOWED_ROUTES": (
            "GET /v1/items/**, POST /v1/search, POST /v1/orders idempotency-key"
        ),
        "BRIDGE_NEXT_LINK": "/links/next",
        "BRIDGE_MAX_PAGES": "20",
        "BRIDGE_DELIVERY_BUCKET": "<DeliveryBucket>",
        "BRIDGE_DELIVERY_PREFIX": "okta-bridge/",
        "BRIDGE_DELIVERY_KMS_KEY": KEY,
        "BRIDGE_DELIVERY_URL_SECONDS": "900",
        "BRIDGE_MAX_DELIVERY_BYTES": "200000000",
        "BRIDGE_ALLOWED_QUERY": "page,limit",
        "BRIDGE_CALLER_ROUTES": CALLER_ROUTES,
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


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"AllowAnonymousProxy": "on"}, {"BRIDGE_ALLOW_ANONYMOUS_PROXY": "on"}),
        ({"Diagnose": "off"}, {"BRIDGE_DIAGNOSE": "off"}),
        ({"TokenBudgetPerMinute": "600"}, {"BRIDGE_TOKEN_BUDGET_PER_MINUTE": "600"}),
        ({"AllowedQuery": "page"}, {"BRIDGE_ALLOWED_QUERY": "page"}),
        ({"CallerRoutes": CALLER_ROUTES}, {"BRIDGE_CALLER_ROUTES": CALLER_ROUTES}),
        ({"AllowedRoutes": "POST /graphql"}, {"BRIDGE_ALLOWED_ROUTES": "POST /graphql"}),
        ({"NextLink": "/next"}, {"BRIDGE_NEXT_LINK": "/next"}),
        ({"MaxPages": "10000"}, {"BRIDGE_MAX_PAGES": "10000"}),
        ({"DeliveryUrlSeconds": "3600"}, {"BRIDGE_DELIVERY_URL_SECONDS": "3600"}),
        ({"MaxDeliveryBytes": "5000000000"}, {"BRIDGE_MAX_DELIVERY_BYTES": "5000000000"}),
    ],
)
def test_each_access_parameter_sets_its_bridge_variable(
    values: dict[str, str], expected: dict[str, str]
) -> None:
    """Each parameter reaches its own variable, and only the bridge's (not the rotation's)."""
    translated = _translated("defaults")
    resources = Evaluator(translated, parameter_values(translated, values)).resources()
    variables = resources["BridgeFunction"]["Properties"]["Environment"]["Variables"]
    assert variables == {**BASE_ENVIRONMENT, **expected}
    rotation = resources["RotationFunction"]["Properties"]["Environment"]["Variables"]
    assert not set(expected) & set(rotation)


@pytest.mark.parametrize("mode", ["auto", "on", "off"])
def test_dpop_reaches_both_functions(mode: str) -> None:
    translated = _translated("defaults")
    resources = Evaluator(translated, parameter_values(translated, {"Dpop": mode})).resources()
    for name in ("BridgeFunction", "RotationFunction"):
        assert resources[name]["Properties"]["Environment"]["Variables"]["BRIDGE_DPOP"] == mode


# -- the Function URL ----------------------------------------------------------------------------


def test_the_function_url_parameter_never_allows_a_public_url(template: dict[str, Json]) -> None:
    spec = template["Parameters"]["FunctionUrl"]
    assert (spec["Default"], spec["AllowedValues"]) == ("off", ["off", "AWS_IAM"])
    resource = template["Resources"]["BridgeFunctionUrl"]
    assert resource["Condition"] == "HasFunctionUrl"
    assert resource["Properties"]["AuthType"] == "AWS_IAM"  # written out, not a parameter


def test_no_function_url_by_default(scenario: str) -> None:
    urls = [r for r in created(scenario).values() if r["Type"] == "AWS::Lambda::Url"]
    if scenario != "options":
        assert urls == []
        assert "FunctionUrl" not in evaluator(scenario).outputs()


def test_function_url_takes_only_iam_signed_requests() -> None:
    resources = created("options")
    (url,) = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Url"]
    assert resources[url]["Properties"] == {
        "TargetFunctionArn": "<BridgeFunction.Arn>",
        "AuthType": "AWS_IAM",
        "InvokeMode": "BUFFERED",
    }
    assert evaluator("options").outputs()["FunctionUrl"] == "<BridgeFunctionUrl.FunctionUrl>"


def test_nothing_lets_anyone_invoke_the_functions(scenario: str) -> None:
    """No resource-based permission for "*" and none for the Function URL: callers are granted
    by their own IAM policies. The only permission is Secrets Manager's, on the rotation.
    """
    resources = created(scenario)
    permissions = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Permission"
    }
    assert set(permissions) == {"RotationPermission"}
    for permission in permissions.values():
        assert permission["Principal"] != "*"
        assert "FunctionUrlAuthType" not in permission
        assert permission["Action"] == "lambda:InvokeFunction"
    for statement in policy_statements(resources):
        if statement["Effect"] == "Allow" and statement.get("Principal") == "*":
            actions = as_list(statement.get("Action", []))
            assert not [a for a in actions if a.startswith("lambda:")], statement


def policy_statements(value: Json) -> list[dict[str, Json]]:
    """Every policy statement anywhere in ``value`` (a dict with an Effect)."""
    if isinstance(value, list):
        return [s for item in value for s in policy_statements(item)]
    if not isinstance(value, dict):
        return []
    found = [value] if "Effect" in value else []
    return found + [s for item in value.values() for s in policy_statements(item)]


def test_failed_async_invocations_go_to_the_encrypted_failure_queue(scenario: str) -> None:
    invoke = props(scenario, "BridgeFunctionEventInvokeConfig")
    assert invoke["FunctionName"] == "<BridgeFunction>"
    assert invoke["Qualifier"] == "$LATEST"
    assert invoke["DestinationConfig"] == {"OnFailure": {"Destination": "<FailureQueue.Arn>"}}
    assert props(scenario, "FailureQueue")["KmsMasterKeyId"] == KEY
    (deny,) = props(scenario, "FailureQueuePolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("logical_id", "name"),
    [("BridgeLogGroup", "okta-bridge-bridge"), ("RotationLogGroup", "okta-bridge-rotation")],
)
def test_log_groups_are_encrypted_with_retention(scenario: str, logical_id: str, name: str) -> None:
    values = parameter_values(_translated(scenario), SCENARIOS[scenario])
    assert props(scenario, logical_id) == {
        "LogGroupName": f"/aws/lambda/{name}",
        "RetentionInDays": values["LogRetentionDays"],
        "KmsKeyId": KEY,
    }


# -- the rotation ----------------------------------------------------------------------------

SHARED_SETTINGS: Final = (
    "Code",
    "Runtime",
    "Architectures",
    "TracingConfig",
    "CodeSigningConfigArn",
    "VpcConfig",
)
BRIDGE_ONLY_VARIABLES: Final = (
    "BRIDGE_ALLOWED_PATHS",
    "BRIDGE_ALLOWED_QUERY",
    "BRIDGE_CALLER_ROUTES",
    "BRIDGE_ALLOW_ANONYMOUS_PROXY",
    "BRIDGE_DIAGNOSE",
    "BRIDGE_TOKEN_BUDGET_PER_MINUTE",
    "BRIDGE_API_BASE_URL",
    "BRIDGE_API_PINS",
    "BRIDGE_TRACING",
    "BRIDGE_ALLOWED_ROUTES",
    "BRIDGE_NEXT_LINK",
    "BRIDGE_MAX_PAGES",
    "BRIDGE_DELIVERY_BUCKET",
    "BRIDGE_DELIVERY_PREFIX",
    "BRIDGE_DELIVERY_KMS_KEY",
    "BRIDGE_DELIVERY_URL_SECONDS",
    "BRIDGE_MAX_DELIVERY_BYTES",
)


def test_rotation_function_shares_the_bridges_code_runtime_network_and_tracing(
    scenario: str,
) -> None:
    function = created(scenario)["RotationFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["DependsOn"] == "RotationRolePolicy"
    p = function["Properties"]
    bridge = props(scenario, "BridgeFunction")
    assert {k: p.get(k) for k in SHARED_SETTINGS} == {k: bridge.get(k) for k in SHARED_SETTINGS}
    assert p["Handler"] == "okta_bridge.rotation.handler.lambda_handler"
    assert p["Role"] == "<RotationRole.Arn>"
    assert (p["MemorySize"], p["Timeout"], p["ReservedConcurrentExecutions"]) == (256, 120, 2)
    assert p["LoggingConfig"] == {
        **bridge["LoggingConfig"],
        "LogGroup": "<RotationLogGroup>",
    }
    assert "DeadLetterConfig" not in p  # Secrets Manager invokes it synchronously
    assert "RotationFunctionEventInvokeConfig" not in created(scenario)


def test_rotation_function_reaches_okta_as_the_bridge_does(scenario: str) -> None:
    """The same token URL, scopes, CA bundle and proxy (testSecret requests a token), both
    secrets' ARNs, and none of the bridge's API settings.
    """
    variables = props(scenario, "RotationFunction")["Environment"]["Variables"]
    bridge = ENVIRONMENT.get(scenario, BASE_ENVIRONMENT)
    assert variables == {
        **{k: v for k, v in bridge.items() if k not in BRIDGE_ONLY_VARIABLES},
        "BRIDGE_ADMIN_SECRET_ID": "<AdminSecret>",
    }
    if scenario == "options":
        assert variables["BRIDGE_CA_BUNDLE"] == "/var/task/certs/corp-root.pem"
        assert variables["HTTPS_PROXY"] == "http://proxy.yourcompany.com:443"
    if scenario == "relay":
        assert variables["HTTPS_PROXY"] == "http://<RelayInstance.PrivateIp>:3128"
        assert variables["NO_PROXY"] == "secretsmanager.eu-west-1.amazonaws.com"


def test_only_secrets_manager_of_this_account_invokes_the_rotation_function() -> None:
    assert props("defaults", "RotationPermission") == {
        "FunctionName": "<RotationFunction.Arn>",
        "Action": "lambda:InvokeFunction",
        "Principal": "secretsmanager.amazonaws.com",
        "SourceAccount": "123456789012",
    }


@pytest.mark.parametrize("days", ["90", "30"])
def test_the_schedule_rotates_the_credentials_every_rotation_days_never_at_deploy(
    template: dict[str, Json], days: str
) -> None:
    translated = _translated("defaults")
    values = parameter_values(translated, {"RotationDays": days})
    schedule = Evaluator(translated, values).resources()["RotationSchedule"]
    assert schedule["DependsOn"] == "RotationPermission"
    assert schedule["Properties"] == {
        "SecretId": "<CredentialsSecret>",
        "RotationLambdaARN": "<RotationFunction.Arn>",
        "RotateImmediatelyOnUpdate": False,  # the secret is empty until `make secret`
        "RotationRules": {"AutomaticallyAfterDays": days},
    }
    assert template["Parameters"]["RotationDays"] == {
        "Type": "Number",
        "Default": 90,
        "MinValue": 1,
        "MaxValue": 1000,
        "Description": (
            "Days between automatic rotations of the Okta credentials (Secrets Manager schedule)"
        ),
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
    # issue 15: objects under the delivery prefix, and the key through S3 for that bucket
    (
        ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"),
        "<DeliveryBucket.Arn>/okta-bridge/*",
    ),
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


def role_statements(scenario: str, role_id: str = "BridgeRole") -> list[dict[str, Json]]:
    """Every statement granted to the role: inline policies and attached policy resources."""
    resources = created(scenario)
    role = resources[role_id]["Properties"]
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
        if resource["Type"] in policy_types and f"<{role_id}>" in roles:
            statements.extend(attached["PolicyDocument"]["Statement"])
    return statements


def action_resource_pairs(statements: list[dict[str, Json]]) -> list[tuple[tuple[str, ...], str]]:
    return sorted(
        (tuple(sorted(as_list(statement["Action"]))), resource)
        for statement in statements
        for resource in as_list(statement["Resource"])
    )


@pytest.mark.parametrize("role_id", ["BridgeRole", "RotationRole"])
def test_roles_are_assumed_by_lambda_only(scenario: str, role_id: str) -> None:
    (trust,) = props(scenario, role_id)["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_role_grants_exactly_the_allowed_actions_on_exactly_the_allowed_resources(
    scenario: str,
) -> None:
    statements = role_statements(scenario)
    expected = ROLE_PAIRS + (VPC_ROLE_PAIRS if scenario in IN_VPC else [])
    assert action_resource_pairs(statements) == sorted(expected)
    assert all(statement["Effect"] == "Allow" for statement in statements)


def test_the_bridge_role_cannot_read_the_admin_secret(scenario: str) -> None:
    """Its role names only the credentials secret (no "*"), the admin secret's policy denies it
    (test_secret_policies_...) and its key grant misses the admin secret (test_the_bridge_...).
    """
    secret_resources = {
        resource
        for statement in role_statements(scenario)
        if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"]))
        for resource in as_list(statement["Resource"])
    }
    assert secret_resources == {"<CredentialsSecret>"}
    assert "<AdminSecret>" not in json.dumps(role_statements(scenario))


@pytest.mark.parametrize("role_id", ["BridgeRole", "RotationRole"])
def test_roles_have_no_wildcard_action_and_star_resources_only_where_aws_requires(
    scenario: str, role_id: str
) -> None:
    for statement in role_statements(scenario, role_id):
        assert all(not action.endswith("*") for action in as_list(statement["Action"]))
        if "*" in as_list(statement["Resource"]):
            assert statement["Sid"] in STAR_RESOURCE_SIDS
            assert as_list(statement["Resource"]) == ["*"]
            assert all(
                action.startswith(("xray:Put", "ec2:Describe"))
                for action in as_list(statement["Action"])
            )


def test_role_uses_the_key_only_through_secrets_manager_sqs_and_s3(scenario: str) -> None:
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
    assert kms["EncryptAnswersThroughS3"]["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "s3.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": "<DeliveryBucket.Arn>",
        }
    }
    assert len(kms) == 3


@pytest.mark.parametrize("role_id", ["BridgeRole", "RotationRole"])
def test_network_interface_actions_are_limited_to_the_vpc(role_id: str) -> None:
    statements = role_statements("vpc", role_id)
    (eni,) = [s for s in statements if s["Sid"] == "ManageNetworkInterfacesInTheVpc"]
    assert eni["Condition"] == {
        "ArnEqualsIfExists": {
            "ec2:Vpc": "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0123456789abcdef0"
        }
    }


# -- the rotation role -------------------------------------------------------------------------

ROTATION_ROLE_PAIRS: Final = [
    (
        (
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        ),
        "<CredentialsSecret>",
    ),
    (("secretsmanager:GetSecretValue",), "<AdminSecret>"),
    (("kms:Decrypt",), KEY),
    (("kms:GenerateDataKey",), KEY),
    (("logs:CreateLogStream", "logs:PutLogEvents"), "<RotationLogGroup.Arn>"),
    (("xray:PutTelemetryRecords", "xray:PutTraceSegments"), "*"),
]


def test_rotation_role_grants_exactly_the_allowed_actions_on_exactly_the_allowed_resources(
    scenario: str,
) -> None:
    statements = role_statements(scenario, "RotationRole")
    expected = ROTATION_ROLE_PAIRS + (VPC_ROLE_PAIRS if scenario in IN_VPC else [])
    assert action_resource_pairs(statements) == sorted(expected)
    assert all(statement["Effect"] == "Allow" for statement in statements)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "secretsmanager:GetRandomPassword" not in actions  # the code makes the password


def test_rotation_role_uses_the_key_only_through_secrets_manager_for_its_secrets(
    scenario: str,
) -> None:
    kms = {
        statement["Sid"]: statement
        for statement in role_statements(scenario, "RotationRole")
        if any(action.startswith("kms:") for action in as_list(statement["Action"]))
    }
    assert kms == {
        "DecryptBothSecretsThroughSecretsManager": {
            "Sid": "DecryptBothSecretsThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": KEY,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                    "kms:EncryptionContext:SecretARN": ["<CredentialsSecret>", "<AdminSecret>"],
                }
            },
        },
        # New versions only of the credentials secret: the admin secret is read-only.
        "EncryptTheCredentialsThroughSecretsManager": {
            "Sid": "EncryptTheCredentialsThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:GenerateDataKey",
            "Resource": KEY,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                    "kms:EncryptionContext:SecretARN": "<CredentialsSecret>",
                }
            },
        },
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
        "RotationDecryptsBothSecretsThroughSecretsManager",
        "RotationEncryptsTheCredentialsThroughSecretsManager",
        "FunctionSendsFailedInvocationsThroughSqs",
        "FunctionEncryptsAnswersThroughS3",
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


def test_the_account_principal_uses_the_key_only_as_one_of_the_function_roles(
    scenario: str,
) -> None:
    roles = []
    for sid, statement in key_statements(scenario).items():
        crypto = [a for a in as_list(statement["Action"]) if a.startswith(CRYPTO_ACTIONS)]
        if crypto and statement["Principal"] == {"AWS": ACCOUNT}:
            (role,) = as_list(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])
            roles.append(role)
            expected = "<RotationRole.Arn>" if sid.startswith("Rotation") else "<BridgeRole.Arn>"
            assert role == expected, sid
    assert sorted(roles) == sorted(["<BridgeRole.Arn>"] * 3 + ["<RotationRole.Arn>"] * 2)


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


SECRET_ARN: Final = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/okta_api_creds-"


def test_rotation_role_uses_the_key_only_through_secrets_manager_for_the_two_secrets(
    scenario: str,
) -> None:
    statements = key_statements(scenario)
    via = {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    decrypt = statements["RotationDecryptsBothSecretsThroughSecretsManager"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": "<RotationRole.Arn>"},
        "StringEquals": via,
        "StringLike": {
            "kms:EncryptionContext:SecretARN": [SECRET_ARN + "??????", SECRET_ARN + "admin-??????"]
        },
    }
    encrypt = statements["RotationEncryptsTheCredentialsThroughSecretsManager"]
    assert encrypt["Action"] == "kms:GenerateDataKey"
    assert encrypt["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": "<RotationRole.Arn>"},
        "StringEquals": via,
        "StringLike": {"kms:EncryptionContext:SecretARN": SECRET_ARN + "??????"},
    }


def test_the_bridge_roles_key_grant_does_not_reach_the_admin_secret() -> None:
    """StringLike's "?" is one character: the credentials pattern misses the admin secret."""
    (pattern,) = as_list(
        key_statements("defaults")["FunctionDecryptsTheSecretThroughSecretsManager"]["Condition"][
            "StringLike"
        ]["kms:EncryptionContext:SecretARN"]
    )
    assert fnmatch.fnmatchcase(SECRET_ARN + "AbCd12", pattern)
    assert not fnmatch.fnmatchcase(SECRET_ARN + "admin-AbCd12", pattern)


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
    groups = [
        props(scenario, "BridgeLogGroup")["LogGroupName"],
        props(scenario, "RotationLogGroup")["LogGroupName"],
    ]
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


# -- the secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_id", "name"),
    [("CredentialsSecret", "prod/okta_api_creds"), ("AdminSecret", "prod/okta_api_creds-admin")],
)
def test_secrets_are_created_without_a_value_and_encrypted_with_the_key(
    scenario: str, logical_id: str, name: str
) -> None:
    secret = props(scenario, logical_id)
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    assert secret["Name"] == name
    assert secret["KmsKeyId"] == KEY


SECRET_POLICY_PRINCIPALS: Final = {
    "CredentialsSecretPolicy": ("<CredentialsSecret>", ["<BridgeRole.Arn>", "<RotationRole.Arn>"]),
    # The bridge's role is not let through: only the rotation reads the admin secret.
    "AdminSecretPolicy": ("<AdminSecret>", ["<RotationRole.Arn>"]),
}
CLOUDFORMATION: Final = "cloudformation.amazonaws.com"


@pytest.mark.parametrize("logical_id", sorted(SECRET_POLICY_PRINCIPALS))
def test_secret_policies_deny_non_tls_and_everyone_but_the_named_principals(
    scenario: str, logical_id: str
) -> None:
    secret, roles = SECRET_POLICY_PRINCIPALS[logical_id]
    policy = props(scenario, logical_id)
    assert policy["SecretId"] == secret
    assert policy["BlockPublicPolicy"] is True
    tls, others, *deployers = policy["ResourcePolicy"]["Statement"]
    for deny in (tls, others, *deployers):
        assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Resource"]) == (
            "Deny",
            "*",
            "secretsmanager:*",
            "*",
        )
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allowed = [*roles, ACCOUNT]
    if scenario == "options":
        allowed += [*ADMINS.split(","), DEPLOYERS]
    # No aws:CalledVia here: a request through CloudFormation is not a way around the list.
    assert others["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": allowed}}
    if scenario == "options":
        (deployer,) = deployers
        assert deployer["Sid"] == "DenyTheDeployersOutsideCloudFormation"
        assert deployer["Condition"] == {
            "ArnLike": {"aws:PrincipalArn": [DEPLOYERS]},
            "ArnNotLike": {"aws:PrincipalArn": ADMINS.split(",")},
            "ForAllValues:StringNotEquals": {"aws:CalledVia": CLOUDFORMATION},
        }
    else:
        assert deployers == []
        assert "aws:CalledVia" not in json.dumps(policy)


@pytest.mark.parametrize("logical_id", sorted(SECRET_POLICY_PRINCIPALS))
def test_only_the_deployers_statement_mentions_cloudformation(
    scenario: str, logical_id: str
) -> None:
    """Every statement that looks at aws:CalledVia applies to the deployers only."""
    values = parameter_values(_translated(scenario), SCENARIOS[scenario])
    deployers = [arn for arn in values["DeployerPrincipalArns"].split(",") if arn]
    for statement in props(scenario, logical_id)["ResourcePolicy"]["Statement"]:
        if "aws:CalledVia" not in json.dumps(statement):
            continue
        assert statement["Effect"] == "Deny"
        assert statement["Condition"]["ArnLike"] == {"aws:PrincipalArn": deployers}
        assert deployers


ADMIN: Final = ADMINS.split(",")[0]
STRANGER: Final = "arn:aws:iam::123456789012:role/can-create-stacks"
# (principal, through CloudFormation?, denied?) on the credentials secret, with the options'
# admins and deployer.
SECRET_ACCESS: Final = [
    (STRANGER, False, True),
    (STRANGER, True, True),  # creating a stack is no way in
    (DEPLOYERS, False, True),  # a deployer never reads the secret itself
    (DEPLOYERS, True, False),  # CloudFormation updates and deletes it for the deployer
    (ADMIN, False, False),
    (ADMIN, True, False),
    (ACCOUNT, False, False),
    ("<BridgeRole.Arn>", False, False),
    ("<RotationRole.Arn>", False, False),
]


@pytest.mark.parametrize(("principal", "through_cloudformation", "refused"), SECRET_ACCESS)
def test_who_the_secret_policy_lets_through(
    principal: str, through_cloudformation: bool, refused: bool
) -> None:
    via = (CLOUDFORMATION,) if through_cloudformation else ()
    statements = props("options", "CredentialsSecretPolicy")["ResourcePolicy"]["Statement"]
    assert denied(statements, principal, via=via) is refused
    admin_secret = props("options", "AdminSecretPolicy")["ResourcePolicy"]["Statement"]
    assert denied(admin_secret, principal, via=via) is (refused or principal == "<BridgeRole.Arn>")


def test_without_deployers_no_cloudformation_caller_gets_through() -> None:
    for logical_id in SECRET_POLICY_PRINCIPALS:
        statements = props("defaults", logical_id)["ResourcePolicy"]["Statement"]
        assert denied(statements, STRANGER, via=(CLOUDFORMATION,))
        assert denied(statements, DEPLOYERS, via=(CLOUDFORMATION,))
        assert not denied(statements, ACCOUNT)
        assert not denied(statements, ACCOUNT, via=(CLOUDFORMATION,))


def test_an_admin_listed_as_a_deployer_keeps_the_admins_access() -> None:
    translated = _translated("options")
    values = {**SCENARIOS["options"], "DeployerPrincipalArns": f"{DEPLOYERS},{ADMIN}"}
    resources = Evaluator(translated, parameter_values(translated, values)).resources()
    for logical_id in SECRET_POLICY_PRINCIPALS:
        statements = resources[logical_id]["Properties"]["ResourcePolicy"]["Statement"]
        assert not denied(statements, ADMIN)
        assert denied(statements, DEPLOYERS)
        assert not denied(statements, DEPLOYERS, via=(CLOUDFORMATION,))


# -- alarms and dashboard ----------------------------------------------------------------------

ALARMS: Final = {
    "ErrorRateAlarm": "okta-bridge-error-rate",
    "DurationP99Alarm": "okta-bridge-duration-p99",
    "ThrottlesAlarm": "okta-bridge-throttles",
    "ConcurrencyAnomalyAlarm": "okta-bridge-concurrency-anomaly",
    "FailedInvocationsAlarm": "okta-bridge-failed-async-invocations",
    "RotationFailedAlarm": "okta-bridge-rotation-failed",
    "TokenFailuresAlarm": "okta-bridge-token-failures",
    "Upstream5xxRateAlarm": "okta-bridge-upstream-5xx-rate",
    "UpstreamLatencyAlarm": "okta-bridge-upstream-latency-p95",
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


def test_rotation_alarm_fires_on_any_rotation_function_error() -> None:
    alarm = props("defaults", "RotationFailedAlarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/Lambda",
        "Errors",
        "Sum",
    )
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": "<RotationFunction>"}]
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (300, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert alarm["TreatMissingData"] == "notBreaching"


def test_dashboard_shows_invocations_errors_duration_throttles_and_the_alarms() -> None:
    """Lambda's own metrics and every alarm; test_observability checks the bridge's metrics."""
    dashboard = props("defaults", "BridgeDashboard")
    assert dashboard["DashboardName"] == "okta-bridge-eu-west-1"
    body = json.loads(dashboard["DashboardBody"])
    series = [
        (
            metric[1] if metric[0] != "..." else "Duration",
            *[option["stat"] for option in metric if isinstance(option, dict) and "stat" in option],
        )
        for widget in body["widgets"][:4]
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
    "vpc-s3-endpoint": {
        (443, "198.51.100.0/24"),
        (443, "<SecretsManagerEndpointSecurityGroup>"),
        (443, "pl-6da54004"),
    },
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
    egress = [
        (
            r["FromPort"],
            r.get("CidrIp", r.get("DestinationSecurityGroupId", r.get("DestinationPrefixListId"))),
        )
        for r in rules
    ]
    assert len(egress) == len(set(egress))
    assert set(egress) == EGRESS[scenario]


def test_secrets_manager_endpoint_is_private_and_for_the_two_functions_only() -> None:
    endpoint = props("vpc-locked-down", "SecretsManagerEndpoint")
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.secretsmanager"
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["SubnetIds"] == ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"]
    assert endpoint["SecurityGroupIds"] == ["<SecretsManagerEndpointSecurityGroup>"]
    statements = endpoint["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" and s["Principal"] == "*" for s in statements)
    admitted = sorted(
        (s["Condition"]["ArnEquals"]["aws:PrincipalArn"], actions, resource)
        for s in statements
        for actions, resource in action_resource_pairs([s])
    )
    # Each role gets through the endpoint what its own policy allows on the secrets, no more.
    assert admitted == sorted(
        [
            ("<BridgeRole.Arn>", ("secretsmanager:GetSecretValue",), "<CredentialsSecret>"),
            *[
                ("<RotationRole.Arn>", actions, resource)
                for actions, resource in ROTATION_ROLE_PAIRS
                if actions[0].startswith("secretsmanager:")
            ],
        ]
    )
    assert all(s["Condition"].keys() == {"ArnEquals"} for s in statements)
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


RELAY_DOMAINS: Final = {
    "relay": ".okta.com internal-api.yourcompany.com",
    "relay-explicit": "yourcompany.okta.com",
}


@pytest.mark.parametrize("scenario_name", sorted(RELAY_DOMAINS))
def test_relay_tunnels_only_to_the_allowed_domains(scenario_name: str) -> None:
    """The Squid rules, in order: the allow-list (by the name asked for, -n: never a reverse
    lookup of a bare IP), then the relay itself and link-local, before the only allow.
    """
    squid = props(scenario_name, "RelayInstance")["UserData"]
    lines = [line.strip() for line in squid.splitlines()]
    acl = f"acl allowed_dst dstdomain -n {RELAY_DOMAINS[scenario_name]}"
    assert acl in lines
    assert "${" not in squid  # every Fn::Sub variable was replaced
    access = [line for line in lines if line.startswith("http_access ")]
    assert access == [
        "http_access deny !CONNECT",
        "http_access deny !tls_port",
        "http_access deny !allowed_dst",
        "http_access deny to_localhost",
        "http_access deny link_local",
        "http_access allow private_clients",
        "http_access deny all",
    ]
    assert lines.index(acl) < lines.index("http_access deny !allowed_dst")
    # The config is written by a quoted heredoc (no shell expansion) and applied by a restart,
    # so running the script again on a live relay applies a changed list.
    assert "<<'CONF'" in squid
    assert lines[-2:] == ["systemctl enable squid", "systemctl restart squid"]


def test_relay_mode_requires_the_allowed_domains(template: dict[str, Json]) -> None:
    rule = template["Rules"]["RelayParameters"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CorporateNetwork"}, "relay"]}
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "RelayAllowedDomains"}, ""]}]} in [
        assertion["Assert"] for assertion in rule["Assertions"]
    ]


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

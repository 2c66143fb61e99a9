"""The template, its translation per scenario, and the scenarios: parameter sets to deploy."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

import pytest

from tests.support.cfn import Evaluator, Json, load_template, parameter_values, translate

TEMPLATE_PATH: Final = Path(__file__).resolve().parents[2] / "template.yaml"

VPC: Final = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0aaa1111bbbb2222c,subnet-0ddd3333eeee4444f",
}
ADMINS: Final = (
    "arn:aws:iam::123456789012:role/platform-admin,"
    "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Ops_0123"
)
DEPLOYERS: Final = "arn:aws:iam::123456789012:role/ci/okta-bridge-deployer"
CALLER_ROUTES: Final = (
    '{"arn:aws:iam::123456789012:role/reporting-*": ["/v1/reports/*"],'
    ' "arn:aws:iam::123456789012:role/inventory": ["/v1/items", "/v1/items/*"]}'
)

# Lists as long as the template supports (4 corporate CIDRs, 8 Okta ranges, 2 route tables).
FULL_LISTS: Final = {
    "CorporateCidrs": "10.20.0.0/16,10.30.0.0/16,10.40.0.0/16,10.50.0.0/16",
    "OktaCidrs": ",".join(f"198.51.100.{i * 16}/28" for i in range(8)),
    "RouteTableIds": "rtb-0aaa1111bbbb2222c,rtb-0ddd3333eeee4444f",
}

SCENARIOS: Final[dict[str, dict[str, str]]] = {
    "defaults": {},
    # Every optional function setting, and the bridge's environment variables.
    "options": {
        "Architecture": "x86_64",
        "MemorySize": "512",
        "Timeout": "20",
        "ReservedConcurrency": "5",
        "LogRetentionDays": "365",
        "LogLevel": "WARNING",
        "MetricsNamespace": "Corp/OktaBridge-prod",
        "Tracing": "on",
        "LatencyAlarmMs": "750",
        "Scopes": "",
        "AllowedPaths": "/v1/items,/v1/items/*",
        "TokenUrl": "https://yourcompany.okta.com/oauth2/default/v1/token",
        "ApiBaseUrl": "https://internal-api.yourcompany.com/v1/data",
        "CaBundleFile": "corp-root.pem",
        "ApiPins": (
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=,"
            "57DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        ),
        "HttpsProxy": "http://proxy.yourcompany.com:443",
        "NoProxy": "secretsmanager.eu-west-1.amazonaws.com",
        "AlarmEmail": "platform-oncall@yourcompany.com",
        "CodeSigningProfileVersionArn": (
            "arn:aws:signer:eu-west-1:123456789012:/signing-profiles/OktaBridge/abcdef1234"
        ),
        "AdminPrincipalArns": ADMINS,
        "DeployerPrincipalArns": DEPLOYERS,
        "AllowedQuery": "page,limit",
        "CallerRoutes": CALLER_ROUTES,
        "Diagnose": "off",
        "TokenBudgetPerMinute": "30",
        "Dpop": "on",
        "FunctionUrl": "AWS_IAM",
        "AllowedRoutes": "GET /v1/items/**, POST /v1/search, POST /v1/orders idempotency-key",
        "NextLink": "/links/next",
        "MaxPages": "20",
        "DeliveryUrlSeconds": "900",
        "MaxDeliveryBytes": "200000000",
    },
    # In a VPC, reaching Okta and Secrets Manager through a NAT gateway (443 to any address).
    "vpc": dict(VPC),
    # In a VPC with Okta's ranges, the Secrets Manager endpoint and flow logs.
    "vpc-locked-down": {
        **VPC,
        "OktaCidrs": "198.51.100.0/24,203.0.113.0/24",
        "CorporateCidrs": "10.20.0.0/16",
        "CreateSecretsManagerEndpoint": "true",
        "EnableFlowLogs": "true",
    },
    # Locked down (OktaCidrs), with S3 reached through a gateway endpoint and its prefix list.
    "vpc-s3-endpoint": {
        **VPC,
        "OktaCidrs": "198.51.100.0/24",
        "CreateSecretsManagerEndpoint": "true",
        "CreateS3Endpoint": "true",
        "RouteTableIds": "rtb-0aaa1111bbbb2222c,rtb-0ddd3333eeee4444f",
        "S3PrefixListId": "pl-6da54004",
    },
    "peering": {
        **VPC,
        "CorporateNetwork": "peering",
        "PeeringConnectionId": "pcx-0123456789abcdef0",
        "RouteTableIds": "rtb-0aaa1111bbbb2222c,rtb-0ddd3333eeee4444f",
        "CorporateCidrs": "10.20.0.0/16,10.30.0.0/16",
    },
    "peering-full-lists": {
        **VPC,
        "CorporateNetwork": "peering",
        "PeeringConnectionId": "pcx-0123456789abcdef0",
        **FULL_LISTS,
        "CreateSecretsManagerEndpoint": "true",
    },
    "transit-gateway": {
        **VPC,
        "CorporateNetwork": "transit-gateway",
        "TransitGatewayId": "tgw-0123456789abcdef0",
        "RouteTableIds": "rtb-0aaa1111bbbb2222c",
        "CorporateCidrs": "10.20.0.0/16,10.30.0.0/16,10.40.0.0/16,10.50.0.0/16",
    },
    "relay": {
        **VPC,
        "CorporateNetwork": "relay",
        "RelaySubnetId": "subnet-0bbb5555cccc6666d",
        "RelayAllowedDomains": ".okta.com,internal-api.yourcompany.com",
        "CreateSecretsManagerEndpoint": "true",
    },
    # The relay with a proxy named explicitly, a pinned AMI, and no endpoint.
    "relay-explicit": {
        **VPC,
        "CorporateNetwork": "relay",
        "RelaySubnetId": "subnet-0bbb5555cccc6666d",
        "RelayAllowedDomains": "yourcompany.okta.com",
        "RelayAmiParameter": "ami-0123456789abcdef0",
        "RelayInstanceType": "t3.small",
        "HttpsProxy": "http://10.0.1.10:3128",
        "NoProxy": "internal.example",
    },
    "site-to-site-vpn": {
        **VPC,
        "CorporateNetwork": "site-to-site-vpn",
        "CustomerGatewayIp": "203.0.113.10",
        "CustomerGatewayBgpAsn": "65010",
        "RouteTableIds": "rtb-0aaa1111bbbb2222c,rtb-0ddd3333eeee4444f",
        "CorporateCidrs": FULL_LISTS["CorporateCidrs"],
        "CreateSecretsManagerEndpoint": "true",
    },
}


@cache
def sam_template() -> dict[str, Json]:
    """template.yaml as data (read once; callers must not change it)."""
    return load_template(TEMPLATE_PATH)


@cache
def _translated(scenario: str) -> dict[str, Json]:
    values = parameter_values(sam_template(), SCENARIOS[scenario])
    return translate(sam_template(), values)


def evaluator(scenario: str) -> Evaluator:
    """The translated template evaluated for the scenario's parameter values."""
    translated = _translated(scenario)
    return Evaluator(translated, parameter_values(translated, SCENARIOS[scenario]))


@pytest.fixture(scope="session")
def template() -> dict[str, Json]:
    return sam_template()


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name

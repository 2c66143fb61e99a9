"""template.yaml for issue 20: the shared token cache (TokenCache=on).

The table (pk, TTL on ttl, SSE with the stack's key, deleted with the stack), exactly which item
calls the function's role and ConsumerPolicy may make on it (GetItem, PutItem, UpdateItem; no
Scan, Query, DeleteItem or batch) and which KMS calls (the envelope only under the
``okta-bridge:purpose`` = ``token-cache`` encryption context; the table's SSE only through
DynamoDB, for this table), the key policy's statements for both, the function's variables, the
DynamoDB gateway endpoint and egress rule in a VPC, the KMS endpoint's admission of the envelope,
the fallbacks alarm and the dashboard's widgets. With the option off, nothing of it exists.
Evaluated as in test_template.py (``"<X>"`` is ``Ref X``, ``"<X.Y>"`` is ``GetAtt X.Y``).
"""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from typing import Final

import pytest

from okta_bridge.metrics import FUNCTION, METRICS
from tests.support.cfn import Evaluator, Json, parameter_errors, parameter_values, translate
from tests.support.policies import as_list

from .conftest import SCENARIOS, sam_template

TOKEN_CACHE: Final = frozenset({"TokenCacheTable", "SharedCacheFallbacksAlarm"})
"""Created by TokenCache=on (test_template.py's list of optional resources adds these)."""
TOKEN_CACHE_NETWORK: Final = frozenset({"DynamoDbEndpoint", "BridgeHttpsToDynamoDb"})
"""Created by TokenCache=on in a VPC with CreateDynamoDbEndpoint and DynamoDbPrefixListId."""
TOKEN_CACHE_OUTPUTS: Final = frozenset({"TokenCacheTableName"})

SHARED_CACHE_METRICS: Final = {
    "SharedCacheHits": "Count",
    "SharedCacheMints": "Count",
    "SharedCacheWaits": "Count",
    "SharedCacheWaitMs": "Milliseconds",
    "SharedCacheFallbacks": "Count",
}
"""The names and units fixed for issue 20 (okta_bridge.metrics.METRICS has them once merged)."""

ACCOUNT: Final = "arn:aws:iam::123456789012:root"
KEY: Final = "<BridgeKey.Arn>"
TABLE: Final = "<TokenCacheTable>"
TABLE_ARN: Final = "<TokenCacheTable.Arn>"
TABLE_NAME: Final = "okta-bridge-token-cache"  # ${AWS::StackName}-token-cache
BRIDGE_ROLE: Final = "<BridgeRole.Arn>"
CONSUMER: Final = "arn:aws:iam::123456789012:role/team-a/orders-sync"
OTHER_CONSUMER: Final = "arn:aws:iam::123456789012:role/inventory-enricher"
STRANGER: Final = "arn:aws:iam::123456789012:role/can-create-stacks"
PURPOSE: Final = {"kms:EncryptionContext:okta-bridge:purpose": "token-cache"}
VIA_DYNAMODB: Final = "dynamodb.eu-west-1.amazonaws.com"
TABLE_CONTEXT: Final = {"kms:EncryptionContext:aws:dynamodb:tableName": TABLE_NAME}
DYNAMODB_PREFIX_LIST: Final = "pl-66a5400f"

CACHE_SCENARIOS: Final[dict[str, dict[str, str]]] = {
    "defaults": {},
    "on": {"TokenCache": "on"},
    "on-consumers": {
        "TokenCache": "on",
        "TokenCacheLeaseSeconds": "12",
        "ConsumerRoleArns": f"{CONSUMER},{OTHER_CONSUMER}",
    },
    "options-on": {**SCENARIOS["options"], "TokenCache": "on"},
    # In a VPC reaching DynamoDB through a NAT gateway (443 to any address): no endpoint asked.
    "vpc-on": {**SCENARIOS["vpc"], "TokenCache": "on"},
    # Locked down: DynamoDB through its gateway endpoint and prefix list, KMS through its endpoint.
    "vpc-endpoints": {
        **SCENARIOS["vpc-s3-endpoint"],
        "TokenCache": "on",
        "CreateDynamoDbEndpoint": "true",
        "DynamoDbPrefixListId": DYNAMODB_PREFIX_LIST,
        "CreateKmsEndpoint": "true",
    },
    # The bases of the comparisons: each scenario above without the option.
    "options": SCENARIOS["options"],
    "vpc": SCENARIOS["vpc"],
    "vpc-s3-endpoint": SCENARIOS["vpc-s3-endpoint"],
}
BASE: Final = {"vpc-endpoints": "vpc-s3-endpoint", "vpc-on": "vpc", "options-on": "options"}
ON: Final = ("on", "on-consumers", "options-on", "vpc-on", "vpc-endpoints")


@cache
def _translated(name: str) -> dict[str, Json]:
    values = parameter_values(sam_template(), CACHE_SCENARIOS[name])
    return translate(sam_template(), values)


def _evaluator(name: str) -> Evaluator:
    translated = _translated(name)
    return Evaluator(translated, parameter_values(translated, CACHE_SCENARIOS[name]))


@cache
def _resources(name: str) -> dict[str, dict[str, Json]]:
    return _evaluator(name).resources()


def resources(name: str) -> dict[str, dict[str, Json]]:
    copied: dict[str, dict[str, Json]] = json.loads(json.dumps(_resources(name)))
    return copied  # a copy: a test cannot change the next one's


def props(name: str, logical_id: str) -> dict[str, Json]:
    properties: dict[str, Json] = resources(name)[logical_id]["Properties"]
    return properties


def statements(name: str, logical_id: str) -> dict[str, dict[str, Json]]:
    document = props(name, logical_id)
    document = document.get("PolicyDocument") or document["KeyPolicy"]
    return {s["Sid"]: s for s in document["Statement"]}


def role_statements(name: str) -> list[dict[str, Json]]:
    return list(statements(name, "BridgeRolePolicy").values())


# -- a small IAM evaluator for the Allow statements these policies use ----------------------------


def allows(
    policy: list[dict[str, Json]],
    action: str,
    resource: str = KEY,
    context: dict[str, str] | None = None,
    principal: str | None = None,
) -> bool:
    """Whether an Allow statement matches the request (identity policies when ``principal`` is
    None; else a key or endpoint policy, whose principal is the account or "*" plus conditions).

    Action with "*" wildcards; StringEquals, StringLike, ArnEquals and Bool on single-valued keys,
    false when the request lacks the key (as IAM does without IfExists).
    """
    request = dict(context or {})
    if principal is not None:
        request["aws:PrincipalArn"] = principal

    def holds(operator: str, key: str, expected: Json) -> bool:
        if key not in request:
            return False
        value = request[key]
        wanted = [str(e) for e in as_list(expected)]
        if operator in ("StringEquals", "ArnEquals", "Bool"):
            return value in wanted
        if operator == "StringLike":
            return any(fnmatch.fnmatchcase(value, w) for w in wanted)
        raise AssertionError(f"the test does not know {operator}")

    def matches(statement: dict[str, Json]) -> bool:
        if statement["Effect"] != "Allow":
            return False
        if principal is not None and statement["Principal"] not in ({"AWS": ACCOUNT}, "*"):
            return False
        if not any(fnmatch.fnmatchcase(action, a) for a in as_list(statement["Action"])):
            return False
        if not any(fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])):
            return False
        return all(
            holds(operator, key, expected)
            for operator, keys in statement.get("Condition", {}).items()
            for key, expected in keys.items()
        )

    return any(matches(statement) for statement in policy)


# -- the parameters -------------------------------------------------------------------------------


def test_the_parameters_default_to_off_and_a_5_second_lease() -> None:
    declared = sam_template()["Parameters"]
    assert declared["TokenCache"]["Default"] == "off"
    assert declared["TokenCache"]["AllowedValues"] == ["on", "off"]
    lease = declared["TokenCacheLeaseSeconds"]
    assert (lease["Type"], lease["Default"], lease["MinValue"], lease["MaxValue"]) == (
        "Number",
        5,
        1,
        30,
    )
    assert declared["CreateDynamoDbEndpoint"]["Default"] == "false"
    assert declared["DynamoDbPrefixListId"]["Default"] == ""


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"TokenCache": "on", "TokenCacheLeaseSeconds": "1"}, 0),
        ({"TokenCacheLeaseSeconds": "30"}, 0),
        ({"TokenCacheLeaseSeconds": "0"}, 1),
        ({"TokenCacheLeaseSeconds": "31"}, 1),
        ({"TokenCache": "true"}, 1),
        ({"TokenCache": "ON"}, 1),
        ({"CreateDynamoDbEndpoint": "yes"}, 1),
        ({"DynamoDbPrefixListId": DYNAMODB_PREFIX_LIST}, 0),
        ({"DynamoDbPrefixListId": "com.amazonaws.eu-west-1.dynamodb"}, 1),
    ],
)
def test_cloudformation_refuses_values_outside_the_contract(
    values: dict[str, str], refused: int
) -> None:
    template = sam_template()
    assert len(parameter_errors(template, parameter_values(template, values))) == refused


@pytest.mark.parametrize(
    ("values", "failed"),
    [
        (
            {"TokenCache": "on", "CreateDynamoDbEndpoint": "true", "DynamoDbPrefixListId": "pl-1"},
            [
                "NetworkOptionsNeedAVpc: CreateDynamoDbEndpoint needs VpcId.",
                "NetworkOptionsNeedAVpc: DynamoDbPrefixListId needs VpcId.",
                "DynamoDbEndpointParameters: CreateDynamoDbEndpoint needs RouteTableIds"
                " (the function subnets' route tables).",
            ],
        ),
        (
            {**SCENARIOS["vpc"], "CreateDynamoDbEndpoint": "true"},
            [
                "DynamoDbEndpointParameters: CreateDynamoDbEndpoint needs RouteTableIds"
                " (the function subnets' route tables).",
                "DynamoDbEndpointParameters: CreateDynamoDbEndpoint is for the token cache's"
                " table (TokenCache=on).",
            ],
        ),
        ({"TokenCache": "on"}, []),
    ],
)
def test_rules_refuse_the_endpoint_without_a_vpc_route_tables_or_the_cache(
    values: dict[str, str], failed: list[str]
) -> None:
    template = sam_template()
    assert Evaluator(template, parameter_values(template, values)).failed_rules() == failed


@pytest.mark.parametrize("name", sorted(CACHE_SCENARIOS))
def test_every_scenario_is_a_valid_parameter_set(name: str) -> None:
    template = sam_template()
    values = parameter_values(template, CACHE_SCENARIOS[name])
    assert parameter_errors(template, values) == []
    assert _evaluator(name).failed_rules() == []


# -- nothing when the option is off ---------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_without_the_option_there_is_no_table_and_no_dynamodb_or_envelope_grant(
    scenario: str,
) -> None:
    values = parameter_values(sam_template(), SCENARIOS[scenario])
    translated = translate(sam_template(), values)
    evaluator = Evaluator(translated, parameter_values(translated, SCENARIOS[scenario]))
    created = evaluator.resources()
    assert not (TOKEN_CACHE | TOKEN_CACHE_NETWORK) & set(created)
    assert not [r for r in created.values() if r["Type"].startswith("AWS::DynamoDB::")]
    text = json.dumps(created)
    for absent in ("dynamodb", "token-cache", "okta-bridge:purpose", "SharedCache"):
        assert absent not in text.lower().replace("token_cache", ""), absent
    variables = created["BridgeFunction"]["Properties"]["Environment"]["Variables"]
    assert not [name for name in variables if name.startswith("BRIDGE_TOKEN_CACHE")]
    assert not TOKEN_CACHE_OUTPUTS & set(evaluator.outputs())


# -- what the option creates ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ON)
def test_the_option_creates_exactly_the_table_and_its_alarm(name: str) -> None:
    base = BASE.get(name, "defaults")
    extra = TOKEN_CACHE | (TOKEN_CACHE_NETWORK if name == "vpc-endpoints" else frozenset())
    if name == "vpc-endpoints":  # CreateKmsEndpoint too
        extra |= {"KmsEndpointSecurityGroup", "BridgeToKmsEndpoint", "KmsEndpoint"}
    created = set(resources(name))
    assert created - set(resources(base)) == extra
    assert set(resources(base)) <= created


def test_the_table_is_a_pay_per_request_cache_keyed_by_pk_encrypted_with_the_stack_key() -> None:
    table = resources("on")["TokenCacheTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    # A cache: deleted with the stack and on replacement, never retained.
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert table["Properties"] == {
        "TableName": TABLE_NAME,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False},
        "DeletionProtectionEnabled": False,
        "Tags": [{"Key": "okta-bridge:stack", "Value": "okta-bridge"}],
    }
    (skip,) = table["Metadata"]["checkov"]["skip"]
    assert skip["id"] == "CKV_AWS_28"  # point-in-time recovery: the reason is written down
    assert "expired tokens" in skip["comment"]


def test_the_table_name_is_what_the_key_policy_names() -> None:
    """BridgeKey's policy cannot refer to the table (the table refers to the key): both build
    the same name from the stack's."""
    assert props("on", "TokenCacheTable")["TableName"] == TABLE_NAME
    sse = statements("on", "BridgeKey")["DynamoDbEncryptsTheTokenCacheTable"]
    assert sse["Condition"]["StringEquals"]["kms:EncryptionContext:aws:dynamodb:tableName"] == (
        TABLE_NAME
    )


@pytest.mark.parametrize(("name", "lease"), [("on", "5"), ("on-consumers", "12")])
def test_the_function_is_told_the_table_the_key_and_the_lease(name: str, lease: str) -> None:
    created = resources(name)
    variables = created["BridgeFunction"]["Properties"]["Environment"]["Variables"]
    assert {k: v for k, v in variables.items() if k.startswith("BRIDGE_TOKEN_CACHE")} == {
        "BRIDGE_TOKEN_CACHE": TABLE,
        "BRIDGE_TOKEN_CACHE_KEY_ID": KEY,
        "BRIDGE_TOKEN_CACHE_LEASE_SECONDS": lease,
    }
    # Only the bridge shares tokens: the rotation's testSecret step tests a pending version.
    rotation = created["RotationFunction"]["Properties"]["Environment"]["Variables"]
    assert not [k for k in rotation if k.startswith("BRIDGE_TOKEN_CACHE")]


def test_the_outputs_name_the_table_for_consumers() -> None:
    outputs = _evaluator("on").outputs()
    assert outputs["TokenCacheTableName"] == TABLE
    assert outputs["KmsKeyArn"] == KEY  # BRIDGE_TOKEN_CACHE_KEY_ID of a consumer
    assert set(outputs) - set(_evaluator("defaults").outputs()) == TOKEN_CACHE_OUTPUTS


# -- least privilege: the function's role and ConsumerPolicy --------------------------------------

CACHE_STATEMENTS: Final = {
    "UseTheTokenCacheTable": {
        "Sid": "UseTheTokenCacheTable",
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Resource": TABLE_ARN,
    },
    "EnvelopeTheSharedToken": {
        "Sid": "EnvelopeTheSharedToken",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": KEY,
        "Condition": {"StringEquals": PURPOSE},
    },
    "DecryptTheTokenCacheTableThroughDynamoDb": {
        "Sid": "DecryptTheTokenCacheTableThroughDynamoDb",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": KEY,
        "Condition": {
            "StringEquals": {
                "kms:ViaService": VIA_DYNAMODB,
                "kms:EncryptionContext:aws:dynamodb:tableName": TABLE,
            }
        },
    },
}
FORBIDDEN_TABLE_ACTIONS: Final = (
    "dynamodb:Scan",
    "dynamodb:Query",
    "dynamodb:DeleteItem",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:DescribeTable",
    "dynamodb:PartiQLSelect",
    "dynamodb:TransactWriteItems",
)


@pytest.mark.parametrize("name", ON)
@pytest.mark.parametrize("policy_id", ["BridgeRolePolicy", "ConsumerPolicy"])
def test_the_option_adds_exactly_the_three_cache_statements(name: str, policy_id: str) -> None:
    base = BASE.get(name, "defaults")
    before = statements(base, policy_id)
    after = statements(name, policy_id)
    assert {sid: after[sid] for sid in set(after) - set(before)} == CACHE_STATEMENTS
    assert {sid: after[sid] for sid in before} == before  # nothing else changed


@pytest.mark.parametrize("policy_id", ["BridgeRolePolicy", "ConsumerPolicy"])
def test_the_item_calls_are_the_lease_protocols_on_the_one_table(policy_id: str) -> None:
    policy = list(statements("on", policy_id).values())
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert allows(policy, action, TABLE_ARN), action
        assert not allows(policy, action, "arn:aws:dynamodb:eu-west-1:123456789012:table/other")
        assert not allows(policy, action, f"{TABLE_ARN}/index/any")
    for action in FORBIDDEN_TABLE_ACTIONS:
        assert not allows(policy, action, TABLE_ARN), action
    dynamodb = [s for s in policy if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert [as_list(s["Resource"]) for s in dynamodb] == [[TABLE_ARN]]  # no "*", no pattern
    assert all("*" not in a for s in dynamodb for a in as_list(s["Action"]))


@pytest.mark.parametrize("policy_id", ["BridgeRolePolicy", "ConsumerPolicy"])
def test_the_key_is_used_for_the_envelope_only_under_the_cache_context(policy_id: str) -> None:
    policy = list(statements("on", policy_id).values())
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert allows(policy, action, KEY, PURPOSE), action
        # Called directly without the context, or with another purpose: refused. (The secret's
        # Decrypt is only through Secrets Manager, for the secret: no unconditioned Decrypt.)
        assert not allows(policy, action, KEY), action
        assert not allows(
            policy, action, KEY, {"kms:EncryptionContext:okta-bridge:purpose": "other"}
        )
        assert not allows(policy, action, "arn:aws:kms:eu-west-1:123456789012:key/other", PURPOSE)
    for action in (
        "kms:Encrypt",
        "kms:ReEncryptFrom",
        "kms:CreateGrant",
        "kms:GenerateDataKeyPair",
    ):
        assert not allows(policy, action, KEY, PURPOSE), action
    kms = [s for s in policy if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert all("Condition" in s for s in kms)


@pytest.mark.parametrize("policy_id", ["BridgeRolePolicy", "ConsumerPolicy"])
def test_the_tables_encryption_at_rest_is_decrypted_only_through_dynamodb_for_the_table(
    policy_id: str,
) -> None:
    policy = list(statements("on", policy_id).values())
    through = {
        "kms:ViaService": VIA_DYNAMODB,
        "kms:EncryptionContext:aws:dynamodb:tableName": TABLE,
    }
    assert allows(policy, "kms:Decrypt", KEY, through)
    other_table = {**through, "kms:EncryptionContext:aws:dynamodb:tableName": "other"}
    assert not allows(policy, "kms:Decrypt", KEY, other_table)
    assert not allows(policy, "kms:Decrypt", KEY, {**through, "kms:ViaService": "s3.x"})
    for action in ("kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant", "kms:DescribeKey"):
        assert not allows(policy, action, KEY, through), action


# -- the key's policy -----------------------------------------------------------------------------

KEY_STATEMENTS: Final = {
    "FunctionEnvelopesTheSharedToken",
    "DynamoDbEncryptsTheTokenCacheTable",
    "DynamoDbMakesTheTableGrant",
    "DynamoDbDescribesTheKeyForItsCaller",
    "DynamoDbDescribesTheKey",
}


@pytest.mark.parametrize(
    ("name", "added"),
    [
        ("on", KEY_STATEMENTS),
        ("on-consumers", KEY_STATEMENTS | {"ConsumersEnvelopeTheSharedToken"}),
        ("options-on", KEY_STATEMENTS),
    ],
)
def test_the_key_policy_adds_the_envelope_and_dynamodbs_statements_only(
    name: str, added: set[str]
) -> None:
    base = "options" if name == "options-on" else "defaults"
    before = statements(base, "BridgeKey")
    after = statements(name, "BridgeKey")
    if name == "on-consumers":  # the consumers' own secret statement comes with ConsumerRoleArns
        before = {**before, "ConsumersDecryptTheSecretThroughSecretsManager": {}}
        after = {**after, "ConsumersDecryptTheSecretThroughSecretsManager": {}}
    assert set(after) - set(before) == added
    assert {sid: after[sid] for sid in before} == before


def test_only_the_function_and_the_named_consumers_envelope_with_the_key() -> None:
    key = list(statements("on-consumers", "BridgeKey").values())
    for who in (BRIDGE_ROLE, CONSUMER, OTHER_CONSUMER):
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert allows(key, action, "*", PURPOSE, principal=who), (who, action)
            assert not allows(key, action, "*", principal=who), (who, action)
    for action in ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"):
        assert not allows(key, action, "*", PURPOSE, principal=STRANGER), action
    # Without ConsumerRoleArns, a consumer is not admitted.
    alone = list(statements("on", "BridgeKey").values())
    assert not allows(alone, "kms:Decrypt", "*", PURPOSE, principal=CONSUMER)
    envelope = statements("on-consumers", "BridgeKey")["ConsumersEnvelopeTheSharedToken"]
    assert envelope["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": [CONSUMER, OTHER_CONSUMER]},
        "StringEquals": PURPOSE,
    }


def test_dynamodb_uses_the_key_only_for_the_table_from_this_account() -> None:
    key = statements("on", "BridgeKey")
    sse = key["DynamoDbEncryptsTheTokenCacheTable"]
    assert sse["Principal"] == {"AWS": ACCOUNT}
    assert sorted(sse["Action"]) == [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    ]
    assert sse["Condition"] == {
        "StringEquals": {
            "kms:ViaService": VIA_DYNAMODB,
            "kms:CallerAccount": "123456789012",
            **TABLE_CONTEXT,
        }
    }
    grant = key["DynamoDbMakesTheTableGrant"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {
        "StringEquals": {"kms:ViaService": VIA_DYNAMODB, "kms:CallerAccount": "123456789012"},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    describe = key["DynamoDbDescribesTheKeyForItsCaller"]
    assert describe["Action"] == "kms:DescribeKey"
    assert describe["Condition"] == {"StringEquals": grant["Condition"]["StringEquals"]}
    assert key["DynamoDbDescribesTheKey"] == {
        "Sid": "DynamoDbDescribesTheKey",
        "Effect": "Allow",
        "Principal": {"Service": "dynamodb.amazonaws.com"},
        "Action": ["kms:DescribeKey"],
        "Resource": "*",
    }
    policy = list(key.values())
    anyone = STRANGER
    through = {"kms:ViaService": VIA_DYNAMODB, "kms:CallerAccount": "123456789012"}
    assert allows(policy, "kms:Decrypt", "*", through | TABLE_CONTEXT, principal=anyone)
    other = {"kms:EncryptionContext:aws:dynamodb:tableName": "another-table"}
    assert not allows(policy, "kms:Decrypt", "*", through | other, principal=anyone)
    assert not allows(policy, "kms:CreateGrant", "*", through, principal=anyone)  # not AWS's
    granted = through | {"kms:GrantIsForAWSResource": "true"}
    assert allows(policy, "kms:CreateGrant", "*", granted, principal=anyone)
    direct = {"kms:CallerAccount": "123456789012", "kms:GrantIsForAWSResource": "true"}
    assert not allows(policy, "kms:CreateGrant", "*", direct, principal=anyone)


# -- network --------------------------------------------------------------------------------------


def test_the_dynamodb_gateway_endpoint_admits_the_functions_item_calls_only() -> None:
    endpoint = props("vpc-endpoints", "DynamoDbEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.dynamodb"
    assert endpoint["VpcId"] == SCENARIOS["vpc"]["VpcId"]
    assert endpoint["RouteTableIds"] == ["rtb-0aaa1111bbbb2222c", "rtb-0ddd3333eeee4444f"]
    assert endpoint["PolicyDocument"]["Statement"] == [
        {
            "Sid": "TheFunctionSharesItsToken",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": TABLE_ARN,
            "Condition": {"ArnEquals": {"aws:PrincipalArn": BRIDGE_ROLE}},
        }
    ]
    egress = props("vpc-endpoints", "BridgeHttpsToDynamoDb")
    assert egress["GroupId"] == "<BridgeSecurityGroup>"
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert egress["DestinationPrefixListId"] == DYNAMODB_PREFIX_LIST


def test_in_a_vpc_without_the_endpoint_parameters_dynamodb_is_reached_as_the_rest() -> None:
    created = resources("vpc-on")
    assert not TOKEN_CACHE_NETWORK & set(created)
    assert "BridgeHttpsToAnyAddress" in created  # 443 to any address: DynamoDB through the NAT


def test_the_kms_endpoint_admits_the_envelope_of_the_shared_token() -> None:
    endpoint = statements("vpc-endpoints", "KmsEndpoint")
    assert endpoint["TheFunctionEnvelopesTheSharedToken"] == {
        "Sid": "TheFunctionEnvelopesTheSharedToken",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": KEY,
        "Condition": {"ArnEquals": {"aws:PrincipalArn": BRIDGE_ROLE}, "StringEquals": PURPOSE},
    }
    policy = list(endpoint.values())
    assert allows(policy, "kms:GenerateDataKey", KEY, PURPOSE, principal=BRIDGE_ROLE)
    assert not allows(policy, "kms:GenerateDataKey", KEY, PURPOSE, principal=STRANGER)
    # Without the option the endpoint admits no envelope (test_kms_signing.py checks the rest).
    values = {**SCENARIOS["vpc"], "CreateKmsEndpoint": "true"}
    translated = translate(sam_template(), parameter_values(sam_template(), values))
    off = Evaluator(translated, parameter_values(translated, values)).resources()["KmsEndpoint"]
    sids = [s["Sid"] for s in off["Properties"]["PolicyDocument"]["Statement"]]
    assert "TheFunctionEnvelopesTheSharedToken" not in sids
    assert "TheFunctionSignsClientAssertions" in sids


# -- alarm and dashboard --------------------------------------------------------------------------


def test_the_metric_names_are_the_issues_and_the_codes_once_it_has_them() -> None:
    """Before the code's METRICS has the SharedCache names the literal names stand; once it has
    any of them, it must have all of them with these units."""
    present = {name: unit for name, unit in METRICS.items() if name.startswith("SharedCache")}
    assert present in ({}, SHARED_CACHE_METRICS)


@pytest.mark.parametrize("name", ["on", "options-on"])
def test_the_fallbacks_alarm_fires_on_any_fallback_in_15_minutes(name: str) -> None:
    alarm = props(name, "SharedCacheFallbacksAlarm")
    namespace = "Corp/OktaBridge-prod" if name == "options-on" else "OktaBridge"
    assert alarm["AlarmName"] == "okta-bridge-shared-cache-fallbacks"
    assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, "SharedCacheFallbacks")
    assert alarm["Dimensions"] == [{"Name": FUNCTION, "Value": "<BridgeFunction>"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 900, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == ["<AlarmTopic>"]
    assert alarm["AlarmDescription"].endswith("Runbook: docs/runbook.md#sharedcachefallbacksalarm")


def dashboard(name: str) -> list[dict[str, Json]]:
    body = json.loads(props(name, "BridgeDashboard")["DashboardBody"])
    widgets: list[dict[str, Json]] = body["widgets"]
    return widgets


def widget_metrics(widget: dict[str, Json]) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (row[0], row[1], dict(zip(row[2:-1:2], row[3:-1:2], strict=True)))
        for row in widget["properties"].get("metrics", [])
        if len(row) > 2 and isinstance(row[-1], dict)
    ]


@pytest.mark.parametrize("name", ["on", "options-on"])
def test_the_dashboard_shows_the_shared_cache_and_its_alarm(name: str) -> None:
    namespace = "Corp/OktaBridge-prod" if name == "options-on" else "OktaBridge"
    widgets = dashboard(name)
    cache_widgets = [w for w in widgets if "Shared token cache" in w["properties"].get("title", "")]
    assert len(cache_widgets) == 4
    shown = [m for w in cache_widgets for m in widget_metrics(w)]
    assert {metric for _, metric, _ in shown} == {*SHARED_CACHE_METRICS, "TokenRequests"}
    assert {ns for ns, _, _ in shown} == {namespace}
    assert all(dims == {FUNCTION: "<BridgeFunction>"} for _, _, dims in shown)
    (hits,) = [w for w in cache_widgets if "hits" in w["properties"]["title"]]
    assert [m for _, m, _ in widget_metrics(hits)] == [
        "SharedCacheHits",
        "SharedCacheMints",
        "TokenRequests",
    ]
    (wait,) = [w for w in cache_widgets if "wait time" in w["properties"]["title"]]
    assert [row[-1]["stat"] for row in wait["properties"]["metrics"]] == ["p99", "Maximum"]
    # Below the other widgets, side by side, none overlapping.
    bottom = max(w["y"] + w["height"] for w in widgets if w not in cache_widgets)
    assert min(w["y"] for w in cache_widgets) >= bottom
    assert len({(w["x"], w["y"]) for w in widgets}) == len(widgets)
    (alarms,) = [w["properties"]["alarms"] for w in widgets if w["type"] == "alarm"]
    prefix = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:"
    assert alarms[-1] == prefix + props(name, "SharedCacheFallbacksAlarm")["AlarmName"]
    assert alarms[:-1] == [
        a
        for w in dashboard(BASE.get(name, "defaults"))
        if w["type"] == "alarm"
        for a in w["properties"]["alarms"]
    ]


def test_without_the_option_the_dashboard_is_unchanged() -> None:
    widgets = dashboard("defaults")
    assert "SharedCache" not in json.dumps(widgets)
    assert not [w for w in widgets if "Shared token cache" in w["properties"].get("title", "")]

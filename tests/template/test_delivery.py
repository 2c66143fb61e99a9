"""Issue 15 in the template: the delivery bucket of large answers, who may write and read it,
the key through S3, the routes/pagination/delivery variables and the dashboard's new widgets.

Each property is a ``check_*`` function over the translated, evaluated resources. Every check
runs on the template (it must pass) and on a copy loosened in one way (it must fail), so a test
cannot pass because the check looks at nothing. Policies are evaluated for concrete requests by
``decide``: Action/Resource wildcards and the condition operators these policies use, with IAM's
rules for a key the request does not carry.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from typing import Final

import pytest

from okta_bridge.config import Settings
from okta_bridge.metrics import FUNCTION, METRICS
from tests.support.cfn import PSEUDO, Evaluator, Json, parameter_errors, parameter_values
from tests.support.policies import as_list

from .conftest import SCENARIOS, _translated, evaluator

Resources = dict[str, dict[str, Json]]
Request = dict[str, Json]

STACK_UUID: Final = str(PSEUDO["AWS::StackId"]).rsplit("/", 1)[-1]
BUCKET: Final = f"okta-bridge-delivery-{STACK_UUID}"
BUCKET_ARN: Final = f"arn:aws:s3:::{BUCKET}"
KEY_ARN: Final = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY: Final = "arn:aws:kms:eu-west-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab"
ROLE_ARN: Final = "arn:aws:iam::123456789012:role/okta-bridge-BridgeRole-AbC123"
OTHER_ROLE: Final = "arn:aws:iam::123456789012:role/someone-else"
ACCOUNT_ROOT: Final = "arn:aws:iam::123456789012:root"
S3_VIA: Final = "s3.eu-west-1.amazonaws.com"
PREFIX: Final = "okta-bridge/"
ANSWER: Final = f"{BUCKET_ARN}/{PREFIX}2026/12/06/req-1-ab12.json"
NEW_METRICS: Final = ("Pages", "Truncations", "Deliveries", "DeliveredBytes")
# What the symbolic references stand for in the requests below.
CONCRETE: Final = {
    "<DeliveryBucket.Arn>": BUCKET_ARN,
    "<DeliveryBucket>": BUCKET,
    "<BridgeKey.Arn>": KEY_ARN,
    "<BridgeRole.Arn>": ROLE_ARN,
}


def concrete(value: Json) -> Json:
    """``value`` with the symbolic references replaced by the ARNs above."""
    text = json.dumps(value)
    for symbol, arn in CONCRETE.items():
        text = text.replace(symbol, arn)
    return json.loads(text)


def resources(scenario: str = "defaults") -> Resources:
    return concrete(evaluator(scenario).resources())  # type: ignore[no-any-return]


def loosen(found: Resources, edit: Callable[[Resources], object]) -> Resources:
    changed = copy.deepcopy(found)
    edit(changed)
    return changed


# -- a small IAM evaluator ------------------------------------------------------------------


def _matches(patterns: Json, value: str, *, case: bool = True) -> bool:
    if case:
        return any(fnmatch.fnmatchcase(value, str(p)) for p in as_list(patterns))
    return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in as_list(patterns))


def _holds(operator: str, key: str, expected: Json, context: Mapping[str, Json]) -> bool:
    wanted = [str(e) for e in as_list(expected)]
    if operator == "Null":
        (flag,) = wanted
        return (key not in context) == (flag == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if key not in context:
        # Absent: the negated operators hold, the positive ones do not (IAM's rule).
        return if_exists or "Not" in base
    values = [str(v) for v in as_list(context[key])]
    if base in ("StringEquals", "ArnEquals", "Bool"):
        return any(v in wanted for v in values)
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(v, w) for v in values for w in wanted)
    if base in ("StringNotEquals", "ArnNotEquals"):
        return all(v not in wanted for v in values)
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(fnmatch.fnmatchcase(v, w) for v in values for w in wanted)
    raise AssertionError(f"the test does not know {operator}")


def _applies(statement: dict[str, Json], request: Request) -> bool:
    if "Principal" in statement:
        principal = statement["Principal"]
        arns = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
        caller = str(request["principal"])
        if principal != "*" and caller not in arns and ACCOUNT_ROOT not in arns:
            return False
    if not _matches(statement["Action"], str(request["action"]), case=False):
        return False
    if "Resource" in statement and not _matches(statement["Resource"], str(request["resource"])):
        return False
    context = {"aws:PrincipalArn": request["principal"], **request.get("context", {})}
    return all(
        _holds(operator, key, expected, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def decide(statements: list[dict[str, Json]], request: Request) -> str:
    """ "deny" (an explicit Deny), "allow" (an Allow and no Deny) or "implicit" (neither)."""
    applying = [s for s in statements if _applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "deny"
    return "allow" if applying else "implicit"


def put(
    resource: str = ANSWER, sse: str | None = None, key: str | None = None, tls: bool = True
) -> Request:
    context: dict[str, Json] = {"aws:SecureTransport": "true" if tls else "false"}
    if sse is not None:
        context["s3:x-amz-server-side-encryption"] = sse
    if key is not None:
        context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = key
    return {
        "principal": ROLE_ARN,
        "action": "s3:PutObject",
        "resource": resource,
        "context": context,
    }


def s3(action: str, resource: str = ANSWER, principal: str = ROLE_ARN, tls: bool = True) -> Request:
    return {
        "principal": principal,
        "action": action,
        "resource": resource,
        "context": {"aws:SecureTransport": "true" if tls else "false"},
    }


def kms(
    action: str,
    principal: str = ROLE_ARN,
    via: str | None = S3_VIA,
    bucket_arn: str | None = BUCKET_ARN,
    resource: str = KEY_ARN,
) -> Request:
    context: dict[str, Json] = {}
    if via is not None:
        context["kms:ViaService"] = via
    if bucket_arn is not None:
        context["kms:EncryptionContext:aws:s3:arn"] = bucket_arn
    return {"principal": principal, "action": action, "resource": resource, "context": context}


# -- the bucket -------------------------------------------------------------------------------


def check_bucket_encryption(found: Resources) -> None:
    """SSE-KMS by default, with the stack's key and an S3 Bucket Key (the key policy's
    encryption context is then the bucket's ARN)."""
    bucket = found["DeliveryBucket"]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    default = rule["ServerSideEncryptionByDefault"]
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}
    assert rule["BucketKeyEnabled"] is True


def check_public_access_blocked(found: Resources) -> None:
    bucket = found["DeliveryBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket.get("OwnershipControls") == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }


def check_lifecycle(found: Resources) -> None:
    """Every object (no prefix or filter) expires after a day; incomplete multipart uploads
    are aborted after a day; nothing else and no rule disabled."""
    rules = found["DeliveryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" for rule in rules)
    assert not [r for r in rules if {"Prefix", "Filter", "TagFilters"} & set(r)]
    assert [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r] == [1]
    aborts = [
        r["AbortIncompleteMultipartUpload"] for r in rules if "AbortIncompleteMultipartUpload" in r
    ]
    assert aborts == [{"DaysAfterInitiation": 1}]
    assert not [r for r in rules if {"Transitions", "NoncurrentVersionExpiration"} & set(r)]


def check_bucket_name(found: Resources) -> None:
    """The name the key policy's encryption context names: unique per stack, valid for S3."""
    name = found["DeliveryBucket"]["Properties"]["BucketName"]
    assert name == BUCKET
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name)
    key = {s["Sid"]: s for s in found["BridgeKey"]["Properties"]["KeyPolicy"]["Statement"]}
    context = key["FunctionEncryptsAnswersThroughS3"]["Condition"]["StringEquals"]
    assert context["kms:EncryptionContext:aws:s3:arn"] == f"arn:aws:s3:::{name}"


BUCKET_CHECKS: Final[
    dict[str, tuple[Callable[[Resources], object], Callable[[Resources], object]]]
] = {
    "encryption uses the stack key": (
        check_bucket_encryption,
        lambda r: r["DeliveryBucket"]["Properties"]["BucketEncryption"][
            "ServerSideEncryptionConfiguration"
        ][0]["ServerSideEncryptionByDefault"].update(KMSMasterKeyID=OTHER_KEY),
    ),
    "encryption is KMS, not S3-managed": (
        check_bucket_encryption,
        lambda r: r["DeliveryBucket"]["Properties"]["BucketEncryption"][
            "ServerSideEncryptionConfiguration"
        ][0].update(ServerSideEncryptionByDefault={"SSEAlgorithm": "AES256"}),
    ),
    "public access fully blocked": (
        check_public_access_blocked,
        lambda r: r["DeliveryBucket"]["Properties"]["PublicAccessBlockConfiguration"].update(
            RestrictPublicBuckets=False
        ),
    ),
    "ACLs disabled": (
        check_public_access_blocked,
        lambda r: r["DeliveryBucket"]["Properties"].pop("OwnershipControls"),
    ),
    "objects expire after a day": (
        check_lifecycle,
        lambda r: r["DeliveryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0].update(
            ExpirationInDays=7
        ),
    ),
    "expiry covers every key": (
        check_lifecycle,
        lambda r: r["DeliveryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0].update(
            Prefix="okta-bridge/2026/"
        ),
    ),
    "incomplete uploads are aborted": (
        check_lifecycle,
        lambda r: r["DeliveryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"].pop(),
    ),
    "the key policy names this bucket": (
        check_bucket_name,
        lambda r: r["DeliveryBucket"]["Properties"].update(BucketName="okta-bridge-delivery-x"),
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("name", sorted(BUCKET_CHECKS))
def test_the_bucket(scenario: str, name: str) -> None:
    check, _ = BUCKET_CHECKS[name]
    check(resources(scenario))


@pytest.mark.parametrize("name", sorted(BUCKET_CHECKS))
def test_the_bucket_check_fails_when_loosened(name: str) -> None:
    check, edit = BUCKET_CHECKS[name]
    with pytest.raises(AssertionError):
        check(loosen(resources(), edit))


# -- the bucket policy ------------------------------------------------------------------------

# request -> what the bucket policy alone decides ("deny" or not)
BUCKET_POLICY_CASES: Final[list[tuple[str, Request, bool]]] = [
    ("GetObject over TLS", s3("s3:GetObject"), False),
    ("GetObject without TLS", s3("s3:GetObject", tls=False), True),
    ("ListBucket on the bucket without TLS", s3("s3:ListBucket", BUCKET_ARN, tls=False), True),
    ("PutObject with the bucket's default encryption", put(), False),
    ("PutObject naming SSE-KMS and the stack key", put(sse="aws:kms", key=KEY_ARN), False),
    ("PutObject naming SSE-S3", put(sse="AES256"), True),
    ("PutObject naming DSSE-KMS", put(sse="aws:kms:dsse", key=KEY_ARN), True),
    ("PutObject naming another key", put(sse="aws:kms", key=OTHER_KEY), True),
    ("PutObject naming SSE-KMS without a key (aws/s3)", put(sse="aws:kms"), True),
    ("PutObject with the stack key without TLS", put(sse="aws:kms", key=KEY_ARN, tls=False), True),
]


def bucket_policy(found: Resources) -> list[dict[str, Json]]:
    policy = found["DeliveryBucketPolicy"]["Properties"]
    assert policy["Bucket"] == BUCKET
    statements: list[dict[str, Json]] = policy["PolicyDocument"]["Statement"]
    return statements


def check_bucket_policy(found: Resources) -> None:
    statements = bucket_policy(found)
    assert all(s["Effect"] == "Deny" for s in statements), "the policy only denies"
    for label, request, denied in BUCKET_POLICY_CASES:
        assert (decide(statements, request) == "deny") is denied, label


def _statement(sid: str) -> Callable[[Resources], dict[str, Json]]:
    def find(found: Resources) -> dict[str, Json]:
        (statement,) = [s for s in bucket_policy(found) if s["Sid"] == sid]
        return statement

    return find


BUCKET_POLICY_LOOSENINGS: Final[dict[str, Callable[[Resources], object]]] = {
    "TLS denial dropped": lambda r: bucket_policy(r).pop(0),
    "TLS denial for objects only": lambda r: _statement("DenyRequestsWithoutTls")(r).update(
        Resource=f"{BUCKET_ARN}/*"
    ),
    "SSE-S3 allowed": lambda r: _statement("DenyWritesNotEncryptedWithKms")(r)["Condition"][
        "StringNotEquals"
    ].update({"s3:x-amz-server-side-encryption": ["aws:kms", "AES256"]}),
    "another key allowed": lambda r: _statement("DenyWritesUnderAnotherKey")(r)["Condition"][
        "StringNotEquals"
    ].update({"s3:x-amz-server-side-encryption-aws-kms-key-id": [KEY_ARN, OTHER_KEY]}),
    "SSE-KMS without a key allowed": lambda r: _statement("DenyWritesUnderAnotherKey")(r)[
        "Condition"
    ].update({"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}}),
}


def test_the_bucket_policy_denies_non_tls_non_kms_and_other_key_writes() -> None:
    for scenario in SCENARIOS:
        check_bucket_policy(resources(scenario))


@pytest.mark.parametrize("name", sorted(BUCKET_POLICY_LOOSENINGS))
def test_the_bucket_policy_check_fails_when_loosened(name: str) -> None:
    with pytest.raises(AssertionError):
        check_bucket_policy(loosen(resources(), BUCKET_POLICY_LOOSENINGS[name]))


# -- the role's S3 and KMS grants -------------------------------------------------------------


def role_statements(found: Resources) -> list[dict[str, Json]]:
    policy = found["BridgeRolePolicy"]["Properties"]
    assert policy["RoleName"] == "<BridgeRole>"
    statements: list[dict[str, Json]] = policy["PolicyDocument"]["Statement"]
    return statements


ROLE_S3_CASES: Final[list[tuple[str, Request, bool]]] = [
    ("PutObject under the prefix", s3("s3:PutObject"), True),
    ("GetObject under the prefix (presigned URL)", s3("s3:GetObject"), True),
    ("AbortMultipartUpload under the prefix", s3("s3:AbortMultipartUpload"), True),
    ("DeleteObject under the prefix", s3("s3:DeleteObject"), False),
    ("PutObjectAcl under the prefix", s3("s3:PutObjectAcl"), False),
    ("PutObject outside the prefix", s3("s3:PutObject", f"{BUCKET_ARN}/other/x.json"), False),
    ("PutObject at the bucket's root", s3("s3:PutObject", f"{BUCKET_ARN}/x.json"), False),
    ("ListBucket", s3("s3:ListBucket", BUCKET_ARN), False),
    ("ListBucketMultipartUploads", s3("s3:ListBucketMultipartUploads", BUCKET_ARN), False),
    ("PutBucketPolicy", s3("s3:PutBucketPolicy", BUCKET_ARN), False),
    ("PutLifecycleConfiguration", s3("s3:PutLifecycleConfiguration", BUCKET_ARN), False),
    ("PutObject in another bucket", s3("s3:PutObject", f"arn:aws:s3:::other/{PREFIX}x"), False),
    (
        "PutObject in a bucket named like this one",
        s3("s3:PutObject", f"{BUCKET_ARN}-copy/{PREFIX}x.json"),
        False,
    ),
]
ROLE_KMS_CASES: Final[list[tuple[str, Request, bool]]] = [
    ("GenerateDataKey through S3 for the bucket", kms("kms:GenerateDataKey"), True),
    ("Decrypt through S3 for the bucket", kms("kms:Decrypt"), True),
    ("GenerateDataKey directly", kms("kms:GenerateDataKey", via=None), False),
    (
        "Decrypt through S3 for another bucket",
        kms("kms:Decrypt", bucket_arn="arn:aws:s3:::x"),
        False,
    ),
    ("Decrypt through S3 without a context", kms("kms:Decrypt", bucket_arn=None), False),
    ("Encrypt through S3", kms("kms:Encrypt"), False),
    ("ReEncrypt through S3", kms("kms:ReEncryptFrom"), False),
    ("Decrypt through S3 with another key", kms("kms:Decrypt", resource=OTHER_KEY), False),
]


def _through_s3(request: Request) -> bool:
    return (
        str(request["action"]).startswith("s3:")
        or request["context"].get("kms:ViaService") == S3_VIA
    )


def check_role_s3_grant(found: Resources) -> None:
    """Only PutObject, AbortMultipartUpload and GetObject, only on bucket/okta-bridge/*."""
    statements = role_statements(found)
    for label, request, allowed in ROLE_S3_CASES:
        assert (decide(statements, request) == "allow") is allowed, label
    granted = {a for s in statements for a in as_list(s["Action"]) if a.startswith("s3:")}
    assert granted == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"}
    resources_named = {
        r
        for s in statements
        if "s3:PutObject" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }
    assert resources_named == {f"{BUCKET_ARN}/{PREFIX}*"}


def check_role_kms_grant(found: Resources) -> None:
    """The key through S3 only for this bucket (the other kms statements are for Secrets
    Manager and SQS and never match a request through S3)."""
    statements = role_statements(found)
    for label, request, allowed in ROLE_KMS_CASES:
        assert (decide(statements, request) == "allow") is allowed, label


def check_key_policy_s3(found: Resources) -> None:
    """The key policy admits the function's role (and nobody else) through S3 for this
    bucket only."""
    statements = found["BridgeKey"]["Properties"]["KeyPolicy"]["Statement"]
    through_s3 = [
        s
        for s in statements
        if "Condition" in s and S3_VIA in json.dumps(s["Condition"].get("StringEquals", {}))
    ]
    assert [s["Sid"] for s in through_s3] == ["FunctionEncryptsAnswersThroughS3"]
    for label, request, allowed in ROLE_KMS_CASES:
        if request["resource"] != KEY_ARN:
            continue  # a key policy is attached to its key: another key is not its business
        assert (decide(statements, request) == "allow") is allowed, label
    other = kms("kms:GenerateDataKey", principal=OTHER_ROLE)
    assert decide(statements, other) == "implicit", "another role of the account through S3"


ROLE_LOOSENINGS: Final[
    dict[str, tuple[Callable[[Resources], object], Callable[[Resources], object]]]
] = {
    "the whole bucket": (
        check_role_s3_grant,
        lambda r: _role_sid(r, "WriteAndShareAnswersUnderTheDeliveryPrefix").update(
            Resource=f"{BUCKET_ARN}/*"
        ),
    ),
    "the bucket ARN itself": (
        check_role_s3_grant,
        lambda r: _role_sid(r, "WriteAndShareAnswersUnderTheDeliveryPrefix").update(
            Resource=[f"{BUCKET_ARN}/{PREFIX}*", BUCKET_ARN]
        ),
    ),
    "any bucket": (
        check_role_s3_grant,
        lambda r: _role_sid(r, "WriteAndShareAnswersUnderTheDeliveryPrefix").update(
            Resource=f"arn:aws:s3:::*/{PREFIX}*"
        ),
    ),
    "delete": (
        check_role_s3_grant,
        lambda r: _role_sid(r, "WriteAndShareAnswersUnderTheDeliveryPrefix")["Action"].append(
            "s3:DeleteObject"
        ),
    ),
    "list": (
        check_role_s3_grant,
        lambda r: role_statements(r).append(
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN}
        ),
    ),
    "s3:*": (
        check_role_s3_grant,
        lambda r: _role_sid(r, "WriteAndShareAnswersUnderTheDeliveryPrefix").update(Action="s3:*"),
    ),
    "kms without ViaService": (
        check_role_kms_grant,
        lambda r: _role_sid(r, "EncryptAnswersThroughS3")["Condition"]["StringEquals"].pop(
            "kms:ViaService"
        ),
    ),
    "kms for any bucket": (
        check_role_kms_grant,
        lambda r: _role_sid(r, "EncryptAnswersThroughS3")["Condition"]["StringEquals"].pop(
            "kms:EncryptionContext:aws:s3:arn"
        ),
    ),
    "key policy without ViaService": (
        check_key_policy_s3,
        lambda r: _key_sid(r, "FunctionEncryptsAnswersThroughS3")["Condition"]["StringEquals"].pop(
            "kms:ViaService"
        ),
    ),
    "key policy for any bucket": (
        check_key_policy_s3,
        lambda r: _key_sid(r, "FunctionEncryptsAnswersThroughS3")["Condition"]["StringEquals"].pop(
            "kms:EncryptionContext:aws:s3:arn"
        ),
    ),
    "key policy for any role": (
        check_key_policy_s3,
        lambda r: _key_sid(r, "FunctionEncryptsAnswersThroughS3")["Condition"].pop("ArnEquals"),
    ),
}


def _role_sid(found: Resources, sid: str) -> dict[str, Json]:
    (statement,) = [s for s in role_statements(found) if s.get("Sid") == sid]
    return statement


def _key_sid(found: Resources, sid: str) -> dict[str, Json]:
    statements = found["BridgeKey"]["Properties"]["KeyPolicy"]["Statement"]
    (statement,) = [s for s in statements if s.get("Sid") == sid]
    return statement  # type: ignore[no-any-return]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_role_writes_and_reads_only_under_the_prefix(scenario: str) -> None:
    check_role_s3_grant(resources(scenario))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_role_uses_the_key_only_through_s3_for_this_bucket(scenario: str) -> None:
    check_role_kms_grant(resources(scenario))
    check_key_policy_s3(resources(scenario))


@pytest.mark.parametrize("name", sorted(ROLE_LOOSENINGS))
def test_the_grant_checks_fail_when_loosened(name: str) -> None:
    check, edit = ROLE_LOOSENINGS[name]
    with pytest.raises(AssertionError):
        check(loosen(resources(), edit))


def test_the_s3_requests_of_the_cases_are_through_s3() -> None:
    """The KMS cases the key policy must refuse are refused for their condition, not because
    the request is malformed."""
    assert all(_through_s3(r) for label, r, _ in ROLE_KMS_CASES if "directly" not in label)


# -- the function's variables -----------------------------------------------------------------


def parsed(variables: Mapping[str, str]) -> Settings:
    """The function's variables as the code reads them (the CA bundle file exists only in the
    package, so it is left out)."""
    return Settings.from_env(
        {"BRIDGE_SECRET_ID": "s", **{k: v for k, v in variables.items() if k != "BRIDGE_CA_BUNDLE"}}
    )


def check_delivery_environment(found: Resources) -> None:
    """The function writes to the stack's bucket, under the prefix the role may write, with
    the bucket's default key (so the bucket policy's key check admits it)."""
    variables = found["BridgeFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["BRIDGE_DELIVERY_BUCKET"] == BUCKET
    prefix = variables["BRIDGE_DELIVERY_PREFIX"]
    granted = _role_sid(found, "WriteAndShareAnswersUnderTheDeliveryPrefix")["Resource"]
    assert granted == f"{BUCKET_ARN}/{prefix}*"
    encryption = found["DeliveryBucket"]["Properties"]["BucketEncryption"]
    default_key = encryption["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    assert variables.get("BRIDGE_DELIVERY_KMS_KEY") == default_key["KMSMasterKeyID"] == KEY_ARN
    settings = parsed(variables)
    assert settings.delivery.enabled
    assert (settings.delivery.bucket, settings.delivery.prefix) == (BUCKET, prefix)


ENV_LOOSENINGS: Final[dict[str, Callable[[Resources], object]]] = {
    "another prefix": lambda r: r["BridgeFunction"]["Properties"]["Environment"][
        "Variables"
    ].update(BRIDGE_DELIVERY_PREFIX="exports/"),
    "another bucket": lambda r: r["BridgeFunction"]["Properties"]["Environment"][
        "Variables"
    ].update(BRIDGE_DELIVERY_BUCKET="some-other-bucket"),
    "no key": lambda r: r["BridgeFunction"]["Properties"]["Environment"]["Variables"].pop(
        "BRIDGE_DELIVERY_KMS_KEY"
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_function_delivers_to_the_bucket_under_the_granted_prefix(scenario: str) -> None:
    check_delivery_environment(resources(scenario))


@pytest.mark.parametrize("name", sorted(ENV_LOOSENINGS))
def test_the_environment_check_fails_when_loosened(name: str) -> None:
    with pytest.raises(AssertionError):
        check_delivery_environment(loosen(resources(), ENV_LOOSENINGS[name]))


def test_the_options_scenario_reaches_the_settings() -> None:
    """The template's values parse as the code's settings (routes with methods and the flag)."""
    variables = resources("options")["BridgeFunction"]["Properties"]["Environment"]["Variables"]
    settings = parsed(variables)
    assert settings.routes() is not None
    assert [(r.method, r.pattern) for r in settings.allowed_routes or ()] == [
        ("GET", "/v1/items/**"),
        ("POST", "/v1/search"),
        ("POST", "/v1/orders"),
    ]
    assert (settings.next_link, settings.max_pages) == ("/links/next", 20)
    assert (settings.delivery.url_seconds, settings.delivery.max_bytes) == (900, 200_000_000)


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"AllowedRoutes": "GET /v1/items/**, POST /v1/search, POST /graphql"}, 0),
        ({"AllowedRoutes": "POST /v1/orders idempotency-key,DELETE /v1/orders/*"}, 0),
        ({"AllowedRoutes": "HEAD /v1/items"}, 1),
        ({"AllowedRoutes": "POST"}, 1),
        ({"AllowedRoutes": "POST v1/search"}, 1),
        ({"AllowedRoutes": "POST /v1/search retry"}, 1),
        ({"AllowedRoutes": "POST /v1/search\nGET /x"}, 1),
        ({"NextLink": "/links/next"}, 0),
        ({"NextLink": "links/next"}, 1),
        ({"NextLink": "/" + "n" * 200}, 1),
        ({"MaxPages": "0"}, 1),
        ({"MaxPages": "10001"}, 1),
        ({"DeliveryUrlSeconds": "0"}, 1),
        ({"DeliveryUrlSeconds": "3601"}, 1),
        ({"DeliveryUrlSeconds": "3600", "MaxPages": "10000"}, 0),
        ({"MaxDeliveryBytes": "0"}, 1),
        ({"MaxDeliveryBytes": "50000000001"}, 1),
        ({"S3PrefixListId": "pl-6da54004"}, 0),
        ({"S3PrefixListId": "sg-6da54004"}, 1),
        ({"CreateS3Endpoint": "yes"}, 1),
    ],
)
def test_the_new_parameters_refuse_bad_values(values: dict[str, str], refused: int) -> None:
    template = _translated("defaults")
    errors = parameter_errors(template, parameter_values(template, values))
    assert len(errors) == refused, errors


@pytest.mark.parametrize(
    "routes",
    [
        "GET /v1/items/**, POST /v1/search, POST /graphql, POST /v1/orders idempotency-key",
        "PUT /v1/items/*,PATCH /v1/items/* idempotency-key,DELETE /v1/items/*",
    ],
)
def test_routes_the_parameter_admits_are_routes_the_code_parses(routes: str) -> None:
    template = _translated("defaults")
    assert parameter_errors(template, parameter_values(template, {"AllowedRoutes": routes})) == []
    parsed = Settings.from_env({"BRIDGE_SECRET_ID": "s", "BRIDGE_ALLOWED_ROUTES": routes})
    assert len(parsed.allowed_routes or ()) == routes.count(",") + 1


@pytest.mark.parametrize(
    ("values", "failed"),
    [
        ({"CreateS3Endpoint": "true"}, ["NetworkOptionsNeedAVpc", "S3EndpointParameters"]),
        ({"S3PrefixListId": "pl-6da54004"}, ["NetworkOptionsNeedAVpc"]),
        (
            {
                "VpcId": "vpc-0123456789abcdef0",
                "SubnetIds": "subnet-0aaa1111bbbb2222c",
                "CreateS3Endpoint": "true",
            },
            ["S3EndpointParameters"],
        ),
    ],
)
def test_the_s3_network_options_need_a_vpc_and_route_tables(
    values: dict[str, str], failed: list[str]
) -> None:
    template = _translated("defaults")
    failures = Evaluator(template, parameter_values(template, values)).failed_rules()
    assert [failure.split(":")[0] for failure in failures] == failed


def test_the_s3_endpoint_admits_only_the_functions_delivery_requests() -> None:
    found = resources("vpc-s3-endpoint")
    endpoint = found["S3Endpoint"]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.s3"
    assert endpoint["RouteTableIds"] == SCENARIOS["vpc-s3-endpoint"]["RouteTableIds"].split(",")
    statements = endpoint["PolicyDocument"]["Statement"]
    assert decide(statements, s3("s3:PutObject")) == "allow"
    assert decide(statements, s3("s3:GetObject")) == "allow"
    assert decide(statements, s3("s3:DeleteObject")) == "implicit"
    assert decide(statements, s3("s3:PutObject", f"{BUCKET_ARN}/x")) == "implicit"
    assert decide(statements, s3("s3:GetObject", principal=OTHER_ROLE)) == "implicit"
    egress = found["BridgeHttpsToS3"]["Properties"]
    assert (egress["FromPort"], egress["ToPort"], egress["DestinationPrefixListId"]) == (
        443,
        443,
        "pl-6da54004",
    )


# -- the dashboard ----------------------------------------------------------------------------


def check_dashboard(found: Resources, namespace: str) -> None:
    """Each new metric has a widget line in the bridge's namespace for this function."""
    body = json.loads(found["BridgeDashboard"]["Properties"]["DashboardBody"])
    lines = [
        [item for item in row if not isinstance(item, dict)]
        for widget in body["widgets"]
        for row in widget["properties"].get("metrics", [])
    ]
    for metric in NEW_METRICS:
        assert [namespace, metric, FUNCTION, "<BridgeFunction>"] in lines, metric


@pytest.mark.parametrize("scenario", ["defaults", "options"])
def test_the_dashboard_shows_pages_truncations_and_deliveries(scenario: str) -> None:
    assert set(NEW_METRICS) <= set(METRICS), "the contract's metric names"
    namespace = parameter_values(_translated(scenario), SCENARIOS[scenario])["MetricsNamespace"]
    check_dashboard(resources(scenario), namespace)


def test_the_dashboard_check_fails_without_a_metric() -> None:
    def drop_deliveries(found: Resources) -> None:
        properties = found["BridgeDashboard"]["Properties"]
        properties["DashboardBody"] = properties["DashboardBody"].replace(
            '"Deliveries"', '"Delivered"'
        )

    with pytest.raises(AssertionError):
        check_dashboard(loosen(resources(), drop_deliveries), "OktaBridge")


def test_the_stack_outputs_the_bucket() -> None:
    assert evaluator("defaults").outputs()["DeliveryBucketName"] == "<DeliveryBucket>"

from __future__ import annotations

import json

import pytest

from okta_bridge.config import AwsSettings, Settings
from okta_bridge.errors import SecretError
from okta_bridge.secret.credentials import parse_secret

SETTINGS = Settings(secret_id="prod/okta_api_creds")
DESIGN = {
    "client_id": "0oa1example",
    "client_secret": "s3cr3t-value-never-shown",
    "token_url": "https://yourcompany.okta.com/oauth2/default/v1/token",
    "api_endpoint": "https://internal-api.yourcompany.com/v1/data",
}


def parse(data: object, settings: Settings = SETTINGS) -> object:
    return parse_secret(json.dumps(data), settings)


def test_the_design_secret_works_as_is() -> None:
    creds = parse_secret(json.dumps(DESIGN), SETTINGS, version_id="v1")
    assert creds.client_id == "0oa1example"
    assert creds.auth_method == "client_secret_basic"
    assert creds.grant_type == "client_credentials"
    assert creds.scopes == ("api.access",)
    assert creds.version_id == "v1"
    assert "s3cr3t" not in repr(creds)
    assert creds.sensitive_values() == ("s3cr3t-value-never-shown",)


def test_environment_overrides_the_secret() -> None:
    settings = Settings(
        secret_id="x",
        token_url="https://other.okta.com/oauth2/aus1/v1/token",
        api_base_url="https://api2.corp/v2/data",
        scopes=("a", "b"),
        auth_method="client_secret_post",
    )
    creds = parse_secret(json.dumps({**DESIGN, "scopes": ["ignored"]}), settings)
    assert creds.token_url == "https://other.okta.com/oauth2/aus1/v1/token"
    assert creds.api_endpoint == "https://api2.corp/v2/data"
    assert creds.scopes == ("a", "b")
    assert creds.auth_method == "client_secret_post"


def test_private_key_implies_private_key_jwt() -> None:
    data = {k: v for k, v in DESIGN.items() if k != "client_secret"}
    creds = parse_secret(json.dumps({**data, "private_key": "PEM", "key_id": "k1"}), SETTINGS)
    assert creds.auth_method == "private_key_jwt"
    assert creds.key_id == "k1"
    assert "PEM" not in repr(creds)


def test_password_grant_adds_openid_and_hides_password() -> None:
    creds = parse_secret(
        json.dumps({**DESIGN, "username": "svc", "password": "hunter2-password", "scopes": "x y"}),
        SETTINGS,
    )
    assert creds.grant_type == "password"
    assert creds.scopes == ("openid", "x", "y")
    assert "hunter2" not in repr(creds)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({k: v for k, v in DESIGN.items() if k != "client_id"}, "client_id"),
        ({k: v for k, v in DESIGN.items() if k != "token_url"}, "token_url"),
        ({k: v for k, v in DESIGN.items() if k != "api_endpoint"}, "api_endpoint"),
        ({k: v for k, v in DESIGN.items() if k != "client_secret"}, "client_secret"),
        ({**DESIGN, "token_url": "http://plain.example/token"}, "token_url"),
        ({**DESIGN, "client_id": 42}, "client_id"),
        ({**DESIGN, "auth_method": "none"}, "auth_method"),
        ({**DESIGN, "auth_method": "private_key_jwt"}, "private_key"),
        ({**DESIGN, "username": "only-user"}, "password"),
        ({**DESIGN, "scopes": {"a": 1}}, "scopes"),
    ],
)
def test_bad_secrets_name_the_key_never_the_value(data: dict[str, object], named: str) -> None:
    with pytest.raises(SecretError) as err:
        parse(data)
    assert err.value.code == "SECRET_INVALID"
    assert named in err.value.message
    assert "s3cr3t" not in err.value.message


@pytest.mark.parametrize("raw", ["not json s3cr3t", "[1, 2]", "null"])
def test_non_object_secrets_are_refused_without_echo(raw: str) -> None:
    with pytest.raises(SecretError) as err:
        parse_secret(raw, SETTINGS)
    assert err.value.code == "SECRET_INVALID"
    assert "s3cr3t" not in str(err.value)


# -- a key held in KMS -----------------------------------------------------------------------

KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS = {
    **{k: v for k, v in DESIGN.items() if k != "client_secret"},
    "kms_key_id": KEY_ARN,
    "key_id": "kid-1",
}


@pytest.mark.parametrize(
    "key",
    [
        KEY_ARN,
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/okta-bridge-signing",
        "arn:aws:kms:eu-west-1:111122223333:alias/okta-bridge-signing",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_a_kms_key_makes_private_key_jwt_with_nothing_sensitive(key: str) -> None:
    creds = parse({**KMS, "kms_key_id": key})
    assert (creds.auth_method, creds.kms_key_id, creds.key_id) == ("private_key_jwt", key, "kid-1")
    assert creds.key_algorithm == "RS256"  # as Okta's SDKs sign by default
    assert creds.private_key is None
    assert creds.sensitive_values() == ()  # there is no credential in the secret at all


def test_es256_is_chosen_by_key_algorithm() -> None:
    assert parse({**KMS, "key_algorithm": "ES256"}).key_algorithm == "ES256"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"private_key": "-----BEGIN PRIVATE KEY-----"}, "both 'private_key' and 'kms_key_id'"),
        ({"key_id": None}, "'kms_key_id' needs 'key_id'"),
        ({"key_algorithm": "PS256"}, "'key_algorithm' must be one of RS256, ES256"),
        ({"key_algorithm": "none"}, "'key_algorithm'"),
        ({"kms_key_id": "alias/x\nHost: evil"}, "'kms_key_id' must be a KMS key ARN"),
        ({"kms_key_id": "arn:aws:kms:eu-west-1:1:key/x"}, "'kms_key_id' must be a KMS key ARN"),
        ({"kms_key_id": "key/../../etc"}, "'kms_key_id' must be a KMS key ARN"),
        ({"kms_key_id": 7}, "'kms_key_id' must be a string"),
    ],
)
def test_a_bad_kms_secret_names_the_key_at_fault(change: dict[str, object], named: str) -> None:
    data = {k: v for k, v in {**KMS, **change}.items() if v is not None}
    with pytest.raises(SecretError) as refused:
        parse(data)
    assert refused.value.code == "SECRET_INVALID"
    assert named in refused.value.message
    assert "evil" not in refused.value.message


def test_a_kms_key_with_a_secret_method_still_needs_the_client_secret() -> None:
    with pytest.raises(SecretError, match="client_secret_basic needs the secret key"):
        parse({**KMS, "auth_method": "client_secret_basic"})


def test_a_key_in_another_region_is_refused_before_any_call() -> None:
    settings = Settings(secret_id="x", aws=AwsSettings(region="us-east-1"))
    with pytest.raises(SecretError, match="names a key in eu-west-1, but the function runs in"):
        parse_secret(json.dumps(KMS), settings)
    assert parse_secret(
        json.dumps(KMS), Settings(secret_id="x", aws=AwsSettings(region="eu-west-1"))
    )
    alias = {**KMS, "kms_key_id": "alias/anywhere"}  # an alias has no region: KMS resolves it
    assert parse_secret(json.dumps(alias), settings).kms_key_id == "alias/anywhere"

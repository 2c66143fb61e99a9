"""The Okta Management API and org authorization server of the local Okta, over real TLS.

Each rule credential rotation depends on gets one test: the two-secret limit, deleting only
inactive credentials, keeping one active, both active secrets working, key validation, the
401/403 answers, which authorization server may grant ``okta.*`` scopes, and password changes.
Every test works on apps and users of its own, so the shared stack's clients stay untouched.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import urllib3
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.okta.server import CLIENT_ASSERTION_TYPE, OktaApiError, public_jwk
from okta_bridge_dev.emulators.stack import ADMIN_CLIENT_ID, LocalStack

pytestmark = pytest.mark.integration

TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)
ALL_SCOPES = "okta.apps.read okta.apps.manage okta.users.read okta.users.manage"
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MAX_SECRETS = "You've reached the maximum number of client secrets per client."
BAD_SECRET = "The client secret supplied for a confidential client is invalid."
REQUIREMENTS = "password: Password requirements were not met."


@pytest.fixture(scope="module")
def pool(stack: LocalStack) -> Iterator[urllib3.PoolManager]:
    context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
    manager = urllib3.PoolManager(ssl_context=context, retries=False, timeout=TIMEOUT)
    yield manager
    manager.clear()


@pytest.fixture(autouse=True)
def _okta_settings(stack: LocalStack) -> Iterator[None]:
    okta = stack.okta
    lifetime = okta.token_lifetime
    yield
    okta.token_lifetime = lifetime
    okta.management_rate_limit = None
    okta.reset_rate_limit()
    assert okta.errors == []


# -- helpers -------------------------------------------------------------------------------


def secret_app(stack: LocalStack, **options: Any) -> tuple[str, str]:
    """A new client_secret_post app with one secret: (client_id, secret)."""
    client_id, secret = f"app-{secrets.token_hex(4)}", secrets.token_urlsafe(30)
    stack.okta.register_client(
        client_id, auth_method="client_secret_post", client_secret=secret, **options
    )
    return client_id, secret


def ec_key(kid: str, curve: ec.EllipticCurve | None = None) -> tuple[Any, dict[str, Any]]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    alg = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    return key, public_jwk(key, kid=kid, alg=alg)


def jwt_app(stack: LocalStack) -> tuple[str, Any]:
    """A new private_key_jwt app with one ES256 key (kid "k1"): (client_id, private key)."""
    client_id = f"jwt-{secrets.token_hex(4)}"
    key, jwk = ec_key("k1")
    stack.okta.register_client(client_id, auth_method="private_key_jwt", jwks=[jwk])
    return client_id, key


def assertion(client_id: str, key: Any, kid: str, audience: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 300}
    claims["jti"] = secrets.token_urlsafe(12)
    token = jwt.encode(claims, key, "ES256", headers={"kid": kid})
    return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": token}


def post_form(pool: urllib3.PoolManager, url: str, fields: dict[str, str]) -> Any:
    return pool.request("POST", url, fields=fields, encode_multipart=False)


def org_token(pool: urllib3.PoolManager, stack: LocalStack, scope: str = ALL_SCOPES) -> str:
    """A Management API token for the stack's admin app."""
    value = stack.admin_secret_value()
    fields = {"grant_type": "client_credentials", "scope": scope}
    fields |= assertion(
        value["client_id"], value["private_key"], value["key_id"], stack.okta.org_token_url
    )
    answer = post_form(pool, stack.okta.org_token_url, fields)
    assert answer.status == 200, answer.data
    token: str = answer.json()["access_token"]
    return token


def custom_token(pool: urllib3.PoolManager, stack: LocalStack, client_id: str, secret: str) -> Any:
    """A client_secret_post request to the custom authorization server."""
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    fields |= {"client_id": client_id, "client_secret": secret}
    return post_form(pool, stack.okta.token_url, fields)


def call(
    pool: urllib3.PoolManager,
    stack: LocalStack,
    method: str,
    path: str,
    token: str | None,
    *,
    body: Any = None,
) -> Any:
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    data = json.dumps(body) if body is not None else None
    return pool.request(method, stack.okta.base_url + path, headers=headers, body=data)


def assert_okta_error(answer: Any, status: int, code: str, cause: str | None = None) -> str:
    """Check Okta's error body; return its errorSummary."""
    body = answer.json()
    assert (answer.status, body["errorCode"]) == (status, code), body
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    if cause is not None:
        assert [c["errorSummary"] for c in body["errorCauses"]] == [cause]
    summary: str = body["errorSummary"]
    return summary


def assert_oauth_error(answer: Any, status: int, error: str, description: str) -> None:
    body = answer.json()
    assert (answer.status, body["error"], body["error_description"]) == (
        status,
        error,
        description,
    )


# -- client secrets ------------------------------------------------------------------------


def test_a_created_secret_is_shown_once_then_only_masked(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    app, first = secret_app(stack)
    token = org_token(pool, stack)
    created = call(pool, stack, "POST", f"/api/v1/apps/{app}/credentials/secrets", token, body={})
    assert created.status == 201, created.data
    body = created.json()
    assert (body["id"][:3], body["status"], set(body["_links"])) == (
        "ocs",
        "ACTIVE",
        {"deactivate"},
    )
    assert ISO_8601.fullmatch(body["created"])
    assert ISO_8601.fullmatch(body["lastUpdated"])
    assert body["secret_hash"]
    listed = call(pool, stack, "GET", f"/api/v1/apps/{app}/credentials/secrets", token).json()
    generated = body["client_secret"]
    assert [s["client_secret"] for s in listed] == [
        f"{first[:6]}......{first[-6:]}",
        f"{generated[:6]}......{generated[-6:]}",
    ]
    assert stack.okta.client_secrets(app)[1].value == generated
    assert generated in stack.all_secret_material()
    assert (stack.okta.counts["org_token"], stack.okta.counts["mgmt_secrets"]) == (1, 2)


def test_a_third_secret_is_refused(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    app, _ = secret_app(stack)
    token = org_token(pool, stack)
    path = f"/api/v1/apps/{app}/credentials/secrets"
    assert call(pool, stack, "POST", path, token, body={"status": "INACTIVE"}).status == 201
    third = call(
        pool, stack, "POST", path, token, body={"client_secret": secrets.token_urlsafe(20)}
    )
    summary = assert_okta_error(third, 400, "E0000001", MAX_SECRETS)
    assert summary.startswith("Api validation failed: ")
    assert len(stack.okta.client_secrets(app)) == 2


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ({"client_secret": "too-short"}, "must be between 14 and 100 characters"),
        ({"client_secret": "x" * 101}, "must be between 14 and 100 characters"),
        ({"client_secret": "non-ascii-secret-\u00e9\u00e9"}, "printable ASCII"),
        ({"status": "PAUSED"}, "ACTIVE or INACTIVE"),
    ],
)
def test_secret_values_and_statuses_are_validated(
    pool: urllib3.PoolManager, stack: LocalStack, body: dict[str, str], cause: str
) -> None:
    app, _ = secret_app(stack)
    answer = call(
        pool,
        stack,
        "POST",
        f"/api/v1/apps/{app}/credentials/secrets",
        org_token(pool, stack),
        body=body,
    )
    assert_okta_error(answer, 400, "E0000001")
    assert cause in answer.json()["errorCauses"][0]["errorSummary"]


def test_a_private_key_jwt_app_gets_no_secret(stack: LocalStack) -> None:
    app, _ = jwt_app(stack)
    with pytest.raises(OktaApiError) as refused:
        stack.okta.add_client_secret(app)
    assert (refused.value.status, refused.value.code) == (400, "E0000001")
    assert stack.okta.client_secrets(app) == []


def test_only_inactive_secrets_can_be_deleted(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    app, _ = secret_app(stack)
    old = stack.okta.client_secrets(app)[0].id
    stack.okta.add_client_secret(app)
    token = org_token(pool, stack)
    path = f"/api/v1/apps/{app}/credentials/secrets/{old}"
    assert_okta_error(call(pool, stack, "DELETE", path, token), 400, "E0000001")
    deactivated = call(pool, stack, "POST", f"{path}/lifecycle/deactivate", token)
    assert deactivated.json()["status"] == "INACTIVE"
    assert set(deactivated.json()["_links"]) == {"activate", "delete"}
    deleted = call(pool, stack, "DELETE", path, token)
    assert (deleted.status, deleted.data) == (204, b"")
    summary = assert_okta_error(call(pool, stack, "GET", path, token), 404, "E0000007")
    assert summary == f"Not found: Resource not found: {old} (ClientSecret)"


def test_the_only_active_secret_cannot_be_deactivated(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    app, _ = secret_app(stack)
    stack.okta.add_client_secret(app, status="INACTIVE")
    only_active = stack.okta.client_secrets(app)[0].id
    path = f"/api/v1/apps/{app}/credentials/secrets/{only_active}/lifecycle/deactivate"
    assert_okta_error(call(pool, stack, "POST", path, org_token(pool, stack)), 400, "E0000001")
    assert stack.okta.client_secrets(app)[0].status == "ACTIVE"


def test_both_active_secrets_authenticate(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    app, first = secret_app(stack)
    second = stack.okta.add_client_secret(app).value
    assert custom_token(pool, stack, app, first).status == 200
    assert custom_token(pool, stack, app, second).status == 200


def test_an_inactive_secret_is_refused(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    app, first = secret_app(stack)
    stack.okta.add_client_secret(app)
    old = stack.okta.client_secrets(app)[0].id
    path = f"/api/v1/apps/{app}/credentials/secrets/{old}/lifecycle/deactivate"
    assert call(pool, stack, "POST", path, org_token(pool, stack)).status == 200
    assert_oauth_error(custom_token(pool, stack, app, first), 401, "invalid_client", BAD_SECRET)


def test_unknown_apps_are_not_found(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    token = org_token(pool, stack)
    for kind in ("secrets", "jwks"):
        answer = call(pool, stack, "GET", f"/api/v1/apps/0oaNOPE/credentials/{kind}", token)
        summary = assert_okta_error(answer, 404, "E0000007")
        assert summary == "Not found: Resource not found: 0oaNOPE (AppInstance)"


# -- JWKS ----------------------------------------------------------------------------------


def test_kids_are_unique_within_an_app(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    app, _ = jwt_app(stack)
    token = org_token(pool, stack)
    path = f"/api/v1/apps/{app}/credentials/jwks"
    added = call(pool, stack, "POST", path, token, body=ec_key("k2")[1])
    assert added.status == 201, added.data
    body = added.json()
    assert body["id"].startswith("pks")
    assert (body["kid"], body["kty"], body["status"], body["crv"]) == (
        "k2",
        "EC",
        "ACTIVE",
        "P-256",
    )
    assert {"x", "y", "use", "alg", "created", "lastUpdated"} <= set(body)
    assert_okta_error(call(pool, stack, "POST", path, token, body=ec_key("k2")[1]), 400, "E0000001")
    assert [k.kid for k in stack.okta.client_keys(app)] == ["k1", "k2"]
    assert stack.okta.counts["mgmt_jwks"] == 2


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_ec_keys_on_the_three_nist_curves_are_accepted(
    pool: urllib3.PoolManager, stack: LocalStack, curve: ec.EllipticCurve
) -> None:
    app, _ = jwt_app(stack)
    path = f"/api/v1/apps/{app}/credentials/jwks"
    answer = call(pool, stack, "POST", path, org_token(pool, stack), body=ec_key("k2", curve)[1])
    assert answer.status == 201, answer.data


def test_rsa_keys_need_2048_bits(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    app, _ = jwt_app(stack)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    jwk = public_jwk(small, kid="small", alg="RS256")
    path = f"/api/v1/apps/{app}/credentials/jwks"
    answer = call(pool, stack, "POST", path, org_token(pool, stack), body=jwk)
    assert_okta_error(answer, 400, "E0000001", "n: RSA keys must be at least 2048 bits.")


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
def test_private_key_members_are_refused(
    pool: urllib3.PoolManager, stack: LocalStack, member: str
) -> None:
    app, _ = jwt_app(stack)
    leaky = ec_key("leak")[1] | {member: "AQAB"}
    path = f"/api/v1/apps/{app}/credentials/jwks"
    answer = call(pool, stack, "POST", path, org_token(pool, stack), body=leaky)
    assert_okta_error(answer, 400, "E0000001")
    assert [k.kid for k in stack.okta.client_keys(app)] == ["k1"]


def test_an_inactive_key_is_refused_and_the_last_active_one_stays(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    app, old_key = jwt_app(stack)
    new_key, jwk = ec_key("k2")
    token = org_token(pool, stack)
    base = f"/api/v1/apps/{app}/credentials/jwks"
    new_id = call(pool, stack, "POST", base, token, body=jwk).json()["id"]
    old_id = stack.okta.client_keys(app)[0].id
    assert call(pool, stack, "POST", f"{base}/{old_id}/lifecycle/deactivate", token).status == 200
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    refused = post_form(
        pool, stack.okta.token_url, fields | assertion(app, old_key, "k1", stack.okta.token_url)
    )
    assert_oauth_error(refused, 401, "invalid_client", "The client_assertion JWT kid is invalid.")
    accepted = post_form(
        pool, stack.okta.token_url, fields | assertion(app, new_key, "k2", stack.okta.token_url)
    )
    assert accepted.status == 200, accepted.data
    last = call(pool, stack, "POST", f"{base}/{new_id}/lifecycle/deactivate", token)
    assert_okta_error(last, 400, "E0000001")
    assert_okta_error(call(pool, stack, "DELETE", f"{base}/{new_id}", token), 400, "E0000001")
    assert call(pool, stack, "DELETE", f"{base}/{old_id}", token).status == 204


# -- authentication of management calls ----------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "SSWS whatever"])
def test_a_missing_or_unknown_token_is_401(
    pool: urllib3.PoolManager, stack: LocalStack, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = pool.request(
        "GET",
        f"{stack.okta.base_url}/api/v1/apps/{ADMIN_CLIENT_ID}/credentials/jwks",
        headers=headers,
    )
    assert assert_okta_error(answer, 401, "E0000011") == "Invalid token provided"
    assert "invalid_token" in answer.headers["WWW-Authenticate"]


def test_an_expired_token_is_401(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    stack.okta.token_lifetime = -60
    token = org_token(pool, stack)
    answer = call(pool, stack, "GET", f"/api/v1/apps/{ADMIN_CLIENT_ID}/credentials/jwks", token)
    assert_okta_error(answer, 401, "E0000011")


def test_a_token_without_the_scope_is_403(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    reader = f"reader-{secrets.token_hex(4)}"
    key, jwk = ec_key("r1")
    stack.okta.register_admin_client(reader, jwks=[jwk], scopes=["okta.apps.read"])
    fields = {"grant_type": "client_credentials", "scope": "okta.apps.read"}
    answer = post_form(
        pool,
        stack.okta.org_token_url,
        fields | assertion(reader, key, "r1", stack.okta.org_token_url),
    )
    token = answer.json()["access_token"]
    path = f"/api/v1/apps/{reader}/credentials/jwks"
    assert call(pool, stack, "GET", path, token).status == 200
    summary = assert_okta_error(
        call(pool, stack, "POST", path, token, body=ec_key("r2")[1]), 403, "E0000006"
    )
    assert summary == "You do not have permission to perform the requested action"
    users = call(pool, stack, "GET", f"/api/v1/users/{quote(reader)}", token)
    assert_okta_error(users, 403, "E0000006")


def test_custom_authorization_server_tokens_are_refused(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    app, secret = secret_app(stack)
    token = custom_token(pool, stack, app, secret).json()["access_token"]
    answer = call(pool, stack, "GET", f"/api/v1/apps/{app}/credentials/secrets", token)
    assert_okta_error(answer, 401, "E0000011")


def test_management_answers_carry_rate_limit_headers(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = org_token(pool, stack)
    stack.okta.management_rate_limit = 1
    stack.okta.reset_rate_limit()
    path = f"/api/v1/apps/{ADMIN_CLIENT_ID}/credentials/jwks"
    first = call(pool, stack, "GET", path, token)
    assert (first.status, first.headers["X-Rate-Limit-Remaining"]) == (200, "0")
    assert int(first.headers["X-Rate-Limit-Reset"]) > time.time()
    assert_okta_error(call(pool, stack, "GET", path, token), 429, "E0000047")


def test_faults_match_management_paths(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    token = org_token(pool, stack)
    stack.okta.inject(Fault(match="/api/v1/apps", status=503, body=b"{}"))
    path = f"/api/v1/apps/{ADMIN_CLIENT_ID}/credentials/jwks"
    assert call(pool, stack, "GET", path, token).status == 503
    assert call(pool, stack, "GET", path, token).status == 200
    assert stack.okta.counts["mgmt_jwks"] == 2


# -- which authorization server grants okta.* scopes ---------------------------------------


def test_a_secret_authenticated_client_gets_no_okta_scopes(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    app, secret = secret_app(stack, scopes=["okta.apps.read"])
    fields = {"grant_type": "client_credentials", "scope": "okta.apps.read"}
    answer = post_form(
        pool, stack.okta.org_token_url, fields | {"client_id": app, "client_secret": secret}
    )
    assert_oauth_error(
        answer,
        401,
        "invalid_client",
        "Client authentication with a client secret is not supported for Okta API scopes; use "
        "private_key_jwt.",
    )


def test_the_org_server_refuses_custom_scopes(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    value = stack.admin_secret_value()
    fields = {"grant_type": "client_credentials", "scope": "okta.apps.read api.access"}
    fields |= assertion(
        ADMIN_CLIENT_ID, value["private_key"], value["key_id"], stack.okta.org_token_url
    )
    answer = post_form(pool, stack.okta.org_token_url, fields)
    assert_oauth_error(
        answer, 400, "invalid_scope", "Custom scopes are not allowed for this request"
    )


def test_the_custom_server_refuses_okta_scopes(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    value = stack.admin_secret_value()
    fields = {"grant_type": "client_credentials", "scope": "okta.apps.read"}
    fields |= assertion(
        ADMIN_CLIENT_ID, value["private_key"], value["key_id"], stack.okta.token_url
    )
    answer = post_form(pool, stack.okta.token_url, fields)
    assert_oauth_error(
        answer, 400, "invalid_scope", "The following scopes are not allowed: okta.apps.read"
    )


def test_the_org_server_wants_its_own_token_url_as_audience(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    value = stack.admin_secret_value()
    fields = {"grant_type": "client_credentials", "scope": "okta.apps.read"}
    fields |= assertion(
        ADMIN_CLIENT_ID, value["private_key"], value["key_id"], stack.okta.token_url
    )
    answer = post_form(pool, stack.okta.org_token_url, fields)
    assert_oauth_error(
        answer,
        401,
        "invalid_client",
        "The audience claim for client_assertion must be the endpoint invoked for the request.",
    )


# -- users and passwords -------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordUser:
    login: str
    password: str
    client_id: str
    client_secret: str


def password_user(stack: LocalStack) -> PasswordUser:
    """A new user on a new password-grant app of its own."""
    login, password = f"svc.{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(18)
    app, secret = secret_app(stack, scopes=["api.access", "openid"], users={login: password})
    return PasswordUser(login, password, app, secret)


def password_grant(
    pool: urllib3.PoolManager, stack: LocalStack, user: PasswordUser, password: str
) -> int:
    fields = {"grant_type": "password", "scope": "openid api.access", "password": password}
    fields |= {"username": user.login, "client_id": user.client_id}
    fields["client_secret"] = user.client_secret
    status: int = post_form(pool, stack.okta.token_url, fields).status
    return status


def change_password(
    pool: urllib3.PoolManager, stack: LocalStack, login: str, old: str, new: str
) -> Any:
    body = {"oldPassword": {"value": old}, "newPassword": {"value": new}}
    path = f"/api/v1/users/{stack.okta.user_id(login)}/credentials/change_password"
    return call(pool, stack, "POST", path, org_token(pool, stack), body=body)


def test_users_are_found_by_id_or_url_encoded_login(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    login = password_user(stack).login
    token = org_token(pool, stack)
    by_login = call(pool, stack, "GET", f"/api/v1/users/{quote(login, safe='')}", token).json()
    assert by_login["id"] == stack.okta.user_id(login) == f"00u{by_login['id'][3:]}"
    assert (by_login["status"], by_login["profile"]["login"]) == ("ACTIVE", login)
    assert by_login["credentials"]["provider"] == {"type": "OKTA", "name": "OKTA"}
    assert ISO_8601.fullmatch(by_login["passwordChanged"])
    by_id = call(pool, stack, "GET", f"/api/v1/users/{by_login['id']}", token).json()
    assert by_id == by_login
    missing = call(pool, stack, "GET", "/api/v1/users/nobody", token)
    assert assert_okta_error(missing, 404, "E0000007").endswith("nobody (User)")
    assert stack.okta.counts["mgmt_users"] == 3


def test_after_a_password_change_only_the_new_password_works(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    user = password_user(stack)
    new = secrets.token_urlsafe(18)
    answer = change_password(pool, stack, user.login, user.password, new)
    assert answer.status == 200, answer.data
    assert answer.json() == {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}}
    assert password_grant(pool, stack, user, user.password) == 400
    assert password_grant(pool, stack, user, new) == 200
    assert stack.okta.user_password(user.login) == new
    assert new in stack.all_secret_material()


@pytest.mark.parametrize(
    ("old", "new", "cause"),
    [
        (
            "wrong-old-password",
            "a-fine-new-password",
            "oldPassword: The credentials provided were incorrect.",
        ),
        (None, None, REQUIREMENTS),  # the new password equals the old one
        (None, "short", REQUIREMENTS),
    ],
)
def test_password_change_rules(
    pool: urllib3.PoolManager, stack: LocalStack, old: str | None, new: str | None, cause: str
) -> None:
    user = password_user(stack)
    login, password = user.login, user.password
    answer = change_password(pool, stack, login, old or password, new or password)
    summary = assert_okta_error(answer, 403, "E0000014", cause)
    assert summary == "Update of credentials failed"
    assert stack.okta.user_password(login) == password


def test_a_directory_mastered_password_cannot_be_changed(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    user = password_user(stack)
    stack.okta.set_user_provider(user.login, "ACTIVE_DIRECTORY", "corp.example.com")
    answer = change_password(pool, stack, user.login, user.password, secrets.token_urlsafe(18))
    assert_okta_error(
        answer,
        403,
        "E0000014",
        "password: Password is mastered by the directory (ACTIVE_DIRECTORY) and cannot be "
        "changed in Okta.",
    )


# -- the stack's admin app -----------------------------------------------------------------


def test_the_admin_secret_is_stored_and_scanned_for_leaks(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    name = stack.store_admin_secret()
    client = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
    try:
        stored = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    finally:
        client.close()
    assert stored == stack.admin_secret_value()
    assert stored["org_url"] == stack.okta.base_url
    token = org_token(pool, stack)
    material = stack.all_secret_material()
    assert stored["private_key"] in material
    assert token in material


def test_a_manual_rotation_leaves_one_active_secret(stack: LocalStack) -> None:
    new = stack.rotate_client_secret("post", "management/post")
    secrets_now = stack.okta.client_secrets("bridge-post")
    assert [(s.status, s.value) for s in secrets_now] == [("ACTIVE", new)]
    assert new not in repr(secrets_now)

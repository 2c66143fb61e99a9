"""The local stack itself, driven over real TLS with urllib3, ssl and boto3 (not the bridge)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.exceptions
import jwt
import pytest
import urllib3
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from okta_bridge.auth.jwk import public_jwk
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.okta.server import CLIENT_ASSERTION_TYPE
from okta_bridge_dev.emulators.pki import LocalCA, server_context
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response
from okta_bridge_dev.emulators.secretsmanager import SecretsManagerServer
from okta_bridge_dev.emulators.servers import TLSServer
from okta_bridge_dev.emulators.stack import KINDS, TOKEN_CACHE_TABLE, LocalStack

pytestmark = pytest.mark.integration

TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)


class EchoServer(TLSServer):
    """The smallest TLSServer: answers every request with its path."""

    def route(self, request: RecordedRequest) -> PathRoute:
        return PathRoute("echo", lambda r: Response.json(200, {"path": r.path, "method": r.method}))


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        yield local


@pytest.fixture(scope="module")
def client_context(stack: LocalStack) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))


@pytest.fixture(scope="module")
def pool(client_context: ssl.SSLContext) -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(ssl_context=client_context, retries=False, timeout=TIMEOUT)
    yield manager
    manager.clear()


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("foreign"), common_name="not trusted CA")


@pytest.fixture(autouse=True)
def _isolated(stack: LocalStack) -> Iterator[None]:
    """Each test starts with zero counts and leaves no fault or setting behind."""
    stack.reset_counts()
    yield
    stack.clear_faults()
    okta, api = stack.okta, stack.api
    okta.rate_limit = None
    okta.reset_rate_limit()
    okta.token_lifetime = 3600
    okta.added_latency = api.added_latency = 0.0
    assert okta.errors == []
    assert api.errors == []


# -- helpers -------------------------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def client_assertion(stack: LocalStack, kind: str, **claims: Any) -> str:
    """A signed client assertion for a jwt kind; a claim given as None is left out."""
    value = stack.secret_value(kind)
    now = int(time.time())
    payload = {
        "iss": value["client_id"],
        "sub": value["client_id"],
        "aud": value["token_url"],
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    if kind.startswith("kms-"):  # the key inside the stack's KMS, which only a test may read
        private, algorithm = stack.kms.private_key_pem(value["kms_key_id"]), value["key_algorithm"]
    else:
        private, algorithm = value["private_key"], "RS256" if kind == "jwt-rs256" else "ES256"
    return jwt.encode(payload, private, algorithm, headers={"kid": value["key_id"]})


def token_request(
    stack: LocalStack, kind: str, scope: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers) of a valid token request for ``kind``."""
    value = stack.secret_value(kind)
    fields = {"grant_type": "client_credentials", "scope": scope or "api.access"}
    headers: dict[str, str] = {}
    if kind in ("basic", "password"):
        headers["Authorization"] = basic(value["client_id"], value["client_secret"])
    if kind == "post":
        fields |= {"client_id": value["client_id"], "client_secret": value["client_secret"]}
    if kind.startswith(("jwt-", "kms-")):
        fields |= {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion(stack, kind),
        }
    if kind == "password":
        fields |= {
            "grant_type": "password",
            "username": value["username"],
            "password": value["password"],
            "scope": scope or "openid api.access",
        }
    return fields, headers


def post_token(
    pool: urllib3.PoolManager,
    stack: LocalStack,
    fields: dict[str, str],
    headers: dict[str, str] | None = None,
) -> urllib3.BaseHTTPResponse:
    return pool.request(
        "POST", stack.okta.token_url, fields=fields, headers=headers, encode_multipart=False
    )


def get_token(pool: urllib3.PoolManager, stack: LocalStack, kind: str = "basic") -> str:
    answer = post_token(pool, stack, *token_request(stack, kind))
    assert answer.status == 200, answer.data
    token: str = answer.json()["access_token"]
    return token


def api_get(
    pool: urllib3.PoolManager,
    stack: LocalStack,
    path: str,
    token: str | None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> urllib3.BaseHTTPResponse:
    sent = dict(headers or {}) | ({"Authorization": f"Bearer {token}"} if token else {})
    return pool.request("GET", stack.api.base_url + path, headers=sent, **kwargs)


def assert_oauth_error(
    answer: urllib3.BaseHTTPResponse, status: int, error: str, description: str | None = None
) -> None:
    body = answer.json()
    assert (answer.status, body["error"]) == (status, error), body
    if description is not None:
        assert body["error_description"] == description


# -- Okta: discovery and keys ---------------------------------------------------------------


def test_discovery_documents_describe_the_authorization_server(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    okta = stack.okta
    for suffix in ("oauth-authorization-server", "openid-configuration"):
        answer = pool.request("GET", f"{okta.issuer}/.well-known/{suffix}")
        assert answer.status == 200
        document = answer.json()
        assert document["issuer"] == okta.issuer
        assert document["token_endpoint"] == okta.token_url
        assert document["jwks_uri"] == okta.jwks_url
        assert set(document["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        }
        assert set(document["grant_types_supported"]) == {"client_credentials", "password"}
    assert okta.counts["discovery"] == 2


def test_jwks_serves_the_public_signing_key(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    answer = pool.request("GET", stack.okta.jwks_url)
    assert answer.status == 200
    keys = answer.json()["keys"]
    assert keys == stack.okta.public_jwks()["keys"]
    assert all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig" for k in keys)
    assert all("d" not in k for k in keys)
    assert stack.okta.counts["keys"] == 1


# -- Okta: each client authentication, accepted by the API -----------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_client_authentication_gets_a_token_the_api_accepts(
    pool: urllib3.PoolManager, stack: LocalStack, kind: str
) -> None:
    answer = post_token(pool, stack, *token_request(stack, kind))
    assert answer.status == 200, answer.data
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Pragma"] == "no-cache"
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    token = body["access_token"]
    assert token in stack.okta.issued_tokens

    header = jwt.get_unverified_header(token)
    jwk = next(k for k in stack.okta.public_jwks()["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience="api://default",
        issuer=stack.okta.issuer,
    )
    client_id = stack.secret_value(kind)["client_id"]
    assert claims["cid"] == client_id
    assert claims["sub"] == ("svc-okta-bridge" if kind == "password" else client_id)
    assert "api.access" in claims["scp"]
    assert body["scope"].split() == claims["scp"]
    assert claims["exp"] - claims["iat"] == 3600

    data = api_get(pool, stack, "/v1/data", token)
    assert data.status == 200
    assert data.headers["Content-Type"] == "application/json"
    assert data.json()["source"] == "sample-internal-api"
    assert len(data.json()["items"]) == 3

    seen: list[int] = []
    page: int | None = 1
    while page is not None:
        listing = api_get(pool, stack, f"/v1/items?page={page}&page_size=10", token).json()
        assert (listing["page_size"], listing["total"]) == (10, 25)
        seen += [item["id"] for item in listing["items"]]
        page = listing["next_page"]
    assert seen == list(range(1, 26))
    assert api_get(pool, stack, "/v1/items/7", token).json()["name"] == "item-07"
    assert stack.api.counts == {"data": 1, "items": 3, "item": 1}
    assert stack.okta.counts["token"] == 1


def test_password_grant_also_returns_an_id_token(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    body = post_token(pool, stack, *token_request(stack, "password")).json()
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["aud"] == "bridge-password"
    assert body["id_token"] in stack.all_secret_material()


def test_basic_credentials_are_accepted_form_encoded_or_raw(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    secret = "s3cr:et+with%2Fodd chars"
    stack.okta.register_client(
        "odd:client", auth_method="client_secret_basic", client_secret=secret
    )
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    encoded = post_token(pool, stack, fields, {"Authorization": basic("odd:client", secret)})
    assert encoded.status == 200, encoded.data
    raw = "Basic " + base64.b64encode(f"odd%3Aclient:{secret}".encode()).decode()
    assert post_token(pool, stack, fields, {"Authorization": raw}).status == 200


# -- Okta: refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["basic", "post"])
def test_wrong_secret_is_invalid_client(
    pool: urllib3.PoolManager, stack: LocalStack, kind: str
) -> None:
    fields, headers = token_request(stack, kind)
    if kind == "basic":
        headers["Authorization"] = basic("bridge-basic", "not-the-secret")
    else:
        fields["client_secret"] = "not-the-secret"
    answer = post_token(pool, stack, fields, headers)
    assert_oauth_error(
        answer,
        401,
        "invalid_client",
        "The client secret supplied for a confidential client is invalid.",
    )
    assert answer.headers["Cache-Control"] == "no-store"


def test_unknown_client_is_invalid_client(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    answer = post_token(pool, stack, fields, {"Authorization": basic("nobody", "x")})
    assert_oauth_error(answer, 401, "invalid_client", "Invalid value for 'client_id' parameter.")


@pytest.mark.parametrize(
    ("kind", "presented_as"), [("basic", "post"), ("post", "basic"), ("jwt-es256", "basic")]
)
def test_the_configured_auth_method_is_enforced(
    pool: urllib3.PoolManager, stack: LocalStack, kind: str, presented_as: str
) -> None:
    value = stack.secret_value(kind)
    secret = value.get("client_secret", "whatever")
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    headers = {}
    if presented_as == "post":
        fields |= {"client_id": value["client_id"], "client_secret": secret}
    else:
        headers["Authorization"] = basic(value["client_id"], secret)
    answer = post_token(pool, stack, fields, headers)
    assert_oauth_error(answer, 401, "invalid_client")


def test_two_credentials_at_once_are_refused(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    fields, headers = token_request(stack, "basic")
    fields |= {"client_id": "bridge-basic", "client_secret": "x"}
    assert_oauth_error(post_token(pool, stack, fields, headers), 400, "invalid_request")


def test_a_client_assertion_is_single_use_even_when_its_request_fails(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    assertion = client_assertion(stack, "jwt-rs256")
    fields = {
        "grant_type": "client_credentials",
        "scope": "not.granted",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    assert_oauth_error(post_token(pool, stack, fields), 400, "invalid_scope")
    fields["scope"] = "api.access"
    assert_oauth_error(
        post_token(pool, stack, fields),
        401,
        "invalid_client",
        "The client_assertion token has already been used.",
    )


def test_a_fresh_client_assertion_works_twice_in_a_row(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    assert get_token(pool, stack, "jwt-es256") != get_token(pool, stack, "jwt-es256")


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        (
            {"exp": 3700},
            "The client_assertion token has an expiration too far into the future.",
        ),
        ({"exp": -10}, "The client_assertion token is expired."),
        ({"exp": None}, "The client_assertion token must have an exp claim."),
        (
            {"aud": "https://127.0.0.1/oauth2/default"},
            "The audience claim for client_assertion must be the endpoint invoked for the request.",
        ),
        ({"iss": "someone-else"}, "The client_assertion iss and sub claims must be the client_id."),
    ],
)
def test_client_assertion_claims_are_checked(
    pool: urllib3.PoolManager, stack: LocalStack, claims: dict[str, Any], description: str
) -> None:
    if claims.get("exp") is not None:
        claims = claims | {"exp": int(time.time()) + claims["exp"]}  # offsets, taken now
    fields = {
        "grant_type": "client_credentials",
        "scope": "api.access",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(stack, "jwt-es256", **claims),
    }
    assert_oauth_error(post_token(pool, stack, fields), 401, "invalid_client", description)


@pytest.mark.parametrize(
    ("kid", "description"),
    [
        ("registered", "The client_assertion signature is invalid."),
        ("unknown-kid", "The client_assertion JWT kid is invalid."),
    ],
)
def test_a_client_assertion_signed_by_another_key_is_refused(
    pool: urllib3.PoolManager, stack: LocalStack, kid: str, description: str
) -> None:
    value = stack.secret_value("jwt-es256")
    now = int(time.time())
    claims = {"iss": "bridge-jwt-es256", "sub": "bridge-jwt-es256", "aud": value["token_url"]}
    foreign = jwt.encode(
        claims | {"exp": now + 60, "jti": secrets.token_urlsafe(8)},
        ec.generate_private_key(ec.SECP256R1()),
        "ES256",
        headers={"kid": value["key_id"] if kid == "registered" else kid},
    )
    fields = {
        "grant_type": "client_credentials",
        "scope": "api.access",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": foreign,
    }
    assert_oauth_error(post_token(pool, stack, fields), 401, "invalid_client", description)


def test_password_grant_rules(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    fields, headers = token_request(stack, "password", scope="api.access")
    assert_oauth_error(post_token(pool, stack, fields, headers), 400, "invalid_scope")
    fields, headers = token_request(stack, "password")
    fields["password"] = "wrong"
    assert_oauth_error(
        post_token(pool, stack, fields, headers),
        400,
        "invalid_grant",
        "The credentials provided were invalid.",
    )
    fields, headers = token_request(stack, "basic")
    fields |= {"grant_type": "password", "username": "svc-okta-bridge", "password": "x"}
    fields["scope"] = "openid api.access"
    assert_oauth_error(post_token(pool, stack, fields, headers), 400, "unauthorized_client")


@pytest.mark.parametrize(
    ("scope", "description"),
    [
        ("api.access admin.all", "The following scopes are not allowed: admin.all"),
        ("openid api.access", "The following scopes are not allowed: openid"),
    ],
)
def test_scopes_must_be_granted(
    pool: urllib3.PoolManager, stack: LocalStack, scope: str, description: str
) -> None:
    answer = post_token(pool, stack, *token_request(stack, "basic", scope=scope))
    assert_oauth_error(answer, 400, "invalid_scope", description)


def test_client_credentials_needs_a_scope(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    fields, headers = token_request(stack, "basic")
    del fields["scope"]
    assert_oauth_error(post_token(pool, stack, fields, headers), 400, "invalid_scope")


def test_malformed_token_requests(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    fields, headers = token_request(stack, "basic")
    answer = pool.request(
        "POST",
        stack.okta.token_url,
        body=json.dumps(fields),
        headers=headers | {"Content-Type": "application/json"},
    )
    assert_oauth_error(answer, 400, "invalid_request")
    fields["grant_type"] = "authorization_code"
    assert_oauth_error(post_token(pool, stack, fields, headers), 400, "unsupported_grant_type")
    wrong_method = pool.request("GET", stack.okta.token_url)
    assert (wrong_method.status, wrong_method.json()["errorCode"]) == (405, "E0000022")


def test_a_denied_client_gets_access_denied_until_allowed(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    stack.okta.deny_client("bridge-basic")
    try:
        assert_oauth_error(
            post_token(pool, stack, *token_request(stack, "basic")),
            403,
            "access_denied",
            "Policy evaluation failed for this request, please check the policy configurations.",
        )
    finally:
        stack.okta.allow_client("bridge-basic")
    assert get_token(pool, stack)


def test_rate_limit_answers_429_with_okta_headers_and_body(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    stack.okta.rate_limit = 2
    stack.okta.reset_rate_limit()
    remaining = []
    for _ in range(2):
        answer = post_token(pool, stack, *token_request(stack, "basic"))
        assert answer.status == 200
        assert answer.headers["X-Rate-Limit-Limit"] == "2"
        remaining.append(answer.headers["X-Rate-Limit-Remaining"])
    assert remaining == ["1", "0"]
    limited = post_token(pool, stack, *token_request(stack, "basic"))
    assert limited.status == 429
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    reset = int(limited.headers["X-Rate-Limit-Reset"])
    assert time.time() <= reset <= time.time() + 61
    body = limited.json()
    assert body["errorCode"] == body["errorLink"] == "E0000047"
    assert body["errorSummary"] == "API call exceeded rate limit due to too many requests."
    assert body["errorCauses"] == []
    assert body["errorId"]
    assert stack.okta.counts["token"] == 3


# -- the API ---------------------------------------------------------------------------------


def test_api_refuses_a_request_without_a_token(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    answer = api_get(pool, stack, "/v1/data", None, headers={"X-Request-ID": "req-1"})
    assert_oauth_error(answer, 401, "invalid_token")
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    seen = stack.api.requests[-1]
    assert seen.headers["x-request-id"] == "req-1"
    assert "authorization" not in seen.headers


def test_api_refuses_an_expired_token(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    stack.okta.token_lifetime = -60
    token = get_token(pool, stack)
    answer = api_get(pool, stack, "/v1/data", token)
    assert_oauth_error(answer, 401, "invalid_token", "The bearer token is expired.")
    assert token not in answer.data.decode()


@pytest.mark.parametrize("same_kid", [True, False])
def test_api_refuses_a_token_signed_by_another_key(
    pool: urllib3.PoolManager, stack: LocalStack, same_kid: bool
) -> None:
    genuine = jwt.decode(get_token(pool, stack), options={"verify_signature": False})
    kid = stack.okta.public_jwks()["keys"][0]["kid"] if same_kid else "forged"
    forged = jwt.encode(
        genuine,
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RS256",
        headers={"kid": kid},
    )
    answer = api_get(pool, stack, "/v1/data", forged)
    assert_oauth_error(answer, 401, "invalid_token")
    assert forged not in answer.data.decode()


def test_api_refuses_a_token_without_the_scope(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    stack.okta.register_client(
        "other-scope", auth_method="client_secret_post", client_secret="s", scopes=["other"]
    )
    fields = {
        "grant_type": "client_credentials",
        "scope": "other",
        "client_id": "other-scope",
        "client_secret": "s",
    }
    token = post_token(pool, stack, fields).json()["access_token"]
    answer = api_get(pool, stack, "/v1/data", token)
    assert_oauth_error(answer, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]


def test_api_refetches_the_jwks_once_after_key_rotation(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    assert api_get(pool, stack, "/v1/data", get_token(pool, stack)).status == 200
    fetches = stack.api.jwks.fetches
    stack.okta.reset_counts()
    new_kid = stack.okta.rotate_signing_key()
    token = get_token(pool, stack)
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    assert api_get(pool, stack, "/v1/data", token).status == 200
    assert api_get(pool, stack, "/v1/data", token).status == 200
    assert stack.api.jwks.fetches == fetches + 1
    assert stack.okta.counts["keys"] == 1


@pytest.mark.parametrize(
    ("path", "status", "route"),
    [
        ("/v1/items?page=0", 400, "items"),
        ("/v1/items?page=x", 400, "items"),
        ("/v1/items?page_size=101", 400, "items"),
        ("/v1/items?page=1&page=2", 400, "items"),
        ("/v1/items?page=9", 200, "items"),
        ("/v1/items/26", 404, "item"),
        ("/v1/items/abc", 404, "item"),
        ("/v1/admin", 404, "not_found"),
    ],
)
def test_api_paths_and_parameters(
    pool: urllib3.PoolManager, stack: LocalStack, path: str, status: int, route: str
) -> None:
    answer = api_get(pool, stack, path, get_token(pool, stack))
    assert answer.status == status
    assert answer.headers["Content-Type"] == "application/json"
    assert stack.api.counts == {route: 1}
    if status == 200:
        assert answer.json() == {
            "items": [],
            "page": 9,
            "page_size": 10,
            "total": 25,
            "next_page": None,
            "links": {"next": None},
        }
        assert "link" not in {name.lower() for name in answer.headers}  # the last page


def test_api_allows_only_get_except_its_one_write(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    answer = pool.request(
        "POST", stack.api.base_url + "/v1/data", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET"
    assert answer.json()["error"] == "method_not_allowed"
    write = pool.request(
        "GET", stack.api.base_url + "/v1/orders", headers={"Authorization": f"Bearer {token}"}
    )
    assert write.status == 405
    assert write.headers["Allow"] == "POST"


# -- faults ----------------------------------------------------------------------------------


def test_fault_with_status_and_body_replaces_the_answer_once(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    stack.api.inject(
        Fault(match="/v1/data", status=503, headers={"Retry-After": "1"}, body=b'{"x":1}')
    )
    faulted = api_get(pool, stack, "/v1/data", token)
    assert (faulted.status, faulted.data, faulted.headers["Retry-After"]) == (503, b'{"x":1}', "1")
    assert api_get(pool, stack, "/v1/data", token).status == 200
    assert stack.api.counts["data"] == 2
    assert stack.api.pending_faults() == []


def test_fault_headers_alone_decorate_the_normal_answer(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    stack.api.inject(Fault(headers={"X-Extra": "yes"}, times=2))
    for _ in range(2):
        answer = api_get(pool, stack, "/v1/data", token)
        assert (answer.status, answer.headers["X-Extra"]) == (200, "yes")
        assert answer.json()["source"] == "sample-internal-api"
    assert "X-Extra" not in api_get(pool, stack, "/v1/data", token).headers


def test_fault_status_alone_keeps_the_normal_body(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    stack.api.inject(Fault(status=500))
    answer = api_get(pool, stack, "/v1/data", get_token(pool, stack))
    assert answer.status == 500
    assert answer.json()["source"] == "sample-internal-api"


def test_fault_match_is_a_path_prefix(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    token = get_token(pool, stack)
    stack.api.inject(Fault(match="/v1/items", status=418, body=b"{}"))
    assert api_get(pool, stack, "/v1/data", token).status == 200
    assert api_get(pool, stack, "/v1/items/3", token).status == 418


def test_a_fault_with_status_and_body_issues_no_token(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    issued = len(stack.okta.issued_tokens)
    stack.okta.inject(Fault(match="/oauth2", status=500, body=b"{}"))
    assert post_token(pool, stack, *token_request(stack, "basic")).status == 500
    assert len(stack.okta.issued_tokens) == issued
    assert stack.okta.counts["token"] == 1


def test_reset_fault_aborts_with_a_tcp_reset(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    token = get_token(pool, stack)
    stack.api.inject(Fault(reset=True))
    with pytest.raises(urllib3.exceptions.ProtocolError) as caught:
        api_get(pool, stack, "/v1/data", token)
    assert isinstance(caught.value.args[1], ConnectionResetError)
    assert api_get(pool, stack, "/v1/data", token).status == 200
    assert stack.api.counts["data"] == 2


def test_reset_mid_body_fault_breaks_the_body_after_the_head(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    stack.api.inject(Fault(reset_mid_body=True))
    answer = api_get(pool, stack, "/v1/data", token, preload_content=False)
    assert answer.status == 200
    declared = int(answer.headers["Content-Length"])
    with pytest.raises(urllib3.exceptions.ProtocolError):
        answer.read()
    answer.release_conn()
    assert declared > 0
    assert api_get(pool, stack, "/v1/data", token).status == 200


def test_trickle_fault_sends_the_body_byte_by_byte(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    stack.api.inject(Fault(status=200, body=b'{"slow":true}', trickle_interval=0.02))
    started = time.monotonic()
    # A per-read timeout longer than the interval never fires: only a total deadline would.
    answer = api_get(pool, stack, "/v1/data", token, timeout=urllib3.Timeout(read=0.5))
    assert answer.json() == {"slow": True}
    assert time.monotonic() - started >= 0.02 * (len(b'{"slow":true}') - 1)


def test_delay_fault_and_added_latency_slow_the_answer(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    stack.api.inject(Fault(delay=2.0))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api_get(pool, stack, "/v1/data", token, timeout=urllib3.Timeout(read=0.1))
    stack.api.added_latency = 0.1
    started = time.monotonic()
    assert api_get(pool, stack, "/v1/data", token).status == 200
    assert time.monotonic() - started >= 0.1
    assert stack.api.counts["data"] == 2


def test_fault_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="times"):
        Fault(times=0)
    with pytest.raises(ValueError, match="one of"):
        Fault(reset=True, trickle_interval=0.1)


def test_keep_alive_reuses_one_connection(
    client_context: ssl.SSLContext, stack: LocalStack
) -> None:
    with urllib3.HTTPSConnectionPool(
        "127.0.0.1", stack.api.port, ssl_context=client_context, retries=False, timeout=TIMEOUT
    ) as connection_pool:
        for _ in range(3):
            assert connection_pool.request("GET", "/v1/data").status == 401
        assert connection_pool.num_connections == 1


# -- Secrets Manager -----------------------------------------------------------------------


@pytest.fixture
def sm_client(stack: LocalStack) -> Iterator[Any]:
    client = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
    yield client
    client.close()


def test_secrets_manager_stores_and_serves_the_secret(stack: LocalStack, sm_client: Any) -> None:
    name = stack.store_secret("jwt-rs256")
    stack.reset_counts()
    answer = sm_client.get_secret_value(SecretId=name)
    assert json.loads(answer["SecretString"]) == stack.secret_value("jwt-rs256")
    assert f":{stack.secrets_manager.account_id}:" in answer["ARN"]
    assert stack.secrets_manager.counts == {"GetSecretValue": 1}


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("AccessDeniedException", 400), ("DecryptionFailure", 400)],
)
def test_secrets_manager_injected_errors(
    stack: LocalStack, sm_client: Any, code: str, status: int
) -> None:
    name = stack.store_secret("basic")
    stack.reset_counts()
    stack.secrets_manager.inject_error("GetSecretValue", code, "injected by the test")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm_client.get_secret_value(SecretId=name)
    error = caught.value.response
    assert error["Error"] == {"Code": code, "Message": "injected by the test"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert sm_client.get_secret_value(SecretId=name)["Name"] == name
    assert stack.secrets_manager.counts == {"GetSecretValue": 2}


def test_secrets_manager_servers_do_not_share_state(stack: LocalStack, sm_client: Any) -> None:
    stack.secrets_manager.put_secret("shared/name", {"owner": "module stack"})
    with SecretsManagerServer(
        server_context(stack.server_cert), ca_bundle=stack.ca.ca_pem_path
    ) as other:
        other.put_secret("shared/name", {"owner": "other server"})
        client = other.client(stack.ca.ca_pem_path, max_attempts=1)
        try:
            theirs = json.loads(client.get_secret_value(SecretId="shared/name")["SecretString"])
        finally:
            client.close()
    ours = json.loads(sm_client.get_secret_value(SecretId="shared/name")["SecretString"])
    assert (ours["owner"], theirs["owner"]) == ("module stack", "other server")


def test_the_environment_drives_an_unmodified_boto3(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = stack.store_secret("post")
    environment = stack.environment(name)
    for variable in LocalStack.UNSET_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    client = boto3.session.Session().client("secretsmanager")
    try:
        answer = client.get_secret_value(SecretId=environment["BRIDGE_SECRET_ID"])
    finally:
        client.close()
    assert json.loads(answer["SecretString"]) == stack.secret_value("post")
    assert environment["BRIDGE_CA_BUNDLE"] == environment["AWS_CA_BUNDLE"]
    assert "AWS_SESSION_TOKEN" not in environment
    assert not {"BRIDGE_TOKEN_CACHE", "AWS_ENDPOINT_URL_DYNAMODB"} & environment.keys()


def test_the_token_cache_environment_reaches_the_table_and_its_key(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = stack.environment("unused", token_cache=True)
    for variable in LocalStack.UNSET_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    session = boto3.session.Session()
    dynamodb, kms = session.client("dynamodb"), session.client("kms")
    try:
        table = dynamodb.describe_table(TableName=environment["BRIDGE_TOKEN_CACHE"])["Table"]
        data_key = kms.generate_data_key(
            KeyId=environment["BRIDGE_TOKEN_CACHE_KEY_ID"],
            KeySpec="AES_256",
            EncryptionContext={"okta-bridge:purpose": "token-cache"},
        )
    finally:
        dynamodb.close()
        kms.close()
    assert environment["BRIDGE_TOKEN_CACHE"] == TOKEN_CACHE_TABLE == "okta-bridge-tokens-local"
    assert environment["BRIDGE_TOKEN_CACHE_KEY_ID"] == stack.token_cache_key_id
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"] == stack.dynamodb.endpoint_url
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"].startswith("https://127.0.0.1:")
    assert table["TableName"] == TOKEN_CACHE_TABLE
    assert data_key["KeyId"] == stack.token_cache_key_id
    assert stack.environment("unused", delivery=True, token_cache=True).keys() == (
        environment.keys() | stack.environment("unused", delivery=True).keys()
    )


def test_reset_counts_and_clear_faults_reach_dynamodb(stack: LocalStack) -> None:
    client = stack.dynamodb.client(stack.ca.ca_pem_path, max_attempts=1)
    try:
        stack.dynamodb.inject_error("DescribeTable", "ThrottlingException")
        stack.clear_faults()
        client.describe_table(TableName=TOKEN_CACHE_TABLE)
        assert stack.dynamodb.counts == {"DescribeTable": 1}
        stack.reset_counts()
        assert stack.dynamodb.counts == {}
    finally:
        client.close()


# -- TLS -------------------------------------------------------------------------------------


def handshake(port: int, context: ssl.SSLContext) -> None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


def test_every_server_refuses_a_client_that_trusts_another_ca(
    stack: LocalStack, foreign_ca: LocalCA, capfd: pytest.CaptureFixture[str]
) -> None:
    context = ssl.create_default_context(cafile=str(foreign_ca.ca_pem_path))
    tls_servers = (
        stack.okta,
        stack.api,
        stack.secrets_manager,
        stack.s3,
        stack.kms,
        stack.dynamodb,
    )
    for port in (server.port for server in tls_servers):
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, context)
    client = stack.secrets_manager.client(foreign_ca.ca_pem_path, max_attempts=1)
    try:
        with pytest.raises(botocore.exceptions.SSLError):
            client.get_secret_value(SecretId="anything")
    finally:
        client.close()
    assert sum(stack.api.counts.values()) == sum(stack.secrets_manager.counts.values()) == 0
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("issue", "reason"),
    [
        ({"expired": True}, "certificate has expired"),
        ({"dns_names": ("other.example",), "ip_addresses": ()}, "IP address mismatch"),
    ],
)
def test_certificate_problems_fail_the_handshake(
    stack: LocalStack, client_context: ssl.SSLContext, issue: dict[str, Any], reason: str
) -> None:
    cert = stack.ca.issue(f"bad-{secrets.token_hex(4)}", **issue)
    with EchoServer(server_context(cert)) as server:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            handshake(server.port, client_context)
        assert reason in str(caught.value)


def test_server_context_requires_tls12_and_optionally_client_certificates(
    stack: LocalStack, client_context: ssl.SSLContext
) -> None:
    assert server_context(stack.server_cert).minimum_version == ssl.TLSVersion.TLSv1_2
    mtls = server_context(stack.server_cert, client_ca=stack.ca.ca_pem_path)
    with EchoServer(mtls) as server:
        anonymous = urllib3.HTTPSConnectionPool(
            "127.0.0.1", server.port, ssl_context=client_context, retries=False, timeout=TIMEOUT
        )
        with (
            anonymous,
            pytest.raises((urllib3.exceptions.SSLError, urllib3.exceptions.ProtocolError)),
        ):
            anonymous.request("GET", "/x")
        identity = stack.ca.issue_client("bridge-client")
        mutual = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
        mutual.load_cert_chain(identity.cert_path, identity.key_path)
        with urllib3.HTTPSConnectionPool(
            "127.0.0.1", server.port, ssl_context=mutual, retries=False, timeout=TIMEOUT
        ) as authenticated:
            assert authenticated.request("GET", "/x").json() == {"path": "/x", "method": "GET"}
        assert server.counts == {"echo": 1}


def test_private_keys_are_owner_only(stack: LocalStack) -> None:
    assert stat.S_IMODE(stack.server_cert.key_path.stat().st_mode) == 0o600
    client = stack.ca.issue_client("perm-check")
    assert stat.S_IMODE(client.key_path.stat().st_mode) == 0o600
    assert "PRIVATE" not in stack.ca.ca_pem_path.read_text()
    assert "PRIVATE" not in stack.server_cert.cert_path.read_text()


# -- the stack -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_secret_values_follow_the_design_format(stack: LocalStack, kind: str) -> None:
    value = stack.secret_value(kind)
    assert value["client_id"] == f"bridge-{kind}"
    assert value["token_url"] == stack.okta.token_url
    assert value["api_endpoint"] == f"{stack.api.base_url}/v1/data"
    if kind.startswith("jwt-"):
        assert value["auth_method"] == "private_key_jwt"
        assert value["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
        assert value["key_id"]
        assert "client_secret" not in value
    elif kind.startswith("kms-"):
        assert value["auth_method"] == "private_key_jwt"
        assert stack.kms.key_state(value["kms_key_id"]) == "Enabled"
        assert value["key_id"] == public_jwk(stack.kms.public_key_der(value["kms_key_id"]))["kid"]
        assert value["key_algorithm"] == kind[-5:].upper()
        assert "private_key" not in value
        assert "client_secret" not in value
    else:
        assert len(value["client_secret"]) == 40
    if kind == "password":
        assert (value["username"], value["auth_method"]) == (
            "svc-okta-bridge",
            "client_secret_basic",
        )
        assert value["password"] in stack.all_secret_material()
    material = stack.all_secret_material()
    if kind.startswith("kms-"):  # nothing secret in the secret; the key inside KMS is listed
        assert stack.kms.private_key_pem(value["kms_key_id"]) in material
    else:
        assert value.get("client_secret", value.get("private_key")) in material
    with pytest.raises(ValueError, match="kind"):
        stack.secret_value("nope")


def test_secret_material_lists_pem_lines_and_tokens(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    token = get_token(pool, stack)
    material = stack.all_secret_material()
    assert token in material
    assert token.rsplit(".", 1)[1] in material
    pem_lines = stack.secret_value("jwt-rs256")["private_key"].splitlines()[1:-1]
    assert all(line in material for line in pem_lines if len(line) >= 40)


def test_rotating_a_client_secret_invalidates_the_old_one(
    pool: urllib3.PoolManager, stack: LocalStack, sm_client: Any
) -> None:
    old_fields, old_headers = token_request(stack, "post")
    new_secret = stack.rotate_client_secret("post", "rotation/post")
    assert_oauth_error(post_token(pool, stack, old_fields, old_headers), 401, "invalid_client")
    assert stack.secret_value("post")["client_secret"] == new_secret
    stored = json.loads(sm_client.get_secret_value(SecretId="rotation/post")["SecretString"])
    assert stored["client_secret"] == new_secret
    assert get_token(pool, stack, "post")
    assert old_fields["client_secret"] in stack.all_secret_material()


def test_an_extra_api_is_another_origin_trusting_the_same_okta(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    other = stack.start_extra_api()
    assert other.port != stack.api.port
    answer = pool.request(
        "GET",
        f"{other.base_url}/v1/data",
        headers={"Authorization": f"Bearer {get_token(pool, stack)}"},
    )
    assert answer.status == 200
    assert other.counts == {"data": 1}


def test_a_second_stack_stops_cleanly_without_leaking_threads(
    client_context: ssl.SSLContext, stack: LocalStack
) -> None:
    before = set(threading.enumerate())
    second = LocalStack()
    with second:
        second.store_secret("basic", "local/okta_api_creds/basic")
        context = ssl.create_default_context(cafile=str(second.ca.ca_pem_path))
        # Leave a kept-alive connection open on each TLSServer: stop() must still finish.
        kept = urllib3.PoolManager(ssl_context=context, retries=False, timeout=TIMEOUT)
        assert kept.request("GET", second.okta.jwks_url).status == 200
        assert kept.request("GET", f"{second.api.base_url}/v1/data").status == 401
        client = second.secrets_manager.client(second.ca.ca_pem_path, max_attempts=1)
        name = "local/okta_api_creds/basic"
        value = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
        ports = (second.okta.port, second.api.port, second.secrets_manager.port)
    assert value["token_url"] == f"https://127.0.0.1:{ports[0]}/oauth2/default/v1/token"
    assert set(threading.enumerate()) - before == set()
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    kept.clear()
    client.close()
    # The module's stack kept its own secret under the same name.
    mine = stack.secrets_manager.client(stack.ca.ca_pem_path, max_attempts=1)
    try:
        stack.store_secret("basic", name)
        ours = json.loads(mine.get_secret_value(SecretId=name)["SecretString"])
    finally:
        mine.close()
    assert ours["token_url"] == stack.okta.token_url


def test_a_stopped_server_restarts_on_the_same_port(stack: LocalStack) -> None:
    server = EchoServer(server_context(stack.server_cert))
    with server:
        port = server.port
    assert not server.running
    with server:
        assert server.port == port
        context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
        with urllib3.HTTPSConnectionPool(
            "127.0.0.1", port, ssl_context=context, retries=False, timeout=TIMEOUT
        ) as connection_pool:
            assert connection_pool.request("GET", "/again").status == 200


def test_servers_are_quiet_on_stderr(
    stack: LocalStack, client_context: ssl.SSLContext, capfd: pytest.CaptureFixture[str]
) -> None:
    for port in (stack.okta.port, stack.api.port, stack.secrets_manager.port):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            tls.recv(1024)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")

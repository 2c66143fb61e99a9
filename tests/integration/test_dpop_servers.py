"""DPoP (RFC 9449) on the local Okta and the sample API, driven by a reference client written here.

The client below (PyJWT and cryptography, nothing from ``okta_bridge``) makes proofs the way the
RFC says, so these tests pin the servers' behaviour the bridge's own DPoP client is tested
against: Okta's nonce dance and error answers at both authorization servers, bound tokens at the
Management API, and the resource server's proof checks, nonce, and Bearer-only gateway mode.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import urllib3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from okta_bridge_dev.emulators.dpop_proofs import (
    PROOF_ALGORITHMS,
    ProofError,
    ReplayCache,
    normalize_htu,
    thumbprint,
    verify_proof,
)
from okta_bridge_dev.emulators.okta.server import CLIENT_ASSERTION_TYPE, OktaServer
from okta_bridge_dev.emulators.stack import ADMIN_CLIENT_ID, CLIENT_IDS, LocalStack

pytestmark = pytest.mark.integration

TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)
MISSING = "The DPoP proof JWT header is missing."
NONCE_REQUIRED = "Authorization server requires nonce in DPoP proof."
ALGS = " ".join(PROOF_ALGORITHMS)
NONCE_CHALLENGE = (
    'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"'
)
_CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


# -- the reference client --------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ProofKey:
    """A DPoP key pair that writes proofs (RFC 9449 4.2), with knobs to break them."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: Any
        if alg in _CURVES:
            self.key = ec.generate_private_key(_CURVES[alg])
            full = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            members: tuple[str, ...] = ("crv", "kty", "x", "y")
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            full = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            members = ("e", "kty", "n")
        self.jwk: dict[str, Any] = {name: full[name] for name in members}
        canonical = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True)
        self.jkt = b64url(hashlib.sha256(canonical.encode()).digest())  # RFC 7638

    def proof(
        self,
        method: str,
        url: str,
        *,
        nonce: str | None = None,
        token: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A proof for ``method url``; a claim given as None is left out."""
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if nonce is not None:
            payload["nonce"] = nonce
        if token is not None:
            payload["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(payload, self.key, algorithm=self.alg, headers=headers)


def signed_by_hand(key: rsa.RSAPrivateKey, jwk: dict[str, Any], claims: dict[str, Any]) -> str:
    """An RS256 proof signed without PyJWT, which warns about (and so cannot make) weak keys."""
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}
    signing_input = ".".join(b64url(json.dumps(part).encode()) for part in (header, claims))
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def unsigned_proof(key: ProofKey, url: str) -> str:
    """An ``alg: none`` proof."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}
    claims = {"jti": "x", "htm": "POST", "htu": url, "iat": int(time.time())}
    parts = [b64url(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join(parts) + "."


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool(stack: LocalStack) -> Iterator[urllib3.PoolManager]:
    context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
    manager = urllib3.PoolManager(ssl_context=context, retries=False, timeout=TIMEOUT)
    yield manager
    manager.clear()


@pytest.fixture(autouse=True)
def _no_server_errors(stack: LocalStack) -> Iterator[None]:
    yield
    assert stack.okta.errors == []
    assert stack.api.errors == []


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assertion(client_id: str, key: Any, kid: str, audience: str, alg: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 300}
    claims["jti"] = secrets.token_urlsafe(12)
    signed = jwt.encode(claims, key, alg, headers={"kid": kid})
    return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": signed}


def token_request(stack: LocalStack, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """(form, headers) of a valid token request for one of the stack's apps; a new client
    assertion each call."""
    value = stack.secret_value(kind)
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    headers: dict[str, str] = {}
    if kind in ("basic", "password"):
        headers["Authorization"] = basic(value["client_id"], value["client_secret"])
    if kind == "post":
        fields |= {"client_id": value["client_id"], "client_secret": value["client_secret"]}
    if kind.startswith("jwt-"):
        alg = "RS256" if kind == "jwt-rs256" else "ES256"
        fields |= assertion(
            value["client_id"], value["private_key"], value["key_id"], value["token_url"], alg
        )
    if kind == "password":
        fields |= {
            "grant_type": "password",
            "username": value["username"],
            "password": value["password"],
            "scope": "openid api.access",
        }
    return fields, headers


def post(
    pool: urllib3.PoolManager,
    url: str,
    fields: dict[str, str],
    headers: dict[str, str],
    proof: str | None = None,
) -> urllib3.BaseHTTPResponse:
    sent = dict(headers) | ({"DPoP": proof} if proof is not None else {})
    return pool.request("POST", url, fields=fields, headers=sent, encode_multipart=False)


def assert_oauth_error(
    answer: urllib3.BaseHTTPResponse, status: int, error: str, description: str | None = None
) -> str:
    body = answer.json()
    assert (answer.status, body["error"]) == (status, error), body
    if description is not None:
        assert body["error_description"] == description
    return str(body["error_description"])


def new_app(
    stack: LocalStack, *, dpop: bool | None = True
) -> tuple[dict[str, str], dict[str, str]]:
    """A new client_secret_post app (requiring DPoP unless told); its token request."""
    client_id, secret = f"dpop-{secrets.token_hex(4)}", secrets.token_urlsafe(30)
    stack.okta.register_client(
        client_id,
        auth_method="client_secret_post",
        client_secret=secret,
        dpop_bound_access_tokens=dpop,
    )
    fields = {"grant_type": "client_credentials", "scope": "api.access"}
    return fields | {"client_id": client_id, "client_secret": secret}, {}


def dpop_token(pool: urllib3.PoolManager, stack: LocalStack, key: ProofKey) -> str:
    """A DPoP-bound custom authorization server token for a new app, through the nonce dance."""
    url = stack.okta.token_url
    fields, headers = new_app(stack)
    first = post(pool, url, fields, headers, key.proof("POST", url))
    assert_oauth_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    second = post(pool, url, fields, headers, key.proof("POST", url, nonce=nonce))
    assert second.status == 200, second.data
    token: str = second.json()["access_token"]
    return token


def api_get(
    pool: urllib3.PoolManager,
    stack: LocalStack,
    path: str,
    token: str,
    proof: str | None = None,
    *,
    scheme: str = "DPoP",
) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"{scheme} {token}"} | ({"DPoP": proof} if proof else {})
    return pool.request("GET", stack.api.base_url + path, headers=headers)


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


# -- the verifier on its own -----------------------------------------------------------------


def test_thumbprint_matches_the_rfc_7638_example() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR"
        "0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWh"
        "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    key = ProofKey()
    assert thumbprint(key.jwk | {"kid": "ignored", "use": "sig"}) == key.jkt
    with pytest.raises(ValueError, match="type"):
        thumbprint({"kty": "XYZ"})


@pytest.mark.parametrize(
    ("sent", "normal"),
    [
        ("HTTPS://Example.COM:443/a/b", "https://example.com/a/b"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:8443/p?q=1#f", "https://example.com:8443/p"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/%7euser/%2f", "https://example.com/~user/%2F"),
        ("http://example.com:80/x", "http://example.com/x"),
    ],
)
def test_htu_is_compared_after_syntax_normalisation(sent: str, normal: str) -> None:
    assert normalize_htu(sent) == normal


def test_the_iat_window_nonce_ath_and_jkt_checks() -> None:
    key, url, now = ProofKey("ES384"), "https://rs.example/v1/data", time.time()
    cache = ReplayCache()

    def check(proof: str, **options: Any) -> str:
        with pytest.raises(ProofError) as refused:
            verify_proof(proof, method="GET", url=url, now=now, replay=cache, **options)
        return refused.value.check

    assert check(key.proof("GET", url, iat=int(now) - 61)) == "iat"
    assert check(key.proof("GET", url, iat=int(now) + 61)) == "iat"
    assert check(key.proof("GET", url, iat=float("nan"))) == "iat"
    assert check(key.proof("GET", url, iat="now")) == "iat"
    assert check(key.proof("GET", url, nonce="old"), nonces=["new"]) == "nonce"
    assert check(key.proof("GET", url, token="other"), access_token="token") == "ath"
    assert check(key.proof("GET", url), expected_jkt=ProofKey().jkt) == "jkt"
    verified = verify_proof(
        key.proof("GET", url + "?page=2", nonce="new", token="token"),
        method="GET",
        url=url,
        now=now,
        replay=cache,
        access_token="token",
        expected_jkt=key.jkt,
        nonces=["new"],
    )
    assert verified.jkt == key.jkt
    assert verified.claims["nonce"] == "new"


def test_the_replay_cache_forgets_only_expired_proofs_and_fails_closed_when_full() -> None:
    cache = ReplayCache(max_entries=2)
    assert cache.remember("a", until=100.0, now=0.0)
    assert not cache.remember("a", until=100.0, now=50.0)
    assert cache.remember("b", until=200.0, now=50.0)
    with pytest.raises(OverflowError):
        cache.remember("c", until=200.0, now=60.0)
    assert cache.remember("a", until=300.0, now=100.0)  # "a" expired at 100
    assert len(cache) == 2


def test_a_full_replay_cache_refuses_new_proofs() -> None:
    key, url = ProofKey(), "https://as.example/token"
    cache = ReplayCache(max_entries=1)
    verify_proof(key.proof("POST", url), method="POST", url=url, now=time.time(), replay=cache)
    with pytest.raises(ProofError) as refused:
        verify_proof(key.proof("POST", url), method="POST", url=url, now=time.time(), replay=cache)
    assert (refused.value.error, refused.value.check) == ("invalid_dpop_proof", "capacity")


# -- Okta's token endpoints ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["basic", "post", "jwt-rs256", "jwt-es256", "password"])
def test_the_nonce_dance_gives_a_dpop_bound_token(
    pool: urllib3.PoolManager, stack: LocalStack, kind: str
) -> None:
    okta, url = stack.okta, stack.okta.token_url
    okta.require_dpop(CLIENT_IDS[kind])
    key = ProofKey()
    first = post(pool, url, *token_request(stack, kind), key.proof("POST", url))
    assert_oauth_error(first, 400, "use_dpop_nonce", NONCE_REQUIRED)
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == okta.dpop_nonce
    second = post(pool, url, *token_request(stack, kind), key.proof("POST", url, nonce=nonce))
    assert second.status == 200, second.data
    body = second.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    assert second.headers["DPoP-Nonce"] == nonce
    assert second.headers["Cache-Control"] == "no-store"
    if kind == "password":
        assert "cnf" not in claims_of(body["id_token"])
    assert okta.counts["token"] == 2
    assert okta.dpop_counts == {
        "proof": 2,
        "nonce_challenge": 1,
        "accepted": 1,
        "bound_token": 1,
    }


def test_client_authentication_comes_first_and_spends_the_assertion(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    url = stack.okta.token_url
    stack.okta.require_dpop(CLIENT_IDS["jwt-es256"])
    key = ProofKey()
    fields, headers = token_request(stack, "jwt-es256")
    first = post(pool, url, fields, headers, key.proof("POST", url))
    assert_oauth_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    again = post(pool, url, fields, headers, key.proof("POST", url, nonce=nonce))
    assert_oauth_error(
        again, 401, "invalid_client", "The client_assertion token has already been used."
    )
    # A bad client credential is refused as such, before the proof is even looked at.
    wrong = {**token_request(stack, "post")[0], "client_secret": "not-the-secret"}
    stack.okta.require_dpop(CLIENT_IDS["post"])
    assert_oauth_error(post(pool, url, wrong, {}), 401, "invalid_client")


def test_a_requiring_app_without_a_proof_gets_invalid_dpop_proof(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    okta = stack.okta
    okta.require_dpop(CLIENT_IDS["basic"])
    answer = post(pool, okta.token_url, *token_request(stack, "basic"))
    assert answer.status == 400
    assert answer.json() == {"error": "invalid_dpop_proof", "error_description": MISSING}
    assert "DPoP-Nonce" not in answer.headers
    assert okta.dpop_counts == {"missing": 1}


def test_a_generic_rfc_9449_server_answers_a_missing_proof_with_invalid_grant(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    stack.okta.missing_proof_error = "invalid_grant"
    answer = post(pool, stack.okta.token_url, *new_app(stack))
    assert answer.status == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "grant request is invalid",
    }


def test_an_app_that_does_not_require_dpop_binds_the_token_when_given_a_proof(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    url = stack.okta.token_url
    assert not stack.okta.requires_dpop(CLIENT_IDS["basic"])
    plain = post(pool, url, *token_request(stack, "basic"))
    assert plain.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(plain.json()["access_token"])
    assert "DPoP-Nonce" not in plain.headers
    key = ProofKey()
    first = post(pool, url, *token_request(stack, "basic"), key.proof("POST", url))
    assert_oauth_error(first, 400, "use_dpop_nonce")
    proof = key.proof("POST", url, nonce=first.headers["DPoP-Nonce"])
    second = post(pool, url, *token_request(stack, "basic"), proof)
    assert second.json()["token_type"] == "DPoP"
    assert claims_of(second.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_new_apps_follow_the_servers_default_unless_told(stack: LocalStack) -> None:
    okta = stack.okta
    assert okta.new_apps_require_dpop is False  # the stack's Okta, so existing tests still pass
    fields, _ = new_app(stack, dpop=None)
    assert not okta.requires_dpop(fields["client_id"])
    okta.new_apps_require_dpop = True  # as Okta has it for new API Services apps
    fields, _ = new_app(stack, dpop=None)
    assert okta.requires_dpop(fields["client_id"])
    fields, _ = new_app(stack, dpop=False)
    assert not okta.requires_dpop(fields["client_id"])
    with pytest.raises(ValueError, match="no app"):
        okta.require_dpop("no-such-app")


def test_a_plain_okta_server_requires_dpop_of_new_apps_as_okta_does() -> None:
    okta = OktaServer(ssl.create_default_context())  # never started: no socket
    assert okta.new_apps_require_dpop is True
    okta.register_client("app", auth_method="client_secret_post", client_secret="s" * 20)
    assert okta.requires_dpop("app")


def test_discovery_lists_the_proof_algorithms(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    okta = stack.okta
    for suffix in ("oauth-authorization-server", "openid-configuration"):
        document = pool.request("GET", f"{okta.issuer}/.well-known/{suffix}").json()
        assert document["dpop_signing_alg_values_supported"] == list(PROOF_ALGORITHMS)
        assert {"ES256", "ES384", "ES512", "RS256", "PS256"} <= set(PROOF_ALGORITHMS)
        assert "none" not in PROOF_ALGORITHMS
        assert not any(alg.startswith("HS") for alg in PROOF_ALGORITHMS)
        assert document["token_endpoint"] == okta.token_url
        assert (document["issuer"], document["jwks_uri"]) == (okta.issuer, okta.jwks_url)


def test_a_replayed_proof_is_refused(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    okta, url, key = stack.okta, stack.okta.token_url, ProofKey()
    proof = key.proof("POST", url, nonce=okta.dpop_nonce)
    assert post(pool, url, *new_app(stack), proof).status == 200
    replayed = post(pool, url, *new_app(stack), proof)
    description = assert_oauth_error(replayed, 400, "invalid_dpop_proof")
    assert "already been used" in description
    assert replayed.headers["DPoP-Nonce"] == okta.dpop_nonce
    assert okta.dpop_counts["replay"] == 1


def test_the_nonce_retry_needs_a_new_jti(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    url, key = stack.okta.token_url, ProofKey()
    first = post(pool, url, *new_app(stack), key.proof("POST", url, jti="same"))
    nonce = first.headers["DPoP-Nonce"]
    retry = post(pool, url, *new_app(stack), key.proof("POST", url, jti="same", nonce=nonce))
    assert "already been used" in assert_oauth_error(retry, 400, "invalid_dpop_proof")


def _bad_proofs(url: str, nonce: str) -> dict[str, tuple[str, str]]:
    """name -> (proof, a word its refusal's description must contain)."""
    key, other = ProofKey(), ProofKey()
    good = key.proof("POST", url, nonce=nonce)
    head, body, _ = good.split(".")
    forged = other.proof("POST", url, nonce=nonce).split(".")[2]
    private = dict(key.jwk, d=b64url(b"\x01" * 32))
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused
    weak_claims = {"jti": "y", "htm": "POST", "htu": url, "iat": int(time.time()), "nonce": nonce}
    weak_jwk = RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True)
    return {
        "wrong htu": (key.proof("POST", url + "/other", nonce=nonce), "htu"),
        "other host": (key.proof("POST", url.replace("127.0.0.1", "localhost")), "htu"),
        "wrong htm": (key.proof("GET", url, nonce=nonce), "htm"),
        "old iat": (key.proof("POST", url, nonce=nonce, iat=int(time.time()) - 300), "old"),
        "future iat": (key.proof("POST", url, nonce=nonce, iat=int(time.time()) + 300), "future"),
        "no iat": (key.proof("POST", url, nonce=nonce, iat=None), "iat"),
        "no jti": (key.proof("POST", url, nonce=nonce, jti=None), "jti"),
        "bad signature": (f"{head}.{body}.{forged}", "signature"),
        "typ JWT": (key.proof("POST", url, nonce=nonce, header={"typ": "JWT"}), "typ"),
        "alg none": (unsigned_proof(key, url), "alg"),
        "alg HS256": (
            jwt.encode(
                {"jti": "x", "htm": "POST", "htu": url, "iat": int(time.time())},
                b"k" * 32,
                algorithm="HS256",
                headers={"typ": "dpop+jwt", "jwk": key.jwk},
            ),
            "alg",
        ),
        "private jwk": (key.proof("POST", url, nonce=nonce, header={"jwk": private}), "public"),
        "no jwk": (key.proof("POST", url, nonce=nonce, header={"jwk": None}), "jwk"),
        "jwk of another curve": (
            key.proof("POST", url, nonce=nonce, header={"jwk": ProofKey("ES384").jwk}),
            "jwk",
        ),
        "1024-bit RSA": (signed_by_hand(weak, weak_jwk, weak_claims), "2048"),
        "two proofs": (f"{good}, {key.proof('POST', url, nonce=nonce)}", "one"),
        "not a JWT": ("not-a-jwt", "JWS"),
    }


def test_each_malformed_or_mismatched_proof_is_refused(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    okta, url = stack.okta, stack.okta.token_url
    cases = _bad_proofs(url, okta.dpop_nonce)
    for name, (proof, word) in cases.items():
        answer = post(pool, url, *new_app(stack), proof)
        description = assert_oauth_error(answer, 400, "invalid_dpop_proof")
        assert word in description, (name, description)
        assert answer.headers["DPoP-Nonce"] == okta.dpop_nonce
    assert okta.dpop_counts["invalid"] == len(cases)
    assert okta.dpop_counts["bound_token"] == 0


def test_two_dpop_headers_are_refused(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    url, key = stack.okta.token_url, ProofKey()
    fields, _ = new_app(stack)
    headers = urllib3.HTTPHeaderDict()
    for _ in range(2):
        headers.add("DPoP", key.proof("POST", url, nonce=stack.okta.dpop_nonce))
    answer = pool.request("POST", url, fields=fields, headers=headers, encode_multipart=False)
    assert "one DPoP header" in assert_oauth_error(answer, 400, "invalid_dpop_proof")


def test_htu_is_matched_after_normalisation(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    okta = stack.okta
    spelled = okta.token_url.replace("https://", "HTTPS://") + "?ignored=1#fragment"
    answer = post(
        pool,
        okta.token_url,
        *new_app(stack),
        ProofKey().proof("POST", spelled, nonce=okta.dpop_nonce),
    )
    assert answer.status == 200, answer.data


def test_a_rotated_nonce_still_works_and_expired_nonces_do_not(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    okta, url, key = stack.okta, stack.okta.token_url, ProofKey()
    held = okta.dpop_nonce
    current = okta.rotate_dpop_nonce()
    assert current != held
    answer = post(pool, url, *new_app(stack), key.proof("POST", url, nonce=held))
    assert answer.status == 200, answer.data
    assert answer.headers["DPoP-Nonce"] == current  # the client learns the new one
    fresh = okta.expire_dpop_nonces()
    for stale in (held, current):
        refused = post(pool, url, *new_app(stack), key.proof("POST", url, nonce=stale))
        assert_oauth_error(refused, 400, "use_dpop_nonce", NONCE_REQUIRED)
        assert refused.headers["DPoP-Nonce"] == fresh
    assert post(pool, url, *new_app(stack), key.proof("POST", url, nonce=fresh)).status == 200
    assert okta.dpop_counts["nonce_challenge"] == 2


# -- the org authorization server and the Management API -------------------------------------


def admin_token(pool: urllib3.PoolManager, stack: LocalStack, key: ProofKey) -> dict[str, Any]:
    """A DPoP-bound Management API token for the stack's admin app, through the nonce dance."""
    okta, url = stack.okta, stack.okta.org_token_url
    okta.require_dpop(ADMIN_CLIENT_ID)
    value = stack.admin_secret_value()

    def fields() -> dict[str, str]:
        grant = {"grant_type": "client_credentials", "scope": "okta.apps.read"}
        return grant | assertion(
            value["client_id"], value["private_key"], value["key_id"], url, "ES256"
        )

    missing = post(pool, url, fields(), {})
    assert missing.json() == {"error": "invalid_dpop_proof", "error_description": MISSING}
    first = post(pool, url, fields(), {}, key.proof("POST", url))
    assert_oauth_error(first, 400, "use_dpop_nonce", NONCE_REQUIRED)
    second = post(
        pool, url, fields(), {}, key.proof("POST", url, nonce=first.headers["DPoP-Nonce"])
    )
    assert second.status == 200, second.data
    body: dict[str, Any] = second.json()
    return body


def test_the_management_api_takes_a_bound_token_only_with_its_proof(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    okta, key = stack.okta, ProofKey()
    body = admin_token(pool, stack, key)
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    path = f"/api/v1/apps/{ADMIN_CLIENT_ID}/credentials/jwks"
    url = okta.base_url + path

    def get(authorization: str, proof: str | None) -> urllib3.BaseHTTPResponse:
        headers = {"Authorization": authorization} | ({"DPoP": proof} if proof else {})
        return pool.request("GET", url, headers=headers)

    good = get(f"DPoP {token}", key.proof("GET", url, token=token))
    assert good.status == 200, good.data
    assert good.json()[0]["status"] == "ACTIVE"
    as_bearer = get(f"Bearer {token}", key.proof("GET", url, token=token))
    assert as_bearer.status == 401
    assert as_bearer.json()["errorCode"] == "E0000011"
    assert as_bearer.json()["errorSummary"] == "Invalid token provided"
    assert 'error="invalid_token"' in as_bearer.headers["WWW-Authenticate"]
    refusals = {
        "no proof": None,
        "no ath": key.proof("GET", url),
        "another token's ath": key.proof("GET", url, token="another"),
        "another key": ProofKey().proof("GET", url, token=token),
        "wrong method": key.proof("POST", url, token=token),
        "wrong url": key.proof("GET", okta.base_url + "/api/v1/users/x", token=token),
    }
    for name, proof in refusals.items():
        answer = get(f"DPoP {token}", proof)
        assert (answer.status, answer.json()["errorCode"]) == (401, "E0000011"), name
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith(f'DPoP realm="{okta.base_url}", algs="{ALGS}"'), challenge
        assert 'error="invalid_dpop_proof"' in challenge, name
    replayed = key.proof("GET", url, token=token)
    assert get(f"DPoP {token}", replayed).status == 200
    assert get(f"DPoP {token}", replayed).status == 401
    assert okta.dpop_counts["bearer_refused"] == 1
    assert okta.dpop_counts["replay"] == 1


def test_an_unbound_management_token_is_refused_with_the_dpop_scheme(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    okta = stack.okta
    value = stack.admin_secret_value()
    url = okta.org_token_url
    grant = {"grant_type": "client_credentials", "scope": "okta.apps.read"}
    fields = grant | assertion(
        value["client_id"], value["private_key"], value["key_id"], url, "ES256"
    )
    body = post(pool, url, fields, {}).json()
    assert body["token_type"] == "Bearer"
    token = body["access_token"]
    path = f"{okta.base_url}/api/v1/apps/{ADMIN_CLIENT_ID}/credentials/jwks"
    bearer = pool.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status == 200
    proof = ProofKey().proof("GET", path, token=token)
    dpop = pool.request("GET", path, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert dpop.status == 401
    assert 'error="invalid_token"' in dpop.headers["WWW-Authenticate"]


# -- the sample API --------------------------------------------------------------------------


def test_the_api_accepts_a_bound_token_with_its_proof(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    api, key = stack.api, ProofKey("RS256")
    token = dpop_token(pool, stack, key)
    url = api.base_url + "/v1/items"
    answer = api_get(pool, stack, "/v1/items?page=2", token, key.proof("GET", url, token=token))
    assert answer.status == 200, answer.data
    assert answer.json()["page"] == 2
    assert "DPoP-Nonce" not in answer.headers  # no nonce of the API's own by default
    assert api.counts == {"items": 1}
    assert api.dpop_counts == {"proof": 1, "accepted": 1}


def test_the_api_refuses_a_bound_token_sent_as_bearer(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    key = ProofKey()
    token = dpop_token(pool, stack, key)
    url = stack.api.base_url + "/v1/data"
    answer = api_get(
        pool, stack, "/v1/data", token, key.proof("GET", url, token=token), scheme="Bearer"
    )
    assert_oauth_error(answer, 401, "invalid_token")
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith(f'DPoP algs="{ALGS}", error="invalid_token", error_description=')
    assert stack.api.dpop_counts == {"bearer_refused": 1}


def test_the_api_refuses_bad_proofs_with_a_dpop_challenge(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    api, key = stack.api, ProofKey()
    token = dpop_token(pool, stack, key)
    url = api.base_url + "/v1/data"
    refusals = {
        "no proof": (None, "no DPoP proof"),
        "wrong ath": (key.proof("GET", url, token="another token"), "ath"),
        "no ath": (key.proof("GET", url), "ath"),
        "another key": (ProofKey().proof("GET", url, token=token), "bound"),
        "wrong htm": (key.proof("POST", url, token=token), "htm"),
        "wrong path": (key.proof("GET", api.base_url + "/v1/items", token=token), "htu"),
        "old iat": (key.proof("GET", url, token=token, iat=int(time.time()) - 120), "old"),
        "typ": (key.proof("GET", url, token=token, header={"typ": "at+jwt"}), "typ"),
    }
    for name, (proof, word) in refusals.items():
        answer = api_get(pool, stack, "/v1/data", token, proof)
        description = assert_oauth_error(answer, 401, "invalid_dpop_proof")
        assert word in description, (name, description)
        assert answer.headers["WWW-Authenticate"] == (
            f'DPoP algs="{ALGS}", error="invalid_dpop_proof", error_description="{description}"'
        )
    assert api.dpop_counts["invalid"] == len(refusals) - 1
    assert api.dpop_counts["missing"] == 1


def test_the_api_refuses_a_replayed_proof(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    api, key = stack.api, ProofKey()
    token = dpop_token(pool, stack, key)
    proof = key.proof("GET", api.base_url + "/v1/data", token=token)
    assert api_get(pool, stack, "/v1/data", token, proof).status == 200
    replayed = api_get(pool, stack, "/v1/data", token, proof)
    assert "already been used" in assert_oauth_error(replayed, 401, "invalid_dpop_proof")
    assert api.dpop_counts == {"proof": 2, "accepted": 1, "invalid": 1, "replay": 1}


def test_the_api_wants_exactly_one_proof(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    api, key = stack.api, ProofKey()
    token = dpop_token(pool, stack, key)
    url = api.base_url + "/v1/data"
    headers = urllib3.HTTPHeaderDict({"Authorization": f"DPoP {token}"})
    headers.add("DPoP", key.proof("GET", url, token=token))
    headers.add("DPoP", key.proof("GET", url, token=token))
    answer = pool.request("GET", url, headers=headers)
    assert "one DPoP header" in assert_oauth_error(answer, 401, "invalid_dpop_proof")


def test_the_api_refuses_an_unbound_or_invalid_token_with_the_dpop_scheme(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    api, key = stack.api, ProofKey()
    url = api.base_url + "/v1/data"
    plain = post(pool, stack.okta.token_url, *token_request(stack, "basic")).json()["access_token"]
    answer = api_get(pool, stack, "/v1/data", plain, key.proof("GET", url, token=plain))
    assert_oauth_error(answer, 401, "invalid_token", "The access token is not DPoP-bound.")
    assert 'DPoP algs="' in answer.headers["WWW-Authenticate"]
    garbage = api_get(pool, stack, "/v1/data", "not.a.token", key.proof("GET", url))
    assert_oauth_error(garbage, 401, "invalid_token", "The access token is malformed.")
    # A Bearer token without cnf works as it always did.
    assert api_get(pool, stack, "/v1/data", plain, scheme="Bearer").status == 200


def test_the_apis_own_nonce(pool: urllib3.PoolManager, stack: LocalStack) -> None:
    api, key = stack.api, ProofKey()
    token = dpop_token(pool, stack, key)
    url = api.base_url + "/v1/data"
    api.require_dpop_nonce = True
    first = api_get(pool, stack, "/v1/data", token, key.proof("GET", url, token=token))
    assert_oauth_error(first, 401, "use_dpop_nonce", "Resource server requires nonce in DPoP proof")
    assert first.headers["WWW-Authenticate"] == NONCE_CHALLENGE
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == api.dpop_nonce
    retry = api_get(pool, stack, "/v1/data", token, key.proof("GET", url, token=token, nonce=nonce))
    assert retry.status == 200, retry.data
    assert retry.headers["DPoP-Nonce"] == nonce
    rotated = api.rotate_dpop_nonce()
    stale = api_get(pool, stack, "/v1/data", token, key.proof("GET", url, token=token, nonce=nonce))
    assert_oauth_error(stale, 401, "use_dpop_nonce")
    assert stale.headers["DPoP-Nonce"] == rotated
    proof = key.proof("GET", url, token=token, nonce=rotated)
    assert api_get(pool, stack, "/v1/data", token, proof).status == 200
    assert api.dpop_counts["nonce_challenge"] == 2
    assert api.counts == {"data": 4}
    # The Okta nonce is not the API's: each origin has its own.
    assert api.dpop_nonce != stack.okta.dpop_nonce


def test_a_bearer_only_gateway_refuses_the_scheme_and_takes_a_bound_token_as_bearer(
    pool: urllib3.PoolManager, stack: LocalStack
) -> None:
    api, key = stack.api, ProofKey()
    token = dpop_token(pool, stack, key)
    url = api.base_url + "/v1/data"
    api.dpop_support = "bearer_only"
    dpop = api_get(pool, stack, "/v1/data", token, key.proof("GET", url, token=token))
    assert_oauth_error(dpop, 401, "invalid_request")
    assert dpop.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
    # The trap: a naive gateway accepts the bound token as Bearer. A DPoP client never does this.
    assert api_get(pool, stack, "/v1/data", token, scheme="Bearer").status == 200
    plain = post(pool, stack.okta.token_url, *token_request(stack, "basic")).json()["access_token"]
    assert api_get(pool, stack, "/v1/data", plain, scheme="Bearer").status == 200
    assert api.dpop_counts == {"scheme_refused": 1}


# -- isolation -------------------------------------------------------------------------------


def test_clear_faults_restores_the_dpop_defaults(stack: LocalStack) -> None:
    okta, api = stack.okta, stack.api
    for client_id in (*CLIENT_IDS.values(), ADMIN_CLIENT_ID):
        okta.require_dpop(client_id)
    okta.new_apps_require_dpop = True
    okta.missing_proof_error = "invalid_grant"
    api.dpop_support, api.require_dpop_nonce = "bearer_only", True
    stack.clear_faults()
    assert not any(okta.requires_dpop(c) for c in (*CLIENT_IDS.values(), ADMIN_CLIENT_ID))
    assert (okta.new_apps_require_dpop, okta.missing_proof_error) == (False, "invalid_dpop_proof")
    assert (api.dpop_support, api.require_dpop_nonce) == ("validate", False)


def test_a_new_key_pair_keeps_the_apps_dpop_setting(stack: LocalStack) -> None:
    client_id = CLIENT_IDS["jwt-es256"]
    stack.okta.require_dpop(client_id)
    stack.rotate_client_secret("jwt-es256")
    assert stack.okta.requires_dpop(client_id)

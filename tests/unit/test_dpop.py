"""The DPoP proof as RFC 9449 4.2 defines it, checked with PyJWT (an independent verifier)."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest

from okta_bridge.auth.dpop import Dpop, ProofKey, b64url, htu, metadata_urls, origin, token_hash


def parts(proof: str) -> tuple[dict[str, object], dict[str, object]]:
    header = jwt.get_unverified_header(proof)
    claims = jwt.decode(proof, options={"verify_signature": False})
    return header, claims


def test_a_proof_is_an_es256_jws_with_the_public_jwk_and_verifies_with_it() -> None:
    dpop = Dpop(clock=lambda: 1_800_000_000.5)
    proof = dpop.proof("post", "https://okta.example/oauth2/default/v1/token?x=1#f")
    header, claims = parts(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    jwk = header["jwk"]
    assert isinstance(jwk, dict)
    assert set(jwk) == {"kty", "crv", "x", "y"}  # public members only, no "d"
    key = jwt.PyJWK(jwk, algorithm="ES256").key
    verified = jwt.decode(proof, key, algorithms=["ES256"], options={"verify_iat": False})
    assert verified["htm"] == "POST"
    assert verified["htu"] == "https://okta.example/oauth2/default/v1/token"
    assert verified["iat"] == 1_800_000_000
    assert "nonce" not in verified
    assert "ath" not in verified
    assert claims == verified


def test_every_proof_has_a_new_jti_and_the_same_key() -> None:
    dpop = Dpop()
    proofs = [dpop.proof("GET", "https://api.example/v1/data") for _ in range(50)]
    jtis = {parts(p)[1]["jti"] for p in proofs}
    keys = {json.dumps(parts(p)[0]["jwk"], sort_keys=True) for p in proofs}
    assert len(jtis) == 50
    assert len(keys) == 1
    assert dpop.proofs == 50


def test_resource_proofs_carry_ath_and_the_servers_nonce() -> None:
    dpop = Dpop()
    assert dpop.remember("https://api.example/v1/data", {"dpop-nonce": " n-1 "}) == "n-1"
    dpop.remember("https://okta.example/oauth2/default/v1/token", {"dpop-nonce": "okta-n"})
    _, claims = parts(dpop.proof("GET", "https://api.example/v1/other?q=1", token="tok.en"))
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"tok.en").digest()).rstrip(b"=")
    assert claims["ath"] == expected.decode()
    assert claims["nonce"] == "n-1"  # per origin: the API's, not Okta's
    dpop.remember("https://api.example/", {"dpop-nonce": "n-2"})
    assert parts(dpop.proof("GET", "https://api.example/x"))[1]["nonce"] == "n-2"
    dpop.remember("https://api.example/", {})  # an answer without one changes nothing
    assert dpop.nonce("https://api.example:443/y") == "n-2"


def test_the_thumbprint_is_rfc_7638() -> None:
    key = ProofKey()
    members = {k: key.jwk[k] for k in ("crv", "kty", "x", "y")}  # lexicographic, required only
    canonical = json.dumps(members, separators=(",", ":")).encode()
    assert key.thumbprint == b64url(hashlib.sha256(canonical).digest())
    assert "thumbprint" in repr(key)
    assert key.jwk["x"] not in repr(key)


def test_clear_makes_the_next_proof_use_a_new_key() -> None:
    dpop = Dpop()
    first = parts(dpop.proof("GET", "https://api.example/"))[0]["jwk"]
    dpop.remember("https://api.example/", {"dpop-nonce": "n"})
    dpop.learn("client", "https://okta.example/token", required=True)
    assert dpop.has_key
    dpop.clear()
    assert not dpop.has_key
    assert dpop.nonce("https://api.example/") is None
    assert dpop.required("client", "https://okta.example/token") is None
    assert parts(dpop.proof("GET", "https://api.example/"))[0]["jwk"] != first


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/p?q#f", "https://a.example/p"),
        ("https://a.example", "https://a.example/"),
        ("https://A.example:8443/x", "https://A.example:8443/x"),
    ],
)
def test_htu_drops_query_and_fragment(url: str, expected: str) -> None:
    assert htu(url) == expected


def test_origins_and_hashes() -> None:
    assert origin("https://A.example/x") == origin("https://a.example:443/y")
    assert origin("https://a.example:8443/") != origin("https://a.example/")
    assert token_hash("abc") == b64url(hashlib.sha256(b"abc").digest())


def test_metadata_urls_for_okta_and_rfc_8414() -> None:
    assert metadata_urls("https://o.example/oauth2/default/v1/token") == [
        "https://o.example/oauth2/default/.well-known/oauth-authorization-server",
        "https://o.example/.well-known/oauth-authorization-server/oauth2/default",
    ]
    assert metadata_urls("https://as.example/token") == [
        "https://as.example/.well-known/oauth-authorization-server"
    ]

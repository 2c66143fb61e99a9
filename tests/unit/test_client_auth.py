from __future__ import annotations

import base64
import urllib.parse

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

from okta_bridge.auth.client_auth import JWT_BEARER, KeyCache, authenticate
from okta_bridge.errors import SecretError
from okta_bridge.secret.credentials import Credentials
from okta_bridge_dev.emulators.provisioning import private_pem

TOKEN_URL = "https://okta.example/oauth2/default/v1/token"


def creds(method: str, **extra: str) -> Credentials:
    return Credentials(
        client_id="0oa-client",
        token_url=TOKEN_URL,
        api_endpoint="https://api.example/v1/data",
        auth_method=method,
        scopes=("api.access",),
        **extra,  # type: ignore[arg-type]
    )


def test_basic_puts_id_and_secret_in_the_header_only() -> None:
    auth = authenticate(creds("client_secret_basic", client_secret="sec:ret"))
    scheme, value = auth.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "0oa-client:sec:ret"
    assert auth.form == {}


def test_post_puts_id_and_secret_in_the_form() -> None:
    auth = authenticate(creds("client_secret_post", client_secret="s"))
    assert auth.form == {"client_id": "0oa-client", "client_secret": "s"}
    assert auth.headers == {}


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (rsa.generate_private_key(public_exponent=65537, key_size=3072), "RS256"),
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (ec.generate_private_key(ec.SECP521R1()), "ES512"),
    ],
)
def test_private_key_jwt_claims_follow_rfc7523_and_okta(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, alg: str
) -> None:
    c = creds("private_key_jwt", private_key=private_pem(key), key_id="kid-1")
    first = authenticate(c, now=1_800_000_000)
    second = authenticate(c, now=1_800_000_000)
    assert first.form["client_assertion_type"] == JWT_BEARER
    assertion = first.form["client_assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": alg, "kid": "kid-1", "typ": "JWT"}
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=[alg],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "0oa-client"
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == 300
    assert (
        claims["jti"]
        != jwt.decode(second.form["client_assertion"], options={"verify_signature": False})["jti"]
    )


def test_keys_are_parsed_once_and_two_are_kept() -> None:
    cache = KeyCache()
    keys = [private_pem(ec.generate_private_key(ec.SECP256R1())) for _ in range(3)]
    for _ in range(5):
        cache.load(keys[0])
    assert cache.loads == 1
    cache.load(keys[1])
    cache.load(keys[2])
    cache.load(keys[0])
    assert cache.loads == 4


@pytest.mark.parametrize(
    "bad",
    [
        "not a pem",
        private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # noqa: S505 - the point
        private_pem(ec.generate_private_key(ec.SECP256K1())),
    ],
)
def test_unusable_keys_are_secret_errors_without_content(bad: str) -> None:
    with pytest.raises(SecretError) as err:
        KeyCache().load(bad)
    assert err.value.code == "SECRET_INVALID"
    assert "BEGIN" not in err.value.message


def test_form_encoding_of_assertion_is_plain() -> None:
    c = creds("private_key_jwt", private_key=private_pem(ec.generate_private_key(ec.SECP256R1())))
    body = urllib.parse.urlencode(authenticate(c).form)
    assert "client_assertion=" in body


def test_a_kms_key_signs_through_the_signer_given_with_the_same_claims() -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # stands for the key inside KMS
    calls: list[bytes] = []

    def sign(credentials: Credentials, signing_input: bytes) -> bytes:
        calls.append(signing_input)
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    kms = creds("private_key_jwt", kms_key_id="alias/k", key_id="kid-9", key_algorithm="ES256")
    auth = authenticate(kms, now=1_000_000, sign=sign)
    assertion = auth.form["client_assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": "ES256", "typ": "JWT", "kid": "kid-9"}
    claims = jwt.decode(
        assertion, key.public_key(), algorithms=["ES256"], audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims["iss"] == claims["sub"] == "0oa-client"
    assert (claims["iat"], claims["exp"]) == (1_000_000, 1_000_300)
    assert len(calls) == 1
    assert authenticate(kms, sign=sign).form["client_assertion"] != assertion  # a new jti
    with pytest.raises(ValueError, match="needs a signer"):
        authenticate(kms)

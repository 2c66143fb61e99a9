"""JOSE helpers (``auth.jose``): the one curve table, consistent with cryptography and cheap to
import, and the signatures of in-memory keys."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from okta_bridge.auth import jose


@pytest.mark.parametrize("curve", jose.CURVES, ids=lambda c: c.crv)
def test_each_curve_names_the_cryptography_curve_it_builds(curve: jose.Curve) -> None:
    built = jose.ec_curve(curve.crv)
    assert isinstance(built, getattr(ec, curve.curve_class))
    assert built.name == curve.name
    assert (built.key_size + 7) // 8 == curve.size
    assert jose.BY_NAME[curve.name] is jose.BY_CRV[curve.crv] is jose.BY_ALG[curve.alg]


def test_key_types_keep_the_order_given_and_refuse_unknown_algorithms() -> None:
    table = jose.key_types(("ES384", "RS256", "PS512"))
    assert list(table.items()) == [
        ("ES384", ("EC", "P-384")),
        ("RS256", ("RSA", None)),
        ("PS512", ("RSA", None)),
    ]
    with pytest.raises(KeyError):
        jose.key_types(("HS256",))
    with pytest.raises(KeyError):
        jose.ec_curve("secp256k1")


def test_importing_the_table_does_not_load_cryptography() -> None:
    code = "import sys, okta_bridge.auth.jose; print('cryptography' in sys.modules)"
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- signatures by in-memory keys (issue 18: no PyJWT, and no backend import per ECDSA) -------


@pytest.mark.parametrize(
    ("curve", "alg", "size"),
    [(ec.SECP256R1(), "ES256", 32), (ec.SECP384R1(), "ES384", 48), (ec.SECP521R1(), "ES512", 66)],
)
def test_ecdsa_signatures_are_raw_r_s_that_cryptography_itself_verifies(
    curve: ec.EllipticCurve, alg: str, size: int
) -> None:
    key = ec.generate_private_key(curve)
    digest = {"ES256": hashes.SHA256(), "ES384": hashes.SHA384(), "ES512": hashes.SHA512()}[alg]
    for n in range(20):
        data = f"header.payload-{n}".encode()
        raw = jose.signature(key, alg, data)
        assert len(raw) == 2 * size  # fixed size, whatever the integers' leading zeros
        der = utils.encode_dss_signature(
            int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
        )
        key.public_key().verify(der, data, ec.ECDSA(digest))  # cryptography's own ECDSA


@pytest.mark.parametrize("alg", ["HS256", "PS256", "EdDSA", "none", "ES256K"])
def test_other_algorithms_are_refused(alg: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeyError):
        jose.signature(key, alg, b"a.b")


def test_an_ecdsa_signature_does_not_import_the_openssl_backend_module() -> None:
    """The point of ``ecdsa_class``; the control shows cryptography's own ``ECDSA()`` still
    imports it (when it stops, the subclass can go)."""
    code = (
        "import sys; from cryptography.hazmat.primitives.asymmetric import ec; "
        "from okta_bridge.auth import jose; "
        "k = ec.generate_private_key(ec.SECP256R1()); jose.signature(k, 'ES256', b'a.b'); "
        "name = 'cryptography.hazmat.backends.openssl.backend'; ours = name in sys.modules; "
        "from cryptography.hazmat.primitives import hashes; ec.ECDSA(hashes.SHA256()); "
        "print(ours, name in sys.modules)"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "True"], "if the control is False, drop ecdsa_class"

"""The one curve table (``auth.jose``): consistent with cryptography, cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

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

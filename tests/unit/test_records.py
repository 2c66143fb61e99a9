"""The bridge's records without dataclasses (issue 18): secrets stay out of repr and str, no
default is shared between instances, and the records that hold secrets are not tuples (a tuple
hands its values to whatever iterates or serialises it)."""

from __future__ import annotations

import json

import pytest

from okta_bridge.auth.access_token import AccessToken
from okta_bridge.auth.client_auth import ClientAuth
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.tls import TlsPolicy

SECRET = "s3cr3t-value-never-shown"


def credentials() -> Credentials:
    return Credentials(
        "0oa-client",
        "https://example.okta.com/oauth2/default/v1/token",
        "https://api.example.com/v1/items",
        "client_secret_basic",
        ("api.access",),
        client_secret=SECRET,
        private_key=SECRET + "-key",
        password=SECRET + "-password",
        client_key=SECRET + "-client-key",
    )


def records() -> list[object]:
    return [
        credentials(),
        AccessToken(SECRET, 100.0, 50.0, 3600.0, ("api.access",)),
        ClientAuth(headers={"Authorization": "Basic " + SECRET}, form={"client_secret": SECRET}),
        TlsPolicy(client_certificate="-----BEGIN CERTIFICATE-----", client_key=SECRET),
    ]


@pytest.mark.parametrize("record", records(), ids=lambda r: type(r).__name__)
def test_a_record_holding_a_secret_never_shows_it(record: object) -> None:
    assert SECRET not in repr(record)
    assert SECRET not in str(record)
    assert SECRET not in f"{record!r} {record}"


@pytest.mark.parametrize("record", records(), ids=lambda r: type(r).__name__)
def test_a_record_holding_a_secret_is_not_a_tuple(record: object) -> None:
    assert not isinstance(record, tuple)
    with pytest.raises(TypeError):
        iter(record)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        json.dumps(record)


def test_the_public_fields_stay_in_repr() -> None:
    assert repr(AccessToken("t", 100.0, 50.0, 3600.0)) == (
        "AccessToken(expires_at=100.0, refresh_at=50.0, lifetime=3600.0, scopes=(), "
        "scheme='Bearer', bound_to=None, shared=None)"
    )
    assert "client_id='0oa-client'" in repr(credentials())
    assert "client_certificate='pem'" in repr(TlsPolicy(client_certificate="pem", client_key="k"))


def test_client_auth_dicts_are_not_shared_between_instances() -> None:
    first, second = ClientAuth(), ClientAuth()
    first.headers["Authorization"] = "Basic x"
    assert second.headers == {}
    assert second.form == {}
    assert first.form is not second.form


def test_tls_policies_with_the_same_values_are_one_pool_key() -> None:
    one = TlsPolicy(frozenset({b"p" * 32}), "cert", "key")
    same = TlsPolicy(frozenset({b"p" * 32}), "cert", "key")
    other_key = TlsPolicy(frozenset({b"p" * 32}), "cert", "other")
    assert one == same
    assert hash(one) == hash(same)
    assert one != other_key
    assert {(one, False): 1}[(same, False)] == 1
    assert TlsPolicy().plain


def test_credentials_replace_copies_with_changes_and_compare_by_value() -> None:
    original = credentials()
    narrowed = original._replace(scopes=("okta.apps.manage",))
    assert narrowed.scopes == ("okta.apps.manage",)
    assert narrowed.client_secret == SECRET
    assert original.scopes == ("api.access",)
    assert original == credentials()
    assert hash(original) == hash(credentials())
    assert narrowed != original

"""What an item's ciphertext holds: the token, its scheme and scopes, and the private scalar of
the DPoP key it is bound to (the fleet's, made for this token alone).

A token read back is checked as strictly as Okta's own answer is (``auth.endpoint``): a token that
could not travel in an Authorization header, an unknown scheme, a DPoP token without its key (or a
key that is no P-256 scalar) make the item ``TOKEN_CACHE_CORRUPT``, to be replaced, never sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from okta_bridge.auth.endpoint import B64TOKEN
from okta_bridge.errors import CacheError

if TYPE_CHECKING:
    from okta_bridge.auth.access_token import AccessToken
    from okta_bridge.auth.dpop import ProofKey

SCHEMES = ("Bearer", "DPoP")


def sealed_part(token: AccessToken) -> bytes:
    """The plaintext sealed into the item."""
    key = token.key
    part = {
        "token": token.value,
        "scheme": token.scheme,
        "scopes": list(token.scopes),
        "key": base64.b64encode(key.private_scalar()).decode("ascii") if key else None,
    }
    return json.dumps(part, separators=(",", ":")).encode()


def open_part(opened: bytes) -> tuple[str, str, tuple[str, ...], ProofKey | None]:
    """Token, scheme, scopes and DPoP key of an opened item; ``TOKEN_CACHE_CORRUPT`` if any is
    not what the bridge itself would have sealed."""
    try:
        part = json.loads(opened)
        value, scheme = part["token"], part["scheme"]
        scopes = tuple(str(s) for s in part.get("scopes") or ())
        raw_key = part.get("key")
        key = _proof_key(base64.b64decode(raw_key, validate=True)) if raw_key else None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error):
        raise CacheError("TOKEN_CACHE_CORRUPT", "A cached token is malformed.") from None
    if (
        not isinstance(value, str)
        or not B64TOKEN.fullmatch(value)
        or scheme not in SCHEMES
        or (scheme == "DPoP") != (key is not None)
    ):
        raise CacheError("TOKEN_CACHE_CORRUPT", "A cached token is malformed.")
    return value, scheme, scopes, key


def _proof_key(scalar: bytes) -> ProofKey:
    from okta_bridge.auth.dpop import ProofKey  # noqa: PLC0415 - DPoP-bound tokens only

    return ProofKey(scalar)

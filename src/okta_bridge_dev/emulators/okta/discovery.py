"""The custom authorization server's public documents: discovery metadata and the JWKS.

What a client or a resource server reads before any token: the endpoints, the methods and
algorithms the org supports (``token_endpoint_auth_*``, ``dpop_signing_alg_values_supported``)
and the public halves of the org's signing keys, newest first.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from okta_bridge_dev.emulators.dpop_proofs import PROOF_ALGORITHMS
from okta_bridge_dev.emulators.okta.client_auth import ASSERTION_ALGORITHMS, CLIENT_AUTH_METHODS
from okta_bridge_dev.emulators.okta.errors import method_not_allowed
from okta_bridge_dev.emulators.okta.model import OktaOrg
from okta_bridge_dev.emulators.okta.urls import OrgUrls
from okta_bridge_dev.emulators.routing import RecordedRequest, Response

__all__ = ["Discovery", "public_jwk", "public_jwks"]


class Discovery:
    """The discovery and JWKS routes' handlers over the org's model."""

    def __init__(self, org: OktaOrg, urls: OrgUrls) -> None:
        self._org = org
        self._urls = urls

    def metadata(self, request: RecordedRequest) -> Response:
        """``/.well-known/oauth-authorization-server`` (RFC 8414) and, with the OIDC members,
        ``/.well-known/openid-configuration``."""
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET")
        document = {
            "issuer": self._urls.issuer,
            "token_endpoint": self._urls.token_url,
            "jwks_uri": self._urls.jwks_url,
            "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "grant_types_supported": ["client_credentials", "password"],
            "scopes_supported": self._org.scopes_supported(),
            "dpop_signing_alg_values_supported": list(PROOF_ALGORITHMS),
        }
        if request.path.endswith("/openid-configuration"):
            document.update(
                {
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["token", "id_token"],
                }
            )
        return Response.json(200, document)

    def keys(self, request: RecordedRequest) -> Response:
        """``/v1/keys``: the JWKS, cacheable for five minutes."""
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET")
        return Response.json(200, public_jwks(self._org), {"Cache-Control": "max-age=300"})


def public_jwks(org: OktaOrg) -> dict[str, Any]:
    """The JWKS document of the org's signing keys, newest key first."""
    published = []
    for kid, key in org.signing_keys():
        jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
        jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
        published.append(jwk)
    return {"keys": published}


def public_jwk(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, kid: str, alg: str
) -> dict[str, Any]:
    """The public JWK of a client's signing key, as registered with ``register_client``."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
    else:
        jwk = dict(ECAlgorithm.to_jwk(key.public_key(), as_dict=True))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk

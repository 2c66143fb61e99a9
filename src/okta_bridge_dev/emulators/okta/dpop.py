"""The local Okta's DPoP (RFC 9449), as Okta does it (developer.okta.com/docs/guides/dpop).

Token endpoints (both authorization servers): an app may require a proof ("Require Demonstrating
Proof of Possession (DPoP) header in token requests", on by default for new API Services apps
since 2024). Client authentication runs first, so a client assertion's ``jti`` is spent even when
the proof is then refused, as Okta does. Then: no proof where the app requires one is 400
``invalid_dpop_proof`` "The DPoP proof JWT header is missing." (``missing_proof_error =
"invalid_grant"`` answers as a generic RFC 9449 server, oidc-provider, does); a proof without a
nonce Okta accepts is 400 ``use_dpop_nonce`` with the nonce in ``DPoP-Nonce``; a valid proof binds
the token to its key, whether or not the app requires DPoP (an authorization server that supports
DPoP binds whenever it gets a proof, RFC 9449 5). One nonce serves the whole org, both
authorization servers; after ``rotate_dpop_nonce`` the previous one is still accepted, as Okta
accepts a nonce for a while after it renews it.

Management API: a DPoP-bound token only as ``Authorization: DPoP`` with a proof whose ``ath`` is
the token's hash (no nonce there); as ``Bearer`` it is refused.

The per-app setting, the nonces and ``dpop_counts`` live in the model (``OktaOrg``);
``dpop_counts`` counts "proof" (proofs checked), "accepted", "invalid" (refused as
invalid_dpop_proof, replays included), "replay", "nonce_challenge" (use_dpop_nonce answers),
"missing" (required proof absent), "bound_token" (DPoP-bound tokens minted) and
"bearer_refused" (a bound token sent to the Management API as Bearer).
"""

from __future__ import annotations

import time

from okta_bridge_dev.emulators.dpop_proofs import (
    PROOF_ALGORITHMS,
    USE_DPOP_NONCE,
    ProofError,
    request_url,
    verify_proof,
)
from okta_bridge_dev.emulators.okta.errors import OAuthError, OktaApiError
from okta_bridge_dev.emulators.okta.model import OktaOrg
from okta_bridge_dev.emulators.routing import RecordedRequest

__all__ = ["MISSING_PROOF", "NONCE_REQUIRED", "dpop_challenge", "management_proof", "token_proof"]

MISSING_PROOF = "The DPoP proof JWT header is missing."
NONCE_REQUIRED = "Authorization server requires nonce in DPoP proof."
_GENERIC_MISSING = "grant request is invalid"  # oidc-provider's invalid_grant description
_INVALID_TOKEN = "Invalid token provided"  # noqa: S105 - an errorSummary


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def token_proof(org: OktaOrg, request: RecordedRequest, require: bool, url: str) -> str | None:
    """The thumbprint the token is to be bound to, None for a Bearer token; raises OAuthError
    as Okta answers a missing or refused proof."""
    proof = request.headers.get("dpop")
    if proof is None:
        if not require:
            return None
        org.count_dpop("missing")
        if org.missing_proof_error == "invalid_grant":
            raise OAuthError(400, "invalid_grant", _GENERIC_MISSING)
        raise OAuthError(400, "invalid_dpop_proof", MISSING_PROOF)
    try:
        verified = verify_proof(
            proof,
            method="POST",
            url=url,
            now=time.time(),
            replay=org.dpop_replay,
            nonces=org.accepted_nonces(),
        )
    except ProofError as refused:
        org.count_dpop(*refused.counters)
        if refused.error == USE_DPOP_NONCE:
            raise OAuthError(400, USE_DPOP_NONCE, NONCE_REQUIRED) from refused
        raise OAuthError(400, refused.error, refused.description) from refused
    org.count_dpop("proof", "accepted")
    return verified.jkt


def management_proof(
    org: OktaOrg, request: RecordedRequest, token: str, jkt: str, *, base_url: str
) -> None:
    """Check the proof sent with a DPoP-bound Management API token; raises OktaApiError."""
    proof = request.headers.get("dpop")
    if proof is None:
        org.count_dpop("missing")
        raise dpop_challenge(base_url, "invalid_dpop_proof", "The DPoP proof is missing.")
    try:
        verify_proof(
            proof,
            method=request.method,
            url=request_url(base_url, request.raw_target, request.path),
            now=time.time(),
            replay=org.dpop_replay,
            access_token=token,
            expected_jkt=jkt,
        )
    except ProofError as refused:
        org.count_dpop(*refused.counters)
        raise dpop_challenge(base_url, refused.error, refused.description) from refused
    org.count_dpop("proof", "accepted")


def dpop_challenge(base_url: str, error: str, description: str) -> OktaApiError:
    """401 E0000011 with a DPoP challenge naming what is wrong."""
    challenge = (
        f'DPoP realm="{base_url}", algs="{" ".join(PROOF_ALGORITHMS)}", '
        f'error="{error}", error_description="{_quoted(description)}"'
    )
    return OktaApiError(401, "E0000011", _INVALID_TOKEN, headers={"WWW-Authenticate": challenge})

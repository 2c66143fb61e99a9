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
"""

from __future__ import annotations

import secrets
import time

from okta_bridge_dev.emulators.dpop_proofs import (
    PROOF_ALGORITHMS,
    USE_DPOP_NONCE,
    ProofError,
    request_url,
    verify_proof,
)
from okta_bridge_dev.emulators.okta.errors import OAuthError, OktaApiError
from okta_bridge_dev.emulators.okta.org import OktaOrg
from okta_bridge_dev.emulators.routing import RecordedRequest

__all__ = ["MISSING_PROOF", "NONCE_REQUIRED", "DPoPSupport"]

MISSING_PROOF = "The DPoP proof JWT header is missing."
NONCE_REQUIRED = "Authorization server requires nonce in DPoP proof."
_GENERIC_MISSING = "grant request is invalid"  # oidc-provider's invalid_grant description
_INVALID_TOKEN = "Invalid token provided"  # noqa: S105 - an errorSummary


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


class DPoPSupport(OktaOrg):
    """Per-app DPoP requirement, the org's nonce and the proof checks of the token endpoints and
    the Management API. ``dpop_counts`` counts "proof" (proofs checked), "accepted", "invalid"
    (refused as invalid_dpop_proof, replays included), "replay", "nonce_challenge"
    (use_dpop_nonce answers), "missing" (required proof absent), "bound_token" (DPoP-bound tokens
    minted) and "bearer_refused" (a bound token sent to the Management API as Bearer)."""

    # -- test controls ---------------------------------------------------------------------

    def require_dpop(self, client_id: str, on: bool = True) -> None:
        """Switch the app's "Require DPoP header in token requests". Raises ValueError for an
        unknown app."""
        with self._state:
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"no app {client_id!r}")
            client.dpop_bound_access_tokens = on

    def requires_dpop(self, client_id: str) -> bool:
        """Whether the app requires a DPoP proof in token requests (False for an unknown app)."""
        with self._state:
            client = self._clients.get(client_id)
            return client is not None and client.dpop_bound_access_tokens

    @property
    def dpop_nonce(self) -> str:
        """The nonce the token endpoints hand out now."""
        with self._state:
            return self._dpop_nonce

    def rotate_dpop_nonce(self) -> str:
        """Hand out a new nonce; the one it replaces is still accepted. Returns the new one."""
        with self._state:
            self._previous_dpop_nonce, self._dpop_nonce = self._dpop_nonce, _new_nonce()
            return self._dpop_nonce

    def expire_dpop_nonces(self) -> str:
        """Replace the current and the previous nonce: any nonce a client holds is now refused.
        Returns the new one."""
        with self._state:
            self._previous_dpop_nonce, self._dpop_nonce = None, _new_nonce()
            return self._dpop_nonce

    def reset_dpop_nonces(self) -> str:
        """Back to the nonce the server started with (the previous one forgotten), so that a
        test that rotated or expired nonces leaves a client's cached nonce as valid as it was
        before. Returns it."""
        with self._state:
            self._dpop_nonce, self._previous_dpop_nonce = self._initial_dpop_nonce, None
            return self._dpop_nonce

    def reset_counts(self) -> None:
        """Zero ``counts``, the handshakes and ``dpop_counts``."""
        super().reset_counts()
        with self._state:
            self.dpop_counts.clear()

    # -- used by the token endpoints and the Management API -------------------------------

    def _count_dpop(self, *names: str) -> None:
        with self._state:
            self.dpop_counts.update(names)

    def _token_proof(self, request: RecordedRequest, require: bool, url: str) -> str | None:
        """The thumbprint the token is to be bound to, None for a Bearer token; raises OAuthError
        as Okta answers a missing or refused proof."""
        proof = request.headers.get("dpop")
        if proof is None:
            if not require:
                return None
            self._count_dpop("missing")
            if self.missing_proof_error == "invalid_grant":
                raise OAuthError(400, "invalid_grant", _GENERIC_MISSING)
            raise OAuthError(400, "invalid_dpop_proof", MISSING_PROOF)
        with self._state:
            nonces = [self._dpop_nonce, self._previous_dpop_nonce or self._dpop_nonce]
        try:
            verified = verify_proof(
                proof,
                method="POST",
                url=url,
                now=time.time(),
                replay=self.dpop_replay,
                nonces=nonces,
            )
        except ProofError as refused:
            self._count_refusal(refused)
            if refused.error == USE_DPOP_NONCE:
                raise OAuthError(400, USE_DPOP_NONCE, NONCE_REQUIRED) from refused
            raise OAuthError(400, refused.error, refused.description) from refused
        self._count_dpop("proof", "accepted")
        return verified.jkt

    def _count_refusal(self, refused: ProofError) -> None:
        if refused.error == USE_DPOP_NONCE:
            self._count_dpop("proof", "nonce_challenge")
        elif refused.check == "replay":
            self._count_dpop("proof", "invalid", "replay")
        else:
            self._count_dpop("proof", "invalid")

    def _management_proof(self, request: RecordedRequest, token: str, jkt: str) -> None:
        """Check the proof sent with a DPoP-bound Management API token; raises OktaApiError."""
        proof = request.headers.get("dpop")
        if proof is None:
            self._count_dpop("missing")
            raise self._dpop_challenge("invalid_dpop_proof", "The DPoP proof is missing.")
        try:
            verify_proof(
                proof,
                method=request.method,
                url=request_url(self.base_url, request.raw_target, request.path),
                now=time.time(),
                replay=self.dpop_replay,
                access_token=token,
                expected_jkt=jkt,
            )
        except ProofError as refused:
            self._count_refusal(refused)
            raise self._dpop_challenge(refused.error, refused.description) from refused
        self._count_dpop("proof", "accepted")

    def _dpop_challenge(self, error: str, description: str) -> OktaApiError:
        """401 E0000011 with a DPoP challenge naming what is wrong."""
        challenge = (
            f'DPoP realm="{self.base_url}", algs="{" ".join(PROOF_ALGORITHMS)}", '
            f'error="{error}", error_description="{_quoted(description)}"'
        )
        return OktaApiError(
            401, "E0000011", _INVALID_TOKEN, headers={"WWW-Authenticate": challenge}
        )


def _new_nonce() -> str:
    return secrets.token_urlsafe(24)

"""The rotation of a KMS-signed app's key: a new KMS key per rotation, its public JWK on the app.

The KMS keys themselves (create, tag, find, disable, schedule deletion) are ``kms_keys``'; this
strategy decides which key is whose, as the other strategies do for secrets and key pairs.
"""

from __future__ import annotations

from collections.abc import Iterable

from okta_bridge.errors import RotationError
from okta_bridge.logs import get_logger
from okta_bridge.rotation.keys import same_public_key
from okta_bridge.rotation.kms_keys import (
    ENABLED,
    TAG_APP,
    TAG_SECRET,
    TAG_STACK,
    TAG_VERSION,
    KmsCallError,
    KmsKey,
    KmsKeys,
    TaggedKey,
)
from okta_bridge.rotation.okta_admin import JWKS, OktaAdmin, OktaKey
from okta_bridge.rotation.strategies import ACTIVE, INACTIVE, _AppCredentialStrategy
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.deadline import Deadline

log = get_logger("rotation")


class KmsKeyStrategy(_AppCredentialStrategy):
    """A KMS-signed app's key: each rotation makes a new KMS key (tagged with the secret and the
    rotation's version, so a re-run finds it) and registers its public JWK on the app.

    Okta keys are matched by kid (the key's thumbprint), else by the public members KMS gives
    for the key. The old KMS key is disabled and its deletion scheduled in ``dispose``, only once
    Okta refuses it: the check signs with it.
    """

    kind = JWKS
    noun = "key"

    def __init__(self, admin: OktaAdmin, kms: KmsKeys, secret_arn: str, version: str) -> None:
        super().__init__(admin)
        self._kms = kms
        self._secret_arn = secret_arn
        self._version = version

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        app = current.okta_app_id
        holder_key = self._kms.describe(current.kms_key_id or "")
        listed = self._admin.list_keys(app, deadline)
        # By kid first: the current key may be disabled already (the leak runbook disables it,
        # then rotates), and KMS gives no public key for a disabled key.
        holder = self._okta_key(current, listed)
        if holder is None:
            raise RotationError(
                "ROTATION_OKTA_ERROR",
                f"The public key of the current KMS key {holder_key.arn} is not registered on "
                f"app {app}.",
            )
        tagged = self._made_by_rotations(holder_key, current.key_algorithm)
        new_arn = self._made_earlier(tagged, listed)
        orphans = [k.arn for k in tagged if k.arn != new_arn]
        new_jwk = self._kms.public_jwk(new_arn) if new_arn else None
        stale = {c.key_id for c in ours if c.key_id and c.kms_key_id != new_arn}
        stale |= {kid for kid in (self._kid(arn) for arn in orphans) if kid}
        for other in listed:
            if other.id == holder.id or (new_jwk is not None and other.kid == new_jwk["kid"]):
                continue
            if other.status != ACTIVE or other.kid in stale:
                self._remove(app, other, deadline)
        for arn in orphans:  # keys earlier failed runs made: never the current or pending one
            self._kms.retire(arn)
        if new_arn is None or new_jwk is None:
            tags = {TAG_SECRET: self._secret_arn, TAG_VERSION: self._version, TAG_APP: app}
            stack = self._kms.tags(holder_key.arn).get(TAG_STACK)
            if stack:
                tags[TAG_STACK] = stack
            new_arn = self._kms.create_like(holder_key, current.key_algorithm, tags)
            new_jwk = self._kms.public_jwk(new_arn)
        if _jwk_match(new_jwk, listed) is None:
            added = self._admin.add_key(app, new_jwk, deadline, status=INACTIVE)
            log.info(
                "KMS key's JWK registered in Okta",
                extra={"app_id": app, "kid": new_jwk["kid"], "id": added.id},
            )
        return {
            "kms_key_id": new_arn,
            "key_id": new_jwk["kid"],
            "key_algorithm": current.key_algorithm,
        }

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        app = pending.okta_app_id
        target = self._okta_key(pending, self._admin.list_keys(app, deadline))
        self._activate(app, target, pending.key_id, deadline)

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Remove the old key's JWK, once the new one is found active on the app."""
        app = new.okta_app_id
        listed = self._admin.list_keys(app, deadline)
        fresh = self._okta_key(new, listed)
        if fresh is None or fresh.status != ACTIVE:
            raise RotationError(
                "ROTATION_CREDENTIAL_UNIDENTIFIED",
                f"The new version's key ({new.key_id}) is not an active key of app {app}; "
                "nothing was removed.",
            )
        stale = self._okta_key(old, listed)
        if stale is not None and stale != fresh:
            self._remove(app, stale, deadline)

    def dispose(self, old: Credentials, new: Credentials) -> None:
        """Disable the old KMS key and schedule its deletion (never the new version's key)."""
        if not old.kms_key_id or not new.kms_key_id:
            return
        if self._kms.describe(old.kms_key_id).arn == self._kms.describe(new.kms_key_id).arn:
            return
        self._kms.retire(old.kms_key_id)

    def _made_by_rotations(self, holder_key: KmsKey, algorithm: str) -> list[TaggedKey]:
        """The keys tagged as this secret's (the current one aside) that a rotation made: a key
        someone else tagged so is left as it is, neither adopted nor retired."""
        found = []
        for key in self._kms.tagged(self._secret_arn):
            if key.arn == holder_key.arn:
                continue
            if self._kms.made_by_rotation(key.arn, holder_key, algorithm):
                found.append(key)
            else:
                log.warning(
                    "a KMS key tagged as this secret's was not made by a rotation: left as it is",
                    extra={"key": key.arn},
                )
        return found

    def _made_earlier(self, tagged: list[TaggedKey], listed: list[OktaKey]) -> str | None:
        """The key an earlier run of this version made, if it can still sign: the one whose
        JWK Okta holds, else the first."""
        usable = [
            k.arn
            for k in tagged
            if k.version == self._version and self._kms.describe(k.arn).state == ENABLED
        ]
        registered = [arn for arn in usable if _jwk_match(self._kms.public_jwk(arn), listed)]
        chosen = registered or usable
        return chosen[0] if chosen else None

    def _kid(self, key_arn: str) -> str | None:
        """The kid of a key that can still give its public key."""
        if self._kms.describe(key_arn).state != ENABLED:
            return None
        return self._kms.public_jwk(key_arn)["kid"]

    def _okta_key(self, credentials: Credentials, listed: list[OktaKey]) -> OktaKey | None:
        """The app's key for these credentials: by kid, else by the KMS key's public members
        (a key that can no longer give them, disabled or gone, has none)."""
        by_kid = next(
            (k for k in listed if credentials.key_id and k.kid == credentials.key_id), None
        )
        if by_kid is not None or not credentials.kms_key_id:
            return by_kid
        try:
            jwk = self._kms.public_jwk(credentials.kms_key_id)
        except KmsCallError as exc:
            if exc.aws_code in _KEY_GONE:
                return None
            raise
        return _jwk_match(jwk, listed)


_KEY_GONE = frozenset({"DisabledException", "KMSInvalidStateException", "NotFoundException"})


def _jwk_match(jwk: dict[str, str], listed: Iterable[OktaKey]) -> OktaKey | None:
    """The registered key with ``jwk``'s public members."""
    members = {k: v for k, v in jwk.items() if k in ("kty", "n", "e", "crv", "x", "y")}
    return next((k for k in listed if same_public_key(k.jwk, members)), None)

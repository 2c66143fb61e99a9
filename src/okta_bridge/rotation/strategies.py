"""What "a credential" is for each kind of secret: a client secret, a key pair, a KMS key, a
password.

A strategy creates the new credential inactive, activates it, and retires the old one, each step
idempotent (a retried step finds its own earlier work in Okta and does not repeat it) and never
touching a credential that the current or the new version uses.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from typing import Protocol

from okta_bridge.errors import (
    RotationError,
)
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.rotation.keys import new_key_like, public_members, same_public_key
from okta_bridge.rotation.kms_keys import (
    ENABLED,
    TAG_APP,
    TAG_SECRET,
    TAG_STACK,
    TAG_VERSION,
    KmsCallError,
    KmsKeys,
    TaggedKey,
)
from okta_bridge.rotation.okta_admin import (
    JWKS,
    SECRETS,
    OktaAdmin,
    OktaApiError,
    OktaKey,
    OktaSecret,
    OktaWriteUncertain,
)
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.deadline import Deadline

ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"

log = get_logger("rotation")

PASSWORD_LENGTH = 32

_PASSWORD_SYMBOLS = "!#%*+-.=?@^_~"  # noqa: S105 - an alphabet


class Strategy(Protocol):
    """How one kind of credential is created, activated and retired in Okta."""

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        """The secret keys that change; ``ours`` are older versions this function made."""
        ...

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        """Make Okta accept ``pending`` (``current`` keeps working unless it cannot)."""
        ...

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Make Okta forget ``old``."""
        ...

    def dispose(self, old: Credentials, new: Credentials) -> None:
        """Destroy what is left of ``old`` once Okta refuses it (a KMS key)."""
        ...


Probe = Callable[[Credentials, Deadline], bool]


class _AppCredentialStrategy:
    """What client secrets and keys share: activating the pending one, removing an old one."""

    kind = SECRETS
    noun = "client secret"

    def __init__(self, admin: OktaAdmin) -> None:
        self._admin = admin

    def dispose(self, old: Credentials, new: Credentials) -> None:
        """Nothing: Okta held the whole credential."""

    def _activate(
        self, app: str, target: OktaSecret | OktaKey | None, name: str | None, deadline: Deadline
    ) -> None:
        if target is None:
            raise RotationError(
                "ROTATION_OKTA_ERROR",
                f"The pending {self.noun} {name} is no longer on app {app}; start a new rotation.",
            )
        if target.status != ACTIVE:
            self._admin.set_status(app, self.kind, target.id, deadline, active=True)
            log.info(
                "credential activated in Okta",
                extra={"app_id": app, "kind": self.kind, "id": target.id},
            )

    def _remove(self, app: str, item: OktaSecret | OktaKey, deadline: Deadline) -> None:
        if item.status == ACTIVE:
            self._admin.set_status(app, self.kind, item.id, deadline, active=False)
        self._admin.delete(app, self.kind, item.id, deadline)
        log.info(
            "credential deleted in Okta", extra={"app_id": app, "kind": self.kind, "id": item.id}
        )


class ClientSecretStrategy(_AppCredentialStrategy):
    """An app's client secret. Okta keeps at most two, so the leftovers go first."""

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        app = current.okta_app_id
        listed = self._admin.list_secrets(app, deadline)
        mine = {c.okta_secret_id for c in ours if c.okta_secret_id}
        holder = _current_secret(current, listed, mine)
        for other in listed:
            if other.id == holder.id:
                continue
            if other.status != ACTIVE or other.id in mine:
                self._remove(app, other, deadline)
            else:
                raise RotationError(
                    "ROTATION_SECRET_LIMIT",
                    f"App {app} has an active client secret {other.id} besides {holder.id}, which "
                    "the secret holds; Okta allows two. Delete the unused one in Okta.",
                )
        created, value = self._admin.create_secret(app, deadline, status=INACTIVE)
        REDACTOR.pin([value])
        log.info("client secret created in Okta", extra={"app_id": app, "secret_id": created.id})
        return {"client_secret": value, "okta_secret_id": created.id}

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        app = pending.okta_app_id
        listed = self._admin.list_secrets(app, deadline)
        target = next((s for s in listed if s.id == pending.okta_secret_id), None)
        self._activate(app, target, pending.okta_secret_id, deadline)

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Remove every secret of the app but the one ``new`` holds, which must be identified
        (by its ``okta_secret_id``) and active first: never the credential in use."""
        app = new.okta_app_id
        listed = self._admin.list_secrets(app, deadline)
        kept = next((s for s in listed if s.id == new.okta_secret_id), None)
        if kept is None or kept.status != ACTIVE:
            raise RotationError(
                "ROTATION_CREDENTIAL_UNIDENTIFIED",
                f"The new version's client secret ({new.okta_secret_id or 'no okta_secret_id'}) "
                f"is not an active secret of app {app}; nothing was removed.",
            )
        others = [s for s in listed if s.id != kept.id]
        if old.okta_secret_id is not None:
            others = [s for s in others if s.id == old.okta_secret_id]
        for secret in others:
            self._remove(app, secret, deadline)


def _current_secret(current: Credentials, listed: list[OktaSecret], mine: set[str]) -> OktaSecret:
    """The Okta secret the current version holds: by its id, else the only active one."""
    app = current.okta_app_id
    if current.okta_secret_id is not None:
        match = next((s for s in listed if s.id == current.okta_secret_id), None)
        if match is not None and match.status == ACTIVE:
            return match
    active = [s for s in listed if s.status == ACTIVE and s.id not in mine]
    if len(active) == 1:
        return active[0]
    if not active:
        raise RotationError(
            "ROTATION_OKTA_ERROR", f"App {app} has no active client secret the secret could hold."
        )
    raise RotationError(
        "ROTATION_SECRET_LIMIT",
        f"App {app} has two active client secrets ({', '.join(s.id for s in active)}) and the "
        "secret does not say which one it holds; add okta_secret_id to the secret or delete the "
        "unused one in Okta.",
    )


class KeyStrategy(_AppCredentialStrategy):
    """An app's private_key_jwt key pair, matched by its public half rather than a kid."""

    kind = JWKS
    noun = "key"

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        app = current.okta_app_id
        listed = self._admin.list_keys(app, deadline)
        holder = _key_of(current, listed)
        if holder is None:
            raise RotationError(
                "ROTATION_OKTA_ERROR",
                f"The current private key's public key is not registered on app {app}.",
            )
        mine = [k for k in (_key_of(c, listed) for c in ours) if k is not None]
        for other in listed:
            if other.id == holder.id:
                continue
            if other.status != ACTIVE or other in mine:
                self._remove(app, other, deadline)
        pair = new_key_like(current.private_key)
        while pair.kid in {k.kid for k in listed}:
            pair = new_key_like(current.private_key)
        REDACTOR.pin([pair.private_pem])
        added = self._admin.add_key(app, pair.jwk, deadline, status=INACTIVE)
        log.info("key registered in Okta", extra={"app_id": app, "kid": pair.kid, "id": added.id})
        return {"private_key": pair.private_pem, "key_id": pair.kid}

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        app = pending.okta_app_id
        target = _key_of(pending, self._admin.list_keys(app, deadline))
        self._activate(app, target, pending.key_id, deadline)

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Remove the old key, once the new one is found active on the app."""
        app = new.okta_app_id
        listed = self._admin.list_keys(app, deadline)
        stale, fresh = _key_of(old, listed), _key_of(new, listed)
        if fresh is None or fresh.status != ACTIVE:
            raise RotationError(
                "ROTATION_CREDENTIAL_UNIDENTIFIED",
                f"The new version's key ({new.key_id}) is not an active key of app {app}; "
                "nothing was removed.",
            )
        if stale is not None and stale != fresh:
            self._remove(app, stale, deadline)


def _key_of(credentials: Credentials, listed: Iterable[OktaKey]) -> OktaKey | None:
    if not credentials.private_key:
        return None
    members = public_members(credentials.private_key)
    return next((k for k in listed if same_public_key(k.jwk, members)), None)


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
        tagged = [k for k in self._kms.tagged(self._secret_arn) if k.arn != holder_key.arn]
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


class PasswordStrategy:
    """A dedicated service account's password, changed through Okta where Okta masters it."""

    def __init__(self, admin: OktaAdmin, probe: Probe) -> None:
        self._admin = admin
        self._probe = probe

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        user = self._admin.get_user(current.username or "", deadline)
        if user.provider_type != "OKTA":
            raise RotationError(
                "ROTATION_PASSWORD_DIRECTORY_MASTERED",
                f"{user.login}'s password is mastered by {user.provider_type} "
                f"{user.provider_name}".rstrip()
                + "; Okta cannot change it. Change it in the directory, then store it.",
            )
        password = generate_password()
        REDACTOR.pin([password])
        return {"password": password}

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        user = self._admin.get_user(current.username or "", deadline)
        try:
            self._admin.change_password(
                user.id, current.password or "", pending.password or "", deadline
            )
        except OktaWriteUncertain:
            # The answer was lost: the new password works if the change went through.
            if self._probe(pending, deadline):
                log.info("password change confirmed by a token", extra={"user_id": user.id})
                return
            raise
        except OktaApiError as exc:
            # E0000014 after a change that went through (a retried step): Okta holds the new one.
            if exc.okta_code == "E0000014" and self._probe(pending, deadline):
                log.info("password already changed", extra={"user_id": user.id})
                return
            raise
        log.info("password changed in Okta", extra={"user_id": user.id})

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Nothing: a user has one password, and the old one died with the change."""

    def dispose(self, old: Credentials, new: Credentials) -> None:
        """Nothing: Okta held the whole credential."""


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """Random, with every character class Okta's password policies may require."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _PASSWORD_SYMBOLS)
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in group for ch in candidate) for group in classes):
            return candidate

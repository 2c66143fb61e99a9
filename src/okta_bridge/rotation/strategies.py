"""What "a credential" is for each kind of secret: a client secret, a key pair, a password (and a
KMS key, in ``kms_strategy``).

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

"""The local Okta's users: OKTA-mastered passwords, the Management API's user routes and the test
helpers that set and read them.

A user's password changes only with the old one, to a new one of at least eight characters;
a user whose credentials a directory masters cannot change it here at all.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from okta_bridge_dev.emulators.okta.errors import (
    credentials_update_failed,
    resource_not_found,
    validation_failed,
)
from okta_bridge_dev.emulators.okta.org import OktaOrg, User, equal, iso

__all__ = ["UserAccounts", "user_id_for"]

MIN_PASSWORD_LENGTH = 8


def user_id_for(login: str) -> str:
    """The Okta user id of ``login``: ``00u`` and 17 hex digits of its SHA-256."""
    return "00u" + hashlib.sha256(login.encode("utf-8")).hexdigest()[:17]


def _password_value(body: Mapping[str, Any], name: str) -> str:
    member = body.get(name)
    value = member.get("value") if isinstance(member, dict) else None
    if not isinstance(value, str):
        raise validation_failed(name, f"{name}: The field cannot be left blank.")
    return value


def _provider(user: User) -> dict[str, str]:
    return {"type": user.provider_type, "name": user.provider_name}


class UserAccounts(OktaOrg):
    """The org's users; the Management API operations raise OktaApiError as Okta answers."""

    # -- inspection and test helpers -------------------------------------------------------

    def set_user_provider(self, login: str, provider_type: str, provider_name: str) -> None:
        """Make ``login``'s credentials mastered by another provider (e.g. ``ACTIVE_DIRECTORY``,
        ``corp.example.com``); Okta then refuses to change its password."""
        with self._state:
            user = self._user(login)
            user.provider_type, user.provider_name = provider_type, provider_name
            user.last_updated = time.time()

    def set_user_password(self, login: str, password: str) -> None:
        """Set the user's password as an admin reset does: no old password, no policy check."""
        with self._state:
            self._set_user(self._user(login).login, password, time.time())
            self.issued_secrets.append(password)

    def user_password(self, login: str) -> str:
        """The user's current password."""
        with self._state:
            return self._user(login).password

    def user_id(self, login: str) -> str:
        """The user's Okta id (``00u...``)."""
        with self._state:
            return self._user(login).id

    # -- Management API: users ---------------------------------------------------------------

    def _set_user(self, login: str, password: str, now: float) -> None:
        """Create or reset an OKTA-mastered user (caller holds ``_state``)."""
        user = self._users.get(login)
        if user is None:
            self._users[login] = User(
                user_id_for(login), login, password, "OKTA", "OKTA", now, now, now
            )
        elif user.password != password:
            user.password, user.password_changed, user.last_updated = password, now, now

    def _user(self, id_or_login: str) -> User:
        """The user by login or id (caller holds ``_state``) or 404."""
        user = self._users.get(id_or_login)
        if user is None:
            user = next((u for u in self._users.values() if u.id == id_or_login), None)
        if user is None:
            raise resource_not_found(id_or_login, "User")
        return user

    def _user_view(self, id_or_login: str) -> dict[str, Any]:
        with self._state:
            user = self._user(id_or_login)
            href = f"{self.base_url}/api/v1/users/{user.id}"
            return {
                "id": user.id,
                "status": "ACTIVE",
                "created": iso(user.created),
                "activated": iso(user.created),
                "statusChanged": iso(user.created),
                "lastLogin": None,
                "lastUpdated": iso(user.last_updated),
                "passwordChanged": iso(user.password_changed),
                "profile": {"login": user.login},
                "credentials": {"password": {}, "provider": _provider(user)},
                "_links": {
                    "self": {"href": href},
                    "changePassword": {
                        "href": f"{href}/credentials/change_password",
                        "hints": {"allow": ["POST"]},
                    },
                },
            }

    def _change_password(self, id_or_login: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST .../credentials/change_password: the old password must match; the new one must
        differ and have at least 8 characters; directory-mastered users cannot change here."""
        old, new = _password_value(body, "oldPassword"), _password_value(body, "newPassword")
        with self._state:
            user = self._user(id_or_login)
            if user.provider_type != "OKTA":
                raise credentials_update_failed(
                    f"password: Password is mastered by the directory ({user.provider_type}) "
                    "and cannot be changed in Okta."
                )
            if not equal(old, user.password):
                raise credentials_update_failed(
                    "oldPassword: The credentials provided were incorrect."
                )
            if len(new) < MIN_PASSWORD_LENGTH or equal(new, old):
                raise credentials_update_failed("password: Password requirements were not met.")
            self._set_user(user.login, new, time.time())
            self.issued_secrets.append(new)
            return {"password": {}, "provider": _provider(user)}

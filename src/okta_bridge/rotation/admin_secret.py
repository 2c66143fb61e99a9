"""The admin app's secret: the credentials the rotation function uses for Okta's Management API.

Okta accepts only ``private_key_jwt`` for ``okta.*`` scopes, at the org authorization server, so
the secret holds the org URL, the admin app's client id and its private key (``key_id`` and
``dpop`` optional); everything else follows from them. Errors name the key at fault, never a value.
"""

from __future__ import annotations

import json

from okta_bridge import config
from okta_bridge.errors import ConfigError, RotationError
from okta_bridge.secret.credentials import Credentials, optional_bool

APPS_SCOPE = "okta.apps.manage"
USERS_SCOPE = "okta.users.manage"


def parse_admin_secret(raw: str) -> Credentials:
    """The admin app's credentials for the org authorization server; errors name the key."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        data = None
    if not isinstance(data, dict):
        raise RotationError(
            "ROTATION_ADMIN_SECRET_INVALID", "The admin secret is not a JSON object."
        )
    values: dict[str, str] = {}
    for key in ("org_url", "client_id", "private_key"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise RotationError(
                "ROTATION_ADMIN_SECRET_INVALID", f"The admin secret lacks the key '{key}'."
            )
        values[key] = value.strip()
    key_id = data.get("key_id")
    try:
        dpop = optional_bool(data, "dpop")
    except ValueError as exc:
        raise RotationError("ROTATION_ADMIN_SECRET_INVALID", str(exc)) from None
    try:
        org_url = config.validate_https_url(values["org_url"], "org_url").rstrip("/")
    except ConfigError:
        raise RotationError(
            "ROTATION_ADMIN_SECRET_INVALID",
            "The admin secret's 'org_url' must be the Okta org's https:// URL.",
        ) from None
    return Credentials(
        client_id=values["client_id"],
        token_url=f"{org_url}/oauth2/v1/token",
        api_endpoint=org_url,
        auth_method="private_key_jwt",
        scopes=(APPS_SCOPE,),
        private_key=values["private_key"],
        key_id=key_id if isinstance(key_id, str) and key_id else None,
        dpop=dpop,
    )

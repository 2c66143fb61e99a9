"""The credentials secret: its JSON shape, validated into a typed object.

The design's four keys work as they are (``client_id``, ``client_secret``, ``token_url``,
``api_endpoint``). Errors name the key at fault, never a value. Secret fields are excluded from
``repr`` so a stray ``print`` or log of the object shows nothing sensitive.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from okta_bridge import config
from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError, SecretError
from okta_bridge.records import Record

PASSWORD_GRANT_SCOPE = "openid"
# Every key the bridge reads from the secret (README, "The secret"); others are stored, ignored.
SECRET_KEYS = (
    "client_id", "client_secret", "token_url", "api_endpoint", "auth_method", "private_key",
    "key_id", "kms_key_id", "key_algorithm", "username", "password", "scopes", "dpop",
    "client_certificate", "client_key", "app_id", "okta_secret_id",
)  # fmt: skip
# KMS's KeyId: a key id (UUID, or mrk- for multi-Region keys), a key ARN, "alias/<name>" or an
# alias ARN; no control characters or spaces ever reach a signed request.
_KMS_KEY = re.compile(
    r"(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?(key/)?(mrk-)?[0-9a-f-]{32,36}|"
    r"(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?alias/[A-Za-z0-9/_-]{1,250}"
)
# The JWS algorithms a KMS key signs client assertions with (``key_algorithm``; RS256 by default,
# as for Okta's SDKs): RSA_2048+ keys sign RS256, ECC_NIST_P256 keys ES256.
KMS_ALGORITHMS = ("RS256", "ES256")


class Credentials(Record):
    """Okta client credentials plus the endpoints they are for.

    A ``Record`` (``okta_bridge.records``), not a named tuple like the bridge's other records: a
    tuple would hand its secrets to anything that iterates or serialises it. Immutable
    (``Final``), compared and hashed by value, its secrets out of its repr."""

    _FIELDS = (
        "client_id",
        "token_url",
        "api_endpoint",
        "auth_method",
        "scopes",
        "client_secret",
        "private_key",
        "key_id",
        "kms_key_id",
        "key_algorithm",
        "username",
        "password",
        "client_certificate",
        "client_key",
        "version_id",
        "app_id",
        "okta_secret_id",
        "dpop",
    )  # the __init__ order
    _HIDDEN = frozenset({"client_secret", "private_key", "password", "client_key"})
    __slots__ = _FIELDS

    client_id: Final[str]
    token_url: Final[str]
    api_endpoint: Final[str]
    auth_method: Final[str]
    scopes: Final[tuple[str, ...]]
    client_secret: Final[str | None]  # never in repr
    private_key: Final[str | None]  # never in repr
    key_id: Final[str | None]
    kms_key_id: Final[str | None]  # a KMS key ARN or alias: assertions are signed by kms:Sign
    key_algorithm: Final[str]  # with kms_key_id: RS256 or ES256
    username: Final[str | None]
    password: Final[str | None]  # never in repr
    client_certificate: Final[str | None]
    client_key: Final[str | None]  # never in repr
    version_id: Final[str | None]
    app_id: Final[str]
    okta_secret_id: Final[str | None]
    dpop: Final[bool | None]  # the secret's own choice (``"dpop": true``), else the setting's

    def __init__(  # noqa: PLR0917 - positional, as the dataclass was
        self,
        client_id: str,
        token_url: str,
        api_endpoint: str,
        auth_method: str,
        scopes: tuple[str, ...],
        client_secret: str | None = None,
        private_key: str | None = None,
        key_id: str | None = None,
        kms_key_id: str | None = None,
        key_algorithm: str = "RS256",
        username: str | None = None,
        password: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
        version_id: str | None = None,
        app_id: str = "",
        okta_secret_id: str | None = None,
        dpop: bool | None = None,
    ) -> None:
        self.client_id = client_id
        self.token_url = token_url
        self.api_endpoint = api_endpoint
        self.auth_method = auth_method
        self.scopes = scopes
        self.client_secret = client_secret
        self.private_key = private_key
        self.key_id = key_id
        self.kms_key_id = kms_key_id
        self.key_algorithm = key_algorithm
        self.username = username
        self.password = password
        self.client_certificate = client_certificate
        self.client_key = client_key
        self.version_id = version_id
        self.app_id = app_id
        self.okta_secret_id = okta_secret_id
        self.dpop = dpop

    @property
    def okta_app_id(self) -> str:
        """The Okta app whose credentials these are (Okta's app id is the client id by default)."""
        return self.app_id or self.client_id

    @property
    def grant_type(self) -> str:
        """``password`` for a domain service account, else ``client_credentials``."""
        return "password" if self.username is not None else "client_credentials"

    def sensitive_values(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or a response."""
        values = (self.client_secret, self.private_key, self.password, self.client_key)
        return tuple(v for v in values if v)


def parse_secret(raw: str, settings: Settings, *, version_id: str | None = None) -> Credentials:
    """Validate the secret string and merge the environment's overrides into it."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        raise SecretError(
            "SECRET_INVALID", "The secret is not valid JSON (its content is not shown)."
        ) from None
    if not isinstance(data, dict):
        raise SecretError("SECRET_INVALID", "The secret must be a JSON object.")

    client_id = _required(data, "client_id")
    token_url = settings.token_url or _required(data, "token_url")
    api_endpoint = settings.api_base_url or _required(data, "api_endpoint")
    _url(token_url, "token_url")
    _url(api_endpoint, "api_endpoint")

    private_key = _string(data, "private_key")
    kms_key_id, key_algorithm = _kms_key(data, private_key, settings.aws.region)
    client_secret = _string(data, "client_secret")
    username = _string(data, "username")
    password = _string(data, "password")
    if (username is None) != (password is None):
        raise SecretError(
            "SECRET_INVALID", "The secret has one of 'username' and 'password' but not both."
        )
    client_certificate = _string(data, "client_certificate")
    client_key = _string(data, "client_key")
    if (client_certificate is None) != (client_key is None):
        raise SecretError(
            "SECRET_INVALID",
            "The secret has one of 'client_certificate' and 'client_key' but not both.",
        )
    auth_method = (
        settings.auth_method or _auth_method(data) or _infer_method(private_key, kms_key_id)
    )
    if auth_method == "private_key_jwt" and private_key is None and kms_key_id is None:
        raise SecretError(
            "SECRET_INVALID",
            "private_key_jwt needs the secret key 'private_key' (a PEM) or 'kms_key_id'.",
        )
    if auth_method != "private_key_jwt" and client_secret is None:
        raise SecretError("SECRET_INVALID", f"{auth_method} needs the secret key 'client_secret'.")

    scopes = settings.scopes or _scopes(data) or config.DEFAULT_SCOPES
    if username is not None and PASSWORD_GRANT_SCOPE not in scopes:
        # Okta's resource owner password grant requires openid among the scopes.
        scopes = (PASSWORD_GRANT_SCOPE, *scopes)
    return Credentials(
        client_id=client_id,
        token_url=token_url,
        api_endpoint=api_endpoint,
        auth_method=auth_method,
        scopes=scopes,
        client_secret=client_secret,
        private_key=private_key,
        key_id=_string(data, "key_id"),
        kms_key_id=kms_key_id,
        key_algorithm=key_algorithm,
        username=username,
        password=password,
        client_certificate=client_certificate,
        client_key=client_key,
        version_id=version_id,
        app_id=_string(data, "app_id") or "",
        okta_secret_id=_string(data, "okta_secret_id"),
        dpop=_dpop(data),
    )


def optional_bool(data: dict[str, Any], key: str) -> bool | None:
    """A JSON boolean (``"true"``/``"false"`` strings too, as hand-written JSON has them);
    raises ``ValueError`` for anything else."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"The secret key '{key}' must be true or false.")


def _dpop(data: dict[str, Any]) -> bool | None:
    try:
        return optional_bool(data, "dpop")
    except ValueError as exc:
        raise SecretError("SECRET_INVALID", str(exc)) from None


def _required(data: dict[str, Any], key: str) -> str:
    value = _string(data, key)
    if value is None:
        raise SecretError("SECRET_INVALID", f"The secret lacks the key '{key}'.")
    return value


def _string(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SecretError("SECRET_INVALID", f"The secret key '{key}' must be a string.")
    return value


def _url(value: str, key: str) -> None:
    try:
        config.validate_https_url(value, key)
    except ConfigError:
        raise SecretError(
            "SECRET_INVALID", f"The secret key '{key}' must be an absolute https:// URL."
        ) from None


def _auth_method(data: dict[str, Any]) -> str | None:
    value = _string(data, "auth_method")
    if value is not None and value not in config.AUTH_METHODS:
        raise SecretError(
            "SECRET_INVALID",
            f"The secret key 'auth_method' must be one of {', '.join(config.AUTH_METHODS)}.",
        )
    return value


def _infer_method(private_key: str | None, kms_key_id: str | None) -> str:
    # Okta's default for a new app is client_secret_basic; a key means private_key_jwt.
    keyed = private_key is not None or kms_key_id is not None
    return "private_key_jwt" if keyed else "client_secret_basic"


def _kms_key(
    data: dict[str, Any], private_key: str | None, region: str | None
) -> tuple[str | None, str]:
    """``kms_key_id`` and ``key_algorithm``; a KMS key needs the kid Okta registered
    (``key_id``: the app may hold two keys during a rotation), excludes ``private_key``, and is
    in the function's region (the bridge signs at that region's KMS)."""
    kms_key_id = _string(data, "kms_key_id")
    algorithm = _string(data, "key_algorithm") or "RS256"
    if algorithm not in KMS_ALGORITHMS:
        raise SecretError(
            "SECRET_INVALID",
            f"The secret key 'key_algorithm' must be one of {', '.join(KMS_ALGORITHMS)}.",
        )
    if kms_key_id is None:
        return None, algorithm
    if private_key is not None:
        raise SecretError(
            "SECRET_INVALID",
            "The secret has both 'private_key' and 'kms_key_id': keep the one the app uses.",
        )
    if _string(data, "key_id") is None:
        raise SecretError(
            "SECRET_INVALID",
            "'kms_key_id' needs 'key_id': the kid of the key's public JWK registered on the Okta "
            "app (make okta-jwk prints it).",
        )
    if not _KMS_KEY.fullmatch(kms_key_id):
        raise SecretError(
            "SECRET_INVALID",
            "The secret key 'kms_key_id' must be a KMS key ARN, key id, alias name or alias ARN.",
        )
    key_region = kms_key_id.split(":")[3] if kms_key_id.startswith("arn:") else None
    if region and key_region and key_region != region:
        raise SecretError(
            "SECRET_INVALID",
            f"'kms_key_id' names a key in {key_region}, but the function runs in {region}: use "
            "a key (or a multi-Region replica) in the function's region.",
        )
    return kms_key_id, algorithm


def _scopes(data: dict[str, Any]) -> tuple[str, ...] | None:
    value = data.get("scopes")
    if value is None:
        return None
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise SecretError(
            "SECRET_INVALID", "The secret key 'scopes' must be a string or a list of strings."
        )
    return tuple(items) or None

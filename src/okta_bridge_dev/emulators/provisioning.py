"""The local stack's Okta apps: one per way the bridge authenticates, and the admin app.

Each app gets freshly generated credentials (a 40-character secret like Okta's, an RSA-2048 or
EC P-256 key pair, a key in the stack's KMS whose public JWK the app holds, a password user);
``secret_value`` renders one as the JSON secret the bridge reads and ``admin_secret_value`` the
admin app's as rotation reads it. Every generated value is handed to ``remember`` so leak scans
know it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from okta_bridge.auth.jwk import public_jwk as kms_public_jwk
from okta_bridge_dev.emulators.kms import KmsServer
from okta_bridge_dev.emulators.okta.server import OktaServer, public_jwk

__all__ = [
    "ADMIN_CLIENT_ID",
    "ADMIN_SECRET_NAME",
    "API_SCOPE",
    "AUTH_METHODS",
    "CLIENT_IDS",
    "KINDS",
    "KMS_KINDS",
    "PASSWORD_USER",
    "Credential",
    "Provisioner",
    "check_kind",
    "pem_fragments",
]

KINDS = ("basic", "post", "jwt-rs256", "jwt-es256", "kms-rs256", "kms-es256", "password")
CLIENT_IDS = {kind: f"bridge-{kind}" for kind in KINDS}
PASSWORD_USER = "svc-okta-bridge"  # noqa: S105 - a user name, not a password
API_SCOPE = "api.access"
ADMIN_CLIENT_ID = "okta-bridge-admin"
ADMIN_SECRET_NAME = "okta-bridge/admin"  # noqa: S105 - a secret's name
AUTH_METHODS = {
    "basic": "client_secret_basic",
    "post": "client_secret_post",
    "jwt-rs256": "private_key_jwt",
    "jwt-es256": "private_key_jwt",
    "kms-rs256": "private_key_jwt",
    "kms-es256": "private_key_jwt",
    "password": "client_secret_basic",
}
# The KMS key spec and JWS algorithm of each KMS-signed kind.
KMS_KINDS = {"kms-rs256": ("RSA_2048", "RS256"), "kms-es256": ("ECC_NIST_P256", "ES256")}
_MIN_PEM_LINE = 40


@dataclass
class Credential:
    """What the stack generated for one client (replaced wholesale on rotation)."""

    kind: str
    client_id: str
    client_secret: str | None = None
    private_key_pem: str | None = None
    key_id: str | None = None
    password: str | None = None
    kms_key_id: str | None = None  # KMS-signed kinds: the key's ARN in the stack's KMS
    key_algorithm: str | None = None


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def pem_fragments(pem: str) -> list[str]:
    """The PEM and each of its body lines long enough to be unmistakably secret."""
    lines = [line for line in pem.splitlines() if len(line) >= _MIN_PEM_LINE]
    return [pem, *lines]


def check_kind(kind: str) -> None:
    """Raises ValueError unless ``kind`` is one of ``KINDS``."""
    if kind not in AUTH_METHODS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")


class Provisioner:
    """Registers the stack's apps with ``okta`` and keeps what it generated for them."""

    def __init__(self, okta: OktaServer, kms: KmsServer, remember: Callable[..., None]) -> None:
        self._okta = okta
        self._kms = kms
        self._remember = remember
        self._lock = threading.Lock()
        self._credentials: dict[str, Credential] = {}
        self._admin: Credential | None = None

    def register_all(self) -> None:
        """Every kind's app, then the admin app."""
        for kind in KINDS:
            self.register(kind)
        self.register_admin()

    def credential(self, kind: str) -> Credential:
        """What was generated for ``kind``; ValueError for an unknown kind."""
        check_kind(kind)
        with self._lock:
            if kind not in self._credentials:
                raise RuntimeError("the stack is not started")
            return self._credentials[kind]

    def admin(self) -> Credential | None:
        with self._lock:
            return self._admin

    def rotate(self, kind: str) -> Credential:
        """Replace ``kind``'s credential in Okta as an admin in the console would; see
        ``LocalStack.rotate_client_secret``."""
        credential = self.credential(kind)
        if credential.client_secret is None:
            self.register(kind)
            return self.credential(kind)
        new_secret = secrets.token_urlsafe(30)  # 40 characters, like Okta's
        self._remember(new_secret)
        self._okta.reset_client_secret(credential.client_id, new_secret)
        credential = replace(credential, client_secret=new_secret)
        if credential.password is not None:
            credential.password = secrets.token_urlsafe(18)
            self._remember(credential.password)
            self._okta.set_user_password(PASSWORD_USER, credential.password)
        with self._lock:
            self._credentials[kind] = credential
        return credential

    def secret_value(self, kind: str, *, token_url: str, api_endpoint: str) -> dict[str, str]:
        """The credentials secret for ``kind`` as the bridge reads it (a fresh dict each call)."""
        credential = self.credential(kind)
        value = {"client_id": credential.client_id}
        if credential.private_key_pem is not None and credential.key_id is not None:
            value["private_key"] = credential.private_key_pem
            value["key_id"] = credential.key_id
        if credential.kms_key_id is not None and credential.key_id is not None:
            value["kms_key_id"] = credential.kms_key_id
            value["key_id"] = credential.key_id
            value["key_algorithm"] = credential.key_algorithm or "RS256"
        if credential.client_secret is not None:
            value["client_secret"] = credential.client_secret
        if credential.password is not None:
            value["username"] = PASSWORD_USER
            value["password"] = credential.password
        value["token_url"] = token_url
        value["api_endpoint"] = api_endpoint
        value["auth_method"] = AUTH_METHODS[kind]
        return value

    def register(self, kind: str) -> None:
        """Generate credentials for ``kind``'s client and (re-)register it with Okta."""
        check_kind(kind)
        credential = Credential(kind=kind, client_id=CLIENT_IDS[kind])
        scopes: tuple[str, ...] = (API_SCOPE,)
        users: dict[str, str] | None = None
        jwks = []
        if kind.startswith("jwt-"):
            key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
            if kind == "jwt-rs256":
                key, alg = rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
            else:
                key, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
            credential.key_id = f"{kind}-{secrets.token_urlsafe(9)}"
            credential.private_key_pem = private_pem(key)
            jwks.append(public_jwk(key, kid=credential.key_id, alg=alg))
            self._remember(*pem_fragments(credential.private_key_pem))
        elif kind in KMS_KINDS:
            spec, credential.key_algorithm = KMS_KINDS[kind]
            credential.kms_key_id = self._kms.create_signing_key(spec, f"okta-bridge {kind}")
            self._remember(*pem_fragments(self._kms.private_key_pem(credential.kms_key_id)))
            jwk = kms_public_jwk(self._kms.public_key_der(credential.kms_key_id))
            credential.key_id = jwk["kid"]
            jwks.append(jwk)
        else:
            credential.client_secret = secrets.token_urlsafe(30)  # 40 characters, like Okta's
            self._remember(credential.client_secret)
        if kind == "password":
            credential.password = secrets.token_urlsafe(18)
            users = {PASSWORD_USER: credential.password}
            scopes = (API_SCOPE, "openid")
            self._remember(credential.password)
        self._okta.register_client(
            credential.client_id,
            auth_method=AUTH_METHODS[kind],
            client_secret=credential.client_secret,
            jwks=jwks,
            scopes=scopes,
            users=users,
            # A new key pair (rotation) leaves the app's DPoP setting as it was.
            dpop_bound_access_tokens=self._okta.requires_dpop(credential.client_id),
        )
        with self._lock:
            self._credentials[kind] = credential

    def register_admin(self) -> None:
        """Generate the admin app's EC P-256 key and register it as an Okta API service app."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem, kid = private_pem(key), f"admin-{secrets.token_urlsafe(9)}"
        self._remember(*pem_fragments(pem))
        self._okta.register_admin_client(
            ADMIN_CLIENT_ID,
            jwks=[public_jwk(key, kid=kid, alg="ES256")],
            dpop_bound_access_tokens=False,
        )
        with self._lock:
            self._admin = Credential(
                kind="admin", client_id=ADMIN_CLIENT_ID, private_key_pem=pem, key_id=kid
            )

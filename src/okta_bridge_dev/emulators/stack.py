"""The whole local stack: a private CA, Secrets Manager, S3, KMS and DynamoDB (moto), an Okta-like
server and the API.

One Okta client per way the bridge can authenticate is registered with freshly generated credentials
(``provisioning``); ``secret_value`` renders each as the JSON secret the bridge reads,
``environment`` gives the variables that point the bridge (and boto3) at the stack (the KMS that
signs the kms kinds' client assertions, ``stack.kms``, included), with ``delivery=True`` at the S3
bucket large answers go to (``DELIVERY_BUCKET``), with ``token_cache=True`` at the shared token
cache's table (``TOKEN_CACHE_TABLE`` on ``dynamodb``) and KMS key (``token_cache_key_id``). An
admin app (``ADMIN_CLIENT_ID``, private_key_jwt, Okta API scopes) gets Management API tokens for
credential rotation; ``admin_secret_value`` renders its secret. None of the stack's apps requires
DPoP and the stack's Okta registers new apps that way too (unlike Okta, where new apps require
it), so a test opts in (``okta.require_dpop``, ``okta.new_apps_require_dpop``); ``reset_dpop``,
which ``clear_faults`` calls, restores that and the API's DPoP defaults. ``python -m
okta_bridge_dev.emulators.stack`` serves a stack to poke at by hand (``stack_shell``).
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Self, TypeVar

from okta_bridge_dev.emulators.dynamodb import TOKEN_CACHE_TABLE, DynamoDbServer
from okta_bridge_dev.emulators.kms import KmsServer
from okta_bridge_dev.emulators.lambda_service import LambdaHandler, LambdaServer
from okta_bridge_dev.emulators.okta.server import OktaServer
from okta_bridge_dev.emulators.pki import LocalCA, ServerCert, server_context
from okta_bridge_dev.emulators.provisioning import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET_NAME,
    API_SCOPE,
    CLIENT_IDS,
    KINDS,
    PASSWORD_USER,
    Provisioner,
    check_kind,
    pem_fragments,
)
from okta_bridge_dev.emulators.s3 import DELIVERY_BUCKET, S3Server
from okta_bridge_dev.emulators.sample_api import Routing, SampleApi
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL, REGION, SecretsManagerServer
from okta_bridge_dev.emulators.servers import Lifecycle

__all__ = [
    "ADMIN_CLIENT_ID",
    "ADMIN_SECRET_NAME",
    "API_SCOPE",
    "CLIENT_IDS",
    "DELIVERY_BUCKET",
    "KINDS",
    "PASSWORD_USER",
    "TOKEN_CACHE_TABLE",
    "LocalStack",
    "main",
]

_MIN_OKTA_SECRET = 8
_Server = SecretsManagerServer | S3Server | KmsServer | DynamoDbServer | OktaServer | SampleApi


class LocalStack(Lifecycle):
    """Start with ``with LocalStack() as stack:``; everything binds to 127.0.0.1 on free ports.

    ``ca``, ``secrets_manager``, ``s3``, ``kms``, ``dynamodb``, ``okta`` and ``api`` exist between
    ``start()`` and ``stop()``. ``environment()`` assumes the variables in ``UNSET_ENVIRONMENT``
    are absent (a stray ``AWS_PROFILE`` or session token would otherwise leak into boto3).
    """

    UNSET_ENVIRONMENT = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._lock = threading.RLock()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._ca: LocalCA | None = None
        self._server_cert: ServerCert | None = None
        self._secrets_manager: SecretsManagerServer | None = None
        self._s3: S3Server | None = None
        self._kms: KmsServer | None = None
        self._dynamodb: DynamoDbServer | None = None
        self._token_cache_key_id: str | None = None
        self._okta: OktaServer | None = None
        self._api: SampleApi | None = None
        self._extra_apis: list[SampleApi] = []
        self._lambda: LambdaServer | None = None
        self._provisioner: Provisioner | None = None
        self._material: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Create the CA and the server certificate, start the servers, register the clients."""
        with self._lock:
            if self._api is not None:
                return self
            try:
                self._start()
            except BaseException:
                self.stop()
                raise
        return self

    def _start(self) -> None:
        directory = self._make_directory()
        ca = self._ca = LocalCA(directory)
        self._server_cert = ca.issue("server")
        self._remember(*pem_fragments(self._server_cert.key_path.read_text()))
        context = server_context(self._server_cert)
        self._secrets_manager = SecretsManagerServer(context, ca_bundle=ca.ca_pem_path).start()
        self._s3 = S3Server(context).start()
        self._s3.create_bucket(DELIVERY_BUCKET)
        self._kms = KmsServer(context).start()
        self._token_cache_key_id = self._kms.create_symmetric_key("okta-bridge token cache")
        self._dynamodb = DynamoDbServer(context).start()
        self._dynamodb.create_table(TOKEN_CACHE_TABLE)
        okta = self._okta = OktaServer(context, require_dpop_by_default=False).start()
        self._api = SampleApi(
            context, issuer=okta.issuer, jwks_url=okta.jwks_url, ca_bundle=ca.ca_pem_path
        ).start()
        self._provisioner = Provisioner(okta, self._kms, self._remember)
        self._provisioner.register_all()

    def _make_directory(self) -> Path:
        if self._directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="okta-bridge-stack-")
            return Path(self._tempdir.name)
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._directory

    def stop(self) -> None:
        """Stop every server (even after a failed start) and remove the temporary directory."""
        with self._lock:
            servers: list[Lifecycle | None] = [self._lambda, *self._extra_apis, self._api]
            servers += [self._okta, self._secrets_manager, self._s3, self._kms, self._dynamodb]
            self._extra_apis, self._lambda, self._s3, self._kms = [], None, None, None
            self._api = self._okta = self._secrets_manager = self._dynamodb = None
            self._ca = self._server_cert = self._token_cache_key_id = None
            tempdir, self._tempdir = self._tempdir, None
        for server in servers:
            if server is not None:
                server.stop()
        if tempdir is not None:
            tempdir.cleanup()

    # -- components ------------------------------------------------------------------------

    @property
    def ca(self) -> LocalCA:
        """The CA every server certificate chains to."""
        return _started(self._ca)

    @property
    def server_cert(self) -> ServerCert:
        """The certificate (127.0.0.1 and localhost) all three servers present."""
        return _started(self._server_cert)

    @property
    def secrets_manager(self) -> SecretsManagerServer:
        """moto Secrets Manager over TLS."""
        return _started(self._secrets_manager)

    @property
    def s3(self) -> S3Server:
        """moto S3 over TLS, with the bucket ``DELIVERY_BUCKET``."""
        return _started(self._s3)

    @property
    def kms(self) -> KmsServer:
        """moto KMS over TLS: asymmetric signing keys, Sign and GetPublicKey."""
        return _started(self._kms)

    @property
    def dynamodb(self) -> DynamoDbServer:
        """moto DynamoDB over TLS, with the shared token cache's table ``TOKEN_CACHE_TABLE``."""
        return _started(self._dynamodb)

    @property
    def token_cache_key_id(self) -> str:
        """The ARN of the symmetric KMS key (on ``kms``) that encrypts the token cache's items."""
        return _started(self._token_cache_key_id)

    @property
    def okta(self) -> OktaServer:
        """The Okta-like authorization server."""
        return _started(self._okta)

    @property
    def api(self) -> SampleApi:
        """The sample internal API, trusting ``okta``'s tokens."""
        return _started(self._api)

    def start_extra_api(self, *, routing: Routing = "exact") -> SampleApi:
        """Another SampleApi (another origin) trusting the same Okta; stopped with the stack.

        ``routing="servlet"`` gives an API that normalises paths as Tomcat + Spring do, for tests
        that point a bridge at it and prove no attack path reaches ``/admin/keys``.
        """
        okta = self.okta
        api = SampleApi(
            server_context(self.server_cert),
            issuer=okta.issuer,
            jwks_url=okta.jwks_url,
            ca_bundle=self.ca.ca_pem_path,
            routing=routing,
        ).start()
        with self._lock:
            self._extra_apis.append(api)
        return api

    def start_lambda_service(
        self, functions: Mapping[str, LambdaHandler] | None = None
    ) -> LambdaServer:
        """The Lambda Invoke API emulator serving ``functions`` (name -> handler), started on
        first call (later calls register more functions) and stopped with the stack.

        boto3 reaches it with ``lambda_service.environment()`` and the stack's CA bundle.
        """
        with self._lock:
            if self._lambda is None:
                self._lambda = LambdaServer(
                    server_context(self.server_cert), account_id=self.secrets_manager.account_id
                ).start()
            service = self._lambda
        for name, handler in (functions or {}).items():
            service.register(name, handler)
        return service

    @property
    def lambda_service(self) -> LambdaServer:
        """The Lambda emulator, once ``start_lambda_service()`` started it."""
        return _started(self._lambda)

    # -- credentials -----------------------------------------------------------------------

    def secret_value(self, kind: str) -> dict[str, str]:
        """The credentials secret for ``kind`` as the bridge reads it (a fresh dict each call)."""
        check_kind(kind)
        provisioner = self._provisioned()
        provisioner.credential(kind)  # "not started" before the URLs below are asked for
        return provisioner.secret_value(
            kind, token_url=self.okta.token_url, api_endpoint=f"{self.api.base_url}/v1/data"
        )

    def store_secret(self, kind: str, name: str | None = None) -> str:
        """Put ``secret_value(kind)`` into Secrets Manager; return the secret's name."""
        secret_name = name or f"local/okta_api_creds/{kind}"
        self.secrets_manager.put_secret(secret_name, self.secret_value(kind))
        return secret_name

    def rotate_client_secret(self, kind: str, name: str | None = None) -> str:
        """Replace ``kind``'s credential in Okta by hand, as an admin in the console would (the
        old one stops working at once), and store the new secret under ``name`` (default
        ``local/okta_api_creds/{kind}``).

        Secret kinds get one new ACTIVE client secret in place of all the app's secrets (and the
        password kind a new user password, set as an admin reset would); jwt kinds get a new key
        pair. Returns the new credential: the client secret, or the private key PEM for jwt kinds.
        """
        check_kind(kind)
        with self._lock:
            credential = self._provisioned().rotate(kind)
        self.store_secret(kind, name)
        return credential.private_key_pem or credential.client_secret or ""

    def admin_secret_value(self) -> dict[str, str]:
        """The admin app's secret as rotation reads it: ``org_url``, ``client_id``,
        ``private_key`` (PKCS#8 PEM, EC P-256) and ``key_id``."""
        with self._lock:
            admin = self._provisioner.admin() if self._provisioner is not None else None
        if admin is None or admin.private_key_pem is None or admin.key_id is None:
            raise RuntimeError("the stack is not started")
        return {
            "org_url": self.okta.base_url,
            "client_id": admin.client_id,
            "private_key": admin.private_key_pem,
            "key_id": admin.key_id,
        }

    def store_admin_secret(self, name: str = ADMIN_SECRET_NAME) -> str:
        """Put ``admin_secret_value()`` into Secrets Manager; return the secret's name."""
        self.secrets_manager.put_secret(name, self.admin_secret_value())
        return name

    def environment(
        self, secret_id: str, *, delivery: bool = False, token_cache: bool = False
    ) -> dict[str, str]:
        """Environment variables that point the bridge and boto3 at this stack (the KMS that
        signs the kms kinds' client assertions included); ``delivery`` adds the S3 bucket (and
        key) large answers are written to, ``token_cache`` the shared token cache's table, its
        KMS key and the DynamoDB endpoint."""
        ca_bundle = str(self.ca.ca_pem_path)
        environment = {
            "BRIDGE_SECRET_ID": secret_id,
            "BRIDGE_CA_BUNDLE": ca_bundle,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.secrets_manager.endpoint_url,
            "AWS_ENDPOINT_URL_KMS": self.kms.endpoint_url,
            "AWS_CA_BUNDLE": ca_bundle,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if delivery:
            environment["BRIDGE_DELIVERY_BUCKET"] = DELIVERY_BUCKET
            environment["BRIDGE_DELIVERY_KMS_KEY"] = self.s3.kms_key_arn
            environment["AWS_ENDPOINT_URL_S3"] = self.s3.endpoint_url
        if token_cache:
            environment["BRIDGE_TOKEN_CACHE"] = TOKEN_CACHE_TABLE
            environment["BRIDGE_TOKEN_CACHE_KEY_ID"] = self.token_cache_key_id
            environment["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb.endpoint_url
        return environment

    def all_secret_material(self) -> list[str]:
        """Every secret the stack generated (rotated ones and the admin key too), every client
        secret and password Okta held (those it generated or was given through its API too) and
        every token Okta issued.

        PEMs are listed whole and line by line, tokens whole and by signature, so a scan also
        catches partial leaks. Okta-held values shorter than 8 characters are left out: tests
        register such placeholders, and they would match by chance.
        """
        with self._lock:
            material = list(self._material)
        okta = self._okta
        tokens = list(okta.issued_tokens) if okta is not None else []
        held = list(okta.issued_secrets) if okta is not None else []
        material += [value for value in held if len(value) >= _MIN_OKTA_SECRET]
        for token in tokens:
            material += [token, token.rsplit(".", 1)[-1]]
        return list(dict.fromkeys(material))

    def reset_counts(self) -> None:
        """Zero the counters of every server."""
        for server in self._servers():
            server.reset_counts()

    def clear_faults(self) -> None:
        """Drop every pending fault and injected error, and restore the DPoP defaults
        (``reset_dpop``)."""
        for server in self._servers():
            server.clear_faults()
        self.reset_dpop()

    def reset_dpop(self) -> None:
        """The DPoP defaults, so no test leaks its DPoP settings into the next: none of the
        stack's apps requires DPoP, nor do apps registered from now on, a missing proof is
        answered as Okta does, every API validates DPoP without a nonce of its own, and every
        server's nonce is the one it started with (a client's cached nonce stays valid)."""
        with self._lock:
            okta, apis = self._okta, [self._api, *self._extra_apis]
        if okta is not None:
            okta.new_apps_require_dpop = False
            okta.missing_proof_error = "invalid_dpop_proof"
            okta.reset_dpop_nonces()
            for client_id in (*CLIENT_IDS.values(), ADMIN_CLIENT_ID):
                if okta.requires_dpop(client_id):
                    okta.require_dpop(client_id, on=False)
        for api in apis:
            if api is not None:
                api.reset_dpop()

    def _servers(self) -> list[_Server]:
        with self._lock:
            servers = [self._secrets_manager, self._s3, self._kms, self._dynamodb, self._okta]
            return [s for s in (*servers, self._api, *self._extra_apis) if s is not None]

    def _provisioned(self) -> Provisioner:
        with self._lock:
            if self._provisioner is None:
                raise RuntimeError("the stack is not started")
            return self._provisioner

    def _remember(self, *material: str) -> None:
        with self._lock:
            self._material.extend(material)


_T = TypeVar("_T")


def _started(component: _T | None) -> _T:
    if component is None:
        raise RuntimeError("the local stack is not started; use `with LocalStack() as stack:`")
    return component


def main() -> int:
    """Start a stack, print shell exports, serve until Ctrl-C (``stack_shell.serve``)."""
    from okta_bridge_dev.emulators.stack_shell import serve  # noqa: PLC0415 - it imports us

    return serve()


if __name__ == "__main__":
    sys.exit(main())

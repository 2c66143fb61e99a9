"""Secret sources that keep boto3 off the hot path, and the choice between them.

boto3's Secrets Manager client costs ~180 ms of cold start on python3.13, more than the rest of the
bridge together, for one GetSecretValue call. Two ways around it:

- ``SignedHttpSource`` (the default when Lambda's credentials are in the environment): the same
  call as one SigV4-signed HTTPS POST through the bridge's own ``HttpClient`` (verified TLS, the
  proxy, the deadline, retries). ``okta_bridge.secret.sigv4`` signs it (botocore's signer would add
  ~40 ms of imports; a test proves the two sign identically).
- ``ExtensionSource`` (``BRIDGE_SECRET_SOURCE=extension``): the AWS Parameters and Secrets Lambda
  Extension on ``localhost``, which caches for up to 300 s. Forced re-reads (after Okta refused
  the credentials) bypass that cache through the signed source, so a rotation is seen at once.
  When the extension layer is absent the signed source serves instead.

``BRIDGE_SECRET_SOURCE=sdk``, or credentials that are not in the environment (a profile, SSO on a
laptop), or an ``AWS_CA_BUNDLE`` that differs from ``BRIDGE_CA_BUNDLE`` select boto3 as before.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

from okta_bridge import config
from okta_bridge.config import Settings
from okta_bridge.errors import SecretError
from okta_bridge.logs import get_logger
from okta_bridge.secret.sigv4 import service_host, sign_post
from okta_bridge.secret.store import CURRENT, BotoSecretSource, SecretSource, SecretValue, aws_error
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, ResponseTooLarge, Target, json_object

SERVICE = "secretsmanager"
SECRETS_TARGET = Target("Secrets Manager", "SECRET_UNREACHABLE", "SECRET_UNREACHABLE", SecretError)
MAX_SECRET_ANSWER = 262_144  # a secret is at most 64 KiB; the JSON around it is small
SDK, EXTENSION = config.SECRET_SOURCES[1], config.SECRET_SOURCES[2]
_THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException"})
_EXTENSION_TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name

Credentials = tuple[str, str, str | None]

log = get_logger("secret_sources")


class SignedHttpSource:
    """GetSecretValue as one SigV4-signed POST through the bridge's HTTP client."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        *,
        credentials: Callable[[], Credentials | None] = config.aws_credentials,
    ) -> None:
        region = settings.aws.region
        if not region:
            raise SecretError("SECRET_ERROR", "AWS_REGION is not set; Lambda sets it.")
        self._settings = settings
        self._http = http
        self._credentials = credentials
        self._region = region
        self.url = settings.aws.secrets_endpoint or _endpoint(region, fips=settings.aws.fips)

    def fetch(
        self,
        secret_id: str,
        deadline: Deadline | None = None,
        *,
        stage: str = CURRENT,
        fresh: bool = False,
    ) -> SecretValue:
        request: dict[str, str] = {"SecretId": secret_id}
        if stage != CURRENT:
            request["VersionStage"] = stage
        body = json.dumps(request).encode()

        def prepare() -> tuple[dict[str, str], bytes]:
            return self._signed_headers(body), body  # a fresh X-Amz-Date for every attempt

        try:
            response = self._http.request(
                "POST",
                self.url,
                target=SECRETS_TARGET,
                deadline=deadline or Deadline(self._settings.default_deadline),
                prepare=prepare,
                max_bytes=MAX_SECRET_ANSWER,
                retry_when=_throttled,
            )
        except ResponseTooLarge:
            raise SecretError("SECRET_ERROR", "Secrets Manager's answer is too large.") from None
        answer = response.json_object() or {}
        if response.status != 200:
            aws_code, message = _error_type(answer, response.status)
            raise aws_error(aws_code, message, secret_id)
        return _secret_value(answer)

    def _signed_headers(self, body: bytes) -> dict[str, str]:
        found = self._credentials()
        if found is None:
            raise SecretError(
                "SECRET_ACCESS_DENIED", "No AWS credentials in the environment to sign with."
            )
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        }
        return sign_post(
            self.url, headers, body, credentials=found, region=self._region, service=SERVICE
        )


class ExtensionSource:
    """The Parameters and Secrets Lambda Extension on localhost, with ``fallback`` behind it."""

    def __init__(
        self,
        settings: Settings,
        fallback: SecretSource,
        *,
        session_token: Callable[[], str | None] = lambda: (
            config.aws_credentials() or ("", "", None)
        )[2],
        host: str = "localhost",
    ) -> None:
        self._settings = settings
        self._fallback = fallback
        self._session_token = session_token
        self._host = host
        self._port = settings.aws.extension_port
        self._absent = False

    def fetch(
        self,
        secret_id: str,
        deadline: Deadline | None = None,
        *,
        stage: str = CURRENT,
        fresh: bool = False,
    ) -> SecretValue:
        if fresh or self._absent:
            return self._fallback.fetch(secret_id, deadline, stage=stage, fresh=fresh)
        try:
            status, answer = self._get(secret_id, stage, deadline)
        except OSError as exc:
            # No extension layer (or it is not up): read directly from now on.
            log.warning(
                "the secrets extension is not answering; reading Secrets Manager directly",
                extra={"error": type(exc).__name__, "port": self._port},
            )
            self._absent = True
            return self._fallback.fetch(secret_id, deadline, stage=stage, fresh=fresh)
        if status != 200:
            if status in (400, 404) and "not found" in str(answer.get("message", "")).lower():
                raise aws_error("ResourceNotFoundException", "", secret_id)
            raise SecretError(
                "SECRET_ERROR",
                f"The secrets extension answered HTTP {status} for {secret_id}.",
            )
        return _secret_value(answer)

    def _get(
        self, secret_id: str, stage: str, deadline: Deadline | None
    ) -> tuple[int, dict[str, Any]]:
        from urllib.parse import urlencode  # noqa: PLC0415

        query = {"secretId": secret_id}
        if stage != CURRENT:
            query["versionStage"] = stage
        timeout = (deadline or Deadline(self._settings.default_deadline)).cap(
            self._settings.read_timeout
        )
        connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            connection.request(
                "GET",
                "/secretsmanager/get?" + urlencode(query),
                headers={_EXTENSION_TOKEN_HEADER: self._session_token() or ""},
            )
            response = connection.getresponse()
            return response.status, json_object(response.read(MAX_SECRET_ANSWER)) or {}
        finally:
            connection.close()


def source_for(settings: Settings, http: HttpClient) -> SecretSource:
    """The secret source ``settings`` ask for (BRIDGE_SECRET_SOURCE), or the fastest that works."""
    direct: SecretSource
    choice = settings.secret_source
    if choice == SDK or not _signing_possible(settings):
        direct = BotoSecretSource(settings)
    else:
        direct = SignedHttpSource(settings, http)
    if choice == EXTENSION:
        return ExtensionSource(settings, direct)
    return direct


def _signing_possible(settings: Settings) -> bool:
    """Credentials and region in the environment, and TLS trust the HTTP client shares."""
    aws = settings.aws
    same_trust = aws.ca_bundle is None or (
        settings.ca_bundle is not None and aws.ca_bundle == str(settings.ca_bundle)
    )
    return bool(aws.region) and same_trust and config.aws_credentials() is not None


def _endpoint(region: str, *, fips: bool) -> str:
    return f"https://{service_host('secretsmanager', region, fips=fips)}/"


def _throttled(response: HttpResponse) -> bool:
    if response.status != 400:
        return False
    return _error_type(response.json_object() or {}, 400)[0] in _THROTTLED


def _error_type(answer: dict[str, Any], status: int) -> tuple[str, str]:
    """AWS's JSON error: ``__type`` (maybe ``prefix#Name``) and the message."""
    kind = str(answer.get("__type") or answer.get("code") or f"HTTP{status}")
    message = str(answer.get("message") or answer.get("Message") or "")
    return kind.rsplit("#", 1)[-1], message


def _secret_value(answer: dict[str, Any]) -> SecretValue:
    text = answer.get("SecretString")
    if not isinstance(text, str):
        raise SecretError(
            "SECRET_INVALID", "The secret holds binary data; store the JSON as SecretString."
        )
    version = answer.get("VersionId")
    return SecretValue(text=text, version_id=version if isinstance(version, str) else None)

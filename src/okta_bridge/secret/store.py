"""SecretStore: the credentials secret, read once per environment and cached.

The source only talks to AWS; the store owns caching. Two views of the cache:

- ``current()`` serves the API call path: any cached value is good, so a warm call reads nothing.
- ``fresh()`` serves token requests: the value is re-read when older than the TTL, so a token is
  never minted from credentials older than that.
- ``reload()`` is the forced re-read after Okta refuses the credentials (the secret rotated). If
  AWSCURRENT has not changed, a rotation may be between its steps (a password already changed in
  Okta, not yet promoted), so the AWSPENDING version is tried as well.

Failures are never cached: the next call tries again.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from okta_bridge import metrics, tracing
from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError, SecretError
from okta_bridge.logs import get_logger
from okta_bridge.records import Record
from okta_bridge.secret.credentials import Credentials, parse_secret
from okta_bridge.transport.deadline import Deadline

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

log = get_logger("secrets")


class SecretValue(Record):
    """What a source returns: the secret string (every credential in it, so never in a repr,
    and not a tuple that ``json.dumps`` or the redactor's walk would open) and its version."""

    _FIELDS = ("text", "version_id")
    _HIDDEN = frozenset({"text"})
    __slots__ = _FIELDS

    text: Final[str]
    version_id: Final[str | None]

    def __init__(self, text: str, version_id: str | None = None) -> None:
        self.text = text
        self.version_id = version_id


CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


class SecretSource(Protocol):
    """Reads one version stage of a secret within ``deadline``; raises ``SecretError``."""

    def fetch(
        self,
        secret_id: str,
        deadline: Deadline | None = None,
        *,
        stage: str = CURRENT,
        fresh: bool = False,
    ) -> SecretValue:
        """``fresh`` asks a caching source to bypass its cache (a forced re-read)."""
        ...


class BotoSecretSource:
    """Secrets Manager through boto3, created lazily so importing the bridge stays cheap.

    boto3 honours ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and ``AWS_CA_BUNDLE`` itself. Retries of
    throttling and transient faults are botocore's standard mode, bounded by ``max_attempts``.
    """

    def __init__(
        self,
        settings: Settings,
        client: SecretsManagerClient | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def fetch(
        self,
        secret_id: str,
        deadline: Deadline | None = None,
        *,
        stage: str = CURRENT,
        fresh: bool = False,
    ) -> SecretValue:
        client = self._get_client()
        call = functools.partial(client.get_secret_value, SecretId=secret_id)
        if stage != CURRENT:
            call = functools.partial(call, VersionStage=stage)
        try:
            answer = call() if deadline is None else self._within(call, deadline, secret_id)
        except SecretError:
            raise
        except Exception as exc:
            raise translate_aws_error(exc, secret_id) from exc
        text = answer.get("SecretString")
        if text is None:
            raise SecretError(
                "SECRET_INVALID", "The secret holds binary data; store the JSON as SecretString."
            )
        return SecretValue(text=text, version_id=answer.get("VersionId"))

    def _within(
        self, call: Callable[[], GetSecretValueResponseTypeDef], deadline: Deadline, secret_id: str
    ) -> GetSecretValueResponseTypeDef:
        """Run ``call`` on a worker and wait only until the deadline.

        botocore's timeouts are fixed per client and its retries sleep, so a silent endpoint
        would outlast the invocation. A call abandoned here finishes in the background and its
        result is dropped; the next read starts afresh.
        """
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - the SDK source only
        from concurrent.futures import TimeoutError as FutureTimeout  # noqa: PLC0415

        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="secret")
            future = self._executor.submit(call)
        try:
            return future.result(timeout=max(deadline.remaining(), 0.001))
        except FutureTimeout:
            raise SecretError(
                "SECRET_UNREACHABLE",
                f"Secrets Manager did not answer for {secret_id} before the deadline.",
            ) from None

    def _get_client(self) -> SecretsManagerClient:
        with self._lock:
            if self._client is None:
                self._client = make_client(self._settings)
            return self._client


def make_client(settings: Settings) -> SecretsManagerClient:
    import boto3  # noqa: PLC0415 - deferred: boto3 costs ~200 ms to import
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import NoRegionError  # noqa: PLC0415

    # total_max_attempts counts the first call; botocore's max_attempts would count retries.
    retries: Any = {"mode": "standard", "total_max_attempts": settings.max_retries + 1}
    botocore_config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=min(settings.read_timeout, 5.0),
        retries=retries,
        user_agent_extra="okta-bridge",
    )
    try:
        return boto3.client("secretsmanager", config=botocore_config)
    except NoRegionError:
        raise ConfigError("AWS_REGION", "is not set; Lambda sets it, set it locally") from None


_CLIENT_ERRORS: dict[str, tuple[str, str]] = {
    "ResourceNotFoundException": ("SECRET_NOT_FOUND", "No secret named {id} in this region."),
    "AccessDeniedException": (
        "SECRET_ACCESS_DENIED",
        "The function's role may not read {id} (AccessDeniedException).",
    ),
    "UnrecognizedClientException": (
        "SECRET_ACCESS_DENIED",
        "AWS rejected the function's credentials reading {id}.",
    ),
    "ExpiredTokenException": (
        "SECRET_ACCESS_DENIED",
        "The function's AWS credentials expired reading {id}.",
    ),
    "DecryptionFailure": (
        "SECRET_DECRYPT_FAILED",
        "KMS could not decrypt {id} (DecryptionFailure).",
    ),
    "ThrottlingException": ("SECRET_THROTTLED", "Secrets Manager throttled reads of {id}."),
    "TooManyRequestsException": ("SECRET_THROTTLED", "Secrets Manager throttled reads of {id}."),
    "InvalidRequestException": (
        "SECRET_NOT_FOUND",
        "{id} cannot be read: it is disabled or scheduled for deletion (InvalidRequestException).",
    ),
}


def aws_error(aws_code: str, aws_message: str, secret_id: str) -> SecretError:
    """A Secrets Manager error answer as a ``SecretError``; the message names the AWS code only."""
    if aws_code == "AccessDeniedException" and "kms" in aws_message.lower():
        aws_code = "DecryptionFailure"
    code, template = _CLIENT_ERRORS.get(
        aws_code, ("SECRET_ERROR", f"Secrets Manager failed reading {{id}} ({aws_code}).")
    )
    return SecretError(code, template.format(id=secret_id))


def translate_aws_error(exc: Exception, secret_id: str) -> SecretError:
    """Map a botocore failure to a ``SecretError``; the message names the AWS code, not details."""
    from botocore import exceptions as bce  # noqa: PLC0415

    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        return aws_error(
            str(error.get("Code", "Unknown")), str(error.get("Message", "")), secret_id
        )
    if isinstance(exc, bce.NoCredentialsError):
        return SecretError("SECRET_ACCESS_DENIED", "No AWS credentials are available.")
    if isinstance(exc, bce.SSLError):
        return SecretError(
            "SECRET_UNREACHABLE", "TLS to Secrets Manager failed; check AWS_CA_BUNDLE or the proxy."
        )
    if isinstance(
        exc, bce.EndpointConnectionError | bce.ConnectTimeoutError | bce.ReadTimeoutError
    ):
        return SecretError(
            "SECRET_UNREACHABLE", f"Secrets Manager could not be reached ({type(exc).__name__})."
        )
    if isinstance(exc, bce.BotoCoreError):
        return SecretError("SECRET_ERROR", f"Reading the secret failed ({type(exc).__name__}).")
    raise exc


class SecretStore:
    """The cached credentials of one secret; thread-safe, single flight."""

    def __init__(
        self,
        settings: Settings,
        source: SecretSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[Credentials], None] | None = None,
    ) -> None:
        self._settings = settings
        self._source = source
        self._clock = clock
        self._on_load = on_load
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._loaded_at = 0.0
        self.reads = 0

    def current(self, deadline: Deadline | None = None) -> Credentials:
        """Any cached credentials, reading only when there are none."""
        with self._lock:
            if self._cached is None:
                return self._load_locked(deadline)
            return self._cached

    def fresh(self, deadline: Deadline | None = None) -> Credentials:
        """Cached credentials younger than the TTL, else a new read."""
        with self._lock:
            if self._cached is None or self._clock() - self._loaded_at >= self._settings.secret_ttl:
                return self._load_locked(deadline)
            return self._cached

    def reload(
        self, stale: Credentials | None = None, deadline: Deadline | None = None
    ) -> Credentials:
        """Force one re-read, unless another thread already replaced ``stale``.

        When AWSCURRENT still holds ``stale``, the AWSPENDING version is returned if there is a
        usable one: between a rotation's ``setSecret`` and ``finishSecret`` Okta may already
        accept only the pending credential (a changed password).
        """
        with self._lock:
            if stale is not None and self._cached is not None and self._cached is not stale:
                return self._cached
            credentials = self._load_locked(deadline, fresh=True)
            if stale is None or credentials != stale:
                return credentials
            return self._pending_locked(credentials, deadline) or credentials

    def clear(self) -> None:
        """Forget the cached value (SnapStart restore, tests)."""
        with self._lock:
            self._cached = None

    def _load_locked(self, deadline: Deadline | None, *, fresh: bool = False) -> Credentials:
        return self._keep_locked(self._read(CURRENT, deadline, fresh=fresh))

    def _read(self, stage: str, deadline: Deadline | None, *, fresh: bool) -> SecretValue:
        """One read of the source (counted, traced); the caller holds the lock."""
        self.reads += 1
        metrics.secret_read()
        with tracing.span(tracing.SECRET_READ, {"okta_bridge.secret.stage": stage}) as span:
            value = self._source.fetch(self._settings.secret_id, deadline, stage=stage, fresh=fresh)
            span.set("okta_bridge.secret.version_id", value.version_id)
            return value

    def _pending_locked(
        self, current: Credentials, deadline: Deadline | None
    ) -> Credentials | None:
        """The AWSPENDING credentials if a rotation has stored some, else None (never raises)."""
        try:
            value = self._read(PENDING, deadline, fresh=True)
            if value.version_id is not None and value.version_id == current.version_id:
                return None
            return self._keep_locked(value)
        except SecretError as exc:
            log.info("no usable AWSPENDING version", extra={"code": exc.code})
            return None

    def _keep_locked(self, value: SecretValue) -> Credentials:
        credentials = parse_secret(value.text, self._settings, version_id=value.version_id)
        if self._on_load is not None:
            self._on_load(credentials)
        self._cached = credentials
        self._loaded_at = self._clock()
        return credentials

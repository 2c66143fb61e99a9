"""Settings, parsed once from the environment into a frozen object.

Nothing else in the package reads ``os.environ``. A bad value raises ``ConfigError`` naming the
variable, so the first invocation fails with a ``config`` error instead of a confusing later one.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import NamedTuple

from okta_bridge.errors import ConfigError, RequestError
from okta_bridge.request.callers import CallerRoute, parse_routes
from okta_bridge.request.policy import ROUTE_METHODS, Route, check_segment
from okta_bridge.transport.tls import parse_pins

SECRET_ID = "BRIDGE_SECRET_ID"
CA_BUNDLE = "BRIDGE_CA_BUNDLE"
TOKEN_URL = "BRIDGE_TOKEN_URL"
API_BASE_URL = "BRIDGE_API_BASE_URL"
SCOPES = "BRIDGE_SCOPES"
AUTH_METHOD = "BRIDGE_AUTH_METHOD"
ALLOWED_PATHS = "BRIDGE_ALLOWED_PATHS"
ALLOWED_ROUTES = "BRIDGE_ALLOWED_ROUTES"
ALLOWED_QUERY = "BRIDGE_ALLOWED_QUERY"
NEXT_LINK = "BRIDGE_NEXT_LINK"
MAX_PAGES = "BRIDGE_MAX_PAGES"
MAX_COLLECTION_BYTES = "BRIDGE_MAX_COLLECTION_BYTES"
MAX_REQUEST_BYTES = "BRIDGE_MAX_REQUEST_BYTES"
DELIVERY_BUCKET = "BRIDGE_DELIVERY_BUCKET"
DELIVERY_PREFIX = "BRIDGE_DELIVERY_PREFIX"
DELIVERY_KMS_KEY = "BRIDGE_DELIVERY_KMS_KEY"
INLINE_LIMIT = "BRIDGE_INLINE_LIMIT_BYTES"
DELIVERY_URL_SECONDS = "BRIDGE_DELIVERY_URL_SECONDS"
MAX_DELIVERY_BYTES = "BRIDGE_MAX_DELIVERY_BYTES"
ALLOW_ANONYMOUS_PROXY = "BRIDGE_ALLOW_ANONYMOUS_PROXY"
CALLER_ROUTES = "BRIDGE_CALLER_ROUTES"
DIAGNOSE = "BRIDGE_DIAGNOSE"
DIAGNOSE_MIN_INTERVAL = "BRIDGE_DIAGNOSE_MIN_INTERVAL_SECONDS"
TOKEN_BUDGET = "BRIDGE_TOKEN_BUDGET_PER_MINUTE"
TOKEN_REFRESH_MIN_AGE = "BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS"
DPOP = "BRIDGE_DPOP"
DPOP_MODES = ("auto", "on", "off")
CONNECT_TIMEOUT = "BRIDGE_CONNECT_TIMEOUT_SECONDS"
READ_TIMEOUT = "BRIDGE_READ_TIMEOUT_SECONDS"
DEADLINE_MARGIN = "BRIDGE_DEADLINE_MARGIN_MS"
DEFAULT_DEADLINE = "BRIDGE_DEFAULT_DEADLINE_SECONDS"
SECRET_TTL = "BRIDGE_SECRET_TTL_SECONDS"
MAX_RETRIES = "BRIDGE_MAX_RETRIES"
MAX_RESPONSE_BYTES = "BRIDGE_MAX_RESPONSE_BYTES"
LOG_LEVEL = "BRIDGE_LOG_LEVEL"
API_PINS = "BRIDGE_API_PINS"
METRICS = "BRIDGE_METRICS"
METRICS_NAMESPACE = "BRIDGE_METRICS_NAMESPACE"
TRACING = "BRIDGE_TRACING"
SECRET_SOURCE = "BRIDGE_SECRET_SOURCE"
TOKEN_CACHE = "BRIDGE_TOKEN_CACHE"
TOKEN_CACHE_KEY_ID = "BRIDGE_TOKEN_CACHE_KEY_ID"
TOKEN_CACHE_LEASE = "BRIDGE_TOKEN_CACHE_LEASE_SECONDS"
EXTENSION_PORT = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
# Set by Lambda: on-demand, provisioned-concurrency, or snap-start while a SnapStart snapshot's
# Init runs (and so in every environment restored from it).
INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAP_START = "snap-start"
SECRET_SOURCES = ("auto", "sdk", "extension")

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
DEFAULT_SCOPES = ("api.access",)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_METRICS_NAMESPACE = "OktaBridge"
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
# Lambda refuses synchronous responses over 6 MB; keep room for the envelope.
RESPONSE_CAP_LIMIT = 5_500_000
# An answer whose JSON encoding (the whole response Lambda returns) is over this goes to S3 when a
# delivery bucket is set: just under the 6 MB (6,291,456 bytes) synchronous response limit.
DEFAULT_INLINE_LIMIT = 6_000_000
LAMBDA_RESPONSE_LIMIT = 6_291_456
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_KMS_KEY = r"[A-Za-z0-9:/_-]{1,2048}"  # a KMS key id, key ARN or alias
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


class ProxySettings(NamedTuple):
    """Standard proxy variables, read here so the transport never touches the environment."""

    https_proxy: str | None = None
    no_proxy: str = ""

    def applies_to(self, host: str) -> bool:
        """Whether a request to ``host`` goes through the proxy (``NO_PROXY`` as curl reads it)."""
        if not self.https_proxy:
            return False
        import urllib.request  # noqa: PLC0415 - ~15 ms at import: only when a proxy is set

        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        return not bypass(host, {"no": self.no_proxy})


class AwsSettings(NamedTuple):
    """Where Secrets Manager is, as boto3 would find it (Lambda sets AWS_REGION)."""

    region: str | None = None
    secrets_endpoint: str | None = None
    kms_endpoint: str | None = None  # AWS_ENDPOINT_URL_KMS: where kms:Sign goes (local stack)
    ca_bundle: str | None = None
    fips: bool = False
    extension_port: int = 2773


class TokenCacheSettings(NamedTuple):
    """The fleet's shared token cache (``BRIDGE_TOKEN_CACHE``): a DynamoDB table whose items are
    sealed with data keys of ``key_id``; ``lease_seconds`` bounds one environment's mint."""

    table: str
    key_id: str
    lease_seconds: float = 5.0
    endpoint: str | None = None  # AWS_ENDPOINT_URL_DYNAMODB (local stack)


class DeliverySettings(NamedTuple):
    """Where answers too large for Lambda's 6 MB response go (S3), and how they are handed out.
    ``bucket`` is None when large answers are refused (``UPSTREAM_TOO_LARGE``) instead."""

    bucket: str | None = None
    prefix: str = "okta-bridge/"
    kms_key_id: str | None = None
    inline_limit: int = DEFAULT_INLINE_LIMIT
    url_seconds: int = 300
    max_bytes: int = 1_000_000_000
    endpoint: str | None = None  # AWS_ENDPOINT_URL_S3 (local stack): path-style requests

    @property
    def enabled(self) -> bool:
        return self.bucket is not None


# A named tuple, not a dataclass, as the other records on the cold path that neither change nor
# hold a secret (those are ``okta_bridge.records.Record``s; the module says why).
class Settings(NamedTuple):
    """Everything the bridge needs that is not secret. Secret values live in ``Credentials``."""

    secret_id: str
    ca_bundle: str | None = None  # a path; a str, not a Path: pathlib is not imported for it
    token_url: str | None = None
    api_base_url: str | None = None
    scopes: tuple[str, ...] | None = None
    auth_method: str | None = None
    allowed_paths: tuple[str, ...] | None = None
    allowed_routes: tuple[Route, ...] | None = None
    allowed_query: tuple[str, ...] | None = None
    allow_anonymous_proxy: bool = False
    caller_routes: tuple[CallerRoute, ...] = ()
    diagnose: bool = True
    diagnose_min_interval: float = 10.0
    token_budget_per_minute: int = 10
    token_refresh_min_age: float = 60.0
    dpop: str = "auto"
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    deadline_margin: float = 0.5
    default_deadline: float = 30.0
    secret_ttl: float = 900.0
    max_retries: int = 2
    max_response_bytes: int = 5_000_000
    log_level: str = "INFO"
    proxy: ProxySettings = ProxySettings()
    api_pins: frozenset[bytes] = frozenset()
    metrics: bool = True
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    tracing: bool = False
    secret_source: str = "auto"
    aws: AwsSettings = AwsSettings()
    next_link: str | None = None
    max_pages: int = 100
    max_collection_bytes: int = 20_000_000
    max_request_bytes: int = 1_000_000
    delivery: DeliverySettings = DeliverySettings()
    token_cache: TokenCacheSettings | None = None

    def routes(self) -> tuple[Route, ...] | None:
        """What the bridge function serves: ``BRIDGE_ALLOWED_ROUTES``, plus a GET route for
        each ``BRIDGE_ALLOWED_PATHS`` pattern; None when neither is set (the endpoint's path)."""
        if self.allowed_routes is None and self.allowed_paths is None:
            return None
        gets = tuple(Route("GET", pattern) for pattern in self.allowed_paths or ())
        return (*(self.allowed_routes or ()), *gets)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate the environment; raise ``ConfigError`` naming the bad variable."""
        env = os.environ if env is None else env
        secret_id = env.get(SECRET_ID, "").strip()
        if not secret_id:
            raise ConfigError(
                SECRET_ID, "is required: the name or ARN of the secret holding the Okta credentials"
            )
        return cls(
            secret_id=secret_id,
            ca_bundle=_ca_bundle(env.get(CA_BUNDLE, "").strip()),
            token_url=_optional_https_url(env, TOKEN_URL),
            api_base_url=_optional_https_url(env, API_BASE_URL),
            scopes=_optional_list(env, SCOPES, separators=" ,"),
            auth_method=_auth_method(env.get(AUTH_METHOD, "").strip() or None, AUTH_METHOD),
            allowed_paths=_allowed_paths(env),
            allowed_routes=_allowed_routes(env),
            allowed_query=_optional_list(env, ALLOWED_QUERY, separators=", "),
            allow_anonymous_proxy=_switch(env, ALLOW_ANONYMOUS_PROXY, default=False),
            caller_routes=_caller_routes(env),
            diagnose=diagnose_enabled(env),
            diagnose_min_interval=_number(env, DIAGNOSE_MIN_INTERVAL, 10.0, low=0, high=3600),
            token_budget_per_minute=int(
                _number(env, TOKEN_BUDGET, 10, low=1, high=600, integer=True)
            ),
            token_refresh_min_age=_number(env, TOKEN_REFRESH_MIN_AGE, 60.0, low=0, high=3600),
            dpop=_choice(env, DPOP, DPOP_MODES),
            connect_timeout=_number(env, CONNECT_TIMEOUT, 3.0, low=0.1, high=60),
            read_timeout=_number(env, READ_TIMEOUT, 10.0, low=0.1, high=900),
            deadline_margin=_number(env, DEADLINE_MARGIN, 500, low=0, high=10_000) / 1000,
            default_deadline=_number(env, DEFAULT_DEADLINE, 30.0, low=1, high=900),
            secret_ttl=_number(env, SECRET_TTL, 900.0, low=0, high=86_400),
            max_retries=int(_number(env, MAX_RETRIES, 2, low=0, high=10, integer=True)),
            max_response_bytes=int(
                _number(
                    env, MAX_RESPONSE_BYTES, 5_000_000, low=1, high=RESPONSE_CAP_LIMIT, integer=True
                )
            ),
            log_level=_log_level(env),
            proxy=ProxySettings(
                https_proxy=_proxy_url(env),
                no_proxy=env.get("NO_PROXY", env.get("no_proxy", "")),
            ),
            api_pins=_pins(env),
            metrics=_switch(env, METRICS, default=True),
            metrics_namespace=_namespace(env),
            tracing=_switch(env, TRACING, default=False),
            secret_source=_secret_source(env),
            aws=AwsSettings(
                region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
                or None,
                secrets_endpoint=_aws_endpoint(env, "SECRETS_MANAGER") or None,
                # Checked (https) where a KMS key is used: other code in the process may point
                # these variables elsewhere when the bridge signs nothing in KMS.
                kms_endpoint=_aws_endpoint(env, "KMS") or None,
                ca_bundle=env.get("AWS_CA_BUNDLE", "").strip() or None,
                fips=env.get("AWS_USE_FIPS_ENDPOINT", "").strip().lower() == "true",
                extension_port=int(
                    _number(env, EXTENSION_PORT, 2773, low=1, high=65535, integer=True)
                ),
            ),
            next_link=_next_link(env),
            max_pages=int(_number(env, MAX_PAGES, 100, low=1, high=10_000, integer=True)),
            max_collection_bytes=int(
                _number(
                    env, MAX_COLLECTION_BYTES, 20_000_000, low=1, high=500_000_000, integer=True
                )
            ),
            max_request_bytes=int(
                _number(env, MAX_REQUEST_BYTES, 1_000_000, low=1, high=5_000_000, integer=True)
            ),
            delivery=_delivery(env),
            token_cache=_token_cache(env),
        )


def validate_https_url(value: str, name: str) -> str:
    """Return ``value`` if it is an absolute https URL with a host; TLS is never optional."""
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ConfigError(name, "must be an absolute https:// URL with a host")
    if parsed.username or parsed.password:
        raise ConfigError(name, "must not carry credentials in the URL")
    if parsed.fragment:
        raise ConfigError(name, "must not have a #fragment")
    return value


def validate_auth_method(value: str | None, name: str) -> str | None:
    """Return a known client authentication method or ``None``."""
    return _auth_method(value, name)


def _auth_method(value: str | None, name: str) -> str | None:
    if value is not None and value not in AUTH_METHODS:
        raise ConfigError(name, f"must be one of {', '.join(AUTH_METHODS)}")
    return value


def _ca_bundle(path: str) -> str | None:
    if not path:
        return None
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise ConfigError(CA_BUNDLE, f"no file at {path}") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            CA_BUNDLE,
            f"{path} is not a readable PEM file of CA certificates ({type(exc).__name__})",
        ) from None
    return path


def _optional_https_url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return validate_https_url(value, name) if value else None


def _optional_list(env: Mapping[str, str], name: str, *, separators: str) -> tuple[str, ...] | None:
    raw = env.get(name, "")
    for sep in separators[1:]:
        raw = raw.replace(sep, separators[0])
    items = tuple(item for item in raw.split(separators[0]) if item)
    return items or None


def _allowed_paths(env: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = env.get(ALLOWED_PATHS, "")
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    for pattern in patterns:
        _check_pattern(pattern, ALLOWED_PATHS)
    return patterns or None


def _check_pattern(pattern: str, name: str) -> None:
    """A path pattern must name decoded segments the request policy could ever accept."""
    if not pattern.startswith("/") or "?" in pattern or "#" in pattern or "//" in pattern:
        raise ConfigError(
            name, f"pattern {pattern!r} must be an absolute path like /v1/items/* or /v1/reports/**"
        )
    segments = pattern.split("/")[1:]
    if "**" in segments[:-1]:
        raise ConfigError(name, f"pattern {pattern!r}: '**' may only end a pattern")
    for segment in segments:
        if segment in ("", "*", "**"):
            continue
        try:
            check_segment(segment)
        except RequestError as exc:
            raise ConfigError(
                name, f"pattern {pattern!r}: segment {segment[:40]!r}: {exc.message}"
            ) from None


def _allowed_routes(env: Mapping[str, str]) -> tuple[Route, ...] | None:
    """``METHOD /pattern`` entries separated by commas; ``idempotency-key`` after a write's
    pattern makes the bridge send an ``Idempotency-Key`` (so that write may be retried)."""
    raw = env.get(ALLOWED_ROUTES, "")
    routes: list[Route] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        words = entry.split()
        method = words[0].upper()
        if method not in ROUTE_METHODS or len(words) not in (2, 3):
            raise ConfigError(
                ALLOWED_ROUTES,
                f"entry {entry[:60]!r} must be 'METHOD /pattern' (METHOD one of "
                f"{', '.join(ROUTE_METHODS)}), optionally followed by 'idempotency-key'",
            )
        flagged = len(words) == 3
        if flagged and words[2].lower() != "idempotency-key":
            raise ConfigError(
                ALLOWED_ROUTES, f"entry {entry[:60]!r}: the only flag is 'idempotency-key'"
            )
        if flagged and method == "GET":
            raise ConfigError(
                ALLOWED_ROUTES, f"entry {entry[:60]!r}: a GET is repeated safely without a key"
            )
        _check_pattern(words[1], ALLOWED_ROUTES)
        routes.append(Route(method, words[1], flagged))
    return tuple(routes) or None


def _next_link(env: Mapping[str, str]) -> str | None:
    value = env.get(NEXT_LINK, "").strip()
    if value and (not value.startswith("/") or len(value) > 200):
        raise ConfigError(NEXT_LINK, "must be a JSON pointer such as /next or /links/next")
    return value or None


def _delivery(env: Mapping[str, str]) -> DeliverySettings:
    bucket = env.get(DELIVERY_BUCKET, "").strip() or None
    if bucket is not None and (
        not re.fullmatch(_BUCKET, bucket) or ".." in bucket or bucket.startswith("xn--")
    ):
        raise ConfigError(DELIVERY_BUCKET, "must be an S3 bucket name (3-63 a-z, 0-9, '.', '-')")
    prefix = env.get(DELIVERY_PREFIX, "okta-bridge/").strip()
    if (
        not prefix
        or not prefix.endswith("/")
        or prefix.startswith("/")
        or "//" in prefix
        or len(prefix) > 200
        or not set(prefix) <= _PREFIX_CHARS
        or any(part in (".", "..") for part in prefix.split("/"))
    ):
        raise ConfigError(
            DELIVERY_PREFIX, "must be a key prefix such as okta-bridge/ (A-Z a-z 0-9 - _ . /)"
        )
    key = env.get(DELIVERY_KMS_KEY, "").strip() or None
    if key is not None and not re.fullmatch(_KMS_KEY, key):
        raise ConfigError(DELIVERY_KMS_KEY, "must be a KMS key id, key ARN or alias")
    endpoint = _aws_endpoint(env, "S3")
    return DeliverySettings(
        bucket=bucket,
        prefix=prefix,
        kms_key_id=key,
        inline_limit=int(
            _number(
                env,
                INLINE_LIMIT,
                DEFAULT_INLINE_LIMIT,
                low=1_000,
                high=LAMBDA_RESPONSE_LIMIT - 100_000,
                integer=True,
            )
        ),
        url_seconds=int(_number(env, DELIVERY_URL_SECONDS, 300, low=1, high=3600, integer=True)),
        max_bytes=int(
            _number(
                env, MAX_DELIVERY_BYTES, 1_000_000_000, low=1, high=50_000_000_000, integer=True
            )
        ),
        # Read only for the bridge's own bucket: another S3 user in the process (a consumer's
        # export) may point the variable elsewhere when the bridge delivers nothing.
        endpoint=(
            validate_https_url(endpoint, "AWS_ENDPOINT_URL_S3") if endpoint and bucket else None
        ),
    )


def _token_cache(env: Mapping[str, str]) -> TokenCacheSettings | None:
    table = env.get(TOKEN_CACHE, "").strip()
    if not table:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
        raise ConfigError(TOKEN_CACHE, "must be a DynamoDB table name (3-255 A-Z a-z 0-9 _ . -)")
    key = env.get(TOKEN_CACHE_KEY_ID, "").strip()
    if not re.fullmatch(_KMS_KEY, key):
        raise ConfigError(
            TOKEN_CACHE_KEY_ID,
            "must be the KMS key (id, ARN or alias) that seals the shared token cache's items",
        )
    endpoint = _aws_endpoint(env, "DYNAMODB")
    return TokenCacheSettings(
        table=table,
        key_id=key,
        lease_seconds=_number(env, TOKEN_CACHE_LEASE, 5.0, low=1, high=30),
        # Read only when the cache is on: other DynamoDB users of the process may point it away.
        endpoint=validate_https_url(endpoint, "AWS_ENDPOINT_URL_DYNAMODB") if endpoint else None,
    )


def _aws_endpoint(env: Mapping[str, str], service: str) -> str:
    """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL`` (as the AWS SDKs read them), or
    "" when neither is set."""
    return (env.get(f"AWS_ENDPOINT_URL_{service}") or env.get("AWS_ENDPOINT_URL") or "").strip()


def _caller_routes(env: Mapping[str, str]) -> tuple[CallerRoute, ...]:
    raw = env.get(CALLER_ROUTES, "").strip()
    if not raw:
        return ()
    try:
        return parse_routes(json.loads(raw), lambda p: _check_pattern(p, CALLER_ROUTES))
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ConfigError(CALLER_ROUTES, str(exc)) from None


def diagnose_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``BRIDGE_DIAGNOSE`` (on by default). Read on its own by the handler before the diagnose
    module is imported, so a disabled diagnose costs nothing and reveals nothing."""
    return _switch(os.environ if env is None else env, DIAGNOSE, default=True)


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    low: float,
    high: float,
    integer: bool = False,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(name, f"must be {kind}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low:g} and {high:g}, got {raw}")
    return value


def _pins(env: Mapping[str, str]) -> frozenset[bytes]:
    try:
        return parse_pins(env.get(API_PINS, ""))
    except ValueError as exc:
        raise ConfigError(API_PINS, f"{exc}; give base64 SPKI SHA-256 digests") from None


def _log_level(env: Mapping[str, str]) -> str:
    level = env.get(LOG_LEVEL, "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigError(LOG_LEVEL, f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def aws_credentials(env: Mapping[str, str] | None = None) -> tuple[str, str, str | None] | None:
    """The function's AWS credentials as Lambda puts them in the environment, read at each use
    (they change after a SnapStart restore); None when absent, and then boto3's chain applies.

    Kept out of ``Settings`` so that no settings object ever holds a secret.
    """
    env = os.environ if env is None else env
    key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not key or not secret:
        return None
    return key, secret, env.get("AWS_SESSION_TOKEN") or None


def snapstart(env: Mapping[str, str] | None = None) -> bool:
    """Whether this environment is initialized for a SnapStart snapshot.

    Not a ``Settings`` field: the handler asks at import, before ``Settings`` are parsed (a parse
    that may fail, and is then reported at the first invocation instead).
    """
    env = os.environ if env is None else env
    return env.get(INITIALIZATION_TYPE, "").strip() == SNAP_START


def _secret_source(env: Mapping[str, str]) -> str:
    return _choice(env, SECRET_SOURCE, SECRET_SOURCES)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default)."""
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}")
    return value


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _SWITCH:
        raise ConfigError(name, "must be on or off")
    return _SWITCH[raw]


def _namespace(env: Mapping[str, str]) -> str:
    # CloudWatch namespaces: 1-255 characters, no leading colon, printable ASCII.
    value = env.get(METRICS_NAMESPACE, "").strip() or DEFAULT_METRICS_NAMESPACE
    if len(value) > 255 or value.startswith(":") or not all(32 < ord(c) < 127 for c in value):
        raise ConfigError(METRICS_NAMESPACE, "must be 1-255 printable ASCII characters, no spaces")
    return value


def _proxy_url(env: Mapping[str, str]) -> str | None:
    for name in ("HTTPS_PROXY", "https_proxy"):
        value = env.get(name, "").strip()
        if value:
            parsed = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(name, "must be a proxy URL like http://proxy.corp:3128")
            return parsed.geturl()
    return None

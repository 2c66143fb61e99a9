"""What diagnose may say about the configuration, the secret and Okta's answers.

Every fact is built from names, addresses, certificates and headers: a value that could be secret
(a pasted key, a credential in a URL, a token) never becomes one.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Any

from okta_bridge import config
from okta_bridge.auth.dpop import ALGORITHM
from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.config import Settings
from okta_bridge.logs import REDACTOR
from okta_bridge.secret.credentials import SECRET_KEYS
from okta_bridge.transport.message import HttpResponse

# Keys the secret may hold (credentials.parse_secret); other names are shown only when they look
# like key names, so a value pasted as a key never reaches the report.
KNOWN_KEYS = frozenset(SECRET_KEYS)

_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


def dpop_facts(endpoint: TokenEndpoint) -> dict[str, Any]:
    """Whether the token request used DPoP, with which algorithm, and whether Okta wanted its
    nonce (never the proof or the nonce)."""
    rounds = endpoint.last_dpop
    if not rounds.get("proof"):
        return {"dpop": False}
    return {
        "dpop": True,
        "dpop_alg": ALGORITHM,
        "dpop_nonce_required": bool(rounds.get("nonce_round")),
        "dpop_learned": bool(rounds.get("switched")),
    }


def token_answer(response: HttpResponse) -> dict[str, Any]:
    """Facts from Okta's answer: status, rate-limit headroom, and its OAuth error if any.

    The body is read only when it is an error: a 200's body holds the token.
    """
    facts: dict[str, Any] = {"status": response.status, "attempts": response.attempts}
    limits = {
        name: integer(response.header(f"x-rate-limit-{name}"))
        for name in ("limit", "remaining", "reset")
    }
    if any(value is not None for value in limits.values()):
        reset = limits["reset"]
        facts["rate_limit"] = {
            **limits,
            "reset_in_s": None if reset is None else max(0, round(reset - time.time())),
        }
    if response.status != 200:
        body = response.json_object()
        if body is not None and body.get("error"):
            facts["okta_error"] = str(body["error"])[:100]
            description = REDACTOR.text(str(body.get("error_description", "")))
            facts["okta_error_description"] = description[:300]
    return facts


def integer(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def key_names(text: str) -> list[str] | None:
    """The secret's key names (never values); None when it is not a JSON object."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    names = [str(k) for k in data]
    shown = sorted(n for n in names if n in KNOWN_KEYS or _KEY_NAME.fullmatch(n))
    hidden = len(names) - len(shown)
    return [*shown, f"({hidden} more, not shown)"] if hidden else shown


def variables(settings: Settings) -> dict[str, Any]:
    """The settings that differ from the defaults, by variable name; no secret values exist here
    (proxy credentials are cut from ``HTTPS_PROXY``, pins are counted)."""
    defaults = Settings(secret_id="")
    shown: dict[str, Any] = {config.SECRET_ID: settings.secret_id}
    simple = {
        config.CA_BUNDLE: (settings.ca_bundle, defaults.ca_bundle),
        config.TOKEN_URL: (settings.token_url, defaults.token_url),
        config.API_BASE_URL: (settings.api_base_url, defaults.api_base_url),
        config.SCOPES: (settings.scopes, defaults.scopes),
        config.AUTH_METHOD: (settings.auth_method, defaults.auth_method),
        config.ALLOWED_PATHS: (settings.allowed_paths, defaults.allowed_paths),
        config.CONNECT_TIMEOUT: (settings.connect_timeout, defaults.connect_timeout),
        config.READ_TIMEOUT: (settings.read_timeout, defaults.read_timeout),
        config.DEADLINE_MARGIN: (settings.deadline_margin * 1000, defaults.deadline_margin * 1000),
        config.DEFAULT_DEADLINE: (settings.default_deadline, defaults.default_deadline),
        config.SECRET_TTL: (settings.secret_ttl, defaults.secret_ttl),
        config.MAX_RETRIES: (settings.max_retries, defaults.max_retries),
        config.MAX_RESPONSE_BYTES: (settings.max_response_bytes, defaults.max_response_bytes),
        config.LOG_LEVEL: (settings.log_level, defaults.log_level),
        config.METRICS: (settings.metrics, defaults.metrics),
        config.METRICS_NAMESPACE: (settings.metrics_namespace, defaults.metrics_namespace),
        config.TRACING: (settings.tracing, defaults.tracing),
        config.ALLOWED_QUERY: (settings.allowed_query, defaults.allowed_query),
        config.ALLOW_ANONYMOUS_PROXY: (
            settings.allow_anonymous_proxy,
            defaults.allow_anonymous_proxy,
        ),
        config.DIAGNOSE_MIN_INTERVAL: (
            settings.diagnose_min_interval,
            defaults.diagnose_min_interval,
        ),
        config.TOKEN_BUDGET: (settings.token_budget_per_minute, defaults.token_budget_per_minute),
        config.DPOP: (settings.dpop, defaults.dpop),
        config.TOKEN_REFRESH_MIN_AGE: (
            settings.token_refresh_min_age,
            defaults.token_refresh_min_age,
        ),
        config.NEXT_LINK: (settings.next_link, defaults.next_link),
        config.MAX_PAGES: (settings.max_pages, defaults.max_pages),
        config.MAX_COLLECTION_BYTES: (
            settings.max_collection_bytes,
            defaults.max_collection_bytes,
        ),
        config.MAX_REQUEST_BYTES: (settings.max_request_bytes, defaults.max_request_bytes),
        config.DELIVERY_BUCKET: (settings.delivery.bucket, defaults.delivery.bucket),
        config.DELIVERY_PREFIX: (settings.delivery.prefix, defaults.delivery.prefix),
        config.DELIVERY_KMS_KEY: (settings.delivery.kms_key_id, defaults.delivery.kms_key_id),
        config.INLINE_LIMIT: (settings.delivery.inline_limit, defaults.delivery.inline_limit),
        config.DELIVERY_URL_SECONDS: (
            settings.delivery.url_seconds,
            defaults.delivery.url_seconds,
        ),
        config.MAX_DELIVERY_BYTES: (settings.delivery.max_bytes, defaults.delivery.max_bytes),
    }
    for name, (value, default) in simple.items():
        if value != default:
            shown[name] = plain(value)
    if settings.api_pins:
        shown[config.API_PINS] = f"{len(settings.api_pins)} pin(s)"
    if settings.allowed_routes:
        shown[config.ALLOWED_ROUTES] = [
            " ".join((r.method, r.pattern, *(["idempotency-key"] if r.idempotency_key else [])))
            for r in settings.allowed_routes
        ]
    if settings.caller_routes:
        shown[config.CALLER_ROUTES] = {r.principal: list(r.paths) for r in settings.caller_routes}
    proxy = settings.proxy
    standard = {  # the standard variables, shown in their upper-case spelling
        "https_proxy": without_credentials(proxy.https_proxy) if proxy.https_proxy else None,
        "no_proxy": proxy.no_proxy,
    }
    shown.update({name.upper(): value for name, value in standard.items() if value})
    return shown


def plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))

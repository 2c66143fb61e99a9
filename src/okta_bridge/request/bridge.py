"""Bridge: the parts wired together once per execution environment.

Each part (secret store, token provider, HTTP client) is a constructor argument, so tests and later
features (diagnose, rotation, benchmarks) can swap one without touching the others.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from okta_bridge import metrics
from okta_bridge.auth.tokens import SharedTokens, TokenProvider
from okta_bridge.config import Settings
from okta_bridge.errors import DeliveryError, RequestError
from okta_bridge.logs import REDACTOR
from okta_bridge.request.api import Exchange, InternalApi, Outgoing, judge
from okta_bridge.request.callers import CallerPolicy
from okta_bridge.request.events import ApiResult, Invocation
from okta_bridge.request.policy import (
    ROUTE_METHODS,
    Endpoint,
    QueryPolicy,
    Route,
    RoutePolicy,
    decode_path,
    encode_query,
    policy_for,
    routes_for,
    shown,
)
from okta_bridge.request.redirects import same_origin_redirect
from okta_bridge.secret.sources import source_for
from okta_bridge.secret.store import SecretSource, SecretStore
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import Redirect
from okta_bridge.transport.tls import TlsPolicy

if TYPE_CHECKING:
    from okta_bridge.delivery.s3 import Delivered, S3Delivery


class Plan(NamedTuple):
    """Where one invocation reads, the check a redirect must pass (the same rules), and whether
    its route sends an ``Idempotency-Key``."""

    url: str
    redirect: Redirect
    idempotency_key: bool = False


class Bridge:
    """Serves invocations: policy check, token, API call."""

    def __init__(
        self,
        settings: Settings,
        *,
        secrets: SecretStore | None = None,
        source: SecretSource | None = None,
        http: HttpClient | None = None,
        tokens: TokenProvider | None = None,
    ) -> None:
        self.settings = settings
        self.http = http or HttpClient(settings)
        self.secrets = secrets or SecretStore(
            settings,
            source or source_for(settings, self.http),
            on_load=lambda creds: REDACTOR.pin(creds.sensitive_values()),
        )
        self.tokens = tokens or TokenProvider(
            self.secrets,
            self.http,
            on_token=_redact,
            budget_per_minute=settings.token_budget_per_minute,
            refresh_min_age=settings.token_refresh_min_age,
            dpop_mode=settings.dpop,
            shared=_shared_tokens(settings, self.http),
        )
        self.api = InternalApi(self.tokens, self.http, max_bytes=settings.max_response_bytes)
        self.callers = CallerPolicy(
            settings.caller_routes, allow_anonymous=settings.allow_anonymous_proxy
        )
        self._delivery: S3Delivery | None = None

    def plan(
        self,
        invocation: Invocation,
        deadline: Deadline | None = None,
        *,
        unlisted: tuple[str, ...] | None = None,
    ) -> Plan:
        """The URL to call (the configured origin, a routed method and path, a canonical query)
        and the rule a redirect's path must meet (a GET route). The caller, the method and a
        malformed or unrouted path are refused before any I/O where the routes are configured.
        Without ``BRIDGE_ALLOWED_ROUTES``/``BRIDGE_ALLOWED_PATHS`` the bridge serves a GET of the
        configured endpoint's path only; the library passes ``unlisted`` (any path of the
        origin) instead, and with ``BRIDGE_ALLOWED_PATHS`` alone it may use any method."""
        caller_patterns = self.callers.patterns_for(invocation.caller, invocation.method)
        segments = None if invocation.path is None else decode_path(invocation.path)
        routes = self._routes(unlisted)
        if routes is not None and segments is not None:
            routes.check(invocation.method, segments)
        endpoint = Endpoint.parse(self.secrets.current(deadline).api_endpoint)
        if routes is None:
            routes = routes_for((Route("GET", endpoint.path),))
        gets = routes.paths("GET")
        narrow = None if caller_patterns is None else policy_for(caller_patterns)

        def allows(candidate: Sequence[str]) -> bool:
            return gets.allows(candidate) and (narrow is None or narrow.allows(candidate))

        query = QueryPolicy(endpoint.fixed_query(), self.settings.allowed_query)
        redirect = same_origin_redirect(allows, query)
        if segments is None:
            return Plan(endpoint.url(endpoint.path, endpoint.query), redirect)
        path = routes.check(invocation.method, segments)
        if narrow is not None and not narrow.allows(segments):
            raise RequestError(
                "PATH_NOT_ALLOWED",
                f"{invocation.method} {shown(segments)!r} is not in this caller's "
                "BRIDGE_CALLER_ROUTES.",
            )
        url = endpoint.url(path, encode_query(query.merge(invocation.query or ())))
        return Plan(url, redirect, routes.wants_key(invocation.method, segments))

    def _routes(self, unlisted: tuple[str, ...] | None) -> RoutePolicy | None:
        settings = self.settings
        if unlisted is not None and settings.allowed_routes is None:
            patterns = settings.allowed_paths or unlisted
            return routes_for(tuple(Route(m, p) for p in patterns for m in ROUTE_METHODS))
        configured = settings.routes()
        return None if configured is None else routes_for(configured)

    def configured_query(self, deadline: Deadline | None = None) -> frozenset[tuple[str, str]]:
        """The configured endpoint's own query parameters (a next page's URL repeats them)."""
        query = urllib.parse.urlsplit(self.secrets.current(deadline).api_endpoint).query
        return frozenset(urllib.parse.parse_qsl(query, keep_blank_values=True))

    def serve(self, invocation: Invocation, *, request_id: str, deadline: Deadline) -> ApiResult:
        """Answer one invocation, or raise a ``BridgeError``."""
        if invocation.deliver == "s3" and not self.settings.delivery.enabled:
            raise DeliveryError(
                "DELIVERY_NOT_CONFIGURED", "The event asked for S3 delivery; no bucket is set."
            )
        if invocation.paginate:
            from okta_bridge.request.collect import collect  # noqa: PLC0415 - paginate only

            return collect(self, invocation, request_id=request_id, deadline=deadline)
        plan = self.plan(invocation, deadline)
        spill = (
            self.delivery().spill(
                request_id=request_id,
                deadline=deadline,
                threshold=self.settings.delivery.inline_limit,
            )
            if self.settings.delivery.enabled
            else None
        )
        outgoing = Outgoing(
            invocation.method,
            invocation.body,
            "application/json" if invocation.body is not None else None,
            request_id if plan.idempotency_key else None,
            sink=spill,
        )
        try:
            done = self.exchange(plan, outgoing, request_id=request_id, deadline=deadline)
            response = done.response
            if spill is not None and spill.taken:
                if spill.spilled:
                    delivered = spill.finish()
                    return delivered_result(
                        response.status,
                        delivered,
                        attempts=done.attempts,
                        elapsed_ms=done.elapsed_ms,
                    )
                response = response._replace(body=spill.buffered())
        except BaseException:
            if spill is not None:
                spill.abort()
            raise
        result = judge(response, done.attempts, done.elapsed_ms)
        if invocation.deliver == "s3":
            return self.deliver(result, request_id=request_id, deadline=deadline)
        return result

    def deliver(self, result: ApiResult, *, request_id: str, deadline: Deadline) -> ApiResult:
        """``result`` written to S3, answered by its pointer."""
        body = result.text.encode("utf-8") if result.text else b"null"
        delivered = self.delivery().put([body], request_id=request_id, deadline=deadline)
        return delivered_result(
            result.status,
            delivered,
            attempts=result.attempts,
            elapsed_ms=result.elapsed_ms,
            pages=result.pages,
        )

    def delivery(self) -> S3Delivery:
        """The S3 writer for large answers (``BRIDGE_DELIVERY_BUCKET``), built on first use."""
        if self._delivery is None:
            from okta_bridge.delivery.s3 import S3Delivery  # noqa: PLC0415 - large answers only

            self._delivery = S3Delivery(self.settings, self.http)
        return self._delivery

    def exchange(
        self, plan: Plan, outgoing: Outgoing, *, request_id: str, deadline: Deadline
    ) -> Exchange:
        """Send a planned call (the library's way in): redirects followed only by a GET."""
        return self.api.exchange(
            plan.url,
            outgoing,
            request_id=request_id,
            deadline=deadline,
            tls=self.tls(deadline),
            redirect=plan.redirect if outgoing.method == "GET" else None,
        )

    def tls(self, deadline: Deadline) -> TlsPolicy:
        """The API's TLS policy: the configured pins, the secret's client certificate."""
        credentials = self.secrets.current(deadline)
        return TlsPolicy(
            pins=self.settings.api_pins,
            client_certificate=credentials.client_certificate,
            client_key=credentials.client_key,
        )

    def reset(self) -> None:
        """Forget cached secret and token (SnapStart restore, tests)."""
        self.secrets.clear()
        self.tokens.clear()

    def close(self) -> None:
        """Close pooled connections; the next call opens new ones (SnapStart)."""
        self.http.close()

    def reseed(self) -> None:
        """New seeds for the token-refresh and retry jitter (after a SnapStart restore)."""
        self.tokens.reseed()
        self.http.reseed()


def _redact(token: str) -> None:
    REDACTOR.register([token])


def _shared_tokens(settings: Settings, http: HttpClient) -> SharedTokens | None:
    """The fleet's token cache when ``BRIDGE_TOKEN_CACHE`` is set (imported only then)."""
    if settings.token_cache is None:
        return None
    from okta_bridge.fleet.cache import SharedTokenCache  # noqa: PLC0415 - opt-in

    return SharedTokenCache(settings, http, on_token=_redact)


def delivered_result(
    status: int, delivered: Delivered, *, attempts: int, elapsed_ms: int, pages: int | None = None
) -> ApiResult:
    """The answer that points at an object in S3 instead of carrying the API's JSON."""
    metrics.delivered(delivered.size)
    pointer = delivered.pointer()
    data = {"delivery": pointer}
    text = json.dumps(data, separators=(",", ":"))
    return ApiResult(status, data, text, attempts, elapsed_ms, pages, pointer)

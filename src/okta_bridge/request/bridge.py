"""Bridge: the parts wired together once per execution environment.

Each part (secret store, token provider, HTTP client) is a constructor argument, so tests and later
features (diagnose, rotation, benchmarks) can swap one without touching the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from okta_bridge.auth.tokens import TokenProvider
from okta_bridge.config import Settings
from okta_bridge.errors import RequestError
from okta_bridge.logs import REDACTOR
from okta_bridge.request.api import Exchange, InternalApi, Outgoing
from okta_bridge.request.callers import CallerPolicy
from okta_bridge.request.events import ApiResult, Invocation
from okta_bridge.request.policy import (
    Endpoint,
    QueryPolicy,
    decode_path,
    encode_query,
    policy_for,
    shown,
)
from okta_bridge.request.redirects import same_origin_redirect
from okta_bridge.secret.sources import source_for
from okta_bridge.secret.store import SecretSource, SecretStore
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import Redirect
from okta_bridge.transport.tls import TlsPolicy


@dataclass(frozen=True)
class Plan:
    """Where one invocation reads, and the check a redirect must pass (the same rules)."""

    url: str
    redirect: Redirect


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
            on_token=lambda value: REDACTOR.register([value]),
            budget_per_minute=settings.token_budget_per_minute,
            refresh_min_age=settings.token_refresh_min_age,
            dpop_mode=settings.dpop,
        )
        self.api = InternalApi(self.tokens, self.http, max_bytes=settings.max_response_bytes)
        self.callers = CallerPolicy(
            settings.caller_routes, allow_anonymous=settings.allow_anonymous_proxy
        )

    def plan(
        self,
        invocation: Invocation,
        deadline: Deadline | None = None,
        *,
        unlisted: tuple[str, ...] | None = None,
    ) -> Plan:
        """The URL to read (the configured origin, an allowed path, a canonical query) and the
        rule a redirect's path must meet. The caller and a malformed path are refused before any
        I/O. Without ``BRIDGE_ALLOWED_PATHS`` the bridge serves the configured endpoint's path
        only; the library passes ``unlisted`` (any path of the origin) instead."""
        caller_patterns = self.callers.patterns_for(invocation.caller)
        segments = None if invocation.path is None else decode_path(invocation.path)
        endpoint = Endpoint.parse(self.secrets.current(deadline).api_endpoint)
        base = policy_for(self.settings.allowed_paths or unlisted or (endpoint.path,))
        narrow = None if caller_patterns is None else policy_for(caller_patterns)

        def allows(candidate: Sequence[str]) -> bool:
            return base.allows(candidate) and (narrow is None or narrow.allows(candidate))

        query = QueryPolicy(endpoint.fixed_query(), self.settings.allowed_query)
        redirect = same_origin_redirect(allows, query)
        if segments is None:
            return Plan(endpoint.url(endpoint.path, endpoint.query), redirect)
        path = base.check(segments)
        if narrow is not None and not narrow.allows(segments):
            raise RequestError(
                "PATH_NOT_ALLOWED",
                f"The path {shown(segments)!r} is not in this caller's BRIDGE_CALLER_ROUTES.",
            )
        url = endpoint.url(path, encode_query(query.merge(invocation.query or ())))
        return Plan(url, redirect)

    def serve(self, invocation: Invocation, *, request_id: str, deadline: Deadline) -> ApiResult:
        """Answer one invocation, or raise a ``BridgeError``."""
        plan = self.plan(invocation, deadline)
        return self.api.get(
            plan.url,
            request_id=request_id,
            deadline=deadline,
            tls=self.tls(deadline),
            redirect=plan.redirect,
        )

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

"""Bridge: the parts wired together once per execution environment.

Each part (secret store, token provider, HTTP client) is a constructor argument, so tests and later
features (diagnose, rotation, benchmarks) can swap one without touching the others.
"""

from __future__ import annotations

from okta_bridge.api import InternalApi
from okta_bridge.config import Settings
from okta_bridge.events import ApiResult, Invocation
from okta_bridge.logs import REDACTOR
from okta_bridge.policy import Endpoint, decode_path, encode_query, policy_for
from okta_bridge.secret_sources import source_for
from okta_bridge.secrets import SecretSource, SecretStore
from okta_bridge.tls import TlsPolicy
from okta_bridge.tokens import TokenProvider
from okta_bridge.transport import Deadline, HttpClient


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
            on_load=lambda creds: REDACTOR.register(creds.sensitive_values()),
        )
        self.tokens = tokens or TokenProvider(
            self.secrets, self.http, on_token=lambda value: REDACTOR.register([value])
        )
        self.api = InternalApi(self.tokens, self.http, max_bytes=settings.max_response_bytes)

    def target_url(self, invocation: Invocation, deadline: Deadline | None = None) -> str:
        """The URL to read: the configured origin, an allowed path, a canonical query."""
        # Malformed paths are refused before any I/O.
        segments = None if invocation.path is None else decode_path(invocation.path)
        endpoint = Endpoint.parse(self.secrets.current(deadline).api_endpoint)
        if segments is None:
            return endpoint.url(endpoint.path, endpoint.query)
        patterns = self.settings.allowed_paths or (endpoint.path,)
        path = policy_for(patterns).check(segments)
        return endpoint.url(path, encode_query(invocation.query or ()))

    def serve(self, invocation: Invocation, *, request_id: str, deadline: Deadline) -> ApiResult:
        """Answer one invocation, or raise a ``BridgeError``."""
        url = self.target_url(invocation, deadline)
        credentials = self.secrets.current(deadline)
        tls = TlsPolicy(
            pins=self.settings.api_pins,
            client_certificate=credentials.client_certificate,
            client_key=credentials.client_key,
        )
        return self.api.get(url, request_id=request_id, deadline=deadline, tls=tls)

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

"""The hops of one diagnose run: config, secret, then DNS, TCP, TLS and the token or API call
(with ``BRIDGE_TOKEN_CACHE``, the shared token cache's first: ``cache_probe``).

``Diagnosis`` builds its own secret source, HTTP client and token endpoint (no retries), so the
warm bridge's caches stay untouched and the report shows what one attempt meets.
"""

from __future__ import annotations

import time
from typing import Any

from okta_bridge import config
from okta_bridge.auth.access_token import AccessToken
from okta_bridge.auth.dpop import DPOP
from okta_bridge.auth.endpoint import TOKEN_TARGET, TokenEndpoint
from okta_bridge.auth.tokens import MintBudget
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError, TlsError
from okta_bridge.logs import REDACTOR
from okta_bridge.ops import probes
from okta_bridge.ops.facts import dpop_facts, key_names, token_answer, variables
from okta_bridge.ops.mints import MINTS
from okta_bridge.ops.report import NETWORK_HOPS, Walk
from okta_bridge.request import api, redirects
from okta_bridge.request.api import API_TARGET
from okta_bridge.request.policy import Endpoint, QueryPolicy, policy_for
from okta_bridge.secret.credentials import Credentials, parse_secret
from okta_bridge.secret.sources import source_for
from okta_bridge.secret.store import SecretSource
from okta_bridge.transport import trust
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge.transport.deadline import Deadline, elapsed_ms
from okta_bridge.transport.message import HttpResponse, Target
from okta_bridge.transport.tls import TlsPolicy, load_client_certificate


class Diagnosis:
    """One diagnose run: its own secret source, HTTP client and token endpoint."""

    def __init__(
        self,
        settings: Settings,
        deadline: Deadline,
        source: SecretSource | None,
        request_id: str,
        walk: Walk,
        *,
        budget: MintBudget | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.deadline = deadline
        # The bridge's own choice of source (signed HTTP, extension or boto3), one attempt each.
        self._secret_http = HttpClient(settings, retry=RetryPolicy(max_retries=0))
        self.source = source or source_for(settings, self._secret_http)
        self.request_id = request_id
        self.walk = walk
        self.config_facts: dict[str, Any] = {}

    def perform(self) -> None:
        try:
            self._perform()
        finally:
            self._secret_http.close()

    def _perform(self) -> None:
        self.walk.step("config", "config", self._config)
        credentials = self.walk.step("secret", "secret", self._secret)
        if credentials is None:
            self.walk.skip_rest(self.walk.failure("secret", "secret") or "the secret is unknown")
            return
        # No retries: diagnose reports what one attempt meets, and keeps within the deadline.
        http = HttpClient(self.settings, retry=RetryPolicy(max_retries=0))
        try:
            if self.settings.token_cache is not None:
                self._token_cache(credentials, http)
            if credentials.kms_key_id is not None:
                self._kms_host(credentials, http)
            token = self._token_host(credentials, http)
            self._api_host(credentials, http, token)
            self._delivery(http)
        finally:
            http.close()

    # -- config and secret -------------------------------------------------------------------

    def _config(self, facts: dict[str, Any]) -> None:
        self.config_facts = facts
        facts["variables"] = variables(self.settings)
        if self.settings.ca_bundle is not None:
            facts["ca_bundle_cas"] = probes.bundle_subjects(self.settings.ca_bundle)

    def _secret(self, facts: dict[str, Any]) -> Credentials:
        settings = self.settings
        facts["secret_id"] = settings.secret_id
        budget = self._slice(settings.connect_timeout + settings.read_timeout)
        value = self.source.fetch(settings.secret_id, budget)
        facts["version_id"] = value.version_id
        keys = key_names(value.text)
        if keys is not None:
            facts["keys"] = self.config_facts["secret_keys"] = keys
        credentials = parse_secret(value.text, settings, version_id=value.version_id)
        REDACTOR.pin(credentials.sensitive_values())
        facts.update(
            client_id=credentials.client_id,
            auth_method=credentials.auth_method,
            grant_type=credentials.grant_type,
            scopes=list(credentials.scopes),
            token_url=credentials.token_url,
            token_url_from=config.TOKEN_URL if settings.token_url else "secret",
            api_endpoint=credentials.api_endpoint,
            api_endpoint_from=config.API_BASE_URL if settings.api_base_url else "secret",
            client_certificate=credentials.client_certificate is not None,
        )
        return credentials

    # -- hosts -------------------------------------------------------------------------------

    def _token_host(self, credentials: Credentials, http: HttpClient) -> AccessToken | None:
        reachable = self._network("token_host", credentials.token_url, TOKEN_TARGET, None)
        if not reachable:
            self.walk.skip("token_host", ("token",), self._blocked("token_host"))
            return None
        return self.walk.step("token_host", "token", lambda f: self._token(credentials, http, f))

    def _token_cache(self, credentials: Credentials, http: HttpClient) -> None:
        """The fleet's shared token cache: DynamoDB's host, the item, its key in KMS. Its
        failure skips nothing after it: the bridge mints for itself then."""
        from okta_bridge.ops.cache_probe import TokenCacheProbe  # noqa: PLC0415 - loads fleet

        cache = self.settings.token_cache
        if cache is not None:
            probe = TokenCacheProbe(
                self.settings,
                cache,
                self.walk,
                http,
                network=self._network,
                blocked=self._blocked,
                budget=self._slice,
            )
            probe.run(credentials)

    def _kms_host(self, credentials: Credentials, http: HttpClient) -> None:
        """DNS, TCP and TLS towards KMS, then one kms:Sign with the secret's key: whether the
        role may sign, and with the algorithm the secret names (the token hop signs again)."""
        from okta_bridge.auth.kms_signing import KMS_TARGET, KmsSigner  # noqa: PLC0415

        try:
            signer = KmsSigner(self.settings, http)
        except BridgeError as exc:  # no region, or an endpoint that is not https
            self.walk.fail("kms_host", "sign", exc, {}, 0.0)
            return
        if not self._network("kms_host", signer.url, KMS_TARGET, None):
            self.walk.skip("kms_host", ("sign",), self._blocked("kms_host"))
            return

        def sign(facts: dict[str, Any]) -> None:
            facts.update(kms_key_id=credentials.kms_key_id, key_algorithm=credentials.key_algorithm)
            facts["kid"] = credentials.key_id
            budget = self._slice(self.settings.connect_timeout + self.settings.read_timeout)
            key = credentials.kms_key_id or ""
            signature = signer.sign(key, b"okta-bridge diagnose", credentials.key_algorithm, budget)
            facts["signature_bytes"] = len(signature)

        self.walk.step("kms_host", "sign", sign)

    def _api_host(
        self, credentials: Credentials, http: HttpClient, token: AccessToken | None
    ) -> None:
        policy = TlsPolicy(
            pins=self.settings.api_pins,
            client_certificate=credentials.client_certificate,
            client_key=credentials.client_key,
        )
        reachable = self._network("api_host", credentials.api_endpoint, API_TARGET, policy)
        if not reachable:
            self.walk.skip("api_host", ("api",), self._blocked("api_host"))
        elif token is None:
            reason = self.walk.failure("token_host", "token") or self._blocked("token_host")
            self.walk.skip("api_host", ("api",), f"no access token: {reason}")
        else:
            self.walk.step(
                "api_host", "api", lambda f: self._api(credentials, http, token, policy, f)
            )

    def _blocked(self, target: str) -> str:
        for hop in NETWORK_HOPS:
            reason = self.walk.failure(target, hop)
            if reason is not None:
                return reason
        return f"{target} could not be reached"

    def _network(self, target: str, url: str, kind: Target, policy: TlsPolicy | None) -> bool:
        """DNS, TCP and TLS towards ``url``'s host; True when all three passed."""
        route = probes.Route.for_url(url, self.settings.proxy)
        connect = self.settings.connect_timeout
        addresses = self.walk.step(
            target, "dns", lambda f: probes.resolve(route, self._slice(connect).remaining(), f)
        )
        if addresses is None:
            self.walk.skip(target, ("tcp", "tls"), self.walk.failure(target, "dns") or "")
            return False
        sock = self.walk.step(
            target,
            "tcp",
            lambda f: probes.connect(route, addresses, self._slice(connect).remaining(), f),
        )
        if sock is None:
            self.walk.skip(target, ("tls",), self.walk.failure(target, "tcp") or "")
            return False
        if route.proxy_tls:
            sock.close()
            self.walk.skip(
                target,
                ("tls",),
                "HTTPS_PROXY is an https:// proxy: diagnose cannot tunnel TLS through TLS; "
                "the token and API hops go through it as the bridge does",
            )
            return True
        with sock:
            done = self.walk.step(target, "tls", lambda f: self._tls(sock, route, kind, policy, f))
        return done is not None

    def _tls(
        self,
        sock: Any,
        route: probes.Route,
        kind: Target,
        policy: TlsPolicy | None,
        facts: dict[str, Any],
    ) -> bool:
        settings = self.settings
        facts.update(route.describe())
        if route.via_proxy:
            read = self._slice(settings.read_timeout).remaining()
            facts["tunnel"] = probes.tunnel(sock, route, kind, read)
        context = trust.context(settings.ca_bundle)
        if policy is not None and policy.client_certificate is not None:
            load_client_certificate(context, policy)
            facts["client_certificate"] = True
        timeout = self._slice(settings.connect_timeout).remaining()
        try:
            tls_sock = probes.handshake(
                sock, context, route.host, kind, timeout=timeout, facts=facts
            )
        except BridgeError as exc:
            if exc.code == "TLS_UNTRUSTED":
                facts["ca_bundle_cas"] = probes.bundle_subjects(settings.ca_bundle)
            raise
        with tls_sock:
            facts.update(probes.certificate_facts(tls_sock, context, settings.ca_bundle))
            if policy is not None and policy.pins:
                facts["pinned"] = probes.pin_matches(tls_sock, policy.pins)
                if not facts["pinned"]:
                    raise TlsError(
                        "TLS_PIN_MISMATCH",
                        f"The public key of {route.host} matches none of BRIDGE_API_PINS.",
                    )
        return True

    # -- token and API ---------------------------------------------------------------------

    def _token(
        self, credentials: Credentials, http: HttpClient, facts: dict[str, Any]
    ) -> AccessToken:
        facts.update(
            token_url=credentials.token_url,
            grant_type=credentials.grant_type,
            auth_method=credentials.auth_method,
            requested_scopes=list(credentials.scopes),
        )
        with MINTS.lock:
            earlier = MINTS.recent(credentials, self.settings.diagnose_min_interval, DPOP)
            if earlier is not None:
                return earlier.replay(facts, self.settings.diagnose_min_interval)
            endpoint = TokenEndpoint(
                http,
                on_token=lambda value: REDACTOR.register([value]),
                dpop_mode=self.settings.dpop,
            )
            answer: dict[str, Any] = {}
            spend = None if self.budget is None else self.budget.take
            try:
                token = endpoint.request(credentials, self.deadline, spend=spend)
            except BridgeError as exc:
                if endpoint.last_response is not None:
                    answer = token_answer(endpoint.last_response)
                answer.update(dpop_facts(endpoint))
                facts.update(answer)
                MINTS.remember(credentials, None, answer, exc)
                raise
            answer = token_answer(endpoint.last_response) if endpoint.last_response else {}
            answer.update(token_type=token.scheme, scopes=list(token.scopes))
            answer["expires_in"] = round(token.lifetime)
            answer.update(dpop_facts(endpoint))
            facts.update(answer)
            MINTS.remember(credentials, token, answer, None)
            return token

    def _api(
        self,
        credentials: Credentials,
        http: HttpClient,
        token: AccessToken,
        policy: TlsPolicy,
        facts: dict[str, Any],
    ) -> None:
        endpoint = Endpoint.parse(credentials.api_endpoint)
        url = endpoint.url(endpoint.path, endpoint.query)
        facts["url"] = url
        started = time.monotonic()
        allowed = policy_for(self.settings.allowed_paths or (endpoint.path,))

        def get() -> HttpResponse:
            return api.send(
                http,
                url,
                api.GET,
                token=token,
                dpop=DPOP,
                request_id=self.request_id,
                deadline=self.deadline,
                max_bytes=self.settings.max_response_bytes,
                tls=policy,
                redirect=redirects.same_origin_redirect(
                    allowed.allows,
                    QueryPolicy(endpoint.fixed_query(), self.settings.allowed_query),
                ),
            )

        response = get()
        if token.scheme == "DPoP":
            facts["dpop"] = True
            facts["dpop_nonce_required"] = api.wants_its_nonce(response, token)
            if facts["dpop_nonce_required"]:
                response = get()  # the API's own nonce, now known: one more request
        facts.update(
            status=response.status,
            latency_ms=elapsed_ms(started),
            content_type=response.header("content-type"),
            bytes=len(response.body),
        )
        if response.url != url:
            facts["final_url"] = response.url
        if response.status == 401 and response.header("www-authenticate"):
            challenge = REDACTOR.text(str(response.header("www-authenticate")))
            facts["www_authenticate"] = challenge[:300]
        if response.status == 401:
            api.refuse_dpop_failure(response, token)
        api.judge(response, response.attempts, round(elapsed_ms(started)))

    def _delivery(self, http: HttpClient) -> None:
        """Large answers' way out: a small object written under the prefix, as an answer over
        the inline limit would be (S3, the bucket policy, the KMS key, the route to S3)."""
        delivery = self.settings.delivery
        if not delivery.enabled:
            self.walk.skip(
                "delivery",
                ("s3",),
                f"no {config.DELIVERY_BUCKET}: answers over the inline limit fail "
                "UPSTREAM_TOO_LARGE",
            )
            return

        def probe(facts: dict[str, Any]) -> None:
            from okta_bridge.delivery.s3 import S3Delivery  # noqa: PLC0415 - delivery only

            facts.update(bucket=delivery.bucket, prefix=delivery.prefix)
            facts["kms_key"] = delivery.kms_key_id
            written = S3Delivery(self.settings, http).probe(
                request_id=self.request_id, deadline=self._slice(self.settings.read_timeout)
            )
            facts.update(key=written.key, bytes=written.size, url_seconds=delivery.url_seconds)

        self.walk.step("delivery", "s3", probe)

    def _slice(self, seconds: float) -> Deadline:
        """This hop's share: ``seconds``, or what is left of the invocation if that is less."""
        return Deadline(min(seconds, self.deadline.remaining()))

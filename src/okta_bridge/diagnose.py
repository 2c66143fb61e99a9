"""Diagnose mode: walk every hop the bridge depends on and report each one's outcome and facts.

Invoked with the event ``{"action": "diagnose"}``. The hops, in order: ``config``, ``secret``, then
for the token host ``dns``, ``tcp``, ``tls``, ``token`` and for the API host ``dns``, ``tcp``,
``tls``, ``api``. Each is ``ok``, ``failed`` (with a catalog code and hint) or ``skipped`` (with the
reason it could not run). The API host's network hops run even when the token host failed, so one
report shows both hosts.

Diagnose builds its own objects (secret source, HTTP client, token endpoint): it reads the secret
afresh and asks Okta for a fresh token, and the warm bridge's caches stay untouched. It asks Okta
at most once per ``BRIDGE_DIAGNOSE_MIN_INTERVAL_SECONDS`` per environment: a diagnose run within
that interval reuses the token the last one got (or reports the error it met), so repeated runs
cannot spend the org's token rate limit. The report is JSON and never holds secret material:
secret values are never put in it, and every hop's facts are built from names, addresses,
certificates and headers only.

Only a direct invocation may ask for it, and only while ``BRIDGE_DIAGNOSE`` is on (the handler
checks both before this module is imported).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from okta_bridge import api, config, events, logs, probes
from okta_bridge.api import API_TARGET
from okta_bridge.config import Settings
from okta_bridge.credentials import Credentials, parse_secret
from okta_bridge.dpop import ALGORITHM, DPOP
from okta_bridge.errors import BridgeError, ConfigError, InternalError, TlsError
from okta_bridge.logs import REDACTOR
from okta_bridge.policy import Endpoint, QueryPolicy, policy_for
from okta_bridge.secret_sources import source_for
from okta_bridge.secrets import SecretSource
from okta_bridge.tls import TlsPolicy, load_client_certificate
from okta_bridge.tokens import TOKEN_TARGET, AccessToken, MintBudget, TokenEndpoint
from okta_bridge.transport import (
    Deadline,
    HttpClient,
    HttpResponse,
    RetryPolicy,
    Target,
    build_ssl_context,
)

ACTION = events.DIAGNOSE_ACTION
NETWORK_HOPS = ("dns", "tcp", "tls")
ORDER: tuple[tuple[str, str], ...] = (
    ("config", "config"),
    ("secret", "secret"),
    *(("token_host", hop) for hop in (*NETWORK_HOPS, "token")),
    *(("api_host", hop) for hop in (*NETWORK_HOPS, "api")),
)
# Keys the secret may hold (credentials.parse_secret); other names are shown only when they look
# like key names, so a value pasted as a key never reaches the report.
_KNOWN_KEYS = frozenset(
    {
        "client_id", "client_secret", "token_url", "api_endpoint", "auth_method", "scopes",
        "private_key", "key_id", "username", "password", "client_certificate", "client_key",
        "app_id", "okta_secret_id", "dpop",
    }
)  # fmt: skip
_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")

log = logs.get_logger("diagnose")

_T = TypeVar("_T")


def requested(event: object) -> bool:
    """Whether ``event`` asks for diagnose (a direct invocation ``{"action": "diagnose"}``)."""
    return events.asks_for_diagnose(event)


def invoke(
    context: Any,
    *,
    request_id: str,
    env: Mapping[str, str] | None = None,
    source: SecretSource | None = None,
    budget: MintBudget | None = None,
) -> dict[str, Any]:
    """The handler's entry: settings parsed as ``handler.get_bridge`` parses them, then ``run``.

    A configuration error becomes a failed ``config`` hop. Never raises.
    """
    started = time.monotonic()
    try:
        settings = Settings.from_env(env)
        logs.configure(settings.log_level)
        deadline = Deadline.from_context(context, settings)
    except ConfigError as exc:
        walk = _Walk(started)
        walk.fail("config", "config", exc, {"variable": exc.variable}, _ms(started))
        walk.skip_rest("the configuration is invalid (CONFIG_INVALID)")
        return walk.report(request_id)
    except Exception:  # noqa: BLE001 - diagnose answers, never raises
        return _internal_failure(started, request_id)
    return run(settings, deadline, source=source, request_id=request_id, budget=budget)


def run(
    settings: Settings,
    deadline: Deadline,
    *,
    source: SecretSource | None = None,
    request_id: str = "",
    budget: MintBudget | None = None,
) -> dict[str, Any]:
    """Walk every hop within ``deadline``; return the report (JSON-serialisable). Never raises.

    ``budget`` is the environment's token budget (the bridge's), which diagnose's token request
    spends too; without one it is bounded by its minimum interval alone.
    """
    started = time.monotonic()
    try:
        walk = _Walk(started)
        _Diagnosis(settings, deadline, source, request_id, walk, budget=budget).perform()
        # Facts quote what servers said (Okta's error_description, the API's challenge), which
        # could echo a credential: the report passes the one redaction point, as every answer.
        report: dict[str, Any] = REDACTOR.strings(walk.report(request_id))
    except Exception:  # noqa: BLE001 - a bug in diagnose must still answer
        return _internal_failure(started, request_id)
    failure = report["first_failure"]
    log.info(
        "diagnose finished",
        extra={
            "ok": report["ok"],
            "code": failure["code"] if failure else None,
            "hop": f"{failure['target']}/{failure['hop']}" if failure else None,
            "ms": report["ms"],
        },
    )
    return report


def _internal_failure(started: float, request_id: str) -> dict[str, Any]:
    log.exception("diagnose failed unexpectedly", extra={"code": "INTERNAL_ERROR"})
    walk = _Walk(started)
    walk.fail("config", "config", InternalError(), {}, 0.0)
    walk.skip_rest("diagnose stopped on an internal error")
    return dict(REDACTOR.strings(walk.report(request_id)))


@dataclass
class _Walk:
    """The hops recorded so far, in order."""

    started: float
    hops: list[dict[str, Any]] = field(default_factory=list)

    def step(self, target: str, hop: str, action: Callable[[dict[str, Any]], _T]) -> _T | None:
        """Run ``action(facts)``; record ok or failed; return its result, or None on failure."""
        facts: dict[str, Any] = {}
        began = time.monotonic()
        try:
            result = action(facts)
        except BridgeError as exc:
            self.fail(target, hop, exc, facts, _ms(began))
            return None
        except Exception:  # one hop's bug must not hide the others
            log.exception("diagnose hop failed unexpectedly", extra={"target": target, "hop": hop})
            self.fail(target, hop, InternalError(), facts, _ms(began))
            return None
        self.hops.append(_hop(target, hop, "ok", _ms(began), facts))
        return result

    def fail(
        self, target: str, hop: str, exc: BridgeError, facts: dict[str, Any], ms: float
    ) -> None:
        entry = _hop(target, hop, "failed", ms, facts)
        entry.update(code=exc.code, stage=exc.stage, message=exc.message, hint=exc.hint)
        self.hops.append(entry)

    def skip(self, target: str, hops: tuple[str, ...], reason: str) -> None:
        for hop in hops:
            entry = _hop(target, hop, "skipped", 0.0, {})
            entry["reason"] = reason
            self.hops.append(entry)

    def skip_rest(self, reason: str) -> None:
        """Skip every hop of ``ORDER`` not recorded yet."""
        done = {(h["target"], h["hop"]) for h in self.hops}
        for target, hop in ORDER:
            if (target, hop) not in done:
                self.skip(target, (hop,), reason)

    def failure(self, target: str, hop: str) -> str | None:
        """``hop`` of ``target`` failed: the reason later hops give for being skipped."""
        for entry in self.hops:
            if entry["target"] == target and entry["hop"] == hop and entry["status"] == "failed":
                where = hop if hop == target else f"{target} {hop}"
                return f"{where} failed ({entry['code']})"
        return None

    def report(self, request_id: str) -> dict[str, Any]:
        failed = [h for h in self.hops if h["status"] == "failed"]
        first = failed[0] if failed else None
        return {
            "action": ACTION,
            "ok": not failed,
            "request_id": request_id,
            "ms": _ms(self.started),
            "hops": self.hops,
            "first_failure": None
            if first is None
            else {key: first[key] for key in ("target", "hop", "code", "hint", "message")},
        }


def _hop(target: str, hop: str, status: str, ms: float, facts: dict[str, Any]) -> dict[str, Any]:
    return {"target": target, "hop": hop, "status": status, "ms": ms, "facts": facts}


class _Diagnosis:
    """One diagnose run: its own secret source, HTTP client and token endpoint."""

    def __init__(
        self,
        settings: Settings,
        deadline: Deadline,
        source: SecretSource | None,
        request_id: str,
        walk: _Walk,
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
            token = self._token_host(credentials, http)
            self._api_host(credentials, http, token)
        finally:
            http.close()

    # -- config and secret -------------------------------------------------------------------

    def _config(self, facts: dict[str, Any]) -> None:
        self.config_facts = facts
        facts["variables"] = _variables(self.settings)
        if self.settings.ca_bundle is not None:
            facts["ca_bundle_cas"] = probes.bundle_subjects(self.settings.ca_bundle)

    def _secret(self, facts: dict[str, Any]) -> Credentials:
        settings = self.settings
        facts["secret_id"] = settings.secret_id
        budget = self._slice(settings.connect_timeout + settings.read_timeout)
        value = self.source.fetch(settings.secret_id, budget)
        facts["version_id"] = value.version_id
        keys = _key_names(value.text)
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
        context = build_ssl_context(settings.ca_bundle)
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
            earlier = MINTS.recent(credentials, self.settings.diagnose_min_interval)
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
                    answer = _token_answer(endpoint.last_response)
                answer.update(_dpop_facts(endpoint))
                facts.update(answer)
                MINTS.remember(credentials, None, answer, exc)
                raise
            answer = _token_answer(endpoint.last_response) if endpoint.last_response else {}
            answer.update(token_type=token.scheme, scopes=list(token.scopes))
            answer["expires_in"] = round(token.lifetime)
            answer.update(_dpop_facts(endpoint))
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
            return api.get(
                http,
                url,
                token=token,
                dpop=DPOP,
                request_id=self.request_id,
                deadline=self.deadline,
                max_bytes=self.settings.max_response_bytes,
                tls=policy,
                redirect=api.same_origin_redirect(
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
            latency_ms=_ms(started),
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
        api.judge(response, response.attempts, round(_ms(started)))

    def _slice(self, seconds: float) -> Deadline:
        """This hop's share: ``seconds``, or what is left of the invocation if that is less."""
        return Deadline(min(seconds, self.deadline.remaining()))


@dataclass(frozen=True)
class _Mint:
    """What diagnose's last token request got, for whose credentials, and when."""

    at: float
    client: tuple[str, str]
    token: AccessToken | None
    facts: dict[str, Any]
    error: BridgeError | None

    def replay(self, facts: dict[str, Any], interval: float) -> AccessToken:
        """Report this earlier answer as the token hop's, saying it is one."""
        ago = time.monotonic() - self.at
        facts.update(self.facts)
        facts.update(
            from_earlier_diagnose_s=round(ago, 1),
            next_token_request_in_s=round(max(0.0, interval - ago), 1),
        )
        if self.token is None:
            raise self.error or InternalError()
        return self.token


class _Mints:
    """Diagnose's token requests in this environment: at most one per minimum interval."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._last: _Mint | None = None

    def recent(self, credentials: Credentials, interval: float) -> _Mint | None:
        """The last answer, if it is younger than ``interval``, for these credentials, and its
        token (if any) still usable. Call with ``lock`` held."""
        last = self._last
        now = time.monotonic()
        if last is None or now - last.at >= interval:
            return None
        if last.client != (credentials.client_id, credentials.token_url):
            return None
        if last.token is not None and not last.token.usable(now):
            return None
        return last

    def remember(
        self,
        credentials: Credentials,
        token: AccessToken | None,
        facts: dict[str, Any],
        error: BridgeError | None,
    ) -> None:
        """Record a request's outcome. Call with ``lock`` held."""
        client = (credentials.client_id, credentials.token_url)
        self._last = _Mint(time.monotonic(), client, token, dict(facts), error)

    def clear(self) -> None:
        """Forget the last answer and its token (SnapStart, tests)."""
        with self.lock:
            self._last = None


MINTS = _Mints()


def _dpop_facts(endpoint: TokenEndpoint) -> dict[str, Any]:
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


def _token_answer(response: HttpResponse) -> dict[str, Any]:
    """Facts from Okta's answer: status, rate-limit headroom, and its OAuth error if any.

    The body is read only when it is an error: a 200's body holds the token.
    """
    facts: dict[str, Any] = {"status": response.status, "attempts": response.attempts}
    limits = {
        name: _integer(response.header(f"x-rate-limit-{name}"))
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


def _integer(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _key_names(text: str) -> list[str] | None:
    """The secret's key names (never values); None when it is not a JSON object."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    names = [str(k) for k in data]
    shown = sorted(n for n in names if n in _KNOWN_KEYS or _KEY_NAME.fullmatch(n))
    hidden = len(names) - len(shown)
    return [*shown, f"({hidden} more, not shown)"] if hidden else shown


def _variables(settings: Settings) -> dict[str, Any]:
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
    }
    for name, (value, default) in simple.items():
        if value != default:
            shown[name] = _plain(value)
    if settings.api_pins:
        shown[config.API_PINS] = f"{len(settings.api_pins)} pin(s)"
    if settings.caller_routes:
        shown[config.CALLER_ROUTES] = {r.principal: list(r.paths) for r in settings.caller_routes}
    proxy = settings.proxy
    standard = {  # the standard variables, shown in their upper-case spelling
        "https_proxy": _without_credentials(proxy.https_proxy) if proxy.https_proxy else None,
        "no_proxy": proxy.no_proxy,
    }
    shown.update({name.upper(): value for name, value in standard.items() if value})
    return shown


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)

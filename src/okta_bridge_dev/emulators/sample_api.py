"""The sample internal API: a resource server that validates Okta access tokens like a real one.

It fetches the issuer's JWKS over verified TLS on first use, caches it and refetches once when a
token names an unknown ``kid`` (key rotation), then checks signature, ``iss``, ``aud``, ``exp``
and the ``scp`` claim. Error bodies never echo the presented token.

DPoP (RFC 9449 4.3 and 7): a token bound to a key (``cnf.jkt``) is accepted only as
``Authorization: DPoP`` with exactly one ``DPoP`` proof for this request (``htm``, ``htu``,
``ath``, the key, ``iat``, a ``jti`` not seen before, and the API's own nonce when
``require_dpop_nonce``); sent as Bearer it is refused. ``dpop_support = "bearer_only"`` models a
gateway that knows only Bearer: it refuses the DPoP scheme and, not reading ``cnf``, accepts a
bound token sent as Bearer, the downgrade a DPoP client must never make.

It also serves two resources no caller of the bridge may ever reach (``/admin/keys``,
``/internal/config``), and can route like a Java servlet stack (``routing="servlet"``), which
resolves ``/v1/items/..;/..;/admin/keys`` to ``/admin/keys``: tests send attack paths through the
bridge and assert those resources were never served. Its parts: ``sample_resources`` (what it
serves, by route; ``sample_search``, ``sample_graphql`` and ``sample_export`` its larger ones),
``servlet_paths`` (servlet routing), ``jwks_cache`` (the issuer's keys); this module keeps the
server, the token checks and the DPoP rules.
"""

from __future__ import annotations

import dataclasses
import secrets
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import jwt

from okta_bridge_dev.emulators.dpop_proofs import (
    PROOF_ALGORITHMS,
    USE_DPOP_NONCE,
    ProofError,
    ReplayCache,
    request_url,
    verify_proof,
)
from okta_bridge_dev.emulators.jwks_cache import JwksCache, JwksUnavailableError
from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response
from okta_bridge_dev.emulators.sample_graphql import GraphQL
from okta_bridge_dev.emulators.sample_resources import (
    ADMIN_KEYS,
    DATA_ITEMS,
    INTERNAL_CONFIG,
    ITEMS,
    RESOURCES,
    Orders,
    auth_scheme,
    bad_request,
    oauth_error,
    route_name,
)
from okta_bridge_dev.emulators.sample_search import Searches
from okta_bridge_dev.emulators.servers import TLSServer
from okta_bridge_dev.emulators.servlet_paths import InvalidRequestTarget, servlet_path

__all__ = [
    "ADMIN_KEYS",
    "DATA_ITEMS",
    "INTERNAL_CONFIG",
    "ITEMS",
    "DPoPSupport",
    "InvalidRequestTarget",
    "JwksCache",
    "JwksUnavailableError",
    "Routing",
    "SampleApi",
    "servlet_path",
]

DPoPSupport = Literal["validate", "bearer_only"]
"""How ``SampleApi`` treats DPoP: "validate" as RFC 9449 says; "bearer_only" as a gateway that
knows only the Bearer scheme (it refuses ``Authorization: DPoP`` and ignores ``cnf``)."""

Routing = Literal["exact", "servlet"]
"""How ``SampleApi`` maps a request-target to a route: "exact" matches the stdlib's reading of
the path as is; "servlet" first normalises the raw target as Tomcat + Spring MVC do."""


_CHALLENGE = 'Bearer error="invalid_token"'
_DPOP_ALGS = f'DPoP algs="{" ".join(PROOF_ALGORITHMS)}"'
_NONCE_CHALLENGE = (
    'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"'
)


class _Rejected(Exception):
    """Carries the error answer out of the token checks."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _invalid_token(description: str) -> _Rejected:
    return _Rejected(
        oauth_error(401, "invalid_token", description, **{"WWW-Authenticate": _CHALLENGE})
    )


def _dpop_rejected(error: str, description: str) -> _Rejected:
    """A refusal of a DPoP-scheme request, with a DPoP challenge naming the algorithms."""
    quoted = description.replace('"', "'")
    challenge = f'{_DPOP_ALGS}, error="{error}", error_description="{quoted}"'
    return _Rejected(oauth_error(401, error, description, **{"WWW-Authenticate": challenge}))


class _TokenInvalid(Exception):
    """The access token itself is refused (answered with the request's scheme's challenge)."""


class SampleApi(TLSServer):
    """JSON API behind Okta bearer (or DPoP-bound) tokens. Routes (the keys of ``counts``), all
    checking the token first: "data" ``/v1/data``, "items" ``/v1/items?page&page_size`` (with
    ``Link: rel="next"``), "item" ``/v1/items/{id}``, "export" ``/v1/export?bytes=N`` (streamed),
    POST-only "orders" ``/v1/orders`` (``Idempotency-Key``), "search" ``/v1/search`` and "graphql"
    ``/graphql`` (recorded in ``searches.accepted`` and ``graphql.received``, emptied by
    ``reset_counts``), "not_found", and the two resources the bridge must never reach: "admin"
    ``/admin/keys`` and "internal" ``/internal/config``.
    ``routing="servlet"`` routes ``servlet_path(raw_target)`` instead of the stdlib's path, and
    answers "bad_request" (400, no token check: the container rejects the request before any
    application code) where a servlet container would.

    DPoP settings a test may change: ``dpop_support`` ("validate" or "bearer_only") and
    ``require_dpop_nonce`` (the API's own nonce, ``dpop_nonce``, renewed by
    ``rotate_dpop_nonce``; only the current one is accepted); ``reset_dpop`` restores both.
    ``dpop_counts`` (zeroed by ``reset_counts``, kept apart from ``counts`` so that the sum of
    ``counts`` stays the number of requests): "proof" (proofs checked), "accepted", "invalid"
    (refused as invalid_dpop_proof, replays included), "replay", "nonce_challenge", "missing"
    (DPoP scheme without a proof), "bearer_refused" (a bound token sent as Bearer) and
    "scheme_refused" (the DPoP scheme refused in "bearer_only").
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        issuer: str,
        jwks_url: str,
        ca_bundle: Path,
        audience: str = "api://default",
        required_scope: str = "api.access",
        host: str = "127.0.0.1",
        port: int = 0,
        routing: Routing = "exact",
    ) -> None:
        if routing not in get_args(Routing):
            raise ValueError(f"routing must be one of {get_args(Routing)}, not {routing!r}")
        super().__init__(ssl_context, host=host, port=port)
        self.routing: Routing = routing
        self.issuer = issuer
        self.audience = audience
        self.required_scope = required_scope
        self.jwks = JwksCache(jwks_url, ca_bundle)
        self.orders = Orders()
        self.searches, self.graphql = Searches(), GraphQL()
        self._routes: dict[str, PathRoute] = {
            **{name: PathRoute(name, self._guarded(handle)) for name, handle in RESOURCES.items()},
            "orders": PathRoute("orders", self._guarded(self.orders.create, "POST")),
            "search": PathRoute("search", self._guarded(self.searches.search, "POST")),
            "graphql": PathRoute("graphql", self._guarded(self.graphql.handle, "POST")),
            "bad_request": PathRoute("bad_request", bad_request),
        }
        self.dpop_support: DPoPSupport = "validate"
        self.require_dpop_nonce = False
        self.dpop_replay = ReplayCache()
        self.dpop_counts: Counter[str] = Counter()
        self._dpop_lock = threading.Lock()
        self._initial_dpop_nonce = self._dpop_nonce = secrets.token_urlsafe(24)

    # -- DPoP controls ---------------------------------------------------------------------

    @property
    def dpop_nonce(self) -> str:
        """The API's current DPoP nonce (required only while ``require_dpop_nonce``)."""
        with self._dpop_lock:
            return self._dpop_nonce

    def rotate_dpop_nonce(self) -> str:
        """Replace the API's nonce; the old one is refused from now on. Returns the new one."""
        with self._dpop_lock:
            self._dpop_nonce = secrets.token_urlsafe(24)
            return self._dpop_nonce

    def reset_dpop(self) -> None:
        """Back to the defaults: DPoP validated, no nonce of the API's own, and the nonce the
        API started with (a client's cached one is as valid as before a test rotated it)."""
        self.dpop_support = "validate"
        self.require_dpop_nonce = False
        with self._dpop_lock:
            self._dpop_nonce = self._initial_dpop_nonce

    def reset_counts(self) -> None:
        """Zero ``counts``, the handshakes and ``dpop_counts``; forget searches and queries."""
        super().reset_counts()
        with self._dpop_lock:
            self.dpop_counts.clear()
        self.searches.clear()
        self.graphql.clear()

    def _count_dpop(self, *names: str) -> None:
        with self._dpop_lock:
            self.dpop_counts.update(names)

    def route(self, request: RecordedRequest) -> PathRoute:
        path = self.routed_path(request)
        if path is None:
            return self._routes["bad_request"]
        route = self._routes[route_name(path)]
        if path == request.path:
            return route
        # The handlers read the path (an item's id): give them the one that was routed.
        return PathRoute(
            route.name, lambda seen: route.handler(dataclasses.replace(seen, path=path))
        )

    def routed_path(self, request: RecordedRequest) -> str | None:
        """The path this API routes ``request`` by; None where servlet routing answers 400."""
        if self.routing == "exact":
            return request.path
        try:
            return servlet_path(request.raw_target or request.path)
        except InvalidRequestTarget:
            return None

    def _guarded(
        self, handler: Callable[[RecordedRequest], Response], method: str = "GET"
    ) -> Callable[[RecordedRequest], Response]:
        """Authorize first (as a gateway would, even for unknown paths), then allow ``method``."""

        def guarded(request: RecordedRequest) -> Response:
            url = None
            if auth_scheme(request.headers) == "dpop":  # only then: handle() works before start()
                url = request_url(self.base_url, request.raw_target, request.path)
            try:
                self.authorize(request.headers, method=request.method, url=url)
            except _Rejected as rejected:
                return self._with_nonce(request, rejected.response)
            except JwksUnavailableError:
                return oauth_error(
                    503, "temporarily_unavailable", "Cannot verify tokens right now."
                )
            if request.method != method:
                refused = oauth_error(
                    405, "method_not_allowed", f"Only {method} is supported.", Allow=method
                )
                return self._with_nonce(request, refused)
            return self._with_nonce(request, handler(request))

        return guarded

    def _with_nonce(self, request: RecordedRequest, response: Response) -> Response:
        """``response`` with ``DPoP-Nonce`` when the API requires its nonce and the request
        used the DPoP scheme, so the client always holds the current nonce."""
        if (
            auth_scheme(request.headers) != "dpop"
            or not self.require_dpop_nonce
            or self.dpop_support != "validate"
        ):
            return response
        headers = {**response.headers, "DPoP-Nonce": self.dpop_nonce}
        return dataclasses.replace(response, headers=headers)

    def authorize(
        self, headers: Mapping[str, str], *, method: str = "GET", url: str | None = None
    ) -> dict[str, Any]:
        """Validate the token in ``headers`` (lower-case names) for a ``method`` request to
        ``url`` (default: the API's root); return its claims. Raises ``_Rejected``."""
        authorization = headers.get("authorization")
        if authorization is None:
            raise _invalid_token("The request has no bearer token.")
        scheme, _, token = authorization.strip().partition(" ")
        scheme, token = scheme.lower(), token.strip()
        if scheme == "dpop" and self.dpop_support == "validate":
            return self._authorize_dpop(headers, token, method, url or f"{self.base_url}/")
        if scheme == "dpop":
            self._count_dpop("scheme_refused")
            raise _Rejected(
                oauth_error(
                    401,
                    "invalid_request",
                    "The Authorization scheme is not supported; use Bearer.",
                    **{"WWW-Authenticate": 'Bearer error="invalid_request"'},
                )
            )
        if scheme != "bearer" or not token:
            raise _invalid_token("The Authorization header does not hold a bearer token.")
        try:
            claims = self._validate_token(token)
        except _TokenInvalid as error:
            raise _invalid_token(str(error)) from error
        if "cnf" in claims and self.dpop_support == "validate":
            self._count_dpop("bearer_refused")
            raise _dpop_rejected(
                "invalid_token",
                "The access token is DPoP-bound: present it with the DPoP scheme and a proof.",
            )
        self._require_scope(claims, 'Bearer error="insufficient_scope"')
        return claims

    def _authorize_dpop(
        self, headers: Mapping[str, str], token: str, method: str, url: str
    ) -> dict[str, Any]:
        """RFC 9449 7.1: a DPoP-bound token and exactly one valid proof for this request."""
        if not token:
            raise _dpop_rejected("invalid_token", "The Authorization header holds no token.")
        try:
            claims = self._validate_token(token)
        except _TokenInvalid as error:
            description = str(error).replace("bearer token", "access token")
            raise _dpop_rejected("invalid_token", description) from error
        confirmation = claims.get("cnf")
        jkt = confirmation.get("jkt") if isinstance(confirmation, dict) else None
        if not isinstance(jkt, str):
            raise _dpop_rejected("invalid_token", "The access token is not DPoP-bound.")
        proof = headers.get("dpop")
        if proof is None:
            self._count_dpop("missing")
            raise _dpop_rejected("invalid_dpop_proof", "The request has no DPoP proof.")
        nonces = [self.dpop_nonce] if self.require_dpop_nonce else None
        try:
            verify_proof(
                proof,
                method=method,
                url=url,
                now=time.time(),
                replay=self.dpop_replay,
                access_token=token,
                expected_jkt=jkt,
                nonces=nonces,
            )
        except ProofError as refused:
            self._count_dpop(*refused.counters)
            if refused.error == USE_DPOP_NONCE:
                raise _Rejected(
                    oauth_error(
                        401,
                        USE_DPOP_NONCE,
                        "Resource server requires nonce in DPoP proof",
                        **{"WWW-Authenticate": _NONCE_CHALLENGE, "DPoP-Nonce": self.dpop_nonce},
                    )
                ) from refused
            raise _dpop_rejected(refused.error, refused.description) from refused
        self._count_dpop("proof", "accepted")
        self._require_scope(claims, f'{_DPOP_ALGS}, error="insufficient_scope"')
        return claims

    def _require_scope(self, claims: Mapping[str, Any], challenge: str) -> None:
        scopes = claims.get("scp", [])
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or self.required_scope not in scopes:
            raise _Rejected(
                oauth_error(
                    403,
                    "insufficient_scope",
                    f"The token lacks the scope {self.required_scope}.",
                    **{"WWW-Authenticate": f'{challenge}, scope="{self.required_scope}"'},
                )
            )

    def _validate_token(self, token: str) -> dict[str, Any]:
        """The claims of a valid Okta access token; raises _TokenInvalid saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _TokenInvalid("The bearer token is malformed.") from error
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise _TokenInvalid("The bearer token must be RS256-signed with a kid.")
        key = self.jwks.key(kid)
        if key is None:
            raise _TokenInvalid("The bearer token was signed by an unknown key.")
        return self._decode(token, key)

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise _TokenInvalid("The bearer token is expired.") from error
        except jwt.InvalidAudienceError as error:
            raise _TokenInvalid("The bearer token is for another audience.") from error
        except jwt.InvalidIssuerError as error:
            raise _TokenInvalid("The bearer token is from another issuer.") from error
        except jwt.PyJWTError as error:
            raise _TokenInvalid("The bearer token is invalid.") from error

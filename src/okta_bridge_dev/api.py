"""The sample internal API: a resource server that validates Okta access tokens like a real one.

It fetches the issuer's JWKS over verified TLS on first use, caches it and refetches once when a
token names an unknown ``kid`` (key rotation), then checks signature, ``iss``, ``aud``, ``exp``
and the ``scp`` claim. Error bodies never echo the presented token.

It also serves two resources no caller of the bridge may ever reach (``/admin/keys``,
``/internal/config``), and can route like a Java servlet stack (``routing="servlet"``), which
resolves ``/v1/items/..;/..;/admin/keys`` to ``/admin/keys``: tests send attack paths through the
bridge and assert those resources were never served.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import unquote_to_bytes, urlsplit

import jwt

from .servers import RecordedRequest, Response, Route, TLSServer

__all__ = [
    "ADMIN_KEYS",
    "DATA_ITEMS",
    "INTERNAL_CONFIG",
    "ITEMS",
    "InvalidRequestTarget",
    "JwksCache",
    "JwksUnavailableError",
    "Routing",
    "SampleApi",
    "servlet_path",
]

Routing = Literal["exact", "servlet"]
"""How ``SampleApi`` maps a request-target to a route: "exact" matches the stdlib's reading of
the path as is; "servlet" first normalises the raw target as Tomcat + Spring MVC do."""

DATA_ITEMS: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "alpha", "value": 10},
    {"id": 2, "name": "beta", "value": 20},
    {"id": 3, "name": "gamma", "value": 30},
)
ITEMS: tuple[dict[str, Any], ...] = tuple(
    {"id": n, "name": f"item-{n:02d}", "value": n * n} for n in range(1, 26)
)
ADMIN_KEYS: dict[str, str] = {"secret": "admin-keys-data"}
INTERNAL_CONFIG: dict[str, str] = {"secret": "internal-config"}
MAX_PAGE_SIZE = 100
JWKS_TIMEOUT = 5.0

_CHALLENGE = 'Bearer error="invalid_token"'
_DIGITS = re.compile(r"[0-9]{1,9}")
_ITEM_PATH = re.compile(r"/v1/items/([^/]+)")
_EXACT_ROUTES = {
    "/v1/data": "data",
    "/v1/items": "items",
    "/admin/keys": "admin",
    "/internal/config": "internal",
}
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class InvalidRequestTarget(ValueError):
    """A servlet container would answer 400: bad escape, bad UTF-8, NUL, or not a path."""


def servlet_path(raw_target: str) -> str:
    """The path Tomcat + Spring MVC route for ``raw_target`` (the request-target as
    ``http.server`` reads it: one ISO-8859-1 character per byte).

    Why: a servlet stack resolves ``/v1/items/..;/..;/admin/keys`` to ``/admin/keys``, so the
    sample API must too if tests are to prove the bridge never sends such a path. The steps
    follow Tomcat's CoyoteAdapter (path parameters stripped from the raw target, then one
    decode, then ``normalize``), at its most permissive where settings differ:

    - an absolute-form target is reduced to its path; the query and any ``#...`` are dropped;
    - every ``;...`` path parameter is cut from each raw segment (``..;x=1`` is ``..``, ``;`` is
      empty), so an encoded ``%3B`` survives as a literal ``;``;
    - the rest is percent-decoded once as UTF-8; a bad escape, bad UTF-8 or NUL is a 400;
      ``%2F`` decodes to a separator (Tomcat's ``encodedSolidusHandling="decode"``; the default
      rejects it) and ``\\`` stays a literal character;
    - empty segments (``//``) are merged *before* dot segments are resolved, as Tomcat does, so
      each ``..`` removes a real segment; ``..`` above the root stays at the root;
    - a trailing slash is dropped (Spring 5's trailing-slash match routes ``/a/`` as ``/a``).
    """
    target = raw_target
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is not None:
        target = target[absolute.end() :] or "/"
    path = re.split(r"[?#]", target, maxsplit=1)[0]
    if not path.startswith("/"):
        raise InvalidRequestTarget("the request-target is not an absolute path")
    stripped = "/".join(segment.partition(";")[0] for segment in path.split("/"))
    if _BAD_ESCAPE.search(stripped):
        raise InvalidRequestTarget("the path has a malformed percent-escape")
    try:
        decoded = unquote_to_bytes(stripped.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError) as error:
        raise InvalidRequestTarget("the path is not UTF-8") from error
    if "\x00" in decoded:
        raise InvalidRequestTarget("the path has a NUL byte")
    resolved: list[str] = []
    for segment in decoded.split("/"):
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in ("", "."):
            resolved.append(segment)
    return "/" + "/".join(resolved)


class JwksUnavailableError(Exception):
    """The issuer's JWKS could not be fetched or parsed."""


class JwksCache:
    """The issuer's signing keys by ``kid``: fetched lazily, refetched once for an unknown kid."""

    def __init__(self, url: str, ca_bundle: Path, *, timeout: float = JWKS_TIMEOUT) -> None:
        target = urlsplit(url)
        if target.scheme != "https" or not target.hostname:
            raise ValueError("the JWKS URL must be https")
        self._url = target
        self._context = ssl.create_default_context(cafile=str(ca_bundle))
        self._timeout = timeout
        self._lock = threading.Lock()
        self._keys: dict[str, Any] | None = None
        self.fetches = 0

    def key(self, kid: str) -> Any | None:
        """The public key for ``kid``, or None if even a fresh JWKS does not have it."""
        with self._lock:
            fetched = False
            if self._keys is None:
                self._keys, fetched = self._fetch(), True
            if kid not in self._keys and not fetched:
                self._keys = self._fetch()
            return self._keys.get(kid)

    def clear(self) -> None:
        """Forget the cached keys: the next token triggers a fetch."""
        with self._lock:
            self._keys = None

    def _fetch(self) -> dict[str, Any]:
        self.fetches += 1
        path = self._url.path + (f"?{self._url.query}" if self._url.query else "")
        connection = http.client.HTTPSConnection(
            str(self._url.hostname), self._url.port, context=self._context, timeout=self._timeout
        )
        try:
            connection.request("GET", path or "/", headers={"Accept": "application/json"})
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise JwksUnavailableError(f"JWKS answered HTTP {answer.status}")
            document = json.loads(body)
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise JwksUnavailableError(f"JWKS fetch failed: {type(error).__name__}") from error
        finally:
            connection.close()
        return _rsa_keys(document)


def _rsa_keys(document: Any) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksUnavailableError("JWKS has no 'keys' list")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("kty") == "RSA" and "kid" in entry:
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry, algorithm="RS256").key
            except jwt.PyJWTError:
                continue
    return keys


class _Rejected(Exception):
    """Carries the error answer out of the token checks."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _error(status: int, error: str, description: str, **headers: str) -> Response:
    return Response.json(status, {"error": error, "error_description": description}, headers)


def _invalid_token(description: str) -> _Rejected:
    return _Rejected(_error(401, "invalid_token", description, **{"WWW-Authenticate": _CHALLENGE}))


class SampleApi(TLSServer):
    """GET-only JSON API behind Okta bearer tokens.

    Routes (the keys of ``counts``): "data" ``/v1/data``, "items" ``/v1/items?page&page_size``,
    "item" ``/v1/items/{id}``, "not_found" for anything else, and the two resources the bridge
    must never reach: "admin" ``/admin/keys`` and "internal" ``/internal/config``. All of them
    check the token first. ``routing="servlet"`` routes ``servlet_path(raw_target)`` instead of
    the stdlib's path, and answers "bad_request" (400, no token check: the container rejects
    the request before any application code) where a servlet container would.
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
        self._routes: dict[str, Route] = {
            name: Route(name, self._guarded(handler))
            for name, handler in (
                ("data", self._data),
                ("items", self._items),
                ("item", self._item),
                ("admin", self._admin),
                ("internal", self._internal),
                ("not_found", self._not_found),
            )
        }
        self._routes["bad_request"] = Route("bad_request", self._bad_request)

    def route(self, request: RecordedRequest) -> Route:
        path = self.routed_path(request)
        if path is None:
            return self._routes["bad_request"]
        route = self._routes[_route_name(path)]
        if path == request.path:
            return route
        # The handlers read the path (an item's id): give them the one that was routed.
        return Route(route.name, lambda seen: route.handler(dataclasses.replace(seen, path=path)))

    def routed_path(self, request: RecordedRequest) -> str | None:
        """The path this API routes ``request`` by; None where servlet routing answers 400."""
        if self.routing == "exact":
            return request.path
        try:
            return servlet_path(request.raw_target or request.path)
        except InvalidRequestTarget:
            return None

    def _guarded(
        self, handler: Callable[[RecordedRequest], Response]
    ) -> Callable[[RecordedRequest], Response]:
        """Authorize first (as a gateway would, even for unknown paths), then allow only GET."""

        def guarded(request: RecordedRequest) -> Response:
            try:
                self.authorize(request.headers)
            except _Rejected as rejected:
                return rejected.response
            except JwksUnavailableError:
                return _error(503, "temporarily_unavailable", "Cannot verify tokens right now.")
            if request.method != "GET":
                return Response.json(
                    405,
                    {"error": "method_not_allowed", "error_description": "Only GET is supported."},
                    {"Allow": "GET"},
                )
            return handler(request)

        return guarded

    def authorize(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """Validate the bearer token in ``headers`` (lower-case names); return its claims."""
        authorization = headers.get("authorization")
        if authorization is None:
            raise _invalid_token("The request has no bearer token.")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _invalid_token("The Authorization header does not hold a bearer token.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _invalid_token("The bearer token is malformed.") from error
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise _invalid_token("The bearer token must be RS256-signed with a kid.")
        key = self.jwks.key(kid)
        if key is None:
            raise _invalid_token("The bearer token was signed by an unknown key.")
        claims = self._decode(token, key)
        scopes = claims.get("scp", [])
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or self.required_scope not in scopes:
            raise _Rejected(
                _error(
                    403,
                    "insufficient_scope",
                    f"The token lacks the scope {self.required_scope}.",
                    **{
                        "WWW-Authenticate": (
                            f'Bearer error="insufficient_scope", scope="{self.required_scope}"'
                        )
                    },
                )
            )
        return claims

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
            raise _invalid_token("The bearer token is expired.") from error
        except jwt.InvalidAudienceError as error:
            raise _invalid_token("The bearer token is for another audience.") from error
        except jwt.InvalidIssuerError as error:
            raise _invalid_token("The bearer token is from another issuer.") from error
        except jwt.PyJWTError as error:
            raise _invalid_token("The bearer token is invalid.") from error

    # -- resources -------------------------------------------------------------------------

    def _data(self, request: RecordedRequest) -> Response:
        return Response.json(200, {"source": "sample-internal-api", "items": list(DATA_ITEMS)})

    def _items(self, request: RecordedRequest) -> Response:
        try:
            page = _positive_int(request.query, "page", default=1, maximum=None)
            page_size = _positive_int(request.query, "page_size", default=10, maximum=MAX_PAGE_SIZE)
        except ValueError as error:
            return _error(400, "invalid_request", str(error))
        start = (page - 1) * page_size
        body = {
            "items": list(ITEMS[start : start + page_size]),
            "page": page,
            "page_size": page_size,
            "total": len(ITEMS),
            "next_page": page + 1 if start + page_size < len(ITEMS) else None,
        }
        return Response.json(200, body)

    def _item(self, request: RecordedRequest) -> Response:
        match = _ITEM_PATH.fullmatch(request.path)
        raw = match.group(1) if match else ""
        if _DIGITS.fullmatch(raw) and 1 <= int(raw) <= len(ITEMS):
            return Response.json(200, ITEMS[int(raw) - 1])
        return _error(404, "not_found", "No such item.")

    def _admin(self, request: RecordedRequest) -> Response:
        return Response.json(200, ADMIN_KEYS)

    def _internal(self, request: RecordedRequest) -> Response:
        return Response.json(200, INTERNAL_CONFIG)

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, "not_found", "No such resource.")

    def _bad_request(self, request: RecordedRequest) -> Response:
        return _error(400, "invalid_request", "The request-target is not a valid path.")


def _route_name(path: str) -> str:
    if path in _EXACT_ROUTES:
        return _EXACT_ROUTES[path]
    return "item" if _ITEM_PATH.fullmatch(path) else "not_found"


def _positive_int(
    query: Mapping[str, list[str]], name: str, *, default: int, maximum: int | None
) -> int:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise ValueError(f"{name} must be given once")
    if not _DIGITS.fullmatch(values[0]) or int(values[0]) < 1:
        raise ValueError(f"{name} must be a positive integer")
    if maximum is not None and int(values[0]) > maximum:
        raise ValueError(f"{name} must be at most {maximum}")
    return int(values[0])

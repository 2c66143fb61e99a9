"""The sample internal API: a resource server that validates Okta access tokens like a real one.

It fetches the issuer's JWKS over verified TLS on first use, caches it and refetches once when a
token names an unknown ``kid`` (key rotation), then checks signature, ``iss``, ``aud``, ``exp``
and the ``scp`` claim. Error bodies never echo the presented token.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from .servers import RecordedRequest, Response, Route, TLSServer

__all__ = ["DATA_ITEMS", "ITEMS", "JwksCache", "JwksUnavailableError", "SampleApi"]

DATA_ITEMS: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "alpha", "value": 10},
    {"id": 2, "name": "beta", "value": 20},
    {"id": 3, "name": "gamma", "value": 30},
)
ITEMS: tuple[dict[str, Any], ...] = tuple(
    {"id": n, "name": f"item-{n:02d}", "value": n * n} for n in range(1, 26)
)
MAX_PAGE_SIZE = 100
JWKS_TIMEOUT = 5.0

_CHALLENGE = 'Bearer error="invalid_token"'
_DIGITS = re.compile(r"[0-9]{1,9}")
_ITEM_PATH = re.compile(r"/v1/items/([^/]+)")


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
    "item" ``/v1/items/{id}``, "not_found" for anything else.
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
    ) -> None:
        super().__init__(ssl_context, host=host, port=port)
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
                ("not_found", self._not_found),
            )
        }

    def route(self, request: RecordedRequest) -> Route:
        if request.path == "/v1/data":
            return self._routes["data"]
        if request.path == "/v1/items":
            return self._routes["items"]
        if _ITEM_PATH.fullmatch(request.path):
            return self._routes["item"]
        return self._routes["not_found"]

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

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, "not_found", "No such resource.")


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

"""The sample API's copy of the issuer's signing keys, fetched as a resource server does.

Fetched over verified TLS on first use, cached, and refetched once when a token names an
unknown ``kid`` (the issuer rotated its key); only RSA keys with a ``kid`` are kept.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

__all__ = ["JWKS_TIMEOUT", "JwksCache", "JwksUnavailableError"]

JWKS_TIMEOUT = 5.0


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

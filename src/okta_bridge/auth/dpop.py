"""DPoP (RFC 9449): the bridge proves, on every token and API request, that it holds the key its
tokens are bound to, so a token that leaks (a log, a proxy, a memory dump) is useless elsewhere.

- **The key.** One EC P-256 key pair per execution environment, made when DPoP is first needed,
  held in memory only, never logged, and dropped before a SnapStart snapshot and after a restore
  (``snapstart.forget``): two restored environments never share one. P-256/ES256 because Okta and
  every RFC 9449 server accept it, its key is made in microseconds (an RSA key takes tens of
  milliseconds) and its signature costs ~20 us.
- **The proof.** A JWS in compact form: header ``typ`` ``dpop+jwt``, ``alg`` ``ES256`` and the
  public ``jwk``; claims ``jti`` (unique, from ``os.urandom``), ``htm``, ``htu`` (the URL without
  query and fragment), ``iat``, ``nonce`` when the server gave one, ``ath`` (base64url SHA-256 of
  the access token) on resource requests. Only that envelope is written here; the signature comes
  from ``cryptography`` (its DER output converted to JOSE's raw ``r||s``).
- **Nonces.** Remembered per origin (the token host, the API host), replaced by every answer that
  carries ``DPoP-Nonce``; a server that asks for one (``use_dpop_nonce``) gets exactly one more
  request carrying it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from okta_bridge.auth import jose
from okta_bridge.auth.jose import b64url
from okta_bridge.logs import get_logger

if TYPE_CHECKING:
    from okta_bridge.transport.client import HttpClient
    from okta_bridge.transport.deadline import Deadline

ALGORITHM = "ES256"
PROOF_TYPE = "dpop+jwt"
NONCE_HEADER = "dpop-nonce"
METADATA_TIMEOUT = 3.0
MAX_METADATA = 262_144

log = get_logger("dpop")


def token_hash(token: str) -> str:
    """``ath``: base64url SHA-256 of the access token's ASCII (RFC 9449 4.2)."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def htu(url: str) -> str:
    """The proof's ``htu``: the request URL without query and fragment (RFC 9449 4.2)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def origin(url: str) -> str:
    """Whose nonce: scheme, host and port of ``url``."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or 443}"


# RFC 9449 8.1: NQCHAR = %x21 / %x23-5B / %x5D-7E; bounded, as a server chooses its length.
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,1024}")


class ProofKey:
    """An ephemeral EC P-256 key pair and its public JWK and RFC 7638 thumbprint."""

    def __init__(self, private_scalar: bytes | None = None) -> None:
        """A new key, or the one whose 32-byte private scalar is given (the fleet's key, read
        from the shared cache)."""
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - DPoP only

        if private_scalar is None:
            self._private = ec.generate_private_key(ec.SECP256R1())
        else:
            if len(private_scalar) != 32:
                raise ValueError("not a P-256 private key")
            number = int.from_bytes(private_scalar, "big")
            self._private = ec.derive_private_key(number, ec.SECP256R1())
        numbers = self._private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
        self.thumbprint = jose.thumbprint(self.jwk)

    def __repr__(self) -> str:
        return f"ProofKey(thumbprint={self.thumbprint!r})"

    def private_scalar(self) -> bytes:
        """The private key's 32 bytes: only for sealing into the shared cache's item."""
        return self._private.private_numbers().private_value.to_bytes(32, "big")

    def sign(self, signing_input: bytes) -> bytes:
        """ES256: ECDSA P-256 SHA-256, as JOSE's 64-byte ``r||s`` (RFC 7518 3.4)."""
        return jose.signature(self._private, ALGORITHM, signing_input)


class Dpop:
    """The environment's DPoP state: the key (made when first needed), the servers' nonces and,
    in ``auto`` mode, what each token endpoint turned out to require. Thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._key: ProofKey | None = None
        self._nonces: dict[str, str] = {}
        self._required: dict[tuple[str, str], bool] = {}
        self._supports: dict[str, bool] = {}
        self._probed: set[tuple[str, str]] = set()
        self.proofs = 0

    @property
    def key(self) -> ProofKey:
        """The environment's proof key, made on first use."""
        with self._lock:
            if self._key is None:
                self._key = ProofKey()
            return self._key

    @property
    def has_key(self) -> bool:
        """Whether a key was made (SnapStart tests: none in a snapshot)."""
        return self._key is not None

    def proof(
        self, method: str, url: str, *, token: str | None = None, key: ProofKey | None = None
    ) -> str:
        """A fresh proof for one request (a new ``jti`` every time), by ``key`` (default: the
        environment's)."""
        key = key or self.key
        header = {"typ": PROOF_TYPE, "alg": ALGORITHM, "jwk": key.jwk}
        claims: dict[str, Any] = {
            "jti": os.urandom(16).hex(),  # RFC 9449 4.2: unique per proof (128 random bits)
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(self._clock()),
        }
        nonce = self.nonce(url)
        if nonce is not None:
            claims["nonce"] = nonce
        if token is not None:
            claims["ath"] = token_hash(token)
        with self._lock:
            self.proofs += 1
        return jose.compact_jws(header, claims, key.sign)

    def nonce(self, url: str) -> str | None:
        """The latest nonce ``url``'s server gave, if any."""
        with self._lock:
            return self._nonces.get(origin(url))

    def remember(self, url: str, headers: Mapping[str, str]) -> str | None:
        """Keep the ``DPoP-Nonce`` of an answer from ``url``; return it (None without one)."""
        value = (headers.get(NONCE_HEADER) or "").strip(" \t")  # the field's optional whitespace
        # RFC 9449 8.1: 1*NQCHAR. Anything else (a repeated header joined with ", ", control
        # characters) is not a nonce. Never registered with the redactor: a server would choose
        # what the logs lose (a nonce is no secret, and nothing of DPoP is logged).
        if not _NONCE.fullmatch(value):
            return None
        with self._lock:
            self._nonces[origin(url)] = value
        return value

    def required(self, client_id: str, token_url: str) -> bool | None:
        """What ``auto`` learned about this client's token endpoint (None: nothing yet)."""
        with self._lock:
            return self._required.get((client_id, token_url))

    def learn(self, client_id: str, token_url: str, *, required: bool) -> None:
        """Remember, for this environment, whether this client's tokens need DPoP."""
        with self._lock:
            self._required[(client_id, token_url)] = required

    def unlearn(self, client_id: str, token_url: str) -> None:
        """Forget what ``auto`` learned: the API turned out not to take what it was told to
        use. Harmless when the server truly requires DPoP: it refuses the next proof-less
        request for want of a proof, and the switch happens again."""
        with self._lock:
            self._required.pop((client_id, token_url), None)
            # And the proofed try is offered again: against a generic RFC 9449 server (which
            # refuses a proof-less request without saying why) a spent try would leave every
            # later request proof-less and refused. The metadata answer stays cached.
            self._probed.discard((client_id, token_url))

    def probed(self, client_id: str, token_url: str) -> bool:
        """Whether this client's one proofed try on a generic refusal was already made."""
        with self._lock:
            return (client_id, token_url) in self._probed

    def mark_probed(self, client_id: str, token_url: str) -> None:
        """Spend this client's one proofed try: only once it got a definite answer (a token or
        an OAuth refusal), never on a reset, a timeout, a 5xx, a 429 or an exhausted budget."""
        with self._lock:
            self._probed.add((client_id, token_url))

    def server_supports(self, token_url: str, http: HttpClient, deadline: Deadline) -> bool | None:
        """Whether the authorization server's discovery metadata (RFC 8414) lists
        ``dpop_signing_alg_values_supported``: True or False once a server answered (a
        document, or no document at either address), kept per token URL; None when it could
        not be asked (a reset, a timeout, a 5xx), not kept, so that one lost connection does
        not decide for the environment's life. Each refused token request asks at most once,
        so the token budget bounds these requests too."""
        with self._lock:
            known = self._supports.get(token_url)
        if known is not None:
            return known
        from okta_bridge.transport.deadline import Deadline  # noqa: PLC0415 - rare: auto's probe

        budget = Deadline(min(METADATA_TIMEOUT, deadline.remaining()))  # for both addresses
        supported: bool | None = False
        for url in metadata_urls(token_url):
            answer = _fetch_metadata(url, http, budget)
            if answer is None:
                supported = None  # could not ask: no answer either way
                continue
            if answer:
                algorithms = answer.get("dpop_signing_alg_values_supported")
                supported = isinstance(algorithms, list) and ALGORITHM in algorithms
                break
        if supported is not None:
            with self._lock:
                self._supports[token_url] = supported
        return supported

    def thumbprint(self) -> str | None:
        """The current key's RFC 7638 thumbprint; None before a key is made."""
        with self._lock:
            return self._key.thumbprint if self._key is not None else None

    def clear(self) -> None:
        """Forget the key, the nonces and what was learned (SnapStart: a new environment gets a
        key of its own)."""
        with self._lock:
            self._key = None
            self._nonces.clear()
            self._required.clear()
            self._supports.clear()
            self._probed.clear()


class ProofSigner:
    """The transport's per-request hook: a fresh proof on every request sent (each attempt,
    each redirect hop: a new ``jti`` and ``htu``), and the nonce of every answer kept."""

    def __init__(
        self,
        dpop: Dpop,
        token: str | None = None,
        *,
        key: ProofKey | None = None,
        own_key: bool = False,
    ) -> None:
        """Proofs by ``key`` (a shared token's), else by a key made for this signer alone when
        ``own_key`` (a token minted for the fleet), else by the environment's key."""
        self._dpop = dpop
        self._token = token
        self._key = key
        self._own = own_key
        self.thumbprint: str | None = None  # the key of the last proof: what a token is bound to

    @property
    def own_key(self) -> ProofKey | None:
        """The key made for this signer (``own_key``), once a proof was made."""
        return self._key if self._own else None

    def headers(self, method: str, url: str) -> dict[str, str]:
        """The ``DPoP`` header for this request."""
        if self._key is None and self._own:
            self._key = ProofKey()
        key = self._key or self._dpop.key
        self.thumbprint = key.thumbprint
        return {"DPoP": self._dpop.proof(method, url, token=self._token, key=key)}

    def seen(self, url: str, headers: Mapping[str, str]) -> None:
        """Keep the answer's nonce, if it has one."""
        self._dpop.remember(url, headers)


_UNKNOWN_STATUSES = frozenset({408, 429})  # the server could not answer now


def metadata_urls(token_url: str) -> list[str]:
    """Where an authorization server publishes its metadata, from its token URL: Okta's
    ``{issuer}/.well-known/oauth-authorization-server`` (the issuer is the token URL without
    ``/v1/token``), and RFC 8414's ``/.well-known/oauth-authorization-server{issuer path}``."""
    parts = urllib.parse.urlsplit(token_url)
    path = parts.path.rstrip("/")
    issuer_path = path.removesuffix("/v1/token").removesuffix("/token")
    base = f"{parts.scheme}://{parts.netloc}"
    well_known = "/.well-known/oauth-authorization-server"
    candidates = [f"{base}{issuer_path}{well_known}", f"{base}{well_known}{issuer_path}"]
    return list(dict.fromkeys(candidates))


def _fetch_metadata(url: str, http: HttpClient, budget: Deadline) -> dict[str, Any] | None:
    """The metadata document at ``url``; ``{}`` when the server answered without one (a 4xx,
    not JSON); None when it could not be asked or failed (a network error, a 5xx, a 408 or a
    429: Okta's rate limit is the org's, so another app can spend it)."""
    from okta_bridge.transport.message import Target  # noqa: PLC0415 - rare: auto's probe

    target = Target("authorization server metadata", "TOKEN_UNREACHABLE", "TOKEN_TIMEOUT")
    try:
        response = http.request(
            "GET",
            url,
            target=target,
            deadline=budget,
            headers={"Accept": "application/json"},
            max_bytes=MAX_METADATA,
        )
    except Exception as exc:  # noqa: BLE001 - the probe is advice: any failure means "unknown"
        log.info("no discovery metadata", extra={"url": url, "error": type(exc).__name__})
        return None
    if response.status >= 500 or response.status in _UNKNOWN_STATUSES:
        return None
    return (response.json_object() or {}) if response.status == 200 else {}


DPOP = Dpop()
"""The environment's DPoP state, shared by the bridge, diagnose and rotation."""

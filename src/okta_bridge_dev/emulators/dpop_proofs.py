"""DPoP proof verification (RFC 9449 4.3), shared by the local Okta and the sample API.

Why one verifier: the token endpoints, the Management API and the resource server must refuse a
bad proof for the same reasons, so a client tested against any of them meets the same rules. The
checks follow RFC 9449 4.3 in order (one compact JWS; ``typ``; an asymmetric ``alg`` fitting a
public ``jwk``; the signature; ``htm``; ``htu``; ``iat``; the ``jti`` not replayed; then, when
the caller asks, ``nonce``, ``ath`` and the key's thumbprint). A failure raises ``ProofError``
with the OAuth error code (``invalid_dpop_proof`` or ``use_dpop_nonce``), a description a
developer can act on, and ``check``, naming the failed check for tests and counters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import math
import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import get_default_algorithms

from okta_bridge.auth.jose import EC_ALGORITHMS, PSS_ALGORITHMS, RSA_ALGORITHMS, key_types

__all__ = [
    "INVALID_DPOP_PROOF",
    "PROOF_ALGORITHMS",
    "PROOF_TYPE",
    "USE_DPOP_NONCE",
    "ProofError",
    "ReplayCache",
    "VerifiedProof",
    "access_token_hash",
    "normalize_htu",
    "request_url",
    "thumbprint",
    "verify_proof",
]

PROOF_TYPE = "dpop+jwt"
INVALID_DPOP_PROOF = "invalid_dpop_proof"
USE_DPOP_NONCE = "use_dpop_nonce"

PROOF_ALGORITHMS: Mapping[str, tuple[str, str | None]] = key_types(
    (*EC_ALGORITHMS, *RSA_ALGORITHMS, *PSS_ALGORITHMS)
)
"""alg -> (kty, crv) of the proof key: asymmetric only (RFC 9449 4.3 item 5 forbids ``none``
and MAC algorithms). Also what the servers advertise in ``dpop_signing_alg_values_supported``."""

MIN_RSA_BITS = 2048
MAX_JTI_LENGTH = 256
"""Longer ``jti`` values are refused: the replay cache must stay small."""

DEFAULT_REPLAY_ENTRIES = 100_000

# RFC 7638 3.2: the members of each key type that the thumbprint covers.
_THUMBPRINT_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class ProofError(Exception):
    """A refused proof: ``error`` (``invalid_dpop_proof`` or ``use_dpop_nonce``), a
    ``description`` for the answer and ``check``, the name of the check that failed."""

    def __init__(self, error: str, description: str, *, check: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.check = check

    @property
    def counters(self) -> tuple[str, ...]:
        """The DPoP counters a server bumps for this refusal (the fake Okta and the sample API
        count alike: a nonce challenge is no invalid proof, a replay is one)."""
        if self.error == USE_DPOP_NONCE:
            return ("proof", "nonce_challenge")
        if self.check == "replay":
            return ("proof", "invalid", "replay")
        return ("proof", "invalid")


@dataclass(frozen=True)
class VerifiedProof:
    """An accepted proof: the RFC 7638 thumbprint of its key (``jkt``), its claims and key."""

    jkt: str
    claims: dict[str, Any]
    jwk: dict[str, Any] = field(repr=False)


class ReplayCache:
    """The ``jti`` values of accepted-so-far proofs, each kept until no proof carrying it could
    pass the ``iat`` window any more. Thread-safe and bounded: when ``max_entries`` unexpired
    entries are held, new proofs are refused (failing closed) rather than forgetting one early,
    which would reopen a replay."""

    def __init__(self, max_entries: int = DEFAULT_REPLAY_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []

    def remember(self, jti: str, *, until: float, now: float) -> bool:
        """Record ``jti`` until ``until``; False if it is already recorded (a replay).

        Raises OverflowError when the cache is full of unexpired entries.
        """
        with self._lock:
            self._prune(now)
            if jti in self._until:
                return False
            if len(self._until) >= self.max_entries:
                raise OverflowError("the DPoP replay cache is full")
            self._until[jti] = until
            heapq.heappush(self._expiries, (until, jti))
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)

    def clear(self) -> None:
        """Forget every recorded ``jti``."""
        with self._lock:
            self._until.clear()
            self._expiries.clear()

    def _prune(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            until, jti = heapq.heappop(self._expiries)
            if self._until.get(jti) == until:
                del self._until[jti]


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(part: str) -> bytes:
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``jwk``, base64url: its required members only, in
    lexicographic order, as JSON without whitespace. Raises ValueError for an unknown key type
    or a missing or non-string member."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError("unsupported JWK key type")
    values = {name: jwk.get(name) for name in members}
    if not all(isinstance(value, str) and value for value in values.values()):
        raise ValueError("the JWK lacks a required member")
    canonical = json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return _b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """``ath``: base64url SHA-256 of the access token's ASCII (RFC 9449 4.2)."""
    return _b64url_encode(hashlib.sha256(token.encode("ascii", "replace")).digest())


def _normalize_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, for an absolute path."""
    segments = path.split("/")[1:]
    output: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
            continue
        if last:
            output.append("")
    return "/" + "/".join(output)


def normalize_htu(url: str) -> str:
    """``url`` without query and fragment, after RFC 3986 6.2.2 syntax normalisation (scheme and
    host lower-case, the scheme's default port dropped, an empty path as ``/``, percent-escapes
    upper-case and unreserved ones decoded, dot segments removed), so that two spellings of the
    request URL compare equal (RFC 9449 4.3 item 9). Raises ValueError if it is no http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("not an http(s) URL with a host")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a bad port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_normalize_escape, parts.path or "/"))
    return f"{scheme}://{netloc}{path}"


def request_url(base_url: str, raw_target: str, path: str = "/") -> str:
    """The URL a proof's ``htu`` must name for a request received at ``base_url`` with this
    request-target (``path`` when the raw target is unknown): the path as sent, without query
    and fragment. An absolute-form target contributes its path only: the host is ours."""
    target = raw_target or path
    if not target.startswith("/"):
        target = urlsplit(target).path or "/"
    target = target.split("?", 1)[0].split("#", 1)[0]
    return base_url.rstrip("/") + target


def _invalid(description: str, check: str) -> ProofError:
    return ProofError(INVALID_DPOP_PROOF, description, check=check)


def _split(proof: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of exactly one compact JWS."""
    if "," in proof:
        raise _invalid("Exactly one DPoP header is allowed.", "header")
    parts = proof.strip().split(".")
    if len(parts) != 3:
        raise _invalid("The DPoP proof is not a compact JWS.", "header")
    try:
        # An empty signature decodes (alg "none"), so that the alg check names the problem.
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise _invalid("The DPoP proof is not a well-formed JWT.", "header") from error
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid("The DPoP proof is not a well-formed JWT.", "header")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _proof_key(header: Mapping[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(alg, jwk, public key) from a proof header: ``typ``, ``alg`` and ``jwk`` checked."""
    if header.get("typ") != PROOF_TYPE:
        raise _invalid(f"The DPoP proof typ header must be '{PROOF_TYPE}'.", "typ")
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in PROOF_ALGORITHMS:
        raise _invalid(
            "The DPoP proof alg must be one of " + ", ".join(PROOF_ALGORITHMS) + ".", "alg"
        )
    if "crit" in header:
        raise _invalid("The DPoP proof has critical header parameters.", "header")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise _invalid("The DPoP proof jwk header is missing.", "jwk")
    if _PRIVATE_MEMBERS & set(jwk):
        raise _invalid("The DPoP proof jwk must be a public key.", "jwk")
    kty, crv = PROOF_ALGORITHMS[algorithm]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise _invalid(f"The DPoP proof jwk does not fit the alg {algorithm}.", "jwk")
    try:
        members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[kty]}
        key = get_default_algorithms()[algorithm].from_jwk(members)
    except (KeyError, TypeError, ValueError, jwt.PyJWTError) as error:
        raise _invalid("The DPoP proof jwk is not a valid public key.", "jwk") from error
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise _invalid(f"The DPoP proof RSA key must have {MIN_RSA_BITS} bits.", "jwk")
    return algorithm, dict(jwk), key


def _iat(claims: Mapping[str, Any], now: float, window: float) -> float:
    issued = claims.get("iat")
    if (
        isinstance(issued, bool)
        or not isinstance(issued, int | float)
        or not math.isfinite(issued)  # json.loads reads NaN, which no comparison refuses
    ):
        raise _invalid("The DPoP proof iat claim is missing or not a number.", "iat")
    if issued < now - window:
        raise _invalid("The DPoP proof is too old (iat).", "iat")
    if issued > now + window:
        raise _invalid("The DPoP proof iat is in the future.", "iat")
    return float(issued)


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    replay: ReplayCache,
    access_token: str | None = None,
    expected_jkt: str | None = None,
    nonces: Collection[str] | None = None,
    window: float = 60.0,
) -> VerifiedProof:
    """Verify a ``DPoP`` header value for a ``method`` request to ``url`` (RFC 9449 4.3).

    ``nonces``: the nonces the server accepts now (None: the server requires none).
    ``access_token`` and ``expected_jkt``: at a resource, the presented token (checked against
    ``ath``) and its ``cnf.jkt``. A signed proof's ``jti`` is spent once the checks up to ``iat``
    pass, even if a later check (nonce, ath, jkt) refuses it: a retry needs a new proof.
    """
    header, claims, signing_input, signature = _split(proof)
    algorithm, jwk, key = _proof_key(header)
    if not get_default_algorithms()[algorithm].verify(signing_input, key, signature):
        raise _invalid("The DPoP proof signature is invalid.", "signature")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise _invalid("The DPoP proof jti claim is missing or invalid.", "jti")
    if claims.get("htm") != method:
        raise _invalid(f"The DPoP proof htm claim does not match the method {method}.", "htm")
    htu = claims.get("htu")
    try:
        matches = isinstance(htu, str) and normalize_htu(htu) == normalize_htu(url)
    except ValueError:
        matches = False
    if not matches:
        raise _invalid("The DPoP proof htu claim does not match the request URL.", "htu")
    issued = _iat(claims, now, window)
    try:
        fresh = replay.remember(jti, until=max(issued, now) + window, now=now)
    except OverflowError as error:
        raise _invalid("Too many recent DPoP proofs; try again later.", "capacity") from error
    if not fresh:
        raise _invalid("The DPoP proof jti has already been used.", "replay")
    if nonces is not None:
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or nonce not in nonces:
            description = (
                "The DPoP proof has no nonce."
                if nonce is None
                else "The DPoP proof nonce is not current."
            )
            raise ProofError(USE_DPOP_NONCE, description, check="nonce")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode(), access_token_hash(access_token).encode()
        ):
            raise _invalid("The DPoP proof ath claim does not match the access token.", "ath")
    jkt = thumbprint(jwk)
    if expected_jkt is not None and not hmac.compare_digest(jkt.encode(), expected_jkt.encode()):
        raise _invalid("The DPoP proof key is not the key the access token is bound to.", "jkt")
    return VerifiedProof(jkt=jkt, claims=claims, jwk=jwk)

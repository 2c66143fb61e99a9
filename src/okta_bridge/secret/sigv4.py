"""AWS Signature Version 4: signed headers for a request, and presigned (query) URLs.

botocore's signer imports in ~40 ms on python3.13, a fifth of the bridge's cold start, to compute
a few HMACs; this is the documented algorithm (docs.aws.amazon.com/IAM/latest/UserGuide/
reference_sigv.html) for the requests the bridge sends: Secrets Manager's JSON POST to ``/``
(``sign_post``), S3's object and multipart requests (``sign`` with the payload's SHA-256), and
S3's presigned GET URL (``presign``). Tests sign the same requests with botocore's ``SigV4Auth``,
``S3SigV4Auth`` and ``S3SigV4QueryAuth`` and demand identical headers and URLs.

URLs given here must already be URI-encoded (path segments and query values): S3 signs the path
as sent, and the query is signed as it appears, sorted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_DEFAULT_PORTS = {"https": 443, "http": 80}

Credentials = tuple[str, str, str | None]


def sign_post(
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    credentials: Credentials,
    region: str,
    service: str,
    now: float | None = None,
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, the session token and ``Authorization``."""
    return sign(
        "POST",
        url,
        headers,
        payload_hash=hashlib.sha256(body).hexdigest(),
        credentials=credentials,
        region=region,
        service=service,
        now=now,
    )


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    *,
    payload_hash: str,
    credentials: Credentials,
    region: str,
    service: str,
    now: float | None = None,
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, the session token, ``Authorization`` and, for S3,
    ``X-Amz-Content-SHA256`` (S3 wants the payload's hash sent as well as signed).

    ``payload_hash`` is the hex SHA-256 of the body, computed by the caller once per body (an
    8 MiB part is not hashed again for each attempt's fresh signature)."""
    access_key, secret_key, session_token = credentials
    stamp = _stamp(now)
    signed = dict(headers)
    signed["X-Amz-Date"] = stamp
    if session_token:
        signed["X-Amz-Security-Token"] = session_token
    if service == "s3":
        signed["X-Amz-Content-SHA256"] = payload_hash
    canonical = {name.lower(): " ".join(value.split()) for name, value in signed.items()}
    canonical.setdefault("host", _host(url))
    names = sorted(canonical)
    parts = urllib.parse.urlsplit(url)
    request = "\n".join(
        [
            method.upper(),
            _canonical_path(parts.path, service),
            _canonical_query(parts.query),
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    signature = _signature(secret_key, stamp, scope, request)
    signed["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


def presign(
    method: str,
    url: str,
    *,
    expires: int,
    credentials: Credentials,
    region: str,
    service: str = "s3",
    now: float | None = None,
) -> str:
    """``url`` with SigV4 query authentication valid for ``expires`` seconds from ``now``: the
    parameters in the order botocore writes them, ``X-Amz-Signature`` last. Only ``host`` is
    signed and the payload is ``UNSIGNED-PAYLOAD``, as for S3's presigned GET."""
    access_key, secret_key, session_token = credentials
    stamp = _stamp(now)
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", stamp),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if session_token is not None:
        params.append(("X-Amz-Security-Token", session_token))
    parts = urllib.parse.urlsplit(url)
    auth = "&".join(f"{_encode(name)}={_encode(value)}" for name, value in params)
    query = f"{parts.query}&{auth}" if parts.query else auth
    request = "\n".join(
        [
            method.upper(),
            _canonical_path(parts.path, service),
            _canonical_query(query),
            f"host:{_host(url)}\n",
            "host",
            UNSIGNED_PAYLOAD,
        ]
    )
    signature = _signature(secret_key, stamp, scope, request)
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path, f"{query}&X-Amz-Signature={signature}", "")
    )


def service_host(service: str, region: str, *, fips: bool) -> str:
    """An AWS service's regional host (``kms.eu-west-1.amazonaws.com``; the ``-fips`` host when
    ``AWS_USE_FIPS_ENDPOINT`` is true; ``.com.cn`` in the China regions)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{service}{'-fips' if fips else ''}.{region}.{suffix}"


def error_type(document: Mapping[str, object]) -> str:
    """An AWS JSON-protocol error's ``__type`` without its namespace
    (``...#AccessDeniedException``), bounded and reduced to letters and digits: it goes into
    logs, metrics and error codes as it is."""
    raw = str(document.get("__type", "")).rsplit("#", 1)[-1]
    return "".join(c for c in raw if c.isalnum())[:80]


def _stamp(now: float | None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def _signature(secret_key: str, stamp: str, scope: str, request: str) -> str:
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical_path(path: str, service: str) -> str:
    """S3 signs the path as sent (already encoded); other services encode it once more."""
    if service == "s3":
        return path or "/"
    return urllib.parse.quote(path or "/", safe="/~")


def _canonical_query(query: str) -> str:
    """The query's ``name=value`` pairs (as encoded in the URL) sorted; ``uploads`` is
    ``uploads=``."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{name}={value}" for name, value in pairs)


def _encode(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def _host(url: str) -> str:
    """The Host header botocore signs: lower case, without userinfo or a default port."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host

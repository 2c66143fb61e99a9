"""Network probes for diagnose: DNS, TCP and TLS towards one host, one step at a time.

The bridge's HTTP client does all three inside one call, so a failure there says *that* the host
could not be reached; these probes say *where*. They follow the bridge's rules: the same trust
(``transport.trust.context``), the same proxy choice (when ``HTTPS_PROXY`` applies, DNS and TCP
test the proxy and TLS runs through a CONNECT tunnel), verification never off, and every wait
bounded by the caller's timeout. Each probe fills a ``facts`` dict as it learns things, so a
failed probe still reports what it saw, and raises a ``BridgeError`` with a catalog code.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from okta_bridge.config import ProxySettings
from okta_bridge.errors import NetworkError, TlsError
from okta_bridge.transport.deadline import elapsed_ms
from okta_bridge.transport.errors import tls_error
from okta_bridge.transport.message import Target
from okta_bridge.transport.tls import spki_sha256

_MAX_PROXY_HEAD = 16_384
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})


@dataclass(frozen=True)
class Route:
    """Where the bridge's connection to ``host:port`` goes: directly, or via the proxy."""

    host: str
    port: int
    proxy_host: str | None = None
    proxy_port: int | None = None
    proxy_tls: bool = False

    @classmethod
    def for_url(cls, url: str, proxy: ProxySettings) -> Route:
        """The route the transport would take to ``url`` (same ``NO_PROXY`` rule)."""
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        if not proxy.applies_to(host) or not proxy.https_proxy:
            return cls(host, port)
        proxy_parts = urllib.parse.urlsplit(proxy.https_proxy)
        tls = proxy_parts.scheme == "https"
        return cls(
            host,
            port,
            proxy_host=proxy_parts.hostname or "",
            proxy_port=proxy_parts.port or (443 if tls else 80),
            proxy_tls=tls,
        )

    @property
    def via_proxy(self) -> bool:
        """True when the connection goes through ``HTTPS_PROXY``."""
        return self.proxy_host is not None

    @property
    def first_hop(self) -> tuple[str, int]:
        """The host and port DNS and TCP are about: the proxy's when there is one."""
        if self.proxy_host is not None and self.proxy_port is not None:
            return self.proxy_host, self.proxy_port
        return self.host, self.port

    def describe(self) -> dict[str, Any]:
        """Facts common to every hop of this route (no proxy credentials)."""
        facts: dict[str, Any] = {"via_proxy": self.via_proxy}
        if self.via_proxy:
            facts["proxy"] = "{}:{}".format(*self.first_hop)
            facts["destination"] = f"{self.host}:{self.port}"
        return facts


def resolve(route: Route, timeout: float, facts: dict[str, Any]) -> list[str]:
    """Resolve the route's first hop; raise ``DNS_UNRESOLVED``.

    ``getaddrinfo`` has no timeout of its own, so it runs on a daemon thread and is abandoned
    (left to finish in the background) when ``timeout`` passes.
    """
    host, port = route.first_hop
    facts.update(host=host, port=port, **route.describe())
    result: list[Any] = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            result.append(exc)

    worker = threading.Thread(target=lookup, name="okta-bridge-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        raise NetworkError("DNS_UNRESOLVED", f"DNS did not answer for {host} in {timeout:.1f} s.")
    answer = result[0]
    if isinstance(answer, OSError):
        reason = answer.strerror or type(answer).__name__
        raise NetworkError("DNS_UNRESOLVED", f"DNS could not resolve {host} ({reason}).")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in answer))
    facts["addresses"] = addresses
    facts["private"] = {address: _is_private(address) for address in addresses}
    return addresses


def _is_private(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_private
    except ValueError:
        return False


def connect(
    route: Route, addresses: list[str], timeout: float, facts: dict[str, Any]
) -> socket.socket:
    """Open a TCP connection to the first address that accepts within ``timeout`` (shared by all
    attempts); raise ``TCP_REFUSED`` or ``TCP_TIMEOUT`` for the last failure."""
    _, port = route.first_hop
    facts.update(port=port, **route.describe())
    end = time.monotonic() + timeout
    failures: list[dict[str, str]] = []
    error = NetworkError("TCP_TIMEOUT", "No address to connect to.")
    for address in addresses:
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        started = time.monotonic()
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            error = _connect_error(exc, address, port, remaining)
            failures.append({"address": address, "error": error.code})
            continue
        facts.update(address=address, connect_ms=elapsed_ms(started))
        if failures:
            facts["failed_addresses"] = failures
        return sock
    if failures:
        facts["failed_addresses"] = failures
    raise error


def _connect_error(exc: OSError, address: str, port: int, timeout: float) -> NetworkError:
    where = f"{address}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError("TCP_REFUSED", f"{where} refused the connection (nothing listens).")
    if isinstance(exc, TimeoutError):
        return NetworkError("TCP_TIMEOUT", f"{where} did not accept in {timeout:.1f} s.")
    if exc.errno in _UNREACHABLE:
        return NetworkError("TCP_TIMEOUT", f"No route to {where} ({exc.strerror}).")
    return NetworkError("TCP_REFUSED", f"Connecting to {where} failed ({type(exc).__name__}).")


def tunnel(sock: socket.socket, route: Route, target: Target, timeout: float) -> str:
    """Ask the proxy for a CONNECT tunnel to the route's host; return its status line.

    Raises the target's unreachable code when the proxy refuses, as the transport does.
    """
    authority = f"{route.host}:{route.port}"
    if ":" in route.host:
        authority = f"[{route.host}]:{route.port}"
    sock.settimeout(timeout)
    request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    try:
        sock.sendall(request.encode("ascii"))
        head = _read_head(sock)
    except OSError as exc:
        raise NetworkError(
            target.unreachable_code,
            f"The HTTPS proxy did not open a tunnel to {authority} ({type(exc).__name__}).",
        ) from None
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")[:120]
    parts = status_line.split()
    if len(parts) < 2 or parts[1] != "200":
        raise NetworkError(
            target.unreachable_code,
            f"The HTTPS proxy refused a tunnel to {authority}: {status_line!r}.",
        )
    return status_line


def _read_head(sock: socket.socket) -> bytes:
    # Byte by byte: nothing after the proxy's head may be consumed (TLS starts right after it).
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionResetError("the proxy closed the connection")
        head += byte
        if len(head) > _MAX_PROXY_HEAD:
            raise ConnectionError("the proxy's answer is too long")
    return bytes(head)


def handshake(
    sock: socket.socket,
    context: ssl.SSLContext,
    host: str,
    target: Target,
    *,
    timeout: float,
    facts: dict[str, Any],
) -> ssl.SSLSocket:
    """Verified TLS (chain and host name) over ``sock``; raise a ``TlsError`` naming the cause."""
    facts["server_hostname"] = host
    sock.settimeout(timeout)
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        facts["verify_message"] = str(exc.verify_message or "")[:200]
        raise tls_error(exc, host) from None
    except TimeoutError:
        raise NetworkError(
            target.timeout_code, f"{host} did not complete the TLS handshake in {timeout:.1f} s."
        ) from None
    except ssl.SSLError as exc:
        reason = str(exc.reason or type(exc).__name__)
        raise TlsError(
            "TLS_HANDSHAKE_FAILED", f"The TLS handshake with {host} failed ({reason})."
        ) from None
    except OSError as exc:
        raise TlsError(
            "TLS_HANDSHAKE_FAILED",
            f"{host} closed the connection during the TLS handshake ({type(exc).__name__}).",
        ) from None


def bundle_subjects(ca_bundle: str | None) -> list[str]:
    """Subjects of the CA certificates in ``BRIDGE_CA_BUNDLE`` (what the bridge adds to trust)."""
    return [_subject(der) for der in _bundle_ders(ca_bundle)]


def _bundle_ders(ca_bundle: str | None) -> list[bytes]:
    if ca_bundle is None:
        return []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_bundle)
    except (OSError, ssl.SSLError, ValueError):
        return []
    return [bytes(der) for der in context.get_ca_certs(binary_form=True)]


def certificate_facts(
    sock: ssl.SSLSocket,
    context: ssl.SSLContext,
    ca_bundle: str | None,
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """What the verified connection presented: protocol, leaf certificate, the anchoring CA."""
    from cryptography import x509  # noqa: PLC0415 - diagnose only

    der = sock.getpeercert(binary_form=True) or b""
    leaf = x509.load_der_x509_certificate(der)
    not_after = leaf.not_valid_after_utc
    moment = now or dt.datetime.now(dt.UTC)
    cipher = sock.cipher()
    anchor, method = _anchor(sock, context, leaf)
    bundle = _bundle_ders(ca_bundle)
    return {
        "protocol": sock.version(),
        "cipher": cipher[0] if cipher else None,
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "sans": _sans(leaf),
        "not_after": not_after.isoformat(),
        "days_to_expiry": round((not_after - moment).total_seconds() / 86_400, 1),
        "anchor": None if anchor is None else _subject(anchor),
        "anchor_source": _anchor_source(anchor, bundle),
        "anchor_method": method,
        "hostname_match": True,
    }


def pin_matches(sock: ssl.SSLSocket, pins: frozenset[bytes]) -> bool:
    """Whether the server's public key is one of ``BRIDGE_API_PINS``."""
    der = sock.getpeercert(binary_form=True)
    return der is not None and spki_sha256(der) in pins


def _anchor(sock: ssl.SSLSocket, context: ssl.SSLContext, leaf: Any) -> tuple[bytes | None, str]:
    """The trusted CA certificate the chain ends at (DER), and how it was found.

    Python 3.13 reports the verified chain; before that, the leaf's issuer is looked up among the
    context's CA certificates (which finds the root when the server sends no intermediate).
    """
    verified_chain = getattr(sock, "get_verified_chain", None)
    if callable(verified_chain):
        chain = verified_chain()
        if chain:
            return bytes(chain[-1]), "verified_chain"
    from cryptography import x509  # noqa: PLC0415

    for der in context.get_ca_certs(binary_form=True):
        if x509.load_der_x509_certificate(der).subject == leaf.issuer:
            return bytes(der), "issuer_match"
    return None, "issuer_not_among_trusted_cas"


def _anchor_source(anchor: bytes | None, bundle: list[bytes]) -> str | None:
    if anchor is None:
        return None
    return "BRIDGE_CA_BUNDLE" if anchor in bundle else "system"


def _subject(der: bytes) -> str:
    from cryptography import x509  # noqa: PLC0415

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def _sans(certificate: Any) -> list[str]:
    from cryptography import x509  # noqa: PLC0415

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    sans = [f"DNS:{name}" for name in names.get_values_for_type(x509.DNSName)]
    sans += [f"IP:{ip}" for ip in names.get_values_for_type(x509.IPAddress)]
    return sans

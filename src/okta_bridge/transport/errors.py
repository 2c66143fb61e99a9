"""A failure of urllib3, ssl or the socket as the bridge reports it: the error code naming the
hop, and whether another attempt may help (and may be sent, for a write).
"""

from __future__ import annotations

import ssl

from urllib3 import exceptions as u3e

from okta_bridge.errors import BridgeError, TlsError
from okta_bridge.transport.message import Target
from okta_bridge.transport.tls import PinMismatchError


class Transient(Exception):
    """A failure worth another attempt (connection refused, reset, timeout); ``unsent`` when the
    request surely never reached the server (so even a non-idempotent one may be retried)."""

    def __init__(self, error: BridgeError, *, unsent: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.unsent = unsent


def chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and urllib3's wrapped ``reason``s."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        reason = getattr(item, "reason", None)
        todo.extend([item.__cause__, item.__context__])
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return seen


_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


# X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH (an IP in the URL)
_NAME_MISMATCH = frozenset({62, 63, 64})


def tls_error(error: ssl.SSLCertVerificationError, host: str) -> TlsError:
    """A failed certificate verification as the bridge reports it (the transport and diagnose)."""
    code = getattr(error, "verify_code", None)
    detail = str(getattr(error, "verify_message", "") or error)
    if code == _EXPIRED or "expired" in detail.lower():
        return TlsError("TLS_CERT_EXPIRED", f"The certificate of {host} has expired.")
    if code in _NAME_MISMATCH or "match" in detail.lower():
        return TlsError(
            "TLS_HOSTNAME_MISMATCH", f"The certificate presented by {host} is not valid for {host}."
        )
    return TlsError(
        "TLS_UNTRUSTED",
        f"The certificate chain of {host} is not trusted ({detail}); "
        "is its root CA in BRIDGE_CA_BUNDLE?",
    )


def classify(exc: Exception, target: Target, host: str) -> Exception:
    """Translate a urllib3/ssl/socket failure into a bridge error (wrapped if retryable)."""
    causes = chain(exc)
    if any(isinstance(item, PinMismatchError) for item in causes):
        return TlsError(
            "TLS_PIN_MISMATCH",
            f"The public key of {host} matches none of BRIDGE_API_PINS.",
        )
    for item in causes:
        if isinstance(item, ssl.SSLCertVerificationError):
            return tls_error(item, host)
    if any(isinstance(item, u3e.ProxyError) for item in causes):
        return Transient(
            target.error_class(
                target.unreachable_code, f"The HTTPS proxy failed to reach the {target.label}."
            ),
            unsent=True,  # the tunnel failed before any byte of the request
        )
    if any(isinstance(item, ssl.SSLError | u3e.SSLError) for item in causes):
        reason = next(
            (str(i.reason or type(i).__name__) for i in causes if isinstance(i, ssl.SSLError)),
            "SSLError",
        )
        return TlsError("TLS_HANDSHAKE_FAILED", f"The TLS handshake with {host} failed ({reason}).")
    fail = target.error_class
    # These three fail before a connection exists: nothing was sent.
    if isinstance(exc, u3e.NameResolutionError):
        return Transient(
            fail(target.unreachable_code, f"DNS could not resolve {host}."), unsent=True
        )
    if isinstance(exc, u3e.NewConnectionError):
        return Transient(
            fail(target.unreachable_code, f"Could not connect to the {target.label} at {host}."),
            unsent=True,
        )
    if isinstance(exc, u3e.ConnectTimeoutError):
        return Transient(
            fail(target.timeout_code, f"Connecting to the {target.label} at {host} timed out."),
            unsent=True,
        )
    if isinstance(exc, u3e.ReadTimeoutError | TimeoutError):
        return Transient(
            fail(target.timeout_code, f"The {target.label} at {host} did not answer in time.")
        )
    if isinstance(exc, u3e.HTTPError | OSError):
        return Transient(
            fail(
                target.unreachable_code,
                f"The connection to the {target.label} at {host} failed ({type(exc).__name__}).",
            )
        )
    return exc

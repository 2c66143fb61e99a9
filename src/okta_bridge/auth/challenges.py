"""How a server says which authentication it wants: the ``WWW-Authenticate`` challenges of a
401 or 403 (RFC 9110 11.6.1), their ``error`` (RFC 6750 3) and DPoP's (RFC 9449 7.1). Shared by
the API call (request) and the Okta management client (rotation), so it sits with auth, below
both. The header comes from a server we do not control: a malformed one is never half-trusted.
"""

from __future__ import annotations

import re

from okta_bridge.transport.message import HttpResponse

_ERROR_CODE = re.compile(r"[A-Za-z_]{1,60}")
# One item of WWW-Authenticate: a scheme (a token followed by a space and not by '='), and/or a
# parameter (token=token or token="quoted string").
_AUTH_ITEM = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9!#$%&\'*+.^_`|~-]*)(?=\s+[^=\s,]|\s*(?:,|$)))?\s*"
    r'(?:(?P<name>[A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^,\s]*))?'
)

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_QUOTED_PAIR = re.compile(r"\\(.)")


def challenge_error(response: HttpResponse, scheme: str | None = None) -> str | None:
    """The ``error`` of the ``WWW-Authenticate`` challenge for ``scheme`` (RFC 6750 3, RFC 9449
    7.1), or of the first challenge that has one; read from the parsed header, so that an
    ``error=`` inside another parameter's quoted value is never taken for it."""
    found = challenges(response.header("www-authenticate") or "")
    candidates = list(found.values()) if scheme is None else [found.get(scheme.lower(), {})]
    for params in candidates:
        error = params.get("error", "")
        if _ERROR_CODE.fullmatch(error):
            return error
    return None


def challenges(header: str) -> dict[str, dict[str, str]]:
    """``WWW-Authenticate``'s challenges by lower-case scheme, each with its parameters
    (RFC 9110 11.6.1: ``scheme param="value", param=token, other-scheme ...``; quoted-pairs
    unescaped). A header with an unterminated quoted string is not parsed: nothing in it is
    trusted."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for match in _AUTH_ITEM.finditer(header):
        scheme, name, value = match.group("scheme"), match.group("name"), match.group("value")
        if scheme:
            current = found.setdefault(scheme.lower(), {})
        if name and current is not None:
            raw = value or ""
            if raw.startswith('"'):
                if len(raw) < 2 or not raw.endswith('"') or not _QUOTED.fullmatch(raw):
                    return {}
                raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
            elif '"' in raw:
                return {}
            current[name.lower()] = raw
    return found

"""How a server says which authentication it wants: the ``WWW-Authenticate`` challenges of a
401 or 403 (RFC 9110 11.6.1), their ``error`` (RFC 6750 3) and DPoP's (RFC 9449 7.1). Shared by
the API call (request) and the Okta management client (rotation), so it sits with auth, below
both. The header comes from a server we do not control: a malformed one is never half-trusted.
"""

from __future__ import annotations

import re

from okta_bridge.transport.message import HttpResponse

# Pattern sources, compiled on first use (``re`` keeps them compiled): a challenge is read only
# on a 401 or 403, and this module is on the handler's cold import.
_ERROR_CODE = r"[A-Za-z_]{1,60}"
_TCHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
# The pieces of RFC 9110 11.6.1's grammar, each anchored where the scanner stands. An unquoted
# value is read a little more loosely than a token (gateways send ``error_uri=https://...``), but
# never holds a quote or a backslash (quoting is where a hostile header hides a second parameter)
# and is never empty (RFC 9110 5.6.2: a token; ``realm=`` is no parameter, wherever it stands).
_SCHEME = rf"({_TCHARS})(?=[ \t]|,|$)"
_PARAM = rf'[ \t]*({_TCHARS})[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s,"\\]+)[ \t]*'
_TOKEN68 = r"[ \t]+[A-Za-z0-9._~+/-]+=*[ \t]*(?=,|$)"
_SEPARATORS = r"[ \t,]*"
_QUOTED_PAIR = r"\\(.)"


def challenge_error(response: HttpResponse, scheme: str | None = None) -> str | None:
    """The ``error`` of the ``WWW-Authenticate`` challenge for ``scheme`` (RFC 6750 3, RFC 9449
    7.1), or of the first challenge that has one; read from the parsed header, so that an
    ``error=`` inside another parameter's quoted value is never taken for it."""
    found = challenges(response.header("www-authenticate") or "")
    candidates = list(found.values()) if scheme is None else [found.get(scheme.lower(), {})]
    for params in candidates:
        error = params.get("error", "")
        if re.fullmatch(_ERROR_CODE, error):
            return error
    return None


def challenges(header: str) -> dict[str, dict[str, str]]:
    """``WWW-Authenticate``'s challenges by lower-case scheme, each with its parameters
    (RFC 9110 11.6.1: ``scheme param="value", param=token, other-scheme token68``; quoted-pairs
    unescaped). The whole header must parse: a stray quote, an unterminated quoted string or any
    text the grammar does not place gives ``{}``, so that nothing in a broken header is trusted
    (a half-parsed one would let a quoted value pass for a parameter or a scheme)."""
    scheme_at, param_at, token68_at = map(re.compile, (_SCHEME, _PARAM, _TOKEN68))
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None  # the scheme whose parameters may follow
    position = _skip(header, 0)
    while position < len(header):
        if current is not None and (param := param_at.match(header, position)):
            name, raw = param.group(1).lower(), param.group(2)
            if name in current:
                return {}  # RFC 9110 11.2: once per challenge; a repeat is no "last wins"
            if raw.startswith('"'):
                raw = re.sub(_QUOTED_PAIR, r"\1", raw[1:-1])
            current[name] = raw
            position = param.end()
            if _space_separated(header, position, param_at):
                continue  # AWS API Gateway separates its parameters by spaces, not commas
        elif scheme := scheme_at.match(header, position):
            current = found.setdefault(scheme.group(1).lower(), {})
            position = scheme.end()
            if token68 := token68_at.match(header, position):
                position, current = token68.end(), None  # a blob, not parameters
        else:
            return {}
        if position < len(header) and header[position] not in " \t,":
            return {}
        position = _skip(header, position)
    return found


def _space_separated(header: str, position: int, param_at: re.Pattern[str]) -> bool:
    """Whether another parameter follows after whitespace alone (the parameter's pattern took
    the whitespace): ``Bearer scope="" error="invalid_token"``, as API Gateway's JWT authorizer
    writes it. A new scheme still needs a comma, and text with no whitespace before it none."""
    return (
        0 < position < len(header)
        and header[position - 1] in " \t"
        and param_at.match(header, position) is not None
    )


def _skip(header: str, position: int) -> int:
    """Past spaces, tabs and commas: empty list elements are allowed (RFC 9110 5.6.1)."""
    match = re.compile(_SEPARATORS).match(header, position)
    return match.end() if match else position

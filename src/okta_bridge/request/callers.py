"""Who is calling, as AWS authenticated it, and which paths that caller may read.

The function cannot authenticate a caller itself. For a proxy event (API Gateway REST or HTTP API,
Lambda Function URL) it reads what the front door wrote into ``requestContext`` after AWS checked
the request: an IAM principal (SigV4 with ``AWS_IAM`` auth), or the principal a Lambda, Cognito or
JWT authorizer admitted. A proxy event with none of these came through a door anyone can open
(a Function URL with ``AuthType: NONE``, an API route without auth) and is refused unless
``BRIDGE_ALLOW_ANONYMOUS_PROXY=on`` says that is intended.

A direct invocation carries no identity the code can see: whoever may ``lambda:InvokeFunction``
can also send an event shaped like a proxy event, identity included. Direct invokers are therefore
trusted with the whole allow-list (``BRIDGE_ALLOWED_PATHS``), and per-caller routes
(``BRIDGE_CALLER_ROUTES``) narrow what each authenticated proxy caller gets within it. Grant
``lambda:InvokeFunction`` only to principals you would trust with every allowed path.

A caller route's entry is a path pattern, which lets that caller GET it, or ``METHOD /pattern``
for a write (``"POST /v1/search"``): a write route in ``BRIDGE_ALLOWED_ROUTES`` is no write for a
caller whose own routes do not name the method, so routes written for reading stay read-only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from okta_bridge.errors import RequestError

# policy.ROUTE_METHODS (a config parser imports only errors; a unit test holds them equal).
ROUTE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_ASSUMED_ROLE = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+")


class Caller(NamedTuple):
    """``via`` the door used; ``identity`` what AWS authenticated (None: nobody, or direct)."""

    via: Literal["direct", "proxy"]
    identity: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """What a caller-route pattern may name: the identity, and for an assumed-role session
        also its role's ARN (``arn:aws:iam::123456789012:role/Name``; the session name and the
        role's path are not in the session ARN)."""
        if self.identity is None:
            return ()
        match = _ASSUMED_ROLE.fullmatch(self.identity)
        if match is None:
            return (self.identity,)
        partition, account, role = match.groups()
        return (self.identity, f"arn:{partition}:iam::{account}:role/{role}")


DIRECT = Caller("direct")


def proxy_caller(context: object) -> Caller:
    """The identity in a proxy event's ``requestContext`` (v1 or v2 format), if AWS set one."""
    if not isinstance(context, Mapping):
        return Caller("proxy")
    identity = context.get("identity")
    if isinstance(identity, Mapping):  # REST API (v1) with AWS_IAM auth
        arn = _text(identity.get("userArn"))
        if arn:
            return Caller("proxy", arn)
    authorizer = context.get("authorizer")
    if not isinstance(authorizer, Mapping):
        return Caller("proxy")
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping):  # HTTP API (v2) and Function URL with AWS_IAM auth
        arn = _text(iam.get("userArn"))
        return Caller("proxy", arn) if arn else Caller("proxy")
    principal = _text(authorizer.get("principalId"))  # REST API Lambda authorizer
    if principal:
        return Caller("proxy", f"authorizer:{principal}")
    for holder in (authorizer.get("jwt"), authorizer):  # HTTP API JWT, REST API Cognito
        claims = holder.get("claims") if isinstance(holder, Mapping) else None
        subject = _text(claims.get("sub")) if isinstance(claims, Mapping) else None
        if subject:
            return Caller("proxy", f"authorizer:{subject}")
    lambda_context = authorizer.get("lambda")
    if isinstance(lambda_context, Mapping):  # HTTP API Lambda authorizer (simple response)
        principal = _text(lambda_context.get("principalId")) or _text(lambda_context.get("sub"))
        return Caller("proxy", f"authorizer:{principal or 'lambda'}")
    return Caller("proxy")


def _text(value: object) -> str | None:
    return value.strip()[:2048] if isinstance(value, str) and value.strip() else None


class CallerRoute(NamedTuple):
    """One rule: callers whose identity matches ``principal`` (``*`` and ``?`` wildcards, as in
    IAM) may use ``paths`` (within the global routes): ``/pattern`` to GET, ``METHOD /pattern``
    for another method."""

    principal: str
    paths: tuple[str, ...]

    def patterns(self, method: str) -> tuple[str, ...]:
        """The path patterns this rule gives ``method``."""
        return tuple(pattern for verb, pattern in map(split_entry, self.paths) if verb == method)

    def matches(self, caller: Caller) -> bool:
        """Whether the rule names this caller."""
        expression = _principal_expression(self.principal)
        return any(expression.fullmatch(name) for name in caller.names)


def _principal_expression(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


class CallerPolicy:
    """Per-caller routes: which paths each authenticated proxy caller may read."""

    def __init__(self, routes: Sequence[CallerRoute], *, allow_anonymous: bool) -> None:
        self._routes = tuple(routes)
        self._allow_anonymous = allow_anonymous

    def patterns_for(self, caller: Caller, method: str = "GET") -> tuple[str, ...] | None:
        """The path patterns this caller is limited to for ``method`` (None: the global routes
        alone; empty: none), or ``CALLER_NOT_AUTHENTICATED``/``CALLER_NOT_ALLOWED``."""
        if caller.via == "direct":
            return None
        if caller.identity is None and not self._allow_anonymous:
            raise RequestError(
                "CALLER_NOT_AUTHENTICATED",
                "The request reached the bridge without an identity authenticated by AWS "
                "(no IAM auth or authorizer on the Function URL or API Gateway route).",
            )
        if not self._routes:
            return None
        matched = [route for route in self._routes if route.matches(caller)]
        if not matched:
            who = caller.identity or "an anonymous caller"
            raise RequestError(
                "CALLER_NOT_ALLOWED", f"No BRIDGE_CALLER_ROUTES rule names {who[:200]}."
            )
        return tuple(dict.fromkeys(p for route in matched for p in route.patterns(method)))


def split_entry(entry: str) -> tuple[str, str]:
    """``"POST /v1/search"`` into its method and pattern; a bare pattern is a GET. Raises
    ``ValueError`` for a method the bridge does not send."""
    words = entry.split()
    if len(words) == 1:
        return "GET", words[0]
    if len(words) == 2 and words[0] in ROUTE_METHODS:
        return words[0], words[1]
    raise ValueError(
        f"{entry[:80]!r} must be a path pattern or 'METHOD /pattern' (METHOD one of "
        f"{', '.join(ROUTE_METHODS)}, upper case)"
    )


def parse_routes(data: Any, validate: Callable[[str], None]) -> tuple[CallerRoute, ...]:
    """``{"principal pattern": ["/path/pattern", ...]}`` into rules; ``validate(pattern)`` checks
    each path pattern and raises; a ``ValueError`` says what is wrong with the shape."""
    if not isinstance(data, dict) or not data:
        raise ValueError("must be a JSON object of principal ARN pattern -> list of path patterns")
    routes = []
    for principal, paths in data.items():
        if not isinstance(principal, str) or not principal.strip():
            raise ValueError("principal patterns must be non-empty strings")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{principal[:80]!r} must map to a non-empty list of path patterns")
        for path in paths:
            validate(split_entry(path)[1])
        routes.append(CallerRoute(principal.strip(), tuple(p.strip() for p in paths)))
    return tuple(routes)

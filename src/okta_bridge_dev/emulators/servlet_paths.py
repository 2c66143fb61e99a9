"""How a Java servlet stack (Tomcat + Spring MVC) reads a request-target, for the sample API.

Why: a servlet stack resolves ``/v1/items/..;/..;/admin/keys`` to ``/admin/keys``; the sample API
routes that way when asked (``routing="servlet"``), so tests can send attack paths through the
bridge and prove a real backend would never have served a forbidden resource.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

__all__ = ["InvalidRequestTarget", "servlet_path"]

_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class InvalidRequestTarget(ValueError):
    """A servlet container would answer 400: bad escape, bad UTF-8, NUL, or not a path."""


def servlet_path(raw_target: str) -> str:
    """The path Tomcat + Spring MVC route for ``raw_target`` (the request-target as
    ``http.server`` reads it: one ISO-8859-1 character per byte).

    Why: a servlet stack resolves ``/v1/items/..;/..;/admin/keys`` to ``/admin/keys``, so the
    sample API must too if tests are to prove the bridge never sends such a path. The steps
    follow Tomcat's CoyoteAdapter (path parameters stripped from the raw target, then one
    decode, then ``normalize``), at its most permissive where settings differ:

    - an absolute-form target is reduced to its path; the query and any ``#...`` are dropped;
    - every ``;...`` path parameter is cut from each raw segment (``..;x=1`` is ``..``, ``;`` is
      empty), so an encoded ``%3B`` survives as a literal ``;``;
    - the rest is percent-decoded once as UTF-8; a bad escape, bad UTF-8 or NUL is a 400;
      ``%2F`` decodes to a separator (Tomcat's ``encodedSolidusHandling="decode"``; the default
      rejects it) and ``\\`` stays a literal character;
    - empty segments (``//``) are merged *before* dot segments are resolved, as Tomcat does, so
      each ``..`` removes a real segment; ``..`` above the root stays at the root;
    - a trailing slash is dropped (Spring 5's trailing-slash match routes ``/a/`` as ``/a``).
    """
    target = raw_target
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is not None:
        target = target[absolute.end() :] or "/"
    path = re.split(r"[?#]", target, maxsplit=1)[0]
    if not path.startswith("/"):
        raise InvalidRequestTarget("the request-target is not an absolute path")
    stripped = "/".join(segment.partition(";")[0] for segment in path.split("/"))
    if _BAD_ESCAPE.search(stripped):
        raise InvalidRequestTarget("the path has a malformed percent-escape")
    try:
        decoded = unquote_to_bytes(stripped.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError) as error:
        raise InvalidRequestTarget("the path is not UTF-8") from error
    if "\x00" in decoded:
        raise InvalidRequestTarget("the path has a NUL byte")
    resolved: list[str] = []
    for segment in decoded.split("/"):
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in ("", "."):
            resolved.append(segment)
    return "/" + "/".join(resolved)

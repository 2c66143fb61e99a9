"""The check a redirect of the internal API must pass before the transport follows it.

The transport keeps a redirect on the configured origin and on https; this adds the caller's rules:
the same path policy and query rule as a direct request. Used by the bridge, the library and
diagnose alike.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence

from okta_bridge.errors import RequestError
from okta_bridge.request.policy import (
    QueryPolicy,
    check_query,
    decode_path,
    encode_path,
    encode_query,
)
from okta_bridge.transport.message import Redirect, RedirectRefused

Allows = Callable[[Sequence[str]], bool]
"""Whether a decoded path is one the caller may read (the bridge's path and caller policy)."""


def same_origin_redirect(allows: Allows, query: QueryPolicy) -> Redirect:
    """The check of a redirect the transport already keeps on the origin and on https: its path
    must pass the same policy as the caller's (decoded, judged, re-encoded canonically), and its
    query the same rule as the caller's (the configured parameters win, ``BRIDGE_ALLOWED_QUERY``
    bounds the rest); the URL sent is rebuilt from those, never taken as the server wrote it.
    An open redirect in the API thus gives a caller nothing a direct request would not.
    """

    def check(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        try:
            segments = decode_path(parts.path or "/")
            pairs = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
            merged = encode_query(query.merge_redirect(check_query(pairs)))
        except RequestError as exc:
            raise RedirectRefused(
                f"redirect to a path the policy refuses ({exc.message})"
            ) from None
        if not allows(segments):
            raise RedirectRefused(
                f"redirect to a path outside the allow-list ({encode_path(segments)[:200]})"
            )
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # never a userinfo
        path = encode_path(segments)
        return f"{origin}{path}?{merged}" if merged else f"{origin}{path}"

    return check

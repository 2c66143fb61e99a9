"""``Client``: the bridge as a library, for a team's own Lambda with its own business logic.

The same code path as the bridge function (which is now one consumer of it): the secret read
once and cached, the token cached and refreshed (client credentials, private_key_jwt, the
password grant, DPoP), verified TLS with the configured CA bundle, pins and mTLS, deadlines from
the Lambda context, retries, redaction. The host comes from the secret's ``api_endpoint`` only; a
path is checked against ``BRIDGE_ALLOWED_PATHS`` when it is set (any path of that origin when it
is not), and against the same decoding rules as the bridge's callers.

One client per execution environment: build it at module level, outside the handler, and use
it from any thread. Errors are ``okta_bridge.errors.BridgeError``s with ``code``, ``stage`` and
``hint``; no secret or token is in their messages.

Importing this module starts parsing the system CA store on a thread (``transport.trust``), as
the bridge's handler does first thing in Init: it overlaps the imports below, so a client built
right after (``Client.from_env()`` at module level) finds the store ready.
"""

from __future__ import annotations

from okta_bridge.transport import trust

trust.prepare()  # before the imports below, which it runs beside

import json as jsonlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Iterator, Mapping, Sequence  # noqa: E402
from typing import TYPE_CHECKING, Any, NamedTuple  # noqa: E402

from okta_bridge import config, logs  # noqa: E402
from okta_bridge.config import Settings  # noqa: E402
from okta_bridge.errors import RequestError, UpstreamError  # noqa: E402
from okta_bridge.request.api import Outgoing, decode_json, refuse_failure  # noqa: E402
from okta_bridge.request.bridge import Bridge, Plan  # noqa: E402
from okta_bridge.request.callers import DIRECT  # noqa: E402
from okta_bridge.request.events import Invocation  # noqa: E402
from okta_bridge.request.pages import Walk  # noqa: E402
from okta_bridge.transport.deadline import Deadline  # noqa: E402

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Client", "Response"]

ANY_PATH = ("/**",)
"""The library's allow-list when ``BRIDGE_ALLOWED_PATHS`` is not set: the origin's paths."""
MAX_PAGES = 100
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
# Pattern sources, compiled on first use (``re`` keeps them): this module is on the bridge's
# cold import. RFC 9110 5.5 field-value characters, bounded: these go into headers as they are.
_IDEMPOTENCY_KEY = r"[\x21-\x7e]{1,255}"
_REQUEST_ID = r"[A-Za-z0-9._:-]{1,128}"
_HEADER_VALUE = r"[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?"


class Response(NamedTuple):
    """The API's successful (2xx) answer. A non-2xx answer raises ``UpstreamError`` instead
    (``UPSTREAM_NOT_FOUND``, ``UPSTREAM_UNAUTHORIZED``, ``UPSTREAM_ERROR``, ...). A named tuple,
    not a dataclass: this module is on the bridge handler's cold import (0.3 ms less)."""

    status: int
    headers: Mapping[str, str]  # lower-case names; a repeated field's values joined with ", "
    content: bytes
    url: str
    attempts: int  # HTTP requests this call made (retries, a token refresh)
    elapsed_ms: int

    def json(self) -> Any:
        """The body as JSON (RFC 8259: no NaN, bounded nesting), or ``UPSTREAM_NOT_JSON``."""
        return decode_json(self.content)[1]

    @property
    def text(self) -> str:
        """The body as UTF-8 text, or ``UPSTREAM_NOT_JSON`` when it is not UTF-8."""
        return decode_json(self.content)[0] if self.content.strip() else ""

    def __repr__(self) -> str:
        return f"Response(status={self.status}, url={self.url!r}, bytes={len(self.content)})"


class Client:
    """Calls the internal API as the configured Okta app; thread-safe, one per environment."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        secret_id: str | None = None,
        ca_bundle: str | Path | None = None,
        allowed_paths: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        bridge: Bridge | None = None,
    ) -> None:
        """Configuration from ``settings``, else from the environment (``BRIDGE_*``, as the
        bridge function reads it), with ``secret_id``, ``ca_bundle`` and ``allowed_paths``
        given here taking precedence. Nothing is read or fetched until the first call."""
        if bridge is not None:
            self._bridge = bridge
            return
        if settings is None:
            env = dict(environ if environ is not None else os.environ)
            if secret_id is not None:
                env[config.SECRET_ID] = secret_id
            if ca_bundle is not None:
                env[config.CA_BUNDLE] = str(ca_bundle)
            if allowed_paths is not None:
                env[config.ALLOWED_PATHS] = ",".join(allowed_paths)
            settings = Settings.from_env(env)
        elif secret_id or ca_bundle or allowed_paths is not None:
            raise TypeError("give settings, or secret_id/ca_bundle/allowed_paths, not both")
        logs.configure(settings.log_level)
        self._bridge = Bridge(settings)
        if config.snapstart():
            from okta_bridge.ops import snapstart  # noqa: PLC0415 - SnapStart only

            snapstart.register(lambda: self._bridge)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Client:
        """A client configured by ``BRIDGE_*`` environment variables (raises ``ConfigError``
        naming a bad one). ``environ`` replaces ``os.environ`` for those only: the AWS
        credentials and region of the secret read come from the process, as Lambda sets them."""
        return cls(environ=environ)

    @property
    def settings(self) -> Settings:
        return self._bridge.settings

    @property
    def bridge(self) -> Bridge:
        """The parts behind the client (the bridge function serves its events through it)."""
        return self._bridge

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        context: Any = None,
    ) -> Response:
        """GET ``path`` (an absolute path on the configured origin) with ``params``."""
        return self.request("GET", path, params=params, context=context)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        idempotency_key: str | None = None,
        context: Any = None,
    ) -> Response:
        """Send ``method`` to ``path``. A body is ``json`` (serialised) or ``data`` (bytes, with
        ``content_type``). Only GET and HEAD are repeated after an ambiguous failure (a reset
        once the request had left): give ``idempotency_key`` (sent as ``Idempotency-Key``) to
        let a write be repeated too. The deadline is the Lambda ``context``'s remaining time
        minus ``BRIDGE_DEADLINE_MARGIN_MS`` (without one, ``BRIDGE_DEFAULT_DEADLINE_SECONDS``)."""
        deadline = Deadline.from_context(context, self.settings)
        outgoing = _outgoing(method, json, data, content_type, idempotency_key)
        return self._call(path, _pairs(params), outgoing, request_id_of(context), deadline)

    def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        context: Any = None,
        next_pointer: str | None = None,
        max_pages: int = MAX_PAGES,
        max_bytes: int | None = None,
    ) -> Iterator[Response]:
        """Every page of a paginated GET, in order: the next page's URL is the answer's
        ``Link: <...>; rel="next"`` (RFC 8288) or, with ``next_pointer``, the string at that
        JSON pointer (RFC 6901, e.g. ``/links/next``) of its body; it ends when there is none.
        A next URL must be on the configured origin and pass the same path and query rules;
        the pages share one deadline, and stop at ``max_pages`` (``UPSTREAM_PAGINATION``) or when
        their bodies pass ``max_bytes`` (``UPSTREAM_TOO_LARGE``; by default ten times
        ``BRIDGE_MAX_RESPONSE_BYTES``). A URL seen twice is a loop
        (``UPSTREAM_PAGINATION`` too)."""
        if max_pages < 1:
            raise RequestError("BAD_REQUEST", "max_pages must be at least 1.")
        deadline = Deadline.from_context(context, self.settings)
        request_id = request_id_of(context)
        budget = max_bytes if max_bytes is not None else self.settings.max_response_bytes * 10
        walk = Walk(
            lambda p, q: self._plan(p, q, deadline),
            configured=self._bridge.configured_query(deadline),
            next_pointer=next_pointer,
        )
        plan: Plan | None = walk.first(path, _pairs(params))
        spent = 0
        while plan is not None:
            if walk.pages == max_pages:
                raise UpstreamError(
                    "UPSTREAM_PAGINATION", f"The API has more than {max_pages} pages (max_pages)."
                )
            # No page may be read beyond what the byte budget has left (ResponseTooLarge stops
            # the read): a hostile API cannot make one page cost more memory than that.
            page = self._send(
                plan, Outgoing(max_answer=max(1, budget - spent)), request_id, deadline
            )
            walk.read(page.url)
            spent += len(page.content)
            yield page
            plan = walk.following(page.url, page.headers, page.content)

    def close(self) -> None:
        """Close pooled connections (the next call opens new ones)."""
        self._bridge.close()

    def _call(
        self,
        path: str,
        query: tuple[tuple[str, str], ...],
        outgoing: Outgoing,
        request_id: str,
        deadline: Deadline,
    ) -> Response:
        return self._send(self._plan(path, query, deadline), outgoing, request_id, deadline)

    def _plan(self, path: str, query: tuple[tuple[str, str], ...], deadline: Deadline) -> Plan:
        invocation = Invocation("direct", path, query or None, DIRECT)
        return self._bridge.plan(invocation, deadline, unlisted=ANY_PATH)

    def _send(
        self, plan: Plan, outgoing: Outgoing, request_id: str, deadline: Deadline
    ) -> Response:
        done = self._bridge.exchange(plan, outgoing, request_id=request_id, deadline=deadline)
        refuse_failure(done.response, done.attempts)
        return Response(
            done.response.status,
            dict(done.response.headers),
            done.response.body,
            done.response.url,
            done.attempts,
            done.elapsed_ms,
        )


def _outgoing(
    method: str,
    json: Any,
    data: bytes | None,
    content_type: str | None,
    idempotency_key: str | None,
) -> Outgoing:
    verb = method.upper()
    if verb not in _METHODS:
        raise RequestError("BAD_REQUEST", f"The method {method[:10]!r} is not supported.")
    if json is not None and data is not None:
        raise RequestError("BAD_REQUEST", "Give json or data, not both.")
    if idempotency_key is not None and not re.fullmatch(_IDEMPOTENCY_KEY, idempotency_key):
        raise RequestError(
            "BAD_REQUEST", "idempotency_key must be 1 to 255 visible ASCII characters."
        )
    body, kind = data, content_type
    if json is not None:
        try:
            body = jsonlib.dumps(json, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise RequestError("BAD_REQUEST", f"json is not serialisable: {exc}"[:200]) from None
        kind = "application/json"
    if body is not None and verb in ("GET", "HEAD"):
        raise RequestError("BAD_REQUEST", f"A {verb} carries no body.")
    if kind is not None and not re.fullmatch(_HEADER_VALUE, kind):
        raise RequestError("BAD_REQUEST", "content_type is not a valid header value.")
    return Outgoing(verb, body, kind if body is not None else None, idempotency_key)


def _pairs(
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    if params is None:
        return ()
    items = params.items() if isinstance(params, Mapping) else params
    pairs = tuple((str(key), str(value)) for key, value in items)
    return pairs


def request_id_of(context: Any) -> str:
    """The invocation's id (Lambda's ``aws_request_id``), or a fresh one when it has none or one
    that could not travel in a header (``X-Request-ID``, ``Idempotency-Key``) or an S3 key."""
    value = getattr(context, "aws_request_id", None)
    if isinstance(value, str) and re.fullmatch(_REQUEST_ID, value):
        return value
    import uuid  # noqa: PLC0415 - Lambda always gives one; uuid's import is not paid for this

    return str(uuid.uuid4())

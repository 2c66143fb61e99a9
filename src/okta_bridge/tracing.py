"""Spans through the OpenTelemetry API around the invocation and its three hops.

Off by default (``BRIDGE_TRACING=off``) and then free: nothing imports ``opentelemetry``, and
``span()`` is one context-variable lookup returning a shared no-op. On, the handler opens an
``okta_bridge.invocation`` span and the secret store, token endpoint and API client open
``okta_bridge.secret.read``, ``okta_bridge.token.request`` and ``okta_bridge.api.call`` inside it.
The spans go to the global tracer provider: with only opentelemetry-api installed they cost
almost nothing and go nowhere; the ADOT Lambda layer (or an SDK the user sets up) installs a
provider that exports them, to X-Ray for instance. aws-xray-sdk is not used: it enters
maintenance in 2026 and costs ~300 ms of cold start.

Attributes carry no secret values: hosts, paths, HTTP statuses, attempt counts, grant types,
version ids and error codes. Exceptions are not recorded as events (their stack traces are not
ours to vet); a failed span gets ``error.code``, ``error.stage`` and an ERROR status instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from okta_bridge import __version__
from okta_bridge.errors import BridgeError
from okta_bridge.logs import get_logger

if TYPE_CHECKING:
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import Tracer

# Span names (the words "secret" and "token" here are not credentials).
INVOCATION = "okta_bridge.invocation"
SECRET_READ = "okta_bridge.secret.read"  # noqa: S105
TOKEN_REQUEST = "okta_bridge.token.request"  # noqa: S105
API_CALL = "okta_bridge.api.call"
TRACER_NAME = "okta_bridge"

AttributeValue = str | bool | int | float

log = get_logger("tracing")


class Span(Protocol):
    """What the bridge does with a span: add attributes (``None`` values are skipped)."""

    def set(self, key: str, value: AttributeValue | None) -> None: ...


class _Off:
    """The span when tracing is off: does nothing, entered and exited in place."""

    def set(self, key: str, value: AttributeValue | None) -> None:
        return None

    def __enter__(self) -> _Off:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


OFF = _Off()

# The tracer of the invocation in progress in this context; None when it is not traced.
_active: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "okta_bridge_tracer", default=None
)


class _On:
    """A real span, current while the block runs; a failure marks it without its traceback."""

    def __init__(
        self, tracer: Tracer, name: str, attributes: Mapping[str, AttributeValue] | None
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = dict(attributes or {})
        self._scope: contextlib.AbstractContextManager[OtelSpan] | None = None
        self._span: OtelSpan | None = None

    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None and self._span is not None:
            self._span.set_attribute(key, value)

    def __enter__(self) -> _On:
        self._scope = self._tracer.start_as_current_span(
            self._name,
            attributes=self._attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._span = self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._scope is None:
            return
        try:
            if exc is not None and self._span is not None:
                _mark_failed(self._span, exc)
        finally:
            self._scope.__exit__(exc_type, exc, traceback)


class _Invocation(_On):
    """The root span; while it is open, ``span()`` in this context makes real child spans."""

    _token: contextvars.Token[Tracer | None] | None = None

    def __enter__(self) -> _On:
        self._token = _active.set(self._tracer)
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            super().__exit__(exc_type, exc, traceback)
        finally:
            if self._token is not None:
                _active.reset(self._token)


def invocation(
    enabled: bool, attributes: Mapping[str, AttributeValue] | None = None
) -> contextlib.AbstractContextManager[Span]:
    """The ``okta_bridge.invocation`` span, or the no-op when tracing is off."""
    if not enabled:
        return OFF
    tracer = _tracer()
    return OFF if tracer is None else _Invocation(tracer, INVOCATION, attributes)


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> contextlib.AbstractContextManager[Span]:
    """A child span of the traced invocation in progress, or the no-op."""
    tracer = _active.get()
    return OFF if tracer is None else _On(tracer, name, attributes)


@functools.cache
def _tracer() -> Tracer | None:
    """The package's tracer from the global provider (a proxy until one is installed)."""
    try:
        from opentelemetry import trace  # noqa: PLC0415 - only when tracing is on
    except ImportError:
        # The artifact leaves the API to the ADOT layer, which brings it with its SDK.
        log.warning(
            "BRIDGE_TRACING is on but the ADOT layer is missing (no opentelemetry); no spans"
        )
        return None
    return trace.get_tracer(TRACER_NAME, __version__)


def _mark_failed(otel_span: OtelSpan, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    if isinstance(exc, BridgeError):
        code, stage = exc.code, exc.stage
    else:
        code, stage = type(exc).__name__, "internal"
    otel_span.set_attribute("error.code", code)
    otel_span.set_attribute("error.stage", stage)
    otel_span.set_status(Status(StatusCode.ERROR, code))

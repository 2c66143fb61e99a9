"""Lambda entry point: event -> invocation -> the library's client -> response. Nothing else
lives here.

The bridge is built at the first invocation, not at import, so a configuration error is answered
as a ``config`` error (with the variable named) rather than crashing the runtime's Init phase, and
so importing this module stays cheap. The caller never sees a stack trace. With SnapStart the
bridge is built during Init instead, holding no secret (see ``okta_bridge.ops.snapstart``). What
Init does start, before anything else is imported, is parsing the system CA store on a thread
(``okta_bridge.transport.trust``), so that it overlaps the imports.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from okta_bridge.transport import trust

# First thing in Init: the system CA store parses on a thread while the imports below load.
trust.prepare()

from okta_bridge import config, logs, metrics, tracing  # noqa: E402
from okta_bridge.client import Client, request_id_of  # noqa: E402
from okta_bridge.config import Settings  # noqa: E402
from okta_bridge.errors import BridgeError, InternalError, RequestError, UpstreamError  # noqa: E402
from okta_bridge.request import events  # noqa: E402
from okta_bridge.request.bridge import Bridge  # noqa: E402
from okta_bridge.request.events import ApiResult  # noqa: E402
from okta_bridge.transport.deadline import Deadline  # noqa: E402

log = logs.get_logger("handler")

_lock = threading.Lock()
_client: Client | None = None


def get_client() -> Client:
    """The environment's client, built once from the environment (raises ``ConfigError``):
    the bridge function is one consumer of the library, serving events through the same
    plan, token, secret and exchange as ``Client.get``."""
    global _client  # noqa: PLW0603 - one client per execution environment, by design
    with _lock:
        if _client is None:
            settings = Settings.from_env()
            logs.configure(settings.log_level)
            _client = Client(bridge=Bridge(settings))
        return _client


def get_bridge() -> Bridge:
    """The environment's bridge: the parts behind its client."""
    return get_client().bridge


def set_bridge(bridge: Bridge | None) -> None:
    """Install a bridge built elsewhere (tests, the demo), or ``None`` to rebuild on next call."""
    global _client  # noqa: PLW0603
    with _lock:
        _client = None if bridge is None else Client(bridge=bridge)


def current_bridge() -> Bridge | None:
    """The bridge if one is built; never builds one (the SnapStart hooks)."""
    client = _client
    return None if client is None else client.bridge


def _prepare_snapshot() -> None:
    """Hooks that keep secrets out of the snapshot, and the bridge built now, warm."""
    from okta_bridge.ops import snapstart  # noqa: PLC0415 - SnapStart only: no cost otherwise

    if snapstart.register(current_bridge):
        snapstart.prime(get_bridge)


if config.snapstart():
    _prepare_snapshot()


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Serve one invocation; always returns a response, never raises."""
    request_id = request_id_of(context)
    if events.asks_for_diagnose(event):
        with logs.request_scope(request_id):
            return _diagnose(context, request_id)
    kind = events.kind_of(event)
    started = time.monotonic()
    with logs.request_scope(request_id), metrics.recording(request_id) as measured:
        bridge: Bridge | None = None
        failure: BridgeError | None = None
        try:
            bridge = get_bridge()
            attributes = {"faas.invocation_id": request_id, "okta_bridge.event_kind": kind}
            with tracing.invocation(bridge.settings.tracing, attributes) as span:
                deadline = Deadline.from_context(context, bridge.settings)
                invocation = events.parse_event(event, max_body=bridge.settings.max_request_bytes)
                result = bridge.serve(invocation, request_id=request_id, deadline=deadline)
                span.set("http.response.status_code", result.status)
                response = _fitted(bridge, kind, result, request_id, deadline)
        except BridgeError as exc:
            failure = exc
            _log_failure(exc, started)
            return events.failure(kind, exc, request_id)
        except Exception:
            failure = InternalError()
            log.exception("unexpected error", extra={"code": "INTERNAL_ERROR"})
            return events.failure(kind, failure, request_id)
        finally:
            # Without settings (a configuration error) there is no namespace and no switch:
            # that failure shows in the logs only.
            if bridge is not None:
                metrics.publish(
                    bridge.settings, measured, function=_function_name(context), error=failure
                )
        log.info(
            "invocation served",
            extra={
                "event_kind": kind,
                "upstream_status": result.status,
                "attempts": result.attempts,
                "ms": round((time.monotonic() - started) * 1000),
                **({"pages": result.pages} if result.pages is not None else {}),
                **({"delivered": "s3"} if result.delivery is not None else {}),
            },
        )
        return response


def _fitted(
    bridge: Bridge, kind: events.Kind, result: ApiResult, request_id: str, deadline: Deadline
) -> dict[str, Any]:
    """The response, when Lambda can return it (its JSON under the inline limit, just below the
    6 MB a synchronous response may be); else the answer goes to S3, or without a bucket fails
    here with a clear code rather than in Lambda, after the work was done."""
    response = events.success(kind, result, request_id)
    limit = bridge.settings.delivery.inline_limit
    if result.delivery is not None or events.encoded_size(response, result, limit) <= limit:
        return response
    if not bridge.settings.delivery.enabled:
        raise UpstreamError(
            "UPSTREAM_TOO_LARGE",
            f"The answer is over {limit} bytes as Lambda returns it (JSON-encoded); set "
            "BRIDGE_DELIVERY_BUCKET to deliver it through S3.",
        )
    delivered = bridge.deliver(result, request_id=request_id, deadline=deadline)
    return events.success(kind, delivered, request_id)


def _diagnose(context: Any, request_id: str) -> dict[str, Any]:
    """A direct ``{"action": "diagnose"}``, where ``BRIDGE_DIAGNOSE`` allows it."""
    try:
        enabled = config.diagnose_enabled()
    except BridgeError as exc:
        return events.failure("direct", exc, request_id)
    if not enabled:
        refused = RequestError("DIAGNOSE_DISABLED", "Diagnose is switched off (BRIDGE_DIAGNOSE).")
        _log_failure(refused, time.monotonic())
        return events.failure("direct", refused, request_id)
    from okta_bridge.ops import diagnose  # noqa: PLC0415 - rare: kept out of every cold start

    # Diagnose spends the environment's token budget too; a configuration error is its to report.
    try:
        budget = get_bridge().tokens.budget
    except BridgeError:
        budget = None
    return diagnose.invoke(context, request_id=request_id, budget=budget)


def _function_name(context: Any) -> str | None:
    # Lambda's context names the function (AWS_LAMBDA_FUNCTION_NAME); tests and the demo may not.
    name = getattr(context, "function_name", None)
    return name if isinstance(name, str) and name else None


def _log_failure(exc: BridgeError, started: float) -> None:
    # 5xx is the bridge's (or its dependencies') failure: ERROR, which the template's metric
    # filter counts for the error-rate alarm. 4xx is the caller's request or the API's refusal.
    level = log.error if exc.status >= 500 else log.warning
    level(
        "invocation failed",
        extra={
            "code": exc.code,
            "stage": exc.stage,
            "error": exc.message,
            "status": exc.status,
            "ms": round((time.monotonic() - started) * 1000),
        },
    )

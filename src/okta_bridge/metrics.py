"""Per-invocation metrics in CloudWatch's embedded metric format (EMF), written by hand.

Why by hand: Powertools Metrics costs ~63 ms of cold start (with its Logger), and EMF is a small
documented JSON shape ("Specification: Embedded metric format", Amazon CloudWatch User Guide): a
log event that is one JSON object whose ``_aws`` member holds ``Timestamp`` (milliseconds since
the epoch) and ``CloudWatchMetrics``, a list of directives ``{Namespace, Dimensions: [[keys]],
Metrics: [{Name, Unit}]}``; every dimension key and metric name is a top-level member holding its
value, and other top-level members are kept as searchable properties. Lambda sends stdout to
CloudWatch Logs, which extracts the metrics: no API call, no extra permission, no latency.

One line per invocation (plus an ``Errors`` line with the ``ErrorCode`` dimension on failure). The
lines also carry ``timestamp``, ``level``, ``logger`` and ``message`` like the bridge's logs: with
the function's JSON log format Lambda filters application logs by ``level`` (a line without one
counts as INFO), so the level is the configured one and the lines are never filtered out.

The values are collected while the invocation runs: the handler opens ``recording()``, which puts
a ``Recorder`` in a context variable; the secret store, token endpoint, transport and API client
call the module functions below (``secret_read()``...), which do nothing when no invocation is
being recorded (rotation, diagnose, tests of the parts). Context variables keep concurrent
invocations on other threads apart.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError
from okta_bridge.logs import get_logger
from okta_bridge.records import Record

# Metric name -> EMF unit. The template's alarms and dashboard use exactly these names.
METRICS: dict[str, str] = {
    "Invocations": "Count",
    "Failures": "Count",
    "SecretReads": "Count",
    "TokenRequests": "Count",
    "TokenFailures": "Count",
    "TokenCacheHits": "Count",
    "Retries": "Count",
    "UpstreamRequests": "Count",
    "Upstream2xx": "Count",
    "Upstream4xx": "Count",
    "Upstream5xx": "Count",
    "UpstreamLatency": "Milliseconds",
    "TokenSecondsToExpiry": "Seconds",
    "Pages": "Count",
    "Truncations": "Count",
    "Deliveries": "Count",
    "DeliveredBytes": "Bytes",
    "SharedCacheHits": "Count",
    "SharedCacheMints": "Count",
    "SharedCacheWaits": "Count",
    "SharedCacheWaitMs": "Milliseconds",
    "SharedCacheFallbacks": "Count",
}
ERRORS = "Errors"
FUNCTION = "Function"
ERROR_CODE = "ErrorCode"
LOCAL_FUNCTION = "local"
LOGGER = "okta_bridge.metrics"

_LAMBDA_LEVELS = {"WARNING": "WARN"}

log = get_logger("metrics")
_write_lock = threading.Lock()


class Recorder(Record):
    """What one invocation did, filled in by the parts as they work. (Mutable, so a
    ``Record`` rather than a named tuple; see ``okta_bridge.records``.)"""

    _FIELDS = (
        "request_id",
        "secret_reads",
        "token_requests",
        "retries",
        "upstream_requests",
        "upstream_status",
        "upstream_ms",
        "token_seconds_to_expiry",
        "token_error",
        "pages",
        "truncations",
        "deliveries",
        "delivered_bytes",
        "shared",
    )  # in the order repr shows them
    __slots__ = _FIELDS

    def __init__(  # noqa: PLR0917 - positional, as the dataclass was
        self,
        request_id: str,
        secret_reads: int = 0,
        token_requests: int = 0,
        retries: int = 0,
        upstream_requests: int = 0,
        upstream_status: int | None = None,
        upstream_ms: float | None = None,
        token_seconds_to_expiry: float | None = None,
        token_error: BaseException | None = None,
        pages: int = 0,
        truncations: int = 0,
        deliveries: int = 0,
        delivered_bytes: int = 0,
        shared: dict[str, float] | None = None,
    ) -> None:
        self.request_id = request_id
        self.secret_reads = secret_reads
        self.token_requests = token_requests
        self.retries = retries
        self.upstream_requests = upstream_requests
        self.upstream_status = upstream_status
        self.upstream_ms = upstream_ms
        self.token_seconds_to_expiry = token_seconds_to_expiry
        self.token_error = token_error
        self.pages = pages
        self.truncations = truncations
        self.deliveries = deliveries
        self.delivered_bytes = delivered_bytes
        self.shared = shared  # SharedCache* values, once the shared token cache was consulted

    __hash__ = None  # type: ignore[assignment] # mutable and compared by value, as before

    def values(self, error: BridgeError | None) -> dict[str, float]:
        """The metric values, in ``METRICS`` order; latency and expiry only when measured."""
        status_class = (self.upstream_status or 0) // 100
        token_used = self.token_seconds_to_expiry is not None
        # Failed getting a token: Okta's refusal, or no answer or no TLS from the token host.
        token_failed = error is not None and (
            error is self.token_error or error.stage == "token" or error.code.startswith("TOKEN_")
        )
        values: dict[str, float] = {
            "Invocations": 1,
            "Failures": int(error is not None),
            "SecretReads": self.secret_reads,
            "TokenRequests": self.token_requests,
            "TokenFailures": int(token_failed),
            "TokenCacheHits": int(token_used and self.token_requests == 0),
            "Retries": self.retries,
            "UpstreamRequests": self.upstream_requests,
            "Upstream2xx": int(status_class == 2),
            "Upstream4xx": int(status_class == 4),
            "Upstream5xx": int(status_class == 5),
        }
        if self.pages:
            values["Pages"] = self.pages
            values["Truncations"] = self.truncations
        if self.deliveries:
            values["Deliveries"] = self.deliveries
            values["DeliveredBytes"] = self.delivered_bytes
        if self.shared is not None:
            values.update(self.shared)
        if self.upstream_ms is not None:
            values["UpstreamLatency"] = round(self.upstream_ms, 1)
        if self.token_seconds_to_expiry is not None:
            values["TokenSecondsToExpiry"] = round(max(0.0, self.token_seconds_to_expiry), 1)
        return values


_current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "okta_bridge_metrics", default=None
)


@contextlib.contextmanager
def recording(request_id: str) -> Iterator[Recorder]:
    """Collect the metrics of the invocation running in this context."""
    recorder = Recorder(request_id)
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


# -- what the parts report (no-ops outside ``recording()``) -----------------------------------


def secret_read() -> None:
    """A Secrets Manager read was made."""
    if (recorder := _current.get()) is not None:
        recorder.secret_reads += 1


def token_request() -> None:
    """A token request was sent to Okta."""
    if (recorder := _current.get()) is not None:
        recorder.token_requests += 1


def token_failed(error: BaseException) -> None:
    """A token request failed with ``error`` (counted as TokenFailures if the invocation does)."""
    if (recorder := _current.get()) is not None:
        recorder.token_error = error


def token_used(seconds_to_expiry: float) -> None:
    """A token with this much life left was handed out for the API call."""
    if (recorder := _current.get()) is not None:
        recorder.token_seconds_to_expiry = seconds_to_expiry


def pages(count: int, *, truncated: bool) -> None:
    """A paginated call read ``count`` pages (stopped by a bound when ``truncated``)."""
    if (recorder := _current.get()) is not None:
        recorder.pages += count
        recorder.truncations += int(truncated)


def delivered(size: int) -> None:
    """An answer of ``size`` bytes was written to S3 instead of returned."""
    if (recorder := _current.get()) is not None:
        recorder.deliveries += 1
        recorder.delivered_bytes += size


SHARED_METRICS = tuple(name for name in METRICS if name.startswith("SharedCache"))


def shared_cache(name: str, value: float = 1) -> None:
    """The shared token cache did ``name`` (one of ``SHARED_METRICS``): all five are reported,
    zeros included, by every invocation that consulted it."""
    if (recorder := _current.get()) is not None:
        if recorder.shared is None:
            recorder.shared = dict.fromkeys(SHARED_METRICS, 0.0)
        recorder.shared[name] += value


def retry() -> None:
    """An HTTP request is being retried."""
    if (recorder := _current.get()) is not None:
        recorder.retries += 1


def upstream_call(status: int | None, elapsed_ms: float) -> None:
    """One API request took ``elapsed_ms`` (summed) and ended with ``status`` (None: no answer)."""
    if (recorder := _current.get()) is not None:
        recorder.upstream_requests += 1
        recorder.upstream_status = status
        recorder.upstream_ms = (recorder.upstream_ms or 0.0) + elapsed_ms


# -- EMF ---------------------------------------------------------------------------------------


def records(
    namespace: str,
    recorder: Recorder,
    *,
    function: str,
    error: BridgeError | None,
    timestamp_ms: int,
    level: str = "INFO",
) -> list[dict[str, Any]]:
    """The EMF documents of one invocation: the main record, and ``Errors`` on failure."""
    values = recorder.values(error)
    common = {
        "timestamp": _iso(timestamp_ms),
        "level": _LAMBDA_LEVELS.get(level, level),
        "logger": LOGGER,
        "request_id": recorder.request_id,
        FUNCTION: function,
    }
    main: dict[str, Any] = {
        "_aws": _metadata(namespace, [FUNCTION], values, timestamp_ms),
        **common,
        "message": "invocation metrics",
        "outcome": "ok" if error is None else "error",
        **values,
    }
    if error is None:
        return [main]
    main["error_code"] = error.code
    errors: dict[str, Any] = {
        "_aws": _metadata(namespace, [FUNCTION, ERROR_CODE], {ERRORS: 1}, timestamp_ms),
        **common,
        "message": "invocation error metric",
        ERROR_CODE: error.code,
        ERRORS: 1,
    }
    return [main, errors]


def publish(
    settings: Settings,
    recorder: Recorder,
    *,
    function: str | None,
    error: BridgeError | None,
    stream: TextIO | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Print the invocation's EMF lines to stdout, unless metrics are off; never raises."""
    if not settings.metrics:
        return
    try:
        documents = records(
            settings.metrics_namespace,
            recorder,
            function=function or LOCAL_FUNCTION,
            error=error,
            timestamp_ms=int(wall_clock() * 1000),
            level=settings.log_level,
        )
        text = "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in documents)
        out = stream or sys.stdout
        with _write_lock:
            out.write(text)
            out.flush()
    except Exception as exc:  # noqa: BLE001 - metrics must never fail an invocation
        log.warning("metrics not written", extra={"error_type": type(exc).__name__})


def _metadata(
    namespace: str, dimensions: list[str], values: dict[str, float], timestamp_ms: int
) -> dict[str, Any]:
    return {
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [dimensions],
                "Metrics": [{"Name": name, "Unit": METRICS.get(name, "Count")} for name in values],
            }
        ],
    }


def _iso(timestamp_ms: int) -> str:
    seconds, millis = divmod(timestamp_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"

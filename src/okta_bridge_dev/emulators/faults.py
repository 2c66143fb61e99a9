"""Scripted misbehaviour of the local servers: ``Fault`` and the queue that hands each one out.

A fault applies to the next ``times`` requests it matches; the server consumes it before the
route's handler runs, so a fault can also spare the handler (and its side effects) entirely.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from okta_bridge_dev.emulators.routing import RecordedRequest, Response

__all__ = ["Fault", "FaultQueue", "overlay"]


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` requests whose path starts with ``match``
    (and whose method is ``method``, when given).

    ``status`` and ``body`` replace the normal answer's; ``headers`` are added to it (replacing
    same-named ones). The route's handler only runs when the answer still needs part of its normal
    response, so a fault with both ``status`` and ``body`` has no side effects (no token issued).
    ``delay`` waits before answering, ``reset`` answers nothing and aborts with a TCP RST,
    ``reset_mid_body`` sends the head and half the body under a larger Content-Length and then
    aborts, ``trickle_interval`` sends the body one byte per interval. All of them apply to a
    streamed body (``Response.stream``) too: its first half is streamed before the reset, and a
    trickle sends it byte by byte; a fault's ``body`` replaces the stream.
    """

    match: str = ""
    method: str | None = None  # only requests with this method (any when None)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    times: int = 1
    delay: float = 0.0
    reset: bool = False
    reset_mid_body: bool = False
    trickle_interval: float | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("Fault.times must be at least 1")
        if self.delay < 0:
            raise ValueError("Fault.delay must not be negative")
        if self.trickle_interval is not None and self.trickle_interval <= 0:
            raise ValueError("Fault.trickle_interval must be positive")
        if sum((self.reset, self.reset_mid_body, self.trickle_interval is not None)) > 1:
            raise ValueError("choose one of reset, reset_mid_body and trickle_interval")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("Fault.status must be an HTTP status code")


class FaultQueue:
    """Queued faults, first match wins; thread-safe, and callers only ever see copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a copy of ``fault``."""
        with self._lock:
            self._faults.append(dataclasses.replace(fault, headers=dict(fault.headers)))

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """Copies of the queued faults, ``times`` being what is left of each."""
        with self._lock:
            return [dataclasses.replace(f, headers=dict(f.headers)) for f in self._faults]

    def take(self, request: RecordedRequest) -> Fault | None:
        """The first fault matching ``request`` (one use of it, consumed), or None."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if request.path.startswith(fault.match) and fault.method in (None, request.method):
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                    return dataclasses.replace(fault, times=1)
        return None


def overlay(normal: Response, fault: Fault) -> Response:
    """``normal`` with the fault's status, headers and body laid over it (a streamed body
    stays streamed unless the fault brings a body of its own)."""
    return dataclasses.replace(
        normal,
        status=fault.status if fault.status is not None else normal.status,
        headers=_merge_headers(normal.headers, fault.headers),
        body=fault.body if fault.body is not None else normal.body,
        stream=None if fault.body is not None else normal.stream,
    )


def _merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``extra``, matching names case-insensitively."""
    overridden = {name.lower() for name in extra}
    merged = {k: v for k, v in base.items() if k.lower() not in overridden}
    merged.update(extra)
    return merged

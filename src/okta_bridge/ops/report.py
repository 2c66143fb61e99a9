"""The diagnose report: the hops in their order, each ok, failed or skipped, and the first failure.

``Walk.step`` runs one hop and records what it met, so a bug in one hop becomes that hop's
``INTERNAL_ERROR`` and never hides the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from okta_bridge.errors import BridgeError, InternalError
from okta_bridge.logs import get_logger
from okta_bridge.request import events
from okta_bridge.transport.deadline import elapsed_ms

log = get_logger("diagnose")

ACTION = events.DIAGNOSE_ACTION

NETWORK_HOPS = ("dns", "tcp", "tls")

ORDER: tuple[tuple[str, str], ...] = (
    ("config", "config"),
    ("secret", "secret"),
    *(("token_host", hop) for hop in (*NETWORK_HOPS, "token")),
    *(("api_host", hop) for hop in (*NETWORK_HOPS, "api")),
    ("delivery", "s3"),
)

_T = TypeVar("_T")


@dataclass
class Walk:
    """The hops recorded so far, in order."""

    started: float
    hops: list[dict[str, Any]] = field(default_factory=list)

    def step(self, target: str, hop: str, action: Callable[[dict[str, Any]], _T]) -> _T | None:
        """Run ``action(facts)``; record ok or failed; return its result, or None on failure."""
        facts: dict[str, Any] = {}
        began = time.monotonic()
        try:
            result = action(facts)
        except BridgeError as exc:
            self.fail(target, hop, exc, facts, elapsed_ms(began))
            return None
        except Exception:  # one hop's bug must not hide the others
            log.exception("diagnose hop failed unexpectedly", extra={"target": target, "hop": hop})
            self.fail(target, hop, InternalError(), facts, elapsed_ms(began))
            return None
        self.hops.append(_hop(target, hop, "ok", elapsed_ms(began), facts))
        return result

    def fail(
        self, target: str, hop: str, exc: BridgeError, facts: dict[str, Any], ms: float
    ) -> None:
        entry = _hop(target, hop, "failed", ms, facts)
        entry.update(code=exc.code, stage=exc.stage, message=exc.message, hint=exc.hint)
        self.hops.append(entry)

    def skip(self, target: str, hops: tuple[str, ...], reason: str) -> None:
        for hop in hops:
            entry = _hop(target, hop, "skipped", 0.0, {})
            entry["reason"] = reason
            self.hops.append(entry)

    def skip_rest(self, reason: str) -> None:
        """Skip every hop of ``ORDER`` not recorded yet."""
        done = {(h["target"], h["hop"]) for h in self.hops}
        for target, hop in ORDER:
            if (target, hop) not in done:
                self.skip(target, (hop,), reason)

    def failure(self, target: str, hop: str) -> str | None:
        """``hop`` of ``target`` failed: the reason later hops give for being skipped."""
        for entry in self.hops:
            if entry["target"] == target and entry["hop"] == hop and entry["status"] == "failed":
                where = hop if hop == target else f"{target} {hop}"
                return f"{where} failed ({entry['code']})"
        return None

    def report(self, request_id: str) -> dict[str, Any]:
        failed = [h for h in self.hops if h["status"] == "failed"]
        first = failed[0] if failed else None
        return {
            "action": ACTION,
            "ok": not failed,
            "request_id": request_id,
            "ms": elapsed_ms(self.started),
            "hops": self.hops,
            "first_failure": None
            if first is None
            else {key: first[key] for key in ("target", "hop", "code", "hint", "message")},
        }


def _hop(target: str, hop: str, status: str, ms: float, facts: dict[str, Any]) -> dict[str, Any]:
    return {"target": target, "hop": hop, "status": status, "ms": ms, "facts": facts}

"""Diagnose mode: walk every hop the bridge depends on and report each one's outcome and facts.

Invoked with the event ``{"action": "diagnose"}``. The hops, in order: ``config``, ``secret``, then
for the token host ``dns``, ``tcp``, ``tls``, ``token`` and for the API host ``dns``, ``tcp``,
``tls``, ``api``. Each is ``ok``, ``failed`` (with a catalog code and hint) or ``skipped`` (with the
reason it could not run). The API host's network hops run even when the token host failed, so one
report shows both hosts. Before the token host come, when configured, the shared token cache
(``token_cache``: ``dns``, ``tcp``, ``tls``, ``read``, ``open``; its failure skips nothing after
it, as the bridge then mints for itself) and KMS (``kms_host``: ``dns``, ``tcp``, ``tls``,
``sign``).

Diagnose builds its own objects (secret source, HTTP client, token endpoint): it reads the secret
afresh and asks Okta for a fresh token, and the warm bridge's caches stay untouched. It asks Okta
at most once per ``BRIDGE_DIAGNOSE_MIN_INTERVAL_SECONDS`` per environment: a diagnose run within
that interval reuses the token the last one got (or reports the error it met), so repeated runs
cannot spend the org's token rate limit. The report is JSON and never holds secret material:
secret values are never put in it, and every hop's facts are built from names, addresses,
certificates and headers only.

Only a direct invocation may ask for it, and only while ``BRIDGE_DIAGNOSE`` is on (the handler
checks both before this module is imported).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from okta_bridge import logs
from okta_bridge.auth.tokens import MintBudget
from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError, InternalError
from okta_bridge.logs import REDACTOR
from okta_bridge.ops.hops import Diagnosis
from okta_bridge.ops.report import Walk
from okta_bridge.request import events
from okta_bridge.secret.store import SecretSource
from okta_bridge.transport.deadline import Deadline, elapsed_ms

log = logs.get_logger("diagnose")


def requested(event: object) -> bool:
    """Whether ``event`` asks for diagnose (a direct invocation ``{"action": "diagnose"}``)."""
    return events.asks_for_diagnose(event)


def invoke(
    context: Any,
    *,
    request_id: str,
    env: Mapping[str, str] | None = None,
    source: SecretSource | None = None,
    budget: MintBudget | None = None,
) -> dict[str, Any]:
    """The handler's entry: settings parsed as ``handler.get_bridge`` parses them, then ``run``.

    A configuration error becomes a failed ``config`` hop. Never raises.
    """
    started = time.monotonic()
    try:
        settings = Settings.from_env(env)
        logs.configure(settings.log_level)
        deadline = Deadline.from_context(context, settings)
    except ConfigError as exc:
        walk = Walk(started)
        walk.fail("config", "config", exc, {"variable": exc.variable}, elapsed_ms(started))
        walk.skip_rest("the configuration is invalid (CONFIG_INVALID)")
        return walk.report(request_id)
    except Exception:  # noqa: BLE001 - diagnose answers, never raises
        return _internal_failure(started, request_id)
    return run(settings, deadline, source=source, request_id=request_id, budget=budget)


def run(
    settings: Settings,
    deadline: Deadline,
    *,
    source: SecretSource | None = None,
    request_id: str = "",
    budget: MintBudget | None = None,
) -> dict[str, Any]:
    """Walk every hop within ``deadline``; return the report (JSON-serialisable). Never raises.

    ``budget`` is the environment's token budget (the bridge's), which diagnose's token request
    spends too; without one it is bounded by its minimum interval alone.
    """
    started = time.monotonic()
    try:
        walk = Walk(started)
        Diagnosis(settings, deadline, source, request_id, walk, budget=budget).perform()
        # Facts quote what servers said (Okta's error_description, the API's challenge), which
        # could echo a credential: the report passes the one redaction point, as every answer.
        report: dict[str, Any] = REDACTOR.strings(walk.report(request_id))
    except Exception:  # noqa: BLE001 - a bug in diagnose must still answer
        return _internal_failure(started, request_id)
    failure = report["first_failure"]
    log.info(
        "diagnose finished",
        extra={
            "ok": report["ok"],
            "code": failure["code"] if failure else None,
            "hop": f"{failure['target']}/{failure['hop']}" if failure else None,
            "ms": report["ms"],
        },
    )
    return report


def _internal_failure(started: float, request_id: str) -> dict[str, Any]:
    log.exception("diagnose failed unexpectedly", extra={"code": "INTERNAL_ERROR"})
    walk = Walk(started)
    walk.fail("config", "config", InternalError(), {}, 0.0)
    walk.skip_rest("diagnose stopped on an internal error")
    return dict(REDACTOR.strings(walk.report(request_id)))

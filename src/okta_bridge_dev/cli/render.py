"""How ``okta-bridge`` shows what the function answered: a bridge response, an error, or the
diagnose report as a table; each renderer returns the exit code the answer means."""

from __future__ import annotations

import contextlib
import http
import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okta_bridge_dev.cli.exit_codes import EXIT_FAILED, EXIT_OK
from okta_bridge_dev.console import Console

__all__ = ["Answer", "answer_code", "format_ms", "is_report", "render_answer", "render_report"]

_MAX_VALUE = 60
_MAX_ITEMS = 4
KEY_FACTS: dict[str, tuple[str, ...]] = {
    "config": ("variables", "secret_keys"),
    "secret": ("version_id", "auth_method", "grant_type", "keys"),
    "dns": ("host", "port", "addresses", "private", "via_proxy"),
    "tcp": ("address", "port", "connect_ms"),
    "tls": ("protocol", "subject", "anchor", "days_to_expiry", "hostname_match", "pinned"),
    "token": (
        "status", "token_type", "scopes", "expires_in", "rate_limit",
        "okta_error", "okta_error_description",
    ),
    "api": ("status", "latency_ms", "content_type", "bytes"),
}  # fmt: skip
"""The facts the table shows per hop (``--verbose``: all of them; ``--json``: the report)."""


@dataclass(frozen=True)
class Answer:
    """What Invoke returned: the payload (parsed JSON, or text), and the runtime's error type
    when the function itself failed (``X-Amz-Function-Error``)."""

    function: str
    payload: Any
    function_error: str | None = None


def answer_code(answer: Answer) -> int:
    if answer.function_error is not None:
        return EXIT_FAILED
    if is_report(answer.payload):
        return EXIT_OK if answer.payload.get("ok") else EXIT_FAILED
    status = answer.payload.get("statusCode") if isinstance(answer.payload, dict) else None
    return EXIT_OK if isinstance(status, int) and 200 <= status < 300 else EXIT_FAILED


def render_answer(answer: Answer, console: Console) -> int:
    """Print the function's answer readably; return the exit code it means."""
    payload = answer.payload
    if answer.function_error is not None:
        raised = payload if isinstance(payload, dict) else {"errorMessage": str(payload)}
        console.say(
            f"{console.paint('function error', 'failed')} ({answer.function_error}): "
            f"{raised.get('errorType', '?')}: {raised.get('errorMessage', '')}"
        )
        console.say(f"  the function {answer.function} raised instead of answering: see its log")
        return EXIT_FAILED
    if is_report(payload):
        return render_report(payload, console)
    if not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
        console.say(json.dumps(payload, indent=2))
        console.error("the answer is not an okta-bridge response (is it the right function?)")
        return EXIT_FAILED
    status = int(payload["statusCode"])
    body = _body(payload.get("body"))
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and not 200 <= status < 300:
        _say_error(status, error, console)
        return EXIT_FAILED
    meta = payload.get("meta")
    _say_result(status, body, meta if isinstance(meta, dict) else {}, console)
    return EXIT_OK if 200 <= status < 300 else EXIT_FAILED


def _body(body: Any) -> Any:
    """The body, parsed when API Gateway shapes carry it as a JSON string."""
    if isinstance(body, str):
        with contextlib.suppress(ValueError):
            return json.loads(body)
    return body


def _say_result(status: int, body: Any, meta: Mapping[str, Any], console: Console) -> None:
    facts = [f"request {meta['request_id']}"] if meta.get("request_id") else []
    if "upstream_ms" in meta:
        facts.append(f"upstream {meta['upstream_ms']} ms")
    if "attempts" in meta:
        facts.append(f"{meta['attempts']} attempt(s)")
    head = console.paint(f"{status} {_phrase(status)}", "ok" if 200 <= status < 300 else "failed")
    console.say("  ".join([head, *facts]))
    console.say(json.dumps(body, indent=2))


def _say_error(status: int, error: Mapping[str, Any], console: Console) -> None:
    head = console.paint(f"{status} {error.get('code', '?')}", "failed")
    console.say(f"{head}  stage {error.get('stage', '?')}  request {error.get('request_id', '?')}")
    console.say(f"  {error.get('message', '')}")
    if error.get("hint"):
        console.say(f"  hint: {error['hint']}")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def is_report(payload: Any) -> bool:
    """Whether the payload is a diagnose report (rather than a bridge response)."""
    return (
        isinstance(payload, dict)
        and payload.get("action") == "diagnose"
        and isinstance(payload.get("hops"), list)
    )


def render_report(report: Mapping[str, Any], console: Console, *, verbose: bool = False) -> int:
    """The report as a table: target, hop, status, ms, then facts (ok), code, message and hint
    (failed) or the reason (skipped); a summary line last. Returns the exit code it means."""
    headers = ("target", "hop", "status", "ms")
    rows: list[tuple[list[str], str, list[str]]] = []
    for hop in report.get("hops", []):
        status = str(hop.get("status", "?"))
        cells = [
            str(hop.get("target", "?")),
            str(hop.get("hop", "?")),
            status.upper() if status == "failed" else status,
            format_ms(hop.get("ms")),
        ]
        rows.append((cells, status, _details(hop, verbose)))
    widths = [len(h) for h in headers]
    for cells, _, _ in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
    indent = sum(widths) + 2 * len(widths)
    width = console.width()
    head = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    console.say(console.paint(head, "bold") + "  details")
    for cells, status, details in rows:
        target, hop_name, shown, ms = cells
        painted = console.paint(shown, status) + " " * (widths[2] - len(shown))
        line = "  ".join(
            (target.ljust(widths[0]), hop_name.ljust(widths[1]), painted, ms.rjust(widths[3]))
        )
        wrapped = _wrap(details, width, indent) or [""]
        console.say(f"{line}  {wrapped[0]}".rstrip())
        for more in wrapped[1:]:
            console.say(" " * indent + more)
    ok = bool(report.get("ok"))
    console.say()
    console.say(_summary(report, ok, console))
    return EXIT_OK if ok else EXIT_FAILED


def format_ms(value: Any) -> str:
    """Milliseconds for a table cell (``12.5``), ``-`` when there is no number.

    A formatter, not a clock (the runtime measures with ``deadline.elapsed_ms``).
    """
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


def _details(hop: Mapping[str, Any], verbose: bool) -> list[str]:
    status = hop.get("status")
    raw = hop.get("facts")
    facts: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    if not verbose:
        facts = _key_facts(str(hop.get("hop")), facts)
    if status == "failed":
        lines = [f"{hop.get('code', '?')}: {hop.get('message', '')}".rstrip(": ")]
        if hop.get("hint"):
            lines.append(f"hint: {hop['hint']}")
        if facts:
            lines.append(_facts(facts))
        return lines
    if status == "skipped":
        return [str(hop.get("reason", "skipped"))]
    return [_facts(facts)] if facts else []


def _key_facts(hop: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of ``KEY_FACTS[hop]`` that are present (all of them when none is)."""
    chosen = {key: facts[key] for key in KEY_FACTS.get(hop, ()) if key in facts}
    if "variables" in chosen and isinstance(chosen["variables"], dict):
        chosen["variables"] = list(chosen["variables"])  # names: the values are in --json
    return chosen or dict(facts)


def _facts(facts: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={_value(value)}" for key, value in facts.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        shown = [_value(item) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            shown.append(f"+{len(value) - _MAX_ITEMS}")
        return ",".join(shown) or "[]"
    if isinstance(value, dict):
        return "{" + " ".join(f"{k}={_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _wrap(lines: list[str], width: int | None, indent: int) -> list[str]:
    if width is None or width - indent < 30:
        return lines
    wrapped: list[str] = []
    for line in lines:
        wrapped.extend(textwrap.wrap(line, width - indent - 2, break_on_hyphens=False) or [""])
    return wrapped


def _summary(report: Mapping[str, Any], ok: bool, console: Console) -> str:
    hops = report.get("hops", [])
    request = f", request {report['request_id']}" if report.get("request_id") else ""
    if ok:
        passed = sum(1 for hop in hops if hop.get("status") == "ok")
        text = f"all {passed} checks passed in {format_ms(report.get('ms'))} ms{request}"
        return console.paint("ok", "ok") + f": {text}"
    failure: Mapping[str, Any] = report.get("first_failure") or next(
        (hop for hop in hops if hop.get("status") == "failed"), {}
    )
    where = f"{failure.get('target', '?')} {failure.get('hop', '?')}"
    text = f" at {where}: {failure.get('code', '?')}{request}"
    hint = f"\n  hint: {failure['hint']}" if failure.get("hint") else ""
    return console.paint("FAILED", "failed") + text + hint

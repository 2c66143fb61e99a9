"""``okta-bridge``: invoke, diagnose, store credentials, rotate, demo, deploy (dev tools only).

Installed with the project's dev tools, never part of the Lambda artifact. The deployed function
is found as ``make deploy`` finds the stack (``samconfig.toml``, ``OKTA_BRIDGE_STACK``,
``AWS_REGION``, flags) and its ``FunctionName`` output; boto3's own credentials and endpoints
apply (``AWS_PROFILE``, ``AWS_ENDPOINT_URL_LAMBDA``...). Secret values are never taken from the
command line. Colour only on a terminal and without ``NO_COLOR``; ``--json`` prints raw JSON.

Exit codes: 0 ok; 1 the bridge, diagnose or the rotation reported a failure; 2 usage or
configuration error; 3 AWS refused or could not be reached; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import http
import itertools
import json
import os
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from botocore.config import Config

from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.cli import demo
from okta_bridge_dev.release import deploy
from okta_bridge_dev.release.deploy import Console
from okta_bridge_dev.release.template import UsageError, stack_outputs

__all__ = ["Answer", "Terminal", "main", "render_report"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AWS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = (
    "Exit codes: 0 ok; 1 the bridge, diagnose or the rotation reported a failure; 2 usage or "
    "configuration error; 3 AWS refused or could not be reached; 130 interrupted."
)
PASSTHROUGH = {  # handed to deploy.py as they are, options and all
    "deploy": "upload dist/okta-bridge.zip and create or update the stack (make deploy)",
    "outputs": "print the stack's outputs, or one of them",
    "destroy": "delete the stack (make destroy)",
}
KINDS = ("basic", "post", "jwt-rs256", "jwt-es256", "password")
DIAGNOSE_EVENT = {"action": "diagnose"}
INVOKE_CONFIG = Config(
    connect_timeout=10,
    read_timeout=905,  # a synchronous invocation may last the function's timeout, 900 s at most
    retries={"mode": "standard"},  # 3 attempts, or AWS_MAX_ATTEMPTS
    user_agent_extra="okta-bridge-cli",
)
STYLES = {"ok": "32", "failed": "1;31", "skipped": "33", "bold": "1"}
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


# -- output ----------------------------------------------------------------------------------


@dataclass
class Terminal:
    """The console plus what decides how to write to it: colour, width, the environment."""

    console: Console = field(default_factory=Console)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def tty(self) -> bool:
        """Whether standard output is a terminal (a person reads it, not a pipe)."""
        return _isatty(self.console.out)

    @property
    def colour(self) -> bool:
        """ANSI colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
        return self.tty and not self.environ.get("NO_COLOR")

    def paint(self, text: str, style: str) -> str:
        """``text`` in ``style`` (a key of ``STYLES``) when colour is on, else unchanged."""
        code = STYLES.get(style)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def width(self) -> int | None:
        """The terminal's width to wrap at; None (no wrapping) when piped."""
        return shutil.get_terminal_size().columns if self.tty else None

    def say(self, text: str = "") -> None:
        """A line on standard output."""
        self.console.say(text)


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


class Spinner:
    """A spinner with the elapsed seconds on standard error while a call runs, on a terminal
    only (piped output stays clean); erased when the call returns."""

    FRAMES = "|/-\\"

    def __init__(self, err: IO[str], label: str, *, interval: float = 0.1) -> None:
        self._err = err
        self._label = label
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Spinner:
        if _isatty(self._err):
            self._started = time.monotonic()
            self._draw(self.FRAMES[0])
            self._thread = threading.Thread(
                target=self._spin, name="okta-bridge:spinner", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1.0)
            print("\r\x1b[2K", end="", file=self._err, flush=True)

    def _spin(self) -> None:
        for frame in itertools.cycle(self.FRAMES[1:] + self.FRAMES[0]):
            if self._stop.wait(self._interval):
                return
            self._draw(frame)

    def _draw(self, frame: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"\r{frame} {self._label} ({elapsed:.0f}s)", end="", file=self._err, flush=True)


# -- invoke ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What Invoke returned: the payload (parsed JSON, or text), and the runtime's error type
    when the function itself failed (``X-Amz-Function-Error``)."""

    function: str
    payload: Any
    function_error: str | None = None


def build_event(args: argparse.Namespace) -> Any:
    """The event from ``--event FILE``, or a direct event from ``--path``/``--query``."""
    if args.query and args.path is None:
        raise UsageError("--query needs --path (or put the query in the --event file)")
    if args.event is not None:
        text = sys.stdin.read() if str(args.event) == "-" else _read(args.event)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--event {args.event} is not JSON: {exc}") from None
    if args.path is None:
        return {}
    query: dict[str, list[str]] = {}
    for item in args.query:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--query {item!r} is not KEY=VALUE")
        query.setdefault(key, []).append(value)
    event: dict[str, Any] = {"path": args.path}
    if query:
        event["query"] = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
    return event


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def invoke(args: argparse.Namespace, term: Terminal, event: Any) -> Answer:
    """Invoke the deployed function (``--function``, else the stack's ``FunctionName``)."""
    config = deploy.load_config(args, term.environ)
    aws = deploy.Aws.connect(config)
    function = args.function
    if not function:
        outputs = stack_outputs(aws.client("cloudformation"), config.stack_name)
        function = outputs.get("FunctionName")
        if not function:
            raise UsageError(
                f"stack {config.stack_name} has no FunctionName output: pass --function NAME"
            )
    client = aws.session.client("lambda", config=INVOKE_CONFIG)
    try:
        with Spinner(term.console.err, f"invoking {function}"):
            response = client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode("utf-8"),
            )
            raw = response["Payload"].read().decode("utf-8", errors="replace")
    finally:
        client.close()
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = raw
    return Answer(function, payload, response.get("FunctionError"))


def cmd_invoke(args: argparse.Namespace, term: Terminal) -> int:
    """Invoke the function with an event; print its answer; 0 for a 2xx answer, else 1."""
    answer = invoke(args, term, build_event(args))
    if args.json:
        term.say(json.dumps(answer.payload, indent=2))
        return _answer_code(answer)
    return render_answer(answer, term)


def _answer_code(answer: Answer) -> int:
    if answer.function_error is not None:
        return EXIT_FAILED
    if _is_report(answer.payload):
        return EXIT_OK if answer.payload.get("ok") else EXIT_FAILED
    status = answer.payload.get("statusCode") if isinstance(answer.payload, dict) else None
    return EXIT_OK if isinstance(status, int) and 200 <= status < 300 else EXIT_FAILED


def render_answer(answer: Answer, term: Terminal) -> int:
    """Print the function's answer readably; return the exit code it means."""
    payload = answer.payload
    if answer.function_error is not None:
        raised = payload if isinstance(payload, dict) else {"errorMessage": str(payload)}
        term.say(
            f"{term.paint('function error', 'failed')} ({answer.function_error}): "
            f"{raised.get('errorType', '?')}: {raised.get('errorMessage', '')}"
        )
        term.say(f"  the function {answer.function} raised instead of answering: see its log")
        return EXIT_FAILED
    if _is_report(payload):
        return render_report(payload, term)
    if not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
        term.say(json.dumps(payload, indent=2))
        term.console.error("the answer is not an okta-bridge response (is it the right function?)")
        return EXIT_FAILED
    status = int(payload["statusCode"])
    body = _body(payload.get("body"))
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and not 200 <= status < 300:
        _say_error(status, error, term)
        return EXIT_FAILED
    meta = payload.get("meta")
    _say_result(status, body, meta if isinstance(meta, dict) else {}, term)
    return EXIT_OK if 200 <= status < 300 else EXIT_FAILED


def _body(body: Any) -> Any:
    """The body, parsed when API Gateway shapes carry it as a JSON string."""
    if isinstance(body, str):
        with contextlib.suppress(ValueError):
            return json.loads(body)
    return body


def _say_result(status: int, body: Any, meta: Mapping[str, Any], term: Terminal) -> None:
    facts = [f"request {meta['request_id']}"] if meta.get("request_id") else []
    if "upstream_ms" in meta:
        facts.append(f"upstream {meta['upstream_ms']} ms")
    if "attempts" in meta:
        facts.append(f"{meta['attempts']} attempt(s)")
    head = term.paint(f"{status} {_phrase(status)}", "ok" if 200 <= status < 300 else "failed")
    term.say("  ".join([head, *facts]))
    term.say(json.dumps(body, indent=2))


def _say_error(status: int, error: Mapping[str, Any], term: Terminal) -> None:
    head = term.paint(f"{status} {error.get('code', '?')}", "failed")
    term.say(f"{head}  stage {error.get('stage', '?')}  request {error.get('request_id', '?')}")
    term.say(f"  {error.get('message', '')}")
    if error.get("hint"):
        term.say(f"  hint: {error['hint']}")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


# -- diagnose --------------------------------------------------------------------------------


def _is_report(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and payload.get("action") == "diagnose"
        and isinstance(payload.get("hops"), list)
    )


def cmd_diagnose(args: argparse.Namespace, term: Terminal) -> int:
    """Run every hop's check, deployed or here; print the table (or JSON); 0 if all passed."""
    if args.local:
        report, code = _local_report(args, term)
    else:
        answer = invoke(args, term, DIAGNOSE_EVENT)
        if not _is_report(answer.payload) or answer.function_error is not None:
            render_answer(answer, term)
            term.console.error(
                f"{answer.function} did not answer with a diagnose report: deploy this version "
                "(make deploy), or run `okta-bridge diagnose --local`"
            )
            return EXIT_FAILED
        report = answer.payload
        code = EXIT_OK if report.get("ok") else EXIT_FAILED
    if args.json:
        term.say(json.dumps(report, indent=2))
    else:
        render_report(report, term, verbose=args.verbose)
    return code


def _local_report(args: argparse.Namespace, term: Terminal) -> tuple[dict[str, Any], int]:
    """Diagnose in this process with the bridge's configuration from this environment.

    A configuration the bridge refuses is a usage error here (exit 2), reported as diagnose
    reports it (a failed ``config`` hop, the rest skipped). Logging is left unconfigured, so
    standard output holds the report only.
    """
    from okta_bridge.ops import diagnose  # noqa: PLC0415 - only this command needs it

    try:
        settings = Settings.from_env(term.environ)
    except ConfigError:
        return diagnose.invoke(None, request_id="", env=term.environ), EXIT_USAGE
    with Spinner(term.console.err, "diagnosing from here"):
        report = diagnose.run(settings, Deadline(args.timeout))
    return report, EXIT_OK if report.get("ok") else EXIT_FAILED


def render_report(report: Mapping[str, Any], term: Terminal, *, verbose: bool = False) -> int:
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
            _ms(hop.get("ms")),
        ]
        rows.append((cells, status, _details(hop, verbose)))
    widths = [len(h) for h in headers]
    for cells, _, _ in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
    indent = sum(widths) + 2 * len(widths)
    width = term.width()
    head = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    term.say(term.paint(head, "bold") + "  details")
    for cells, status, details in rows:
        target, hop_name, shown, ms = cells
        painted = term.paint(shown, status) + " " * (widths[2] - len(shown))
        line = "  ".join(
            (target.ljust(widths[0]), hop_name.ljust(widths[1]), painted, ms.rjust(widths[3]))
        )
        wrapped = _wrap(details, width, indent) or [""]
        term.say(f"{line}  {wrapped[0]}".rstrip())
        for more in wrapped[1:]:
            term.say(" " * indent + more)
    ok = bool(report.get("ok"))
    term.say()
    term.say(_summary(report, ok, term))
    return EXIT_OK if ok else EXIT_FAILED


def _ms(value: Any) -> str:
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


def _summary(report: Mapping[str, Any], ok: bool, term: Terminal) -> str:
    hops = report.get("hops", [])
    request = f", request {report['request_id']}" if report.get("request_id") else ""
    if ok:
        passed = sum(1 for hop in hops if hop.get("status") == "ok")
        text = f"all {passed} checks passed in {_ms(report.get('ms'))} ms{request}"
        return term.paint("ok", "ok") + f": {text}"
    failure: Mapping[str, Any] = report.get("first_failure") or next(
        (hop for hop in hops if hop.get("status") == "failed"), {}
    )
    where = f"{failure.get('target', '?')} {failure.get('hop', '?')}"
    text = f" at {where}: {failure.get('code', '?')}{request}"
    hint = f"\n  hint: {failure['hint']}" if failure.get("hint") else ""
    return term.paint("FAILED", "failed") + text + hint


# -- commands passed on to deploy.py ---------------------------------------------------------


def _stack_argv(args: argparse.Namespace) -> list[str]:
    """The stack options back as flags, for ``deploy.main``."""
    argv: list[str] = []
    for flag in ("stack_name", "region", "profile", "config_file"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    return [*argv, "--config-env", args.config_env]


def cmd_secret_put(args: argparse.Namespace, term: Terminal) -> int:
    """``deploy.py secret``: validate the credentials, store them; prompts without echo."""
    argv = ["secret", *_stack_argv(args)]
    if args.admin:
        argv.append("--admin")
    if args.file is not None:
        argv += ["--file", str(args.file)]
    return deploy.main(argv, environ=term.environ, console=term.console)


def cmd_rotate(args: argparse.Namespace, term: Terminal) -> int:
    """``deploy.py rotate-now``: rotate at once and confirm Okta refuses the old credential."""
    argv = ["rotate-now", *_stack_argv(args), "--kind", args.kind, "--timeout", str(args.timeout)]
    if args.local:
        argv.append("--local")
    if args.ca_bundle is not None:
        argv += ["--ca-bundle", str(args.ca_bundle)]
    return deploy.main(argv, environ=term.environ, console=term.console)


def cmd_demo(args: argparse.Namespace, term: Terminal) -> int:
    """``make demo``: the real handler on the local stack, one cold call then warm ones."""
    return demo.run(args.auth, args.verbose)


# -- parser ----------------------------------------------------------------------------------


def _version() -> str:
    try:
        return metadata.version("okta-bridge")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``okta-bridge`` parser; every command has ``--help``."""
    stack = argparse.ArgumentParser(add_help=False)
    deploy.add_stack_arguments(stack.add_argument_group("stack (as make deploy finds it)"))

    parser = argparse.ArgumentParser(
        prog="okta-bridge",
        description="Invoke and diagnose the deployed okta-bridge, store its credentials, "
        "rotate them, run the local demo, deploy.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *, parents: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[stack] if parents else [],
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=EXIT_CODES,
        )
        return sub

    invoke_cmd = command("invoke", "invoke the deployed function and print its answer")
    source = invoke_cmd.add_mutually_exclusive_group()
    source.add_argument(
        "--event",
        type=Path,
        metavar="FILE",
        help="JSON event file ('-' for standard input), e.g. events/apigw-http-v2.json",
    )
    source.add_argument("--path", metavar="P", help="direct event {'path': P} (default: {})")
    invoke_cmd.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="query parameter of the --path event (repeatable)",
    )
    _function_option(invoke_cmd)
    invoke_cmd.add_argument("--json", action="store_true", help="print the raw JSON answer")
    invoke_cmd.set_defaults(run=cmd_invoke)

    diagnose_cmd = command(
        "diagnose",
        "check each hop (config, secret, DNS, TCP, TLS, token, API) and say which one fails",
    )
    diagnose_cmd.add_argument(
        "--local",
        action="store_true",
        help="run here with the bridge's BRIDGE_* configuration from this environment, "
        "instead of in the deployed function",
    )
    diagnose_cmd.add_argument("--json", action="store_true", help="print the raw JSON report")
    diagnose_cmd.add_argument(
        "--verbose",
        action="store_true",
        help="every fact of each hop, not the key ones",
    )
    _function_option(diagnose_cmd)
    diagnose_cmd.add_argument(
        "--timeout", type=float, default=30.0, help="with --local: seconds (default: 30)"
    )
    diagnose_cmd.set_defaults(run=cmd_diagnose)

    secret = commands.add_parser(
        "secret",
        help="store credentials in the stack's secret",
        description="Store credentials in the stack's secret.",
        epilog=EXIT_CODES,
    )
    actions = secret.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = actions.add_parser(
        "put",
        parents=[stack],
        help="validate the Okta credentials and store them",
        description="Validate the Okta credentials and store them as the secret's AWSCURRENT "
        "value. Never from the command line: a file, standard input or a no-echo prompt.",
        epilog=EXIT_CODES,
    )
    put.add_argument(
        "--file", type=Path, help="JSON file ('-' for standard input); else prompts, no echo"
    )
    put.add_argument(
        "--admin",
        action="store_true",
        help="the Okta admin app's credentials (org_url, client_id, private_key, key_id), "
        "for the rotation function",
    )
    put.set_defaults(run=cmd_secret_put)

    rotate_cmd = command(
        "rotate", "rotate the Okta credentials at once and confirm the old one is refused"
    )
    rotate_cmd.add_argument(
        "--now",
        action="store_true",
        required=True,
        help="rotate immediately (the schedule rotates every RotationDays on its own)",
    )
    rotate_cmd.add_argument(
        "--local", action="store_true", help="against the local stack (no AWS account)"
    )
    rotate_cmd.add_argument(
        "--kind", default="basic", choices=KINDS, help="with --local: the credential's kind"
    )
    rotate_cmd.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait (default: 300)"
    )
    rotate_cmd.add_argument(
        "--ca-bundle", type=Path, help="PEM of a private CA in front of Okta, to confirm"
    )
    rotate_cmd.set_defaults(run=cmd_rotate)

    demo_cmd = command(
        "demo", "what make demo runs: the real handler on the local stack", parents=False
    )
    demo_cmd.add_argument(
        "--auth", default="basic", choices=KINDS, help="Okta client authentication to show"
    )
    demo_cmd.add_argument("--verbose", action="store_true", help="show the bridge's JSON logs")
    demo_cmd.set_defaults(run=cmd_demo)

    for name, help_text in PASSTHROUGH.items():
        commands.add_parser(name, add_help=False, help=help_text)
    return parser


def _function_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--function",
        metavar="NAME",
        help="function name or ARN (default: the stack's FunctionName output)",
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """The ``okta-bridge`` console script: run one command, return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    term = Terminal(console or Console(), os.environ if environ is None else environ)
    if argv and argv[0] in PASSTHROUGH:
        return _exit_code(lambda: deploy.main(argv, environ=term.environ, console=term.console))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse says which)
        return _system_exit_code(exc)
    handler: Callable[[argparse.Namespace, Terminal], int] = args.run
    try:
        return handler(args, term)
    except KeyboardInterrupt:
        print("\ninterrupted", file=term.console.err, flush=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - expected failures become a line and an exit code
        message, code = deploy.explain(exc)  # the same mapping as make deploy's
        term.console.error(message)
        return code


def _exit_code(run: Callable[[], int]) -> int:
    try:
        return run()
    except SystemExit as exc:
        return _system_exit_code(exc)


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    return exc.code if isinstance(exc.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

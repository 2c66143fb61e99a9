"""``okta-bridge invoke`` and ``diagnose``: call the deployed function (or diagnose from here).

The function is found as ``make deploy`` finds the stack (``samconfig.toml``,
``OKTA_BRIDGE_STACK``, ``AWS_REGION``, flags) and its ``FunctionName`` output; boto3's own
credentials and endpoints apply (``AWS_PROFILE``, ``AWS_ENDPOINT_URL_LAMBDA``...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from botocore.config import Config

from okta_bridge.config import Settings
from okta_bridge.errors import ConfigError
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from okta_bridge_dev.cli.options import deploy_config
from okta_bridge_dev.cli.render import Answer, answer_code, is_report, render_answer, render_report
from okta_bridge_dev.console import Console
from okta_bridge_dev.release.aws import Aws
from okta_bridge_dev.release.errors import UsageError
from okta_bridge_dev.release.stacks import stack_outputs

__all__ = ["build_event", "cmd_diagnose", "cmd_invoke", "invoke"]

DIAGNOSE_EVENT = {"action": "diagnose"}
INVOKE_CONFIG = Config(
    connect_timeout=10,
    read_timeout=905,  # a synchronous invocation may last the function's timeout, 900 s at most
    retries={"mode": "standard"},  # 3 attempts, or AWS_MAX_ATTEMPTS
    user_agent_extra="okta-bridge-cli",
)


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


def invoke(args: argparse.Namespace, console: Console, event: Any) -> Answer:
    """Invoke the deployed function (``--function``, else the stack's ``FunctionName``)."""
    config = deploy_config(args, console.environ)
    aws = Aws.connect(config)
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
        with console.spinner(f"invoking {function}"):
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


def cmd_invoke(args: argparse.Namespace, console: Console) -> int:
    """Invoke the function with an event; print its answer; 0 for a 2xx answer, else 1."""
    answer = invoke(args, console, build_event(args))
    if args.json:
        console.say(json.dumps(answer.payload, indent=2))
        return answer_code(answer)
    return render_answer(answer, console)


def cmd_diagnose(args: argparse.Namespace, console: Console) -> int:
    """Run every hop's check, deployed or here; print the table (or JSON); 0 if all passed."""
    if args.local:
        report, code = _local_report(args, console)
    else:
        answer = invoke(args, console, DIAGNOSE_EVENT)
        if not is_report(answer.payload) or answer.function_error is not None:
            render_answer(answer, console)
            console.error(
                f"{answer.function} did not answer with a diagnose report: deploy this version "
                "(make deploy), or run `okta-bridge diagnose --local`"
            )
            return EXIT_FAILED
        report = answer.payload
        code = EXIT_OK if report.get("ok") else EXIT_FAILED
    if args.json:
        console.say(json.dumps(report, indent=2))
    else:
        render_report(report, console, verbose=args.verbose)
    return code


def _local_report(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], int]:
    """Diagnose in this process with the bridge's configuration from this environment.

    A configuration the bridge refuses is a usage error here (exit 2), reported as diagnose
    reports it (a failed ``config`` hop, the rest skipped). Logging is left unconfigured, so
    standard output holds the report only.
    """
    from okta_bridge.ops import diagnose  # noqa: PLC0415 - only this command needs it

    try:
        settings = Settings.from_env(console.environ)
    except ConfigError:
        return diagnose.invoke(None, request_id="", env=console.environ), EXIT_USAGE
    with console.spinner("diagnosing from here"):
        report = diagnose.run(settings, Deadline(args.timeout))
    return report, EXIT_OK if report.get("ok") else EXIT_FAILED

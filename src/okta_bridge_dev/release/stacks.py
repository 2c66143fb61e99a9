"""Stacks and change sets: describe, outputs, change sets, the event stream, waiting, tables.

boto3 clients are typed ``Any``: the project's stubs cover Secrets Manager only.
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from botocore.exceptions import ClientError

from okta_bridge_dev.release.errors import DeployError, StackNotFound

__all__ = [
    "SUCCESS",
    "ChangeSet",
    "EventStream",
    "Progress",
    "change_rows",
    "change_set_type",
    "create_change_set",
    "describe_stack",
    "failure_reasons",
    "format_table",
    "stack_outputs",
    "stack_parameters",
    "stack_status",
    "wait_for_stack",
]

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
"""How CloudFormation words a change set (or update) that would change nothing."""

SUCCESS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"})
ROLLED_BACK = frozenset(
    {"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)
BUSY_HINT = "wait for it to finish (watch it in the CloudFormation console), then run this again"


# -- stacks and change sets ------------------------------------------------------------------


def _is_missing(error: ClientError) -> bool:
    message = str(error.response.get("Error", {}).get("Message", ""))
    return "does not exist" in message


def describe_stack(cfn: Any, stack: str) -> dict[str, Any] | None:
    """The stack's description, or None when there is no such (live) stack."""
    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def stack_status(cfn: Any, stack: str) -> str | None:
    """``CREATE_COMPLETE``..., or None when the stack does not exist."""
    description = describe_stack(cfn, stack)
    return None if description is None else str(description["StackStatus"])


def stack_outputs(cfn: Any, stack: str) -> dict[str, str]:
    """OutputKey -> OutputValue; ``DeployError`` when the stack does not exist."""
    description = describe_stack(cfn, stack)
    if description is None:
        raise StackNotFound(f"stack {stack} does not exist: deploy it first (make deploy)")
    return {o["OutputKey"]: str(o.get("OutputValue", "")) for o in description.get("Outputs", [])}


def stack_parameters(cfn: Any, stack: str) -> dict[str, str]:
    """ParameterKey -> ParameterValue of the deployed stack (empty when it does not exist)."""
    description = describe_stack(cfn, stack) or {}
    return {
        p["ParameterKey"]: str(p.get("ParameterValue", ""))
        for p in description.get("Parameters", [])
    }


def change_set_type(status: str | None, stack: str) -> str:
    """CREATE or UPDATE for a stack in ``status``, or ``DeployError`` when it cannot change now."""
    if status is None or status == "REVIEW_IN_PROGRESS":
        return "CREATE"
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {stack} is ROLLBACK_COMPLETE: its first deployment failed and CloudFormation "
            "cannot update it. Delete it (make destroy), fix the cause shown by its events, and "
            "deploy again"
        )
    if status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {stack} is busy ({status}): {BUSY_HINT}")
    if status.endswith("_FAILED") and status != "UPDATE_ROLLBACK_FAILED":
        return "UPDATE"
    if status == "UPDATE_ROLLBACK_FAILED":
        raise DeployError(
            f"stack {stack} is UPDATE_ROLLBACK_FAILED: continue the rollback in the console "
            "(or `aws cloudformation continue-update-rollback`), then deploy again"
        )
    return "UPDATE"


@dataclass(frozen=True)
class ChangeSet:
    """A created change set: its id, whether it changes anything, and its changes."""

    id: str
    stack_id: str
    status: str
    reason: str
    changes: tuple[dict[str, Any], ...] = ()

    @property
    def empty(self) -> bool:
        """CloudFormation found nothing to change."""
        return self.status == "FAILED" and any(text in self.reason for text in NO_CHANGES)


def create_change_set(
    cfn: Any,
    *,
    stack: str,
    name: str,
    kind: str,
    template: Mapping[str, str],
    parameters: Mapping[str, str],
    tags: Mapping[str, str],
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> ChangeSet:
    """Create the change set and wait until CloudFormation has computed it.

    ``template`` is ``{"TemplateBody": ...}`` or ``{"TemplateURL": ...}``. A change set that
    changes nothing is returned (``empty``), not raised: "no changes" is a successful deploy.
    """
    try:
        created = cfn.create_change_set(
            StackName=stack,
            ChangeSetName=name,
            ChangeSetType=kind,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            Description="okta-bridge deploy",
            **template,
        )
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if any(text in message for text in NO_CHANGES):
            return ChangeSet(id="", stack_id="", status="FAILED", reason=message)
        raise
    change_set_id = str(created["Id"])
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        status = str(described.get("Status", ""))
        if status in ("CREATE_COMPLETE", "FAILED"):
            return ChangeSet(
                id=change_set_id,
                stack_id=str(described.get("StackId", created.get("StackId", ""))),
                status=status,
                reason=str(described.get("StatusReason", "")),
                changes=tuple(_all_changes(cfn, change_set_id, described)),
            )
        if time.monotonic() > deadline:
            raise DeployError(
                f"change set {name} is still {status} after {timeout_seconds:.0f}s: look at it "
                "in the CloudFormation console"
            )
        sleep(poll_seconds)


def _all_changes(cfn: Any, change_set_id: str, first: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes = [dict(c) for c in first.get("Changes", [])]
    token = first.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=change_set_id, NextToken=token)
        changes.extend(dict(c) for c in page.get("Changes", []))
        token = page.get("NextToken")
    return changes


def change_rows(changes: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Action, logical id, type and replacement of each resource change, for a table."""
    rows: list[tuple[str, ...]] = []
    for change in changes:
        resource = change.get("ResourceChange", {})
        replacement = str(resource.get("Replacement", "") or "")
        rows.append(
            (
                str(resource.get("Action", "?")),
                str(resource.get("LogicalResourceId", "?")),
                str(resource.get("ResourceType", "?")),
                {"True": "yes", "Conditional": "conditional"}.get(replacement, ""),
            )
        )
    return rows


# -- events ----------------------------------------------------------------------------------


@dataclass
class EventStream:
    """New stack events, oldest first, printed one line each; earlier events are never shown.

    ``prime()`` before starting an operation marks everything that already happened as seen, so
    an update shows only its own events, not the stack's history.
    """

    cfn: Any
    stack_id: str
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    seen: set[str] = field(default_factory=set)
    latest: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def prime(self) -> None:
        """Mark the stack's existing events as already seen.

        The newest page is enough: fetching stops at the first seen event, newest first.
        """
        try:
            page = self.cfn.describe_stack_events(StackName=self.stack_id)
        except ClientError as exc:
            if _is_missing(exc):
                return
            raise
        self.seen.update(str(event["EventId"]) for event in page.get("StackEvents", []))

    def poll(self) -> list[dict[str, Any]]:
        """Fetch, print and return the events since the last poll."""
        fresh = self._fetch()
        for event in fresh:
            self.seen.add(str(event["EventId"]))
            if event.get("ResourceType") != "AWS::CloudFormation::Stack":
                self.latest[str(event.get("LogicalResourceId"))] = str(event["ResourceStatus"])
            if str(event["ResourceStatus"]).endswith("_FAILED"):
                self.failures.append(event)
            print(format_event(event), file=self.out, flush=True)
        return fresh

    def _fetch(self) -> list[dict[str, Any]]:
        """Unseen events, oldest first (the API pages newest first)."""
        fresh: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StackName": self.stack_id}
            if token:
                kwargs["NextToken"] = token
            try:
                page = self.cfn.describe_stack_events(**kwargs)
            except ClientError as exc:
                if _is_missing(exc):
                    return []
                raise
            events = page.get("StackEvents", [])
            for event in events:
                if str(event["EventId"]) in self.seen:
                    fresh.reverse()
                    return fresh
                fresh.append(dict(event))
            token = page.get("NextToken")
            if not token:
                fresh.reverse()
                return fresh

    def counts(self) -> tuple[int, int]:
        """(resources done, resources in progress) from the events seen, stack excluded."""
        done = sum(1 for s in self.latest.values() if not s.endswith("_IN_PROGRESS"))
        return done, len(self.latest) - done


def format_event(event: Mapping[str, Any]) -> str:
    """``12:00:03  CREATE_COMPLETE  BridgeRole (AWS::IAM::Role)  reason``."""
    timestamp = event.get("Timestamp")
    when = (
        timestamp.astimezone(datetime.UTC).strftime("%H:%M:%S")
        if isinstance(timestamp, datetime.datetime)
        else str(timestamp or "")
    )
    resource = f"{event.get('LogicalResourceId', '?')} ({event.get('ResourceType', '?')})"
    reason = str(event.get("ResourceStatusReason") or "")
    line = f"{when}  {event.get('ResourceStatus', '?'):<32} {resource}"
    return f"{line}  {reason}" if reason else line


def failure_reasons(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per failed resource with CloudFormation's reason; cascades left out.

    "Resource creation cancelled" and friends only say another resource failed first.
    """
    lines: list[str] = []
    for event in events:
        reason = str(event.get("ResourceStatusReason") or "")
        if not reason or "cancelled" in reason.lower():
            continue
        if event.get("ResourceType") == "AWS::CloudFormation::Stack" and (
            "The following resource(s) failed" in reason
        ):
            continue
        lines.append(
            f"{event.get('LogicalResourceId', '?')} ({event.get('ResourceType', '?')}): {reason}"
        )
    return lines


@dataclass
class Progress:
    """A one-line progress indicator: rewritten in place on a terminal, a heartbeat otherwise."""

    out: IO[str] = field(default_factory=lambda: sys.stderr)
    heartbeat_seconds: float = 60.0
    _last_heartbeat: float = 0.0
    _shown: bool = False

    def update(self, elapsed: float, status: str, done: int, running: int) -> None:
        """Show where the operation is."""
        text = f"[{elapsed:5.0f}s] {status}: {done} resources done, {running} in progress"
        if self.out.isatty():
            print(f"\r\x1b[2K{text}", end="", file=self.out, flush=True)
            self._shown = True
        elif elapsed - self._last_heartbeat >= self.heartbeat_seconds:
            self._last_heartbeat = elapsed
            print(text, file=self.out, flush=True)

    def clear(self) -> None:
        """Erase the in-place line before other output."""
        if self._shown:
            print("\r\x1b[2K", end="", file=self.out, flush=True)
            self._shown = False


def wait_for_stack(
    cfn: Any,
    stream: EventStream,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Stream events until the stack reaches a terminal state; return that state."""
    progress = progress or Progress()
    started = time.monotonic()
    while True:
        progress.clear()
        stream.poll()
        description = describe_stack(cfn, stream.stack_id)
        status = "DELETE_COMPLETE" if description is None else str(description["StackStatus"])
        if not status.endswith("_IN_PROGRESS"):
            stream.poll()
            progress.clear()
            return status
        elapsed = time.monotonic() - started
        if elapsed > timeout_seconds:
            progress.clear()
            raise DeployError(
                f"stack is still {status} after {timeout_seconds / 60:.0f} minutes: it keeps "
                "going in CloudFormation; watch it in the console"
            )
        progress.update(elapsed, status, *stream.counts())
        sleep(poll_seconds)


# -- output ----------------------------------------------------------------------------------


def format_table(headers: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    """A plain left-aligned text table (no colours: output may be a CI log)."""
    rows = list(rows)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return "\n".join(lines)

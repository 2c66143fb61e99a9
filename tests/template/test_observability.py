"""The bridge's own alarms, dashboard widgets and saved queries match what the code emits.

The alarms and the dashboard name metrics of ``okta_bridge.metrics`` (embedded metric format, in
the MetricsNamespace namespace, dimension Function); the saved Logs Insights queries name fields
and messages of the code's log calls. Both sides are read from the code, so a renamed metric,
field or message fails here rather than leaving an alarm or a query that never matches.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Final

import pytest

from okta_bridge.auth.endpoint import TOKEN_TARGET
from okta_bridge.errors import BridgeError
from okta_bridge.metrics import ERROR_CODE, ERRORS, FUNCTION, LOGGER, METRICS
from okta_bridge.request.api import API_TARGET
from okta_bridge.rotation.okta_admin import ADMIN_TARGET
from tests.support.cfn import Json, parameter_values

from .conftest import SCENARIOS, _translated, evaluator
from .test_token_cache import SHARED_CACHE_METRICS

SOURCE: Final = Path(__file__).resolve().parents[2] / "src" / "okta_bridge"
BRIDGE_FUNCTION: Final = "<BridgeFunction>"
DIMENSIONS: Final = [{"Name": FUNCTION, "Value": BRIDGE_FUNCTION}]


def props(scenario: str, logical_id: str) -> dict[str, Json]:
    properties: dict[str, Json] = evaluator(scenario).resources()[logical_id]["Properties"]
    return properties


def parameter(scenario: str, name: str) -> str:
    return parameter_values(_translated(scenario), SCENARIOS[scenario])[name]


# -- alarms ------------------------------------------------------------------------------------

RUNBOOK: Final = {
    "TokenFailuresAlarm": "docs/runbook.md#tokenfailuresalarm",
    "Upstream5xxRateAlarm": "docs/runbook.md#upstream5xxratealarm",
    "UpstreamLatencyAlarm": "docs/runbook.md#upstreamlatencyalarm",
}


@pytest.mark.parametrize("scenario_name", ["defaults", "options"])
@pytest.mark.parametrize("logical_id", sorted(RUNBOOK))
def test_bridge_metric_alarms_read_the_namespace_parameter_and_name_their_runbook_entry(
    scenario_name: str, logical_id: str
) -> None:
    alarm = props(scenario_name, logical_id)
    namespace = parameter(scenario_name, "MetricsNamespace")
    stats = [m["MetricStat"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
    watched = stats or [{"Metric": alarm, "Period": alarm["Period"]}]
    for stat in watched:
        assert stat["Metric"]["Namespace"] == namespace
        assert stat["Metric"]["MetricName"] in METRICS
        assert stat["Metric"]["Dimensions"] == DIMENSIONS
        assert stat["Period"] == 300
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == ["<AlarmTopic>"]
    assert alarm["AlarmDescription"].endswith(f"Runbook: {RUNBOOK[logical_id]}")


def test_token_failures_alarm_fires_on_three_periods_in_a_row_with_a_token_failure() -> None:
    alarm = props("defaults", "TokenFailuresAlarm")
    assert (alarm["MetricName"], alarm["Statistic"]) == ("TokenFailures", "Sum")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )


def test_upstream_5xx_rate_alarm_is_the_percentage_of_api_requests_answered_5xx() -> None:
    alarm = props("defaults", "Upstream5xxRateAlarm")
    metrics = {metric["Id"]: metric for metric in alarm["Metrics"]}
    assert {
        metric_id: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"])
        for metric_id, m in metrics.items()
        if "MetricStat" in m
    } == {"upstream5xx": ("Upstream5xx", "Sum"), "requests": ("UpstreamRequests", "Sum")}
    rate = metrics["upstream_5xx_rate"]
    # Periods without an API request give 0 (never a division by zero), so they cannot breach.
    assert rate["Expression"] == "IF(requests >= 1, 100 * FILL(upstream5xx, 0) / requests, 0)"
    assert [m["Id"] for m in alarm["Metrics"] if m["ReturnData"]] == ["upstream_5xx_rate"]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)


@pytest.mark.parametrize("scenario_name", ["defaults", "options"])
def test_upstream_latency_alarm_is_p95_over_latency_alarm_ms(scenario_name: str) -> None:
    alarm = props(scenario_name, "UpstreamLatencyAlarm")
    threshold = parameter(scenario_name, "LatencyAlarmMs")
    assert threshold == ("750" if scenario_name == "options" else "1000")
    assert METRICS["UpstreamLatency"] == "Milliseconds"  # LatencyAlarmMs is in the same unit
    assert (alarm["MetricName"], alarm["ExtendedStatistic"]) == ("UpstreamLatency", "p95")
    assert "Statistic" not in alarm
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", threshold)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert f"above {threshold} ms" in alarm["AlarmDescription"]


def test_every_alarm_treats_missing_data_as_not_breaching() -> None:
    alarms = {
        name: resource["Properties"]
        for name, resource in evaluator("defaults").resources().items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(RUNBOOK) <= set(alarms)
    assert {name: a["TreatMissingData"] for name, a in alarms.items()} == dict.fromkeys(
        alarms, "notBreaching"
    )


# -- dashboard ---------------------------------------------------------------------------------

Series = tuple[str, str, dict[str, str], dict[str, Json]]


def dashboard_series(widget: dict[str, Json]) -> list[Series]:
    """A metric widget's rows as (namespace, name, dimensions, options), with CloudWatch's
    shorthands expanded: "." repeats the item above, "..." every item above up to the rest.
    Expression rows have no namespace, name or dimensions.
    """
    rows: list[Series] = []
    previous: list[str] = []
    for row in widget["properties"].get("metrics", []):
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        items = [item for item in row if not isinstance(item, dict)]
        if not items:
            rows.append(("", "", {}, options))
            continue
        if items[0] == "...":
            rest = items[1:]
            items = previous[: len(previous) - len(rest)] + rest
        else:
            items = [previous[i] if item == "." else item for i, item in enumerate(items)]
        previous = items
        namespace, name, *pairs = items
        assert len(pairs) % 2 == 0, row
        rows.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
    return rows


def dashboard(scenario: str) -> list[dict[str, Json]]:
    body = json.loads(props(scenario, "BridgeDashboard")["DashboardBody"])
    widgets: list[dict[str, Json]] = body["widgets"]
    return widgets


SEARCH: Final = re.compile(
    r"SEARCH\('\{\"(?P<namespace>[^\"]+)\",(?P<schema>[^}]*)\} "
    r"MetricName=\"(?P<metric>[^\"]+)\" (?P<dimension>\w+)=\"(?P<value>[^\"]+)\"', 'Sum', 60\)"
)


@pytest.mark.parametrize("scenario_name", ["defaults", "options"])
def test_the_dashboard_references_only_metrics_the_code_emits(scenario_name: str) -> None:
    """Every name in the bridge's namespace is in okta_bridge.metrics.METRICS (or its Errors
    record), every METRICS name has a widget, and all of them are the bridge function's. The
    shared token cache's widgets exist only with TokenCache=on (test_token_cache.py).
    """
    namespace = parameter(scenario_name, "MetricsNamespace")
    series = [row for widget in dashboard(scenario_name) for row in dashboard_series(widget)]
    assert {row[0] for row in series if row[0]} == {"AWS/Lambda", namespace}
    bridge = [(name, dimensions) for ns, name, dimensions, _ in series if ns == namespace]
    searches = [
        SEARCH.fullmatch(options["expression"])
        for ns, _, _, options in series
        if not ns and options["expression"].startswith("SEARCH(")
    ]
    assert all(searches), searches
    searched = [match["metric"] for match in searches if match]
    used = {name for name, _ in bridge} | set(searched)
    assert used <= {*METRICS, ERRORS}
    assert set(METRICS) - set(SHARED_CACHE_METRICS) <= used
    assert all(dimensions == {FUNCTION: BRIDGE_FUNCTION} for _, dimensions in bridge)
    # The error codes: the Errors record's dimension set, for this function only.
    (match,) = [m for m in searches if m]
    assert (match["namespace"], match["schema"], match["metric"]) == (
        namespace,
        f"{FUNCTION},{ERROR_CODE}",
        ERRORS,
    )
    assert (match["dimension"], match["value"]) == (FUNCTION, BRIDGE_FUNCTION)


def test_dashboard_expressions_refer_only_to_series_of_their_widget() -> None:
    expressions = 0
    for widget in dashboard("defaults"):
        rows = dashboard_series(widget)
        ids = {options["id"] for _, _, _, options in rows if "id" in options}
        for ns, _, _, options in rows:
            if ns or options["expression"].startswith("SEARCH("):
                continue
            expressions += 1
            referenced = set(re.findall(r"\b[a-z][a-z0-9_]*\b", options["expression"]))
            assert referenced - {"if", "fill"} <= ids - {options["id"]}, options
    assert expressions == 1


def test_the_dashboard_5xx_rate_and_latency_lines_follow_the_alarms() -> None:
    alarm = {m["Id"]: m for m in props("options", "Upstream5xxRateAlarm")["Metrics"]}
    widgets = {widget["properties"].get("title"): widget for widget in dashboard("options")}
    rate = widgets["Internal API 5xx rate (%)"]
    (expression,) = [o for ns, _, _, o in dashboard_series(rate) if not ns]
    assert expression["expression"] == alarm["upstream_5xx_rate"]["Expression"]
    assert rate["properties"]["annotations"]["horizontal"][0]["value"] == 5
    latency = widgets["Internal API latency (ms)"]
    assert [o["stat"] for _, _, _, o in dashboard_series(latency)] == ["p50", "p95", "p99"]
    (line,) = latency["properties"]["annotations"]["horizontal"]
    assert line["value"] == 750  # LatencyAlarmMs of the options scenario


# -- saved Logs Insights queries ---------------------------------------------------------------

QUERIES: Final = {
    "ErrorsByCodeQuery": ("errors-by-code", ["<BridgeLogGroup>"]),
    "SlowInvocationsQuery": ("slow-invocations", ["<BridgeLogGroup>"]),
    "TokenRequestsQuery": ("token-requests", ["<BridgeLogGroup>"]),
    "RotationsQuery": ("rotations", ["<RotationLogGroup>"]),
    "MonthlyAuditQuery": ("monthly-audit", ["<BridgeLogGroup>", "<RotationLogGroup>"]),
}
LOG_METHODS: Final = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
# Lambda's level names, as logs.JsonFormatter writes them.
LEVELS: Final = frozenset({"DEBUG", "INFO", "WARN", "ERROR", "FATAL"})
INSIGHTS_WORDS: Final = frozenset(
    {"fields", "filter", "stats", "sort", "limit", "by", "as", "asc", "desc"}
    | {"and", "or", "not", "in", "like"}
)


def query(logical_id: str) -> str:
    text: str = props("defaults", logical_id)["QueryString"]
    return text


@cache
def logged() -> tuple[frozenset[str], frozenset[str]]:
    """(field names, messages) of the package's log lines, read from the source.

    Fields: the keys JsonFormatter writes on every line, and the keys of every ``extra=`` dict
    (a literal, or a name assigned a literal in the same module). Messages: the first argument of
    every call with ``extra=`` and of every ``log.<level>(...)`` call.
    """
    fields: set[str] = set()
    messages: set[str] = set()
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        dicts = {
            node.targets[0].id: _keys(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Dict)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == "JsonFormatter":
                for n in ast.walk(node):
                    if isinstance(n, ast.Dict):
                        fields |= _keys(n)
                    elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant):
                        fields |= {n.slice.value} if isinstance(n.slice.value, str) else set()
            if not isinstance(node, ast.Call):
                continue
            extra = next((k.value for k in node.keywords if k.arg == "extra"), None)
            if isinstance(extra, ast.Dict):
                fields |= _keys(extra)
            elif isinstance(extra, ast.Name):
                fields |= dicts.get(extra.id, set())
            is_log = isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS
            first = node.args[0] if node.args else None
            if (extra is not None or is_log) and isinstance(first, ast.Constant):
                messages.add(str(first.value))
    return frozenset(fields), frozenset(messages)


def _keys(node: ast.Dict) -> set[str]:
    return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def query_fields(text: str) -> set[str]:
    """The log fields a query reads: its words, less strings, regexes, @-fields, commands,
    operators, functions and the names it defines with ``as``.
    """
    aliases = set(re.findall(r"\bas\s+(\w+)", text))
    functions = set(re.findall(r"\b(\w+)\s*\(", text))
    bare = re.sub(r'"[^"]*"|/[^/\n]*/|@\w+', " ", text)
    words = set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_.]*\b", bare))
    return words - INSIGHTS_WORDS - aliases - functions


def literals(text: str, field: str) -> set[str]:
    """The strings a query compares ``field`` with (``=``, ``!=`` or ``in [...]``)."""
    found = set(re.findall(rf'\b{field}\s*!?=\s*"([^"]*)"', text))
    for group in re.findall(rf"\b{field}\s+in\s+\[([^\]]*)\]", text):
        found |= set(re.findall(r'"([^"]*)"', group))
    return found


@pytest.mark.parametrize("logical_id", sorted(QUERIES))
def test_saved_queries_are_named_for_the_stack_and_read_their_log_groups(logical_id: str) -> None:
    name, groups = QUERIES[logical_id]
    definition = props("defaults", logical_id)
    assert definition["Name"] == f"okta-bridge/okta-bridge/{name}"
    assert definition["LogGroupNames"] == groups


def test_every_query_definition_is_one_of_the_saved_queries() -> None:
    resources = evaluator("defaults").resources()
    defined = {n for n, r in resources.items() if r["Type"] == "AWS::Logs::QueryDefinition"}
    assert defined == set(QUERIES)


@pytest.mark.parametrize("logical_id", sorted(QUERIES))
def test_saved_queries_read_only_fields_and_messages_the_code_logs(logical_id: str) -> None:
    fields, messages = logged()
    text = query(logical_id)
    used = query_fields(text)
    assert used, text
    assert used <= fields, f"not logged by the code: {sorted(used - fields)}"
    compared = literals(text, "message")
    assert compared <= messages, f"no log call says: {sorted(compared - messages)}"
    assert literals(text, "level") <= LEVELS
    stages = {cls.stage for cls in _subclasses(BridgeError)} | {BridgeError.stage}
    assert literals(text, "stage") <= stages
    targets = {TOKEN_TARGET.label, API_TARGET.label, ADMIN_TARGET.label}
    assert literals(text, "target") <= targets
    assert literals(text, "logger") <= {LOGGER}


def _subclasses(cls: type[BridgeError]) -> list[type[BridgeError]]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_the_field_check_sees_the_fields_of_the_log_calls() -> None:
    """The source reading finds what the guide's examples show (not a vacuous check)."""
    fields, messages = logged()
    assert {"timestamp", "level", "logger", "message", "request_id"} <= fields  # every line
    assert {"code", "stage", "ms", "upstream_status", "event_kind", "step", "version"} <= fields
    assert {"invocation served", "invocation failed", "rotation step failed"} <= messages
    example = 'fields @timestamp, code | filter message = "x y" | stats count(*) as n'
    assert query_fields(example) == {"code", "message"}

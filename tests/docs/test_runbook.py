"""The runbooks (docs/runbook.md and docs/runbook.zh-CN.md) cover every code and stay in step.

Every code of ``okta_bridge.errors.CATALOG`` has exactly one entry (a heading that is the code in
backticks) in each language, with its causes, what diagnose shows and the fix, and the HTTP status
the catalog gives it. Both languages have the same headings, commands and tables. The names an
operator reads elsewhere (diagnose's hops and targets, the metrics, the template's alarms and
saved queries) all appear, and every link, including the template's alarm descriptions, lands on
a heading that exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from okta_bridge.errors import CATALOG
from tests.support.cfn import load_template

from .markdown import BACKTICKED, NUMBER, Doc, paired_rows, parse

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNBOOKS = {"en": DOCS / "runbook.md", "zh": DOCS / "runbook.zh-CN.md"}
GUIDES = {"en": DOCS / "guide.md", "zh": DOCS / "guide.zh-CN.md"}

# The entry's three parts, in each language.
PARTS = {
    "en": ("**Likely causes.**", "**Diagnose shows.**", "**Fix.**"),
    "zh": ("**可能原因。**", "**diagnose 显示。**", "**处理。**"),
}
# Names fixed by the issue 6 contract (diagnose's report, the metrics, the alarms, the queries).
DIAGNOSE_TARGETS = ("config", "secret", "token_cache", "token_host", "api_host")
DIAGNOSE_HOPS = ("config", "secret", "dns", "tcp", "tls", "read", "open", "token", "api")
DIAGNOSE_FACTS = (
    "days_to_expiry",
    "anchor",
    "hostname_match",
    "okta_error",
    "rate_limit",
    "via_proxy",
)
CONTRACT_METRICS = (
    "Invocations",
    "Failures",
    "SecretReads",
    "TokenRequests",
    "TokenFailures",
    "TokenCacheHits",
    "Retries",
    "UpstreamRequests",
    "Upstream2xx",
    "Upstream4xx",
    "Upstream5xx",
    "UpstreamLatency",
    "TokenSecondsToExpiry",
    "Errors",
    "ErrorCode",
    # issue 15
    "Pages",
    "Truncations",
    "Deliveries",
    "DeliveredBytes",
    # issue 20: the shared token cache
    "SharedCacheHits",
    "SharedCacheMints",
    "SharedCacheWaits",
    "SharedCacheWaitMs",
    "SharedCacheFallbacks",
)
CONTRACT_ALARMS = (
    "TokenFailuresAlarm",
    "Upstream5xxRateAlarm",
    "UpstreamLatencyAlarm",
    "RotationFailedAlarm",
)
CONTRACT_QUERIES = (
    "errors-by-code",
    "slow-invocations",
    "token-requests",
    "rotations",
    "monthly-audit",
)
# The ways to run diagnose and the maintenance calendar's parameters.
OPERATIONS = (
    "okta-bridge diagnose",
    "okta-bridge diagnose --local",
    '{"action":"diagnose"}',
    "make rotate-now",
    "okta-bridge rotate --now",
    "RotationDays",
    "LatencyAlarmMs",
    "MetricsNamespace",
)

ENTRY = re.compile(r"^`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`$")
STATUS = re.compile(r"HTTP (\d{3})")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _entries(doc: Doc) -> dict[str, str]:
    """Code -> the text of its entry (down to the next heading)."""
    found: dict[str, str] = {}
    for position, heading in enumerate(doc.headings):
        match = ENTRY.match(heading.text)
        if not match:
            continue
        assert match.group(1) not in found, f"{doc.path.name}: two entries for {match.group(1)}"
        end = (
            doc.headings[position + 1].line if position + 1 < len(doc.headings) else len(doc.lines)
        )
        found[match.group(1)] = "\n".join(doc.lines[heading.line + 1 : end])
    return found


def _resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = load_template(ROOT / "template.yaml").get(
        "Resources", {}
    )
    return {name: body for name, body in resources.items() if body.get("Type") == kind}


@pytest.fixture(scope="module")
def runbooks() -> dict[str, Doc]:
    return {lang: parse(path) for lang, path in RUNBOOKS.items()}


@pytest.mark.parametrize("lang", sorted(RUNBOOKS))
def test_the_codes_with_entries_are_exactly_the_catalog(
    runbooks: dict[str, Doc], lang: str
) -> None:
    entries = set(_entries(runbooks[lang]))
    assert sorted(set(CATALOG) - entries) == [], "codes without an entry"
    assert sorted(entries - set(CATALOG)) == [], "entries for codes the catalog lacks"


@pytest.mark.parametrize("lang", sorted(RUNBOOKS))
def test_every_entry_has_causes_diagnose_and_fix(runbooks: dict[str, Doc], lang: str) -> None:
    for code, text in _entries(runbooks[lang]).items():
        positions = [text.find(part) for part in PARTS[lang]]
        assert all(p >= 0 for p in positions), f"{lang} {code}: missing one of {PARTS[lang]}"
        assert positions == sorted(positions), f"{lang} {code}: parts out of order"


@pytest.mark.parametrize("lang", sorted(RUNBOOKS))
def test_every_entry_states_the_catalog_status(runbooks: dict[str, Doc], lang: str) -> None:
    for code, text in _entries(runbooks[lang]).items():
        first_line = text.strip().splitlines()[0]
        status = STATUS.search(first_line)
        if code.startswith("ROTATION_"):
            assert status is None, f"{code}: the rotation function answers no caller"
            continue
        assert status, f"{lang} {code}: the first line names no HTTP status"
        assert int(status.group(1)) == CATALOG[code].status, f"{lang} {code}: wrong status"


def test_both_languages_have_the_same_headings(runbooks: dict[str, Doc]) -> None:
    def shape(doc: Doc) -> list[tuple[int, str, list[str]]]:
        return [
            (h.level, m.group(1) if (m := NUMBER.match(h.text)) else "", BACKTICKED.findall(h.text))
            for h in doc.headings
        ]

    assert shape(runbooks["en"]) == shape(runbooks["zh"])


def test_both_languages_have_the_same_commands(runbooks: dict[str, Doc]) -> None:
    assert runbooks["en"].blocks == runbooks["zh"].blocks


def test_both_languages_have_the_same_tables(runbooks: dict[str, Doc]) -> None:
    for number, row_en, row_zh in paired_rows(runbooks["en"].tables, runbooks["zh"].tables):
        assert BACKTICKED.findall(row_en[0]) == BACKTICKED.findall(row_zh[0]), number


def test_the_sections_are_numbered_in_order(runbooks: dict[str, Doc]) -> None:
    numbers = [
        m.group(1) for h in runbooks["en"].headings if h.level == 2 and (m := NUMBER.match(h.text))
    ]
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)]


@pytest.mark.parametrize(
    "name",
    sorted(
        set(DIAGNOSE_TARGETS)
        | set(DIAGNOSE_HOPS)
        | set(DIAGNOSE_FACTS)
        | set(CONTRACT_METRICS)
        | set(CONTRACT_ALARMS)
    ),
)
def test_every_contract_name_appears_in_both(runbooks: dict[str, Doc], name: str) -> None:
    for lang, doc in runbooks.items():
        assert f"`{name}`" in doc.text, f"`{name}` missing from the {lang} runbook"


@pytest.mark.parametrize("phrase", OPERATIONS)
def test_the_operations_are_shown_in_both(runbooks: dict[str, Doc], phrase: str) -> None:
    for lang, doc in runbooks.items():
        assert phrase in doc.text, f"{phrase!r} missing from the {lang} runbook"


@pytest.mark.parametrize("query", CONTRACT_QUERIES)
def test_every_saved_query_is_named(runbooks: dict[str, Doc], query: str) -> None:
    for lang, doc in runbooks.items():
        assert f"`okta-bridge/<stack>/{query}`" in doc.text, f"{query} missing ({lang})"


def test_every_metric_the_code_emits_is_explained(runbooks: dict[str, Doc]) -> None:
    metrics = pytest.importorskip("okta_bridge.metrics")
    names = set(metrics.METRICS)
    assert names <= set(CONTRACT_METRICS), "the code emits metrics the contract does not name"
    for lang, doc in runbooks.items():
        explained = {row[0].strip("`") for table in doc.tables for row in table}
        missing = sorted(names - explained)
        assert not missing, f"{lang}: metrics without a table row: {missing}"


def test_every_alarm_of_the_template_has_an_entry(runbooks: dict[str, Doc]) -> None:
    alarms = set(_resources_of_type("AWS::CloudWatch::Alarm")) | set(CONTRACT_ALARMS)
    for lang, doc in runbooks.items():
        headed = {name for h in doc.headings for name in BACKTICKED.findall(h.text)}
        missing = sorted(alarms - headed)
        assert not missing, f"{lang}: alarms without an entry: {missing}"


def test_every_saved_query_of_the_template_is_named(runbooks: dict[str, Doc]) -> None:
    names = [
        str(body["Properties"]["Name"]["Fn::Sub"]).rsplit("/", 1)[-1]  # !Sub okta-bridge/${...}/N
        for body in _resources_of_type("AWS::Logs::QueryDefinition").values()
    ]
    for lang, doc in runbooks.items():
        missing = [name for name in names if f"`okta-bridge/<stack>/{name}`" not in doc.text]
        assert not missing, f"{lang}: saved queries the runbook does not name: {missing}"


def _anchors(path: Path) -> set[str]:
    return {_slug(h.text) for h in parse(path).headings}


@pytest.mark.parametrize("path", [*RUNBOOKS.values(), *GUIDES.values()], ids=lambda p: p.name)
def test_every_relative_link_lands_on_a_heading(path: Path) -> None:
    doc = parse(path)
    for target in LINK.findall(doc.prose):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: {target} names a missing file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{path.name}: {target} has no such heading"


def test_the_template_links_to_runbook_headings_that_exist() -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    anchors = _anchors(RUNBOOKS["en"])
    linked = re.findall(r"docs/runbook\.md#([\w-]+)", text)
    for anchor in linked:
        assert anchor in anchors, f"template.yaml links to a missing runbook heading: #{anchor}"


def test_the_guides_and_the_readme_point_to_the_runbook() -> None:
    assert "(runbook.md" in GUIDES["en"].read_text(encoding="utf-8")
    assert "(runbook.zh-CN.md" in GUIDES["zh"].read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/runbook.md)" in readme
    assert "(docs/runbook.zh-CN.md)" in readme


def test_no_runbook_names_a_code_the_catalog_lacks(runbooks: dict[str, Doc]) -> None:
    token = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")
    prefixes = tuple({code.split("_", 1)[0] + "_" for code in CATALOG})
    for lang, doc in runbooks.items():
        named = {t for t in token.findall(doc.text) if t.startswith(prefixes)}
        unknown = sorted(named - set(CATALOG))
        assert not unknown, f"{lang} names codes the catalog lacks: {unknown}"

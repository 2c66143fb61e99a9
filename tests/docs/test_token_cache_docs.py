"""The shared token cache (issue 20) is documented alike in both languages, with the fixed names.

The guides' section 4.14 says when to turn the cache on, what it costs, how (`TokenCache`,
`TokenCacheLeaseSeconds`), what changes, how to verify it with the five ``SharedCache*`` metrics,
how to flush it and what is lost; the runbooks have the fallback alarm and a section of their
own; the security documents a threat model in 2.8 that cites the fleet tests; the architecture
places ``fleet/`` between ``auth`` and ``request``. Where the code or the template already has
the cache, the documented names must be the ones it uses; until then those checks skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cfn import load_template

from .markdown import BACKTICKED, Doc, parse, section

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDES = {"en": DOCS / "guide.md", "zh": DOCS / "guide.zh-CN.md"}
RUNBOOKS = {"en": DOCS / "runbook.md", "zh": DOCS / "runbook.zh-CN.md"}
SECURITY = {"en": DOCS / "security.md", "zh": DOCS / "security.zh-CN.md"}

SECTION = "4.14"
TITLES = {
    "en": "Share tokens across environments (optional)",
    "zh": "跨执行环境共享令牌（可选）",  # noqa: RUF001 - the heading's own full-width brackets
}
LOSS = {"en": "What you lose:", "zh": "失去的保护:"}
PARAMETERS = ("TokenCache", "TokenCacheLeaseSeconds")
METRICS = (
    "SharedCacheHits",
    "SharedCacheMints",
    "SharedCacheWaits",
    "SharedCacheWaitMs",
    "SharedCacheFallbacks",
)
ENVIRONMENT = (
    "BRIDGE_TOKEN_CACHE",
    "BRIDGE_TOKEN_CACHE_KEY_ID",
    "BRIDGE_TOKEN_CACHE_LEASE_SECONDS",
)
ALARM = "SharedCacheFallbacksAlarm"
TABLE = "TokenCacheTable"
CONTEXT = ("okta-bridge:purpose", "token-cache")
FLEET_TESTS = (
    "tests/fleet/test_shared_cache.py",
    "tests/fleet/test_burst.py",
    "tests/fleet/test_cache_attacks.py",
)
FLEET_MODULES = ("aws_json", "table", "envelope", "sealed", "cache")


def _docs(paths: dict[str, Path]) -> dict[str, Doc]:
    return {lang: parse(path) for lang, path in paths.items()}


def _flat(text: str) -> str:
    """Whitespace runs read as one space (prose wraps anywhere)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def guides() -> dict[str, Doc]:
    return _docs(GUIDES)


@pytest.fixture(scope="module")
def runbooks() -> dict[str, Doc]:
    return _docs(RUNBOOKS)


@pytest.fixture(scope="module")
def security() -> dict[str, Doc]:
    return _docs(SECURITY)


def parse_section(guide: Doc) -> Doc:
    """The section alone, parsed as a document (for its own blocks and tables)."""
    return parse(guide.path, section(guide, SECTION))


# The guides.


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_the_guide_has_the_section_in_the_deploy_part(guides: dict[str, Doc], lang: str) -> None:
    heading = next(h for h in guides[lang].headings if h.number == SECTION)
    assert heading.level == 3
    assert heading.text == f"{SECTION} {TITLES[lang]}"


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_the_section_names_the_parameters_metrics_and_what_changes(
    guides: dict[str, Doc], lang: str
) -> None:
    text = section(guides[lang], SECTION)
    for name in (*PARAMETERS, *METRICS, *ENVIRONMENT, ALARM, TABLE, "BridgeKey", *CONTEXT):
        assert f"`{name}`" in text, f"{lang} {SECTION}: `{name}` missing"
    for phrase in (
        "TokenCache=on",
        "TokenCache=off",
        "make deploy",
        "make rotate-now",
        "(scale.md)",
        "RouteTableIds",  # the DynamoDB gateway endpoint in a VPC
        "kms:Decrypt",
        "GetItem",
        LOSS[lang],
    ):
        assert phrase in text, f"{lang} {SECTION}: {phrase!r} missing"


def test_the_section_has_the_same_table_and_commands_in_both(guides: dict[str, Doc]) -> None:
    en, zh = (parse_section(guides[lang]) for lang in ("en", "zh"))
    assert en.blocks == zh.blocks
    assert en.blocks, "no flush command"
    assert [[BACKTICKED.findall(row[0]) for row in t] for t in en.tables] == [
        [BACKTICKED.findall(row[0]) for row in t] for t in zh.tables
    ]
    metrics = {name for t in en.tables for row in t for name in BACKTICKED.findall(row[0])}
    assert set(METRICS) <= metrics, "the verify table lists every SharedCache metric"


def test_the_flush_command_names_the_region_and_only_the_cache_table(
    guides: dict[str, Doc],
) -> None:
    (body,) = [b for info, b in parse_section(guides["en"]).blocks if info == "bash"]
    for line in body.splitlines():
        if "aws " in line:
            assert line.count("aws ") == line.count('--region "$REGION"'), line[:100]
    assert f"--logical-resource-id {TABLE}" in body
    assert "delete-item" in body
    assert "delete-table" not in body


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_the_parameter_table_has_both_parameters(guides: dict[str, Doc], lang: str) -> None:
    rows = {row[0]: row for table in guides[lang].tables for row in table}
    assert rows["`TokenCache`"][1] == "`off`"
    assert rows["`TokenCacheLeaseSeconds`"][1] == "`5`"
    assert "`BRIDGE_TOKEN_CACHE_LEASE_SECONDS`" in rows["`TokenCacheLeaseSeconds`"][2]


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_the_metrics_and_alarm_are_in_operations(guides: dict[str, Doc], lang: str) -> None:
    alarms = section(guides[lang], "7.1")
    assert f"`{ALARM}`" in alarms
    metrics = section(guides[lang], "7.5")
    for name in (*METRICS, ALARM):
        assert f"`{name}`" in metrics, f"{lang} 7.5: {name}"


# The runbooks.


@pytest.mark.parametrize("lang", sorted(RUNBOOKS))
def test_the_runbook_has_the_alarm_and_the_cache_section(
    runbooks: dict[str, Doc], lang: str
) -> None:
    doc = runbooks[lang]
    alarm = next(h for h in doc.headings if h.text == f"`{ALARM}`")
    alarms = next(h for h in doc.headings if h.number == "13")
    assert alarm.line > alarms.line, "the alarm's entry is among the alarms (section 13)"
    cache = _flat(section(doc, "18"))
    for number in ("18.1", "18.2", "18.3", "18.4"):
        section(doc, number)
    for name in (*METRICS, TABLE, "TokenCacheLeaseSeconds", "RouteTableIds", "BridgeKey"):
        assert f"`{name}`" in cache, f"{lang} 18: `{name}`"
    for cause in (
        "ResourceNotFoundException",
        "DisabledException",
        "AccessDeniedException",
        "ThrottlingException",
        "TokenCache=off",
        "make deploy",
    ):
        assert cause in cache, f"{lang} 18: {cause}"


@pytest.mark.parametrize("lang", sorted(RUNBOOKS))
def test_the_runbook_metrics_table_explains_each_metric(
    runbooks: dict[str, Doc], lang: str
) -> None:
    metrics = section(runbooks[lang], "14.1")
    for name in METRICS:
        assert f"| `{name}` |" in metrics, f"{lang} 14.1: {name}"


# The security documents.


@pytest.mark.parametrize("lang", sorted(SECURITY))
def test_security_has_the_threat_model(security: dict[str, Doc], lang: str) -> None:
    doc = security[lang]
    model = _flat(section(doc, "2.8"))
    for name in (*CONTEXT, TABLE, "BridgeKey", "SharedCacheFallbacks", "ConsumerPolicy"):
        assert f"`{name}`" in model, f"{lang} 2.8: `{name}`"
    for phrase in ("DPoP", "AES-256-GCM", "VersionId", "401", "kms:Decrypt"):
        assert phrase in model, f"{lang} 2.8: {phrase}"
    controls = section(doc, "3")
    for path in FLEET_TESTS:
        assert f"`{path}" in controls, f"{lang} 3: {path} not cited"


def test_the_fleet_tests_cited_exist_once_there_are_fleet_tests() -> None:
    if not (ROOT / "tests" / "fleet").is_dir():
        pytest.skip("tests/fleet is not merged yet")
    missing = [path for path in FLEET_TESTS if not (ROOT / path).is_file()]
    assert not missing, f"security.md cites fleet tests that do not exist: {missing}"


# The architecture.


def test_the_architecture_places_fleet_between_auth_and_request() -> None:
    doc = parse(DOCS / "architecture.md")
    rows = {row[1]: row for table in doc.tables for row in table if len(row) > 1}
    fleet = rows["`fleet/`"]
    for module in FLEET_MODULES:
        assert f"`{module}`" in fleet[2], module
    assert float(rows["`auth/`"][0]) < float(fleet[0]) < float(rows["`request/`"][0])
    assert "A cold burst with the shared token cache" in {h.text for h in doc.headings}


# Against the code and the template, once they have the cache.


def test_the_documented_variables_are_the_ones_config_reads() -> None:
    config = (ROOT / "src" / "okta_bridge" / "config.py").read_text(encoding="utf-8")
    if "TokenCacheSettings" not in config:
        pytest.skip("okta_bridge.config has no token cache yet")
    for name in ENVIRONMENT:
        assert f'"{name}"' in config, name


def test_the_documented_metrics_are_the_ones_the_code_emits() -> None:
    metrics = pytest.importorskip("okta_bridge.metrics")
    emitted = {name for name in metrics.METRICS if name.startswith("SharedCache")}
    if not emitted:
        pytest.skip("okta_bridge.metrics emits no SharedCache metric yet")
    assert emitted == set(METRICS)


def test_the_documented_parameters_match_the_template() -> None:
    parameters = load_template(ROOT / "template.yaml").get("Parameters", {})
    if "TokenCache" not in parameters:
        pytest.skip("template.yaml has no TokenCache yet")
    cache, lease = parameters["TokenCache"], parameters["TokenCacheLeaseSeconds"]
    assert str(cache["Default"]) == "off"
    assert sorted(cache["AllowedValues"]) == ["off", "on"]
    assert (int(lease["Default"]), int(lease["MinValue"]), int(lease["MaxValue"])) == (5, 1, 30)


def test_the_documented_table_and_alarm_are_the_templates() -> None:
    resources = load_template(ROOT / "template.yaml").get("Resources", {})
    if TABLE not in resources:
        pytest.skip("template.yaml has no TokenCacheTable yet")
    alarms = {
        name
        for name, body in resources.items()
        if body.get("Type") == "AWS::CloudWatch::Alarm" and "SharedCache" in name
    }
    assert alarms == {ALARM}, "the guides and the runbook name this alarm"
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert re.search(r"docs/runbook\.md#sharedcachefallbacksalarm", text), "alarm links here"

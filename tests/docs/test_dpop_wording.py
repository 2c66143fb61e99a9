"""No document tells the reader to switch DPoP off (issue 12).

The bridge works with Okta's "Require Demonstrating Proof of Possession (DPoP) header in token
requests", and the guides recommend leaving it on. This test looks for the phrases that said
otherwise, in English and in Chinese, in every document under ``docs/`` and in the README.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([*(ROOT / "docs").rglob("*.md"), *ROOT.glob("README*.md")])

# The same phrases as the before-stop hook, case-insensitive.
TURN_DPOP_OFF = re.compile(
    r"turn (off )?dpop off|turn off dpop|uncheck \*\*require demonstrating"
    r"|关闭.{0,12}DPoP|DPoP.{0,12}关闭",
    re.IGNORECASE,
)


def test_the_documents_are_found() -> None:
    names = {path.name for path in DOCUMENTS}
    assert {"README.md", "guide.md", "guide.zh-CN.md", "runbook.md", "runbook.zh-CN.md"} <= names


def _found(text: str) -> list[str]:
    """The phrases in ``text``, also where a line break splits one (whitespace runs read as one
    space)."""
    flat = re.sub(r"\s+", " ", text)
    return [match.group(0) for match in TURN_DPOP_OFF.finditer(flat)]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_says_to_turn_dpop_off(path: Path) -> None:
    found = _found(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name} says to turn DPoP off: {found}"


@pytest.mark.parametrize(
    "text",
    [
        "Turn DPoP off on the app (2.2)",
        "fix `token_url`; turn off DPoP",
        "uncheck **Require Demonstrating Proof of Possession (DPoP)",
        "`invalid_dpop_proof`: uncheck **Require\n  Demonstrating Proof of Possession",
        "在应用上关闭 DPoP 见 2.2 节",
        "应用关闭 DPoP",
        "DPoP 已关闭",
    ],
)
def test_the_pattern_catches_the_old_wording(text: str) -> None:
    assert _found(text)

"""The security documents (docs/security.md and docs/security.zh-CN.md) stay in step and stay true.

As for the guides: both languages have the same headings (count and level, in the same order),
the same tables (rows and columns) and the same fenced blocks. Every test the English document
cites as ``tests/...py::name`` exists (a ``def name`` in that file), and the Chinese document cites
the same tests. Every relative link lands on a file and, for a markdown file, on a heading.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .markdown import Doc, paired_rows, parse

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"en": ROOT / "docs" / "security.md", "zh": ROOT / "docs" / "security.zh-CN.md"}

TEST_REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def docs() -> dict[str, Doc]:
    return {lang: parse(path) for lang, path in DOCS.items()}


def _references(doc: Doc) -> set[tuple[str, str]]:
    return set(TEST_REFERENCE.findall(doc.text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_both_languages_have_the_same_headings(docs: dict[str, Doc]) -> None:
    en = [(h.level, h.number) for h in docs["en"].headings]
    zh = [(h.level, h.number) for h in docs["zh"].headings]
    assert en == zh
    assert len(en) >= 10, "the document has lost its sections"


def test_both_languages_have_the_same_tables(docs: dict[str, Doc]) -> None:
    pairs = paired_rows(docs["en"].tables, docs["zh"].tables)
    assert pairs, "no tables"


def test_both_languages_have_the_same_fenced_blocks(docs: dict[str, Doc]) -> None:
    assert docs["en"].blocks == docs["zh"].blocks


def test_every_cited_test_exists(docs: dict[str, Doc]) -> None:
    cited = _references(docs["en"])
    assert len(cited) >= 40, f"only {len(cited)} tests cited"
    missing = []
    for path, name in sorted(cited):
        source = ROOT / path
        if not source.is_file():
            missing.append(f"{path} (no such file)")
            continue
        text = source.read_text(encoding="utf-8")
        if not re.search(rf"^\s*(?:async\s+)?def {re.escape(name)}\(", text, re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert not missing, f"security.md cites tests that do not exist: {missing}"


def test_both_languages_cite_the_same_tests(docs: dict[str, Doc]) -> None:
    assert _references(docs["en"]) == _references(docs["zh"])


@pytest.mark.parametrize("lang", sorted(DOCS))
def test_every_relative_link_lands(docs: dict[str, Doc], lang: str) -> None:
    doc = docs[lang]
    for target in LINK.findall(doc.prose):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (doc.path.parent / file_part).resolve() if file_part else doc.path
        assert linked.exists(), f"{doc.path.name}: {target} names a missing path"
        if anchor and linked.suffix == ".md":
            anchors = {_slug(h.text) for h in parse(linked).headings}
            assert anchor in anchors, f"{doc.path.name}: {target} has no such heading"

"""A small markdown reader shared by the docs tests: headings, fenced blocks, tables and prose."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
FENCE = re.compile(r"^(`{3,})(.*)$")
BACKTICKED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    number: str
    """The heading's section number ("7.2"), or "" where it has none."""
    line: int


@dataclass(frozen=True)
class Doc:
    path: Path
    text: str
    lines: tuple[str, ...]
    headings: tuple[Heading, ...]
    blocks: tuple[tuple[str, str], ...]
    """(info string, body) of every fenced block, in order."""
    tables: tuple[tuple[tuple[str, ...], ...], ...]
    """Every table's rows (the separator row left out), each row its stripped cells."""
    prose: str
    """Every line outside the fenced blocks."""


def parse(path: Path, text: str | None = None) -> Doc:
    """The document at ``path``, or ``text`` read as if it were that document."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    lines = tuple(text.splitlines())
    headings: list[Heading] = []
    blocks: list[tuple[str, str]] = []
    tables: list[list[tuple[str, ...]]] = []
    prose: list[str] = []
    fence: str | None = None
    info = ""
    body: list[str] = []
    in_table = False
    for index, line in enumerate(lines):
        if fence is not None:
            if line.strip() == fence:
                blocks.append((info, "\n".join(body)))
                fence = None
            else:
                body.append(line)
            continue
        opening = FENCE.match(line.strip())
        if opening:
            fence, info, body = opening.group(1), opening.group(2).strip(), []
            in_table = False
            continue
        prose.append(line)
        heading = HEADING.match(line)
        if heading:
            title = heading.group(2)
            number = NUMBER.match(title)
            headings.append(
                Heading(len(heading.group(1)), title, number.group(1) if number else "", index)
            )
        if line.startswith("|"):
            cells = tuple(cell.strip() for cell in line.strip().strip("|").split("|"))
            if not in_table:
                tables.append([])
                in_table = True
            if not all(set(cell) <= set("-: ") for cell in cells):
                tables[-1].append(cells)
        else:
            in_table = False
    assert fence is None, f"{path.name}: a fenced block is never closed"
    return Doc(
        path,
        text,
        lines,
        tuple(headings),
        tuple(blocks),
        tuple(tuple(table) for table in tables),
        "\n".join(prose),
    )


def section(doc: Doc, number: str) -> str:
    """The text of the section with this heading number, down to the next heading at its level."""
    for position, heading in enumerate(doc.headings):
        if heading.number == number:
            end = len(doc.lines)
            for later in doc.headings[position + 1 :]:
                if later.level <= heading.level:
                    end = later.line
                    break
            return "\n".join(doc.lines[heading.line : end])
    raise AssertionError(f"{doc.path.name}: no section numbered {number}")


def paired_rows(
    en: tuple[tuple[tuple[str, ...], ...], ...], zh: tuple[tuple[tuple[str, ...], ...], ...]
) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
    """(table number, row, row) for two documents' tables, which must match in rows and columns."""
    assert len(en) == len(zh), f"{len(en)} tables in English, {len(zh)} in Chinese"
    pairs: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
    for number, (table_en, table_zh) in enumerate(zip(en, zh, strict=True), 1):
        assert len(table_en) == len(table_zh), f"table {number}: row counts differ"
        for row_en, row_zh in zip(table_en, table_zh, strict=True):
            assert len(row_en) == len(row_zh), f"table {number}: column counts differ"
            pairs.append((number, row_en, row_zh))
    return pairs

"""The README's command table and the fresh-clone check agree, and a missing python3.13 is
reported by the Makefile in one clear message (issue 17). Cheap: part of the plain pytest run."""

from __future__ import annotations

import pytest

from tests.docs.markdown import parse

from .conftest import CHECKED, NEEDS_PY313, PY313_MISSING, REPO, Clone

COMMAND_HEADER = ("command", "runs", "needs", "checked on a fresh clone by `make test`")


def _command_rows() -> list[tuple[str, ...]]:
    readme = parse(REPO / "README.md")
    tables = [table for table in readme.tables if table and table[0] == COMMAND_HEADER]
    assert len(tables) == 1, "the README's Development > Commands table is missing or repeated"
    return list(tables[0][1:])


def test_every_local_command_in_the_readme_is_run_by_the_fresh_clone_check() -> None:
    local = {}
    for command, runs, needs, checked in _command_rows():
        if runs == "local" and not checked.startswith("no:"):
            local[command.strip("`")] = (needs, checked)
    assert set(local) == set(CHECKED)
    assert {c for c, (needs, _) in local.items() if "python3.13" in needs} == NEEDS_PY313
    assert local["make bench"][1].startswith("`make bench QUICK=1`")


def test_commands_the_check_leaves_out_say_why() -> None:
    for command, runs, _needs, checked in _command_rows():
        if command.strip("`") not in CHECKED:
            assert checked.startswith("no: "), (command, checked)
            assert len(checked) > len("no: ") + 10, (command, checked)
        assert runs in ("local", "AWS"), command


@pytest.mark.parametrize("target", ["bench", "test-313", "package", "layer"])
@pytest.mark.parametrize("py313", ["", "/nonexistent/python3.13", "python3.11"])
def test_a_missing_python313_stops_with_one_clear_message(target: str, py313: str) -> None:
    result = Clone(REPO).make("--no-print-directory", target, f"PY313={py313}")
    assert result.returncode == 2, result.tail()
    assert "Traceback" not in result.output, result.tail()
    assert "python3.13" in result.output, result.tail()
    assert PY313_MISSING in result.output, result.tail()
    assert "PY313=/path/to/python3.13" in result.output, result.tail()

"""The commands that need the local stack say what to do when it is not installed, and nothing
else in the CLI or the release tooling imports it (issue 13: the wheel ships no local stack)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import okta_bridge_dev.cli
from okta_bridge_dev.cli import local
from okta_bridge_dev.cli.exit_codes import EXIT_USAGE

from .conftest import run

MISSING = "the local stack is not part of the installed package"
LOCAL_STACK = ("okta_bridge_dev.emulators", "moto", "werkzeug", "flask")


@pytest.fixture
def no_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """``okta_bridge_dev.emulators`` unimportable, as in an install without the dev extra."""
    for name in [m for m in sys.modules if m.startswith("okta_bridge_dev.emulators")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "okta_bridge_dev.emulators", None)
    for scenario in ("demo", "rotate_local"):  # they import the stack: drop them too
        monkeypatch.delitem(sys.modules, f"okta_bridge_dev.cli.{scenario}", raising=False)
        monkeypatch.delattr(okta_bridge_dev.cli, scenario, raising=False)


@pytest.mark.usefixtures("no_local_stack")
@pytest.mark.parametrize("argv", [["demo"], ["rotate", "--now", "--local"]], ids=" ".join)
def test_a_local_stack_command_without_the_stack_says_where_it_is_and_exits_2(
    argv: list[str],
) -> None:
    code, console = run(*argv)
    assert code == EXIT_USAGE
    assert MISSING in console.stderr
    assert "okta_bridge_dev.emulators" in console.stderr
    assert "pip install -e '.[dev]'" in console.stderr
    assert "make demo" in console.stderr
    assert "Traceback" not in console.stderr


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("okta_bridge_dev.emulators", True),
        ("okta_bridge_dev.emulators.stack", True),
        ("moto", True),
        ("werkzeug.serving", True),
        ("flask", True),
        ("motorcycle", False),
        ("yaml", False),
        (None, False),
    ],
)
def test_only_the_local_stack_and_its_dependencies_count_as_missing(
    name: str | None, missing: bool
) -> None:
    assert local.local_stack_missing(ModuleNotFoundError("x", name=name)) is missing


def test_without_moto_demo_names_it_and_exits_2() -> None:
    """A fresh process where moto cannot be imported, as without the dev extra."""
    code = (
        "import sys; sys.modules['moto'] = None\n"
        "from okta_bridge_dev.cli.main import main\n"
        "sys.exit(main(['demo']))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    assert MISSING in done.stderr
    assert "(moto is missing)" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_and_the_release_tooling_never_import_the_local_stack() -> None:
    """Import every cli and release module and run ``--help`` and ``deploy --help`` in a fresh
    process: no emulator, moto or werkzeug module may be loaded."""
    code = (
        "import sys, contextlib, io\n"
        "import okta_bridge_dev.console\n"
        "from okta_bridge_dev.cli import exit_codes, function_commands, local, main, options\n"
        "from okta_bridge_dev.cli import render, stack_commands\n"
        "from okta_bridge_dev.release import aws, deploy, errors, package, rotate_now, secret\n"
        "from okta_bridge_dev.release import stacks, template, wheels\n"
        "for argv in (['--help'], ['deploy', '--help'], ['secret', 'put', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main.main(argv) == 0\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {LOCAL_STACK[1:]!r}\n"
        "    or m.startswith('okta_bridge_dev.emulators') or m == 'okta_bridge_dev.cli.demo'))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""A fresh clone of the repository, and the documented commands run in it as a new user would.

The clone holds ``HEAD`` plus any uncommitted changes (committed inside the clone, so that what is
checked is what the next commit would hold), and nothing git ignores: no ``.venv*``, no
``build/``, no ``dist/``. Every command runs with an environment cleaned of the outer run's make,
venv and pytest variables, so nothing from this checkout leaks into the clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Each command's own limit: the first one also creates .venv, bench also .venv-313.
COMMAND_TIMEOUT = 900
# The outer make's flags (-n, -j, -k and command-line variables travel in MAKEFLAGS), the outer
# venv, and the outer pytest's and coverage's variables: none of them is a new user's.
_FOREIGN = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VIRTUAL_ENV", "PYTHONPATH")
_FOREIGN_PREFIXES = ("PYTEST_", "COV_CORE_", "COVERAGE_", "BRIDGE_", "AWS_")


@dataclass(frozen=True)
class Run:
    """One command's outcome."""

    command: str
    returncode: int
    output: str

    def tail(self, lines: int = 40) -> str:
        """The end of the output, for a failure message."""
        return "\n".join(self.output.splitlines()[-lines:])


class Clone:
    """A fresh clone in a temporary directory, and the commands run in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = _clean_environment()

    def make(self, *arguments: str) -> Run:
        """``make ARGUMENTS`` in the clone; stdout and stderr together, as a user sees them."""
        return self.run(["make", *arguments], " ".join(("make", *arguments)))

    def run(self, argv: list[str], command: str, env: dict[str, str] | None = None) -> Run:
        """``argv`` (found on PATH) in the clone's root, with the clean environment or ``env``."""
        done = subprocess.run(  # noqa: S603 - make or bash with the documented commands
            argv,
            cwd=self.root,
            env=self.env if env is None else env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return Run(command, done.returncode, done.stdout)

    def untracked(self) -> list[str]:
        """Files the commands left that git neither tracks nor ignores."""
        status = _git(self.root, "status", "--porcelain", "--untracked-files=all")
        return [line for line in status.splitlines() if line.strip()]


def _clean_environment() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _FOREIGN and not key.startswith(_FOREIGN_PREFIXES)
    }
    # A PATH entry inside this checkout (an activated .venv) would hand the clone our tools.
    env["PATH"] = os.pathsep.join(
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if entry and not Path(entry).resolve().is_relative_to(REPO)
    )
    return env


def _git(cwd: Path, *arguments: str) -> str:
    return subprocess.run(  # noqa: S603 - git with fixed arguments
        ["git", *arguments],  # noqa: S607 - git from PATH
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def make_clone(target: Path) -> Clone:
    """Clone ``HEAD`` into ``target`` and commit this checkout's uncommitted changes there."""
    head = _git(REPO, "rev-parse", "HEAD").strip()
    _git(REPO.parent, "clone", "--quiet", "--no-local", "--no-checkout", str(REPO), str(target))
    _git(target, "checkout", "--quiet", "--detach", head)
    changed = _git(REPO, "status", "--porcelain", "--untracked-files=all").strip()
    if changed:
        # The working tree as the next commit would hold it: tracked and new files, not ignored.
        listed = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        wanted = {name for name in listed.split("\0") if name}
        for name in wanted:
            source, copy = REPO / name, target / name
            if source.is_file():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy)
            elif copy.is_file():
                copy.unlink()  # deleted here, not yet committed
        _git(target, "add", "--all")
        _git(
            target,
            "-c",
            "user.name=fresh-clone",
            "-c",
            "user.email=fresh-clone@localhost",
            "commit",
            "--quiet",
            "--no-verify",
            "--message",
            "uncommitted changes of the checkout under test",
        )
    return Clone(target)


@pytest.fixture(scope="session")
def clone() -> Iterator[Clone]:
    """One fresh clone shared by the session's commands and walk-throughs (one .venv, as a user's
    would be); removed afterwards, venvs and all (about 1 GB)."""
    with tempfile.TemporaryDirectory(prefix="okta-bridge-fresh-") as tmp:
        yield make_clone(Path(tmp) / "okta-bridge")


# The README's *local* commands (its Development > Commands table) and what the fresh-clone check
# runs for each: a test keeps the two in step.
CHECKED: dict[str, tuple[str, ...]] = {
    "make setup": ("setup",),
    "make demo": ("demo",),
    "make package": ("package",),
    "make layer": ("layer",),
    "make rotate-now LOCAL=1": ("rotate-now", "LOCAL=1"),
    "make bench": ("bench", "QUICK=1"),
}
NEEDS_PY313 = frozenset({"make package", "make layer", "make bench"})
PY313_MISSING = "this target needs python3.13"

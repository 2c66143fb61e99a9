"""Every command the README documents for local use works on a fresh clone (issue 17).

Run by ``make commands``, part of ``make test`` (and so of CI), not by the plain pytest run: it
clones the repository, creates its venvs from the lock files and runs each command as a new user
would, which takes a minute or two. Each command must exit 0 and produce what it promises, and
leave no file that git neither tracks nor ignores. Without python3.13 on the machine, the commands
that need it must instead stop at once with the Makefile's message.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import find_python313

from .conftest import CHECKED, NEEDS_PY313, PY313_MISSING, Clone, Run

pytestmark = pytest.mark.fresh_clone

HAS_PY313 = find_python313() is not None


def run(clone: Clone, documented: str) -> Run:
    """Run a README command in the clone and check it worked; or, when it needs a python3.13 this
    machine lacks, that it stopped with the Makefile's message (the caller then checks no output).
    """
    result = clone.make(*CHECKED[documented])
    if documented in NEEDS_PY313 and not HAS_PY313:
        assert result.returncode == 2, result.tail()
        assert PY313_MISSING in result.output, result.tail()
        assert "Traceback" not in result.output, result.tail()
    else:
        assert result.returncode == 0, f"{result.command} failed:\n{result.tail()}"
    assert not clone.untracked(), f"{result.command} left files git does not ignore"
    return result


def test_make_setup_creates_the_venv_the_guides_snippets_run(clone: Clone) -> None:
    run(clone, "make setup")
    assert (clone.root / ".venv" / "bin" / "okta-bridge").is_file()
    assert (clone.root / ".venv" / "bin" / "python").exists()


def test_make_demo_prints_its_ok_line(clone: Clone) -> None:
    result = run(clone, "make demo")
    assert (
        "OK: the cold call made 1/1/1 upstream requests, each warm call 0/0/1 (the" in result.output
    ), result.tail()


def test_make_package_builds_the_lambda_zip(clone: Clone) -> None:
    run(clone, "make package")
    if not HAS_PY313:
        return
    artifact = clone.root / "dist" / "okta-bridge.zip"
    assert artifact.is_file()
    with zipfile.ZipFile(artifact) as archive:
        names = archive.namelist()
    assert "okta_bridge/handler.py" in names
    assert "okta_bridge/__pycache__/handler.cpython-313.pyc" in names
    assert not [name for name in names if name.startswith("okta_bridge_dev")]


def test_make_layer_builds_the_layer_zip(clone: Clone) -> None:
    result = run(clone, "make layer")
    if not HAS_PY313:
        return
    artifact = clone.root / "dist" / "okta-bridge-layer.zip"
    with zipfile.ZipFile(artifact) as archive:
        names = archive.namelist()
    assert "python/okta_bridge/client.py" in names
    assert "python/okta_bridge/__pycache__/client.cpython-313.pyc" in names
    assert not [n for n in names if n.startswith(("python/okta_bridge_dev", "python/boto"))]
    assert "layout    python/" in result.output, result.tail()


def test_make_rotate_now_local_confirms_the_old_credential_is_refused(clone: Clone) -> None:
    result = run(clone, "make rotate-now LOCAL=1")
    assert "confirmed: Okta refuses the old credential" in result.output, result.tail()
    assert ", 0 failed" in result.output, result.tail()


def test_make_bench_quick_runs_every_implementation_and_writes_the_table(clone: Clone) -> None:
    run(clone, "make bench")
    if not HAS_PY313:
        return
    results = clone.root / "build" / "bench" / "results.md"
    text = results.read_text(encoding="utf-8")
    assert "Quick smoke run" in text
    for variant in ("## Network: none added", "## Network: 20 ms added"):
        section = text.split(variant, 1)[1].split("## ", 1)[0]
        rows = {line.split("|")[1].strip() for line in section.splitlines() if line[:2] == "| "}
        assert {"naive", "bridge", "bridge + extension", "bridge + DPoP", "floor"} <= rows, section
    assert (clone.root / "build" / "bench" / "results.png").stat().st_size > 0


def test_the_wheel_with_only_the_release_lock_runs_the_operator_commands(
    clone: Clone, tmp_path: Path
) -> None:
    """A platform engineer's install: a new venv with the runtime and release dependencies from
    requirements-release.lock (hashes checked) and the wheel built from the clone, no dev extra."""
    python = shutil.which("python3", path=clone.env["PATH"])
    assert python, "python3 on PATH"
    venv = tmp_path / "release-venv"

    def run_in(*command: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed commands in a venv made here
            [str(part) for part in command],
            cwd=clone.root,
            env=clone.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    if not (clone.root / ".venv/bin/python").exists():  # run alone: the dev venv builds
        assert clone.make(".venv/.installed").returncode == 0
    built = run_in(
        clone.root / ".venv/bin/python",
        "-m",
        "hatchling",
        "build",
        "-t",
        "wheel",
        "-d",
        tmp_path / "wheel",
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    for step in (
        (python, "-m", "venv", venv),
        (
            venv / "bin/python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "-r",
            clone.root / "requirements-release.lock",
        ),
        (venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", wheel),
    ):
        done = run_in(*step)
        assert done.returncode == 0, f"{step}: {done.stderr[-2000:]}"
    for argv in (
        ["--help"],
        ["deploy", "--help"],
        ["invoke", "--help"],
        ["secret", "put", "--help"],
        ["rotate", "--help"],
    ):
        done = run_in(venv / "bin/okta-bridge", *argv)
        assert done.returncode == 0, f"okta-bridge {' '.join(argv)}: {done.stderr[-2000:]}"
        assert "usage: okta-bridge" in done.stdout
    demo = run_in(venv / "bin/okta-bridge", "demo")
    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "make demo" in demo.stderr + demo.stdout
    assert "Traceback" not in demo.stderr
    assert not clone.untracked()

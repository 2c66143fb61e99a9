"""What the wheel holds, and that it works without the dev extra.

The wheel is what `pip install okta-bridge` gives a platform engineer: the Lambda code and the
`okta-bridge` command with its release tooling, never the local stack (fake Okta, fake Secrets
Manager, moto). The check builds the wheel from this tree, then imports every module in it and
runs the CLI's help in a child Python that can import only the standard library, the wheel and
the distributions of `requirements-release.lock`: a dev-only import anywhere would fail there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_STACK = (
    "okta_bridge_dev/emulators/",
    "okta_bridge_dev/cli/demo.py",
    "okta_bridge_dev/cli/rotate_local.py",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # noqa: S603 - this interpreter, building this tree
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_no_local_stack_module(wheel: Path) -> None:
    names = _names(wheel)
    assert [n for n in names if n.startswith(LOCAL_STACK)] == []
    assert not any(re.search(r"(moto|werkzeug|secretsmanager|sample_api)", n) for n in names)


def test_the_wheel_holds_the_lambda_code_the_cli_and_the_release_tooling(wheel: Path) -> None:
    names = set(_names(wheel))
    for needed in (
        "okta_bridge/handler.py",
        "okta_bridge/rotation/handler.py",
        "okta_bridge/py.typed",
        "okta_bridge_dev/cli/main.py",
        "okta_bridge_dev/release/deploy.py",
        "okta_bridge_dev/release/package.py",
    ):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "okta-bridge = okta_bridge_dev.cli.main:main" in archive.read(entry_points).decode()


def _release_distributions() -> list[str]:
    lock = (ROOT / "requirements-release.lock").read_text(encoding="utf-8")
    return sorted({m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)})


# Runs in a child Python: only the standard library, the unpacked wheel and the release lock's
# distributions can be imported; everything else (moto, werkzeug, pytest, this repo's src/)
# raises ModuleNotFoundError as on a machine without the dev extra.
_CHILD = textwrap.dedent(
    """
    import contextlib, importlib, importlib.abc, importlib.metadata, io, json, os, pkgutil, re, sys

    wheel, allowed, src = sys.argv[1], set(json.loads(sys.argv[2])), sys.argv[4]
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
    owners = importlib.metadata.packages_distributions()
    # The editable install puts the clone's src/ on the path: the wheel must stand on its own.
    here = lambda p: os.path.realpath(p) == os.path.realpath(src)
    sys.path = [wheel] + [p for p in sys.path if p and not here(p)]

    class OnlyTheRelease(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in ("okta_bridge", "okta_bridge_dev"):
                return None
            if any(norm(d) in allowed for d in owners.get(top, ())):
                return None
            raise ModuleNotFoundError(f"No module named {name!r} (not in the release lock)")

    sys.meta_path.insert(0, OnlyTheRelease())
    for name in ("okta_bridge", "okta_bridge_dev"):
        package = importlib.import_module(name)
        assert package.__file__.startswith(wheel), package.__file__
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            importlib.import_module(info.name)

    from okta_bridge_dev.cli.main import main

    results = {}
    for argv in json.loads(sys.argv[3]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        results[" ".join(argv)] = [code, out.getvalue(), err.getvalue()]
    print(json.dumps(results))
    """
)
COMMANDS = [
    ["--help"],
    ["deploy", "--help"],
    ["invoke", "--help"],
    ["diagnose", "--help"],
    ["secret", "put", "--help"],
    ["rotate", "--help"],
    ["outputs", "--help"],
    ["destroy", "--help"],
    ["package", "--help"],
    ["demo"],
    ["rotate", "--now", "--local"],
]


@pytest.fixture(scope="module")
def without_the_dev_extra(unpacked: Path) -> dict[str, list[object]]:
    child = subprocess.run(  # noqa: S603 - this interpreter, isolated
        [
            sys.executable,
            "-I",
            "-c",
            _CHILD,
            str(unpacked),
            json.dumps(_release_distributions()),
            json.dumps(COMMANDS),
            str(ROOT / "src"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    results: dict[str, list[object]] = json.loads(child.stdout.splitlines()[-1])
    return results


@pytest.mark.parametrize("argv", COMMANDS[:-2], ids=" ".join)
def test_the_command_helps_from_the_wheel_without_the_dev_extra(
    without_the_dev_extra: dict[str, list[object]], argv: list[str]
) -> None:
    code, out, _err = without_the_dev_extra[" ".join(argv)]
    assert code == 0
    assert "usage: okta-bridge" in str(out)


@pytest.mark.parametrize("command", ["demo", "rotate --now --local"])
def test_a_local_stack_command_says_where_the_local_stack_lives(
    without_the_dev_extra: dict[str, list[object]], command: str
) -> None:
    code, out, err = without_the_dev_extra[command]
    assert code == 2
    said = f"{out}{err}"
    assert "local stack" in said
    assert "make demo" in said
    assert "pip install -e '.[dev]'" in said
    assert "Traceback" not in said

"""``make package``, ``make layer``: the function and layer zips for python3.13, reproducibly.

The artifact holds ``okta_bridge/`` and its runtime dependencies (``wheels``), each module
compiled by a real python3.13 so a cold start never compiles. The function zip has them at its
root (Lambda unpacks it in /var/task); the layer zip (``--layer``) has them under ``python/``
(unpacked in /opt, ``/opt/python`` is on the runtime's path), for a team's own function that
imports the library. One build with a ``Layout``, so the two can never differ in what they ship.

The layer is ``okta-bridge package --layer`` rather than a command of its own: it is the same
build (lock filter, wheels, python3.13 ``.pyc``, reproducible zip) with the code one folder
down, so it takes the same flags (``--python``, ``--arch``, ``--ca-bundle``, ``--build-dir``,
``--root``) and prints the same summary; a second command would repeat them all to change one
path, and they would drift.

Two builds of one commit give the same SHA-256: sorted entries, fixed timestamps and permissions,
``.pyc`` in ``unchecked-hash`` mode (no mtimes) with the build directory stripped from their paths,
and no installer bookkeeping (``RECORD``, ``INSTALLER``...) whose content depends on the build.
Failures raise ``UsageError`` (bad arguments or inputs) or ``BuildError`` (a step failed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from okta_bridge_dev.release.ca_bundle import ca_bundle_warnings, validate_ca_bundle
from okta_bridge_dev.release.errors import BuildError, UsageError
from okta_bridge_dev.release.wheels import (
    ARCHITECTURES,
    LAMBDA_PYTHON,
    LockEntry,
    filtered_requirements,
    parse_lock,
    pip_install,
    prune_install,
    split_runtime_provided,
)

__all__ = [
    "FUNCTION",
    "LAYER",
    "BuildResult",
    "Layout",
    "ZipSummary",
    "build",
    "ca_bundle_warnings",
    "check_python",
    "report",
    "validate_ca_bundle",
    "write_zip",
]

PACKAGE = "okta_bridge"
LAMBDA_TASK_ROOT = "/var/task"
PYC_TAG = "cpython-313"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_LEVEL = 9
FILE_MODE = 0o644
DIR_MODE = 0o755
UNZIPPED_LIMIT = 250 * 1024 * 1024
"""Lambda refuses a function whose code and layers exceed 250 MB unzipped."""


@dataclass(frozen=True)
class Layout:
    """Where the code sits in the zip and where Lambda unpacks the zip."""

    stage: str
    """The staging folder's name (``<stage>-<arch>`` under ``--build-dir``)."""
    prefix: str
    """The folder of the code inside the zip: ``""`` (the root) or ``python``."""
    unpacked_in: str
    """Where Lambda unpacks the zip: ``certs/`` lands there, the ``.pyc`` name the code below."""
    output: Path
    """The default ``--output``."""

    @property
    def code_root(self) -> str:
        """The code's folder at run time: on ``sys.path``, and the path the ``.pyc`` carry."""
        return f"{self.unpacked_in}/{self.prefix}" if self.prefix else self.unpacked_in


FUNCTION = Layout("lambda", "", LAMBDA_TASK_ROOT, Path("dist/okta-bridge.zip"))
LAYER = Layout("layer", "python", "/opt", Path("dist/okta-bridge-layer.zip"))


# -- inputs ----------------------------------------------------------------------------------


def check_python(python: str) -> str:
    """Return ``python``'s version if it is CPython 3.13, else raise ``UsageError``.

    The ``.pyc`` format changes with every minor version: compiled by anything but 3.13, they
    would be ignored (and recompiled on every cold start) by the runtime.
    """
    hint = "run `make package PY313=/path/to/python3.13` (or pass --python /path/to/python3.13)"
    if not python.strip():
        raise UsageError(f"no python3.13 given: {hint}")
    try:
        completed = subprocess.run(  # noqa: S603 - the interpreter the user named
            [
                python,
                "-c",
                "import platform, sys; print(platform.python_implementation(), "
                "'.'.join(map(str, sys.version_info[:3])))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run {python} ({type(exc).__name__}): {hint}") from None
    found = completed.stdout.strip()
    if completed.returncode != 0 or not found:
        raise UsageError(f"{python} did not report its version: {hint}")
    implementation, _, version = found.partition(" ")
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    if implementation != "CPython" or major_minor != LAMBDA_PYTHON:
        raise UsageError(
            f"{python} is {implementation} {version}, but the Lambda runtime is python3.13 and "
            f"the .pyc must be compiled by it: {hint}"
        )
    return version


# -- build steps -----------------------------------------------------------------------------


def copy_sources(source: Path, destination: Path) -> int:
    """Copy the package's ``.py`` files and ``py.typed`` (nothing else); return the count."""
    if not (source / "handler.py").is_file():
        raise UsageError(f"{source} has no handler.py: run from the repository root or pass --root")
    count = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if "__pycache__" in relative.parts or not path.is_file():
            continue
        if path.suffix == ".py" or path.name == "py.typed":
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            count += 1
    return count


def remove_bytecode(root: Path) -> None:
    """Remove every ``__pycache__`` and stray ``.pyc`` (a wheel's, or another Python's)."""
    for cache in sorted(root.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    for pyc in root.rglob("*.pyc"):
        pyc.unlink()


def compile_tree(python: str, root: Path, code_root: str = LAMBDA_TASK_ROOT) -> None:
    """Compile every ``.py`` with python3.13 into ``__pycache__/*.cpython-313.pyc``.

    ``unchecked-hash`` pyc carry no source mtime and are used without re-checking the source
    (the code in /var/task or /opt never changes); paths are rewritten to ``code_root`` so
    tracebacks read as in Lambda and the build directory does not leak into the bytes. A fixed
    hash seed keeps set and frozenset constants in one order.
    """
    root = root.resolve()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [
        python, "-m", "compileall", "-q", "-f",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(root), "-p", code_root,
        str(root),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if completed.returncode != 0:
        detail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-12:])
        raise BuildError(f"python3.13 could not compile every module:\n{detail}")
    stray = [p for p in root.rglob("*.pyc") if not p.name.endswith(f".{PYC_TAG}.pyc")]
    for pyc in stray:
        pyc.unlink()


@dataclass(frozen=True)
class ZipSummary:
    """What ``write_zip`` wrote."""

    path: Path
    size: int
    unzipped: int
    sha256: str
    files: int


def _tree_entries(root: Path) -> list[tuple[str, Path]]:
    """Relative POSIX names (directories with a trailing ``/``), sorted; no symlinks."""
    entries: list[tuple[str, Path]] = []
    for path in root.rglob("*"):
        if path.is_symlink():
            raise BuildError(f"{path} is a symlink: the artifact takes regular files only")
        name = path.relative_to(root).as_posix()
        entries.append((f"{name}/" if path.is_dir() else name, path))
    entries.sort(key=lambda item: item[0])
    return entries


def write_zip(root: Path, output: Path) -> ZipSummary:
    """Zip ``root`` deterministically: sorted names, 1980-01-01, 0644/0755, deflate level 9.

    Written beside ``output`` and renamed into place, so an interrupted build never leaves a
    truncated artifact for ``deploy`` to upload.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    files = unzipped = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            for name, path in _tree_entries(root):
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.create_system = 3  # Unix, so the mode bits below are honoured
                if name.endswith("/"):
                    info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | 0x10
                    archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
                    continue
                info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                data = path.read_bytes()
                archive.writestr(
                    info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL
                )
                files += 1
                unzipped += len(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return ZipSummary(output, output.stat().st_size, unzipped, digest, files)


# -- the build -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    """The artifact and what went into it, for the summary."""

    zip: ZipSummary
    python_version: str
    arch: str
    shipped: tuple[LockEntry, ...]
    left_out: tuple[LockEntry, ...]
    ca_bundle: str | None
    warnings: tuple[str, ...]
    layout: Layout = FUNCTION


def build(
    *,
    root: Path,
    python: str,
    output: Path,
    build_dir: Path,
    arch: str = "arm64",
    ca_bundle: Path | None = None,
    layout: Layout = FUNCTION,
) -> BuildResult:
    """Run every step and return what was built; raise ``UsageError``/``BuildError``."""
    if arch not in ARCHITECTURES:
        raise UsageError(f"--arch {arch}: choose one of {', '.join(ARCHITECTURES)}")
    lock = root / "requirements.lock"
    if not lock.is_file():
        raise UsageError(f"no requirements.lock in {root}: run from the repository root or --root")
    version = check_python(python)
    warnings: list[str] = []
    if ca_bundle is not None:
        validate_ca_bundle(ca_bundle)
        warnings.extend(ca_bundle_warnings(ca_bundle))
    shipped, left_out = split_runtime_provided(parse_lock(lock.read_text(encoding="utf-8")))

    stage = build_dir / f"{layout.stage}-{arch}"
    shutil.rmtree(stage, ignore_errors=True)
    content = stage / "content"
    code = content / layout.prefix if layout.prefix else content
    code.mkdir(parents=True)
    requirements = stage / "requirements.lambda.txt"
    requirements.write_text(filtered_requirements(shipped), encoding="utf-8")

    pip_install(requirements, code, arch)
    prune_install(code)
    copy_sources(root / "src" / PACKAGE, code / PACKAGE)
    if ca_bundle is not None:
        (content / "certs").mkdir()
        shutil.copyfile(ca_bundle, content / "certs" / ca_bundle.name)
    remove_bytecode(content)
    compile_tree(python, code, layout.code_root)

    summary = write_zip(content, output)
    if summary.unzipped > UNZIPPED_LIMIT:
        raise BuildError(
            f"{output} unzips to {_size(summary.unzipped)}, over Lambda's 250 MB limit"
        )
    return BuildResult(
        zip=summary,
        python_version=version,
        arch=arch,
        shipped=tuple(shipped),
        left_out=tuple(left_out),
        ca_bundle=ca_bundle.name if ca_bundle else None,
        warnings=tuple(warnings),
        layout=layout,
    )


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    return f"{size / 1024:.1f} KiB"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def report(result: BuildResult) -> str:
    """The summary printed after a build: path, size, SHA-256, file count, what went in."""
    summary = result.zip
    lines = [
        _display(summary.path),
        f"  size      {_size(summary.size)} ({summary.size:,} bytes; "
        f"{_size(summary.unzipped)} unzipped)",
        f"  sha256    {summary.sha256}",
        f"  files     {summary.files}",
        f"  target    python{result.python_version[:4]} {result.arch} "
        f"(compiled by {result.python_version})",
        "  shipped   " + ", ".join(f"{e.name} {e.version}" for e in result.shipped),
        "  left out  " + ", ".join(e.name for e in result.left_out) + " (in the Lambda runtime)",
    ]
    if result.layout.prefix:
        lines.insert(
            5, f"  layout    {result.layout.prefix}/ (on the path at {result.layout.code_root})"
        )
    if result.ca_bundle and not result.layout.prefix:
        lines.append(
            f"  CA bundle certs/{result.ca_bundle}: deploy with CaBundleFile={result.ca_bundle}"
        )
    elif result.ca_bundle:
        lines.append(
            f"  CA bundle certs/{result.ca_bundle}: a consumer sets "
            f"BRIDGE_CA_BUNDLE={result.layout.unpacked_in}/certs/{result.ca_bundle}"
        )
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    return "\n".join(lines)

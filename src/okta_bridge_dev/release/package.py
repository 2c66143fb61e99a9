"""``make package``: build ``dist/okta-bridge.zip`` for the Lambda python3.13 runtime, reproducibly.

The artifact holds ``okta_bridge/`` and its runtime dependencies (``wheels``), each module
compiled by a real python3.13 so a cold start never compiles.

Two builds of one commit give the same SHA-256: sorted entries, fixed timestamps and permissions,
``.pyc`` in ``unchecked-hash`` mode (no mtimes) with the build directory stripped from their paths,
and no installer bookkeeping (``RECORD``, ``INSTALLER``...) whose content depends on the build.
Failures raise ``UsageError`` (bad arguments or inputs) or ``BuildError`` (a step failed).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import shutil
import ssl
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
    "BuildResult",
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


_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)\s+-----END CERTIFICATE-----"
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_ca_bundle(path: Path) -> int:
    """Check ``path`` is a PEM bundle of certificates (and nothing secret); return their count.

    Checked here rather than at the first invocation: a DER file, an empty file or a key would
    otherwise surface as a ``config`` error in production, or worse, ship a private key.
    """
    if not path.is_file():
        raise UsageError(f"--ca-bundle {path}: no such file")
    if not _SAFE_NAME.match(path.name):
        raise UsageError(
            f"--ca-bundle {path}: rename it to letters, digits, '.', '-' or '_' only "
            "(the name becomes the template's CaBundleFile parameter)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(
            f"--ca-bundle {path} is not PEM text (DER?): convert it with "
            f"`openssl x509 -inform der -in {path.name} -out {path.stem}.pem`"
        ) from None
    if "PRIVATE KEY-----" in text:
        raise UsageError(
            f"--ca-bundle {path} contains a PRIVATE KEY: the bundle must hold only the CA "
            "certificates; remove the key (it must never be shipped in the artifact)"
        )
    blocks = _PEM_CERT.findall(text)
    if not blocks:
        raise UsageError(
            f"--ca-bundle {path} has no '-----BEGIN CERTIFICATE-----' block: export the "
            "enterprise root CA as PEM (Base64) and pass that file"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except ssl.SSLError as exc:
        raise UsageError(
            f"--ca-bundle {path}: a certificate does not parse ({exc.reason or exc}): "
            "re-export the bundle as PEM"
        ) from None
    return len(blocks)


def ca_bundle_warnings(path: Path) -> list[str]:
    """Expired or non-CA certificates in the bundle: worth a warning, not a refusal."""
    try:
        from cryptography import x509  # noqa: PLC0415 - optional, only for these warnings
    except ImportError:  # pragma: no cover - cryptography is a dependency of the project
        return []
    warnings: list[str] = []
    now = datetime.datetime.now(datetime.UTC)
    for index, cert in enumerate(x509.load_pem_x509_certificates(path.read_bytes()), start=1):
        subject = cert.subject.rfc4514_string() or "(no subject)"
        if cert.not_valid_after_utc < now:
            warnings.append(
                f"certificate {index} ({subject}) expired on {cert.not_valid_after_utc:%Y-%m-%d}"
            )
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            warnings.append(
                f"certificate {index} ({subject}) is not a CA certificate: TLS verification "
                "needs the issuing root (or intermediate), not the server's own certificate"
            )
    return warnings


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


def compile_tree(python: str, root: Path) -> None:
    """Compile every ``.py`` with python3.13 into ``__pycache__/*.cpython-313.pyc``.

    ``unchecked-hash`` pyc carry no source mtime and are used without re-checking the source
    (the code in /var/task never changes); paths are rewritten to /var/task so tracebacks read
    as in Lambda and the build directory does not leak into the bytes. A fixed hash seed keeps
    set and frozenset constants in one order.
    """
    root = root.resolve()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [
        python, "-m", "compileall", "-q", "-f",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(root), "-p", LAMBDA_TASK_ROOT,
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


def build(
    *,
    root: Path,
    python: str,
    output: Path,
    build_dir: Path,
    arch: str = "arm64",
    ca_bundle: Path | None = None,
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

    stage = build_dir / f"lambda-{arch}"
    shutil.rmtree(stage, ignore_errors=True)
    content = stage / "content"
    content.mkdir(parents=True)
    requirements = stage / "requirements.lambda.txt"
    requirements.write_text(filtered_requirements(shipped), encoding="utf-8")

    pip_install(requirements, content, arch)
    prune_install(content)
    copy_sources(root / "src" / PACKAGE, content / PACKAGE)
    if ca_bundle is not None:
        (content / "certs").mkdir()
        shutil.copyfile(ca_bundle, content / "certs" / ca_bundle.name)
    remove_bytecode(content)
    compile_tree(python, content)

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
    if result.ca_bundle:
        lines.append(
            f"  CA bundle certs/{result.ca_bundle}: deploy with CaBundleFile={result.ca_bundle}"
        )
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    return "\n".join(lines)

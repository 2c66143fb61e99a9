"""The Lambda zip's dependencies: the lock file read, boto3's share left out, wheels installed.

The artifact holds the runtime dependencies from ``requirements.lock``, installed by hash for
manylinux/CPython 3.13/the target architecture. boto3 and what it alone pulls in are left out:
the runtime provides them, and shipping a second copy only adds cold-start bytes. The lock's
``# via`` graph is checked against that list, so a lock change cannot silently change the zip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from okta_bridge_dev.release.errors import BuildError

__all__ = [
    "ARCHITECTURES",
    "LAMBDA_PYTHON",
    "RUNTIME_PROVIDED",
    "LockEntry",
    "filtered_requirements",
    "parse_lock",
    "pip_install",
    "prune_install",
    "split_runtime_provided",
]

PROJECT = "okta-bridge"
LAMBDA_PYTHON = (3, 13)

RUNTIME_PROVIDED: tuple[str, ...] = (
    "boto3",
    "botocore",
    "jmespath",
    "python-dateutil",
    "s3transfer",
    "six",
    "opentelemetry-api",
    "typing-extensions",
)
"""Lock entries the artifact leaves out: boto3 and the packages only boto3 needs (the python3.13
runtime has them), and the OpenTelemetry API with what only it needs. Tracing needs the ADOT
Lambda layer, which brings the API together with the SDK it must match; a copy of our own, first
on the path in /var/task, could shadow the layer's and break it.

Explicit on purpose: ``split_runtime_provided`` checks this list against the lock's ``# via``
graph, so a lock change that makes a shipped package need one of these (or adds a new package
only boto3 needs) stops the build with a message instead of silently changing the artifact.
"""

RUNTIME_IMPORT_NAMES = (
    "boto3",
    "botocore",
    "jmespath",
    "dateutil",
    "s3transfer",
    "six",
    "opentelemetry",
    "typing_extensions",
)
"""Top-level import names of ``RUNTIME_PROVIDED``; none may appear in the artifact."""

MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
"""Wheel platforms accepted, most preferred first.

manylinux2014 (glibc 2.17) is what AWS documents for Lambda; the python3.13 runtime runs on
Amazon Linux 2023 (glibc 2.34), so newer manylinux wheels also run there and keep the build
working if a dependency stops publishing manylinux2014 wheels.
"""

ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}

DIST_INFO_DROPPED = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
"""Installer bookkeeping, not package metadata: it depends on the pip that installed it and
``RECORD`` would not list the ``.pyc`` compiled afterwards."""


# -- the lock file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LockEntry:
    """One pinned requirement of ``requirements.lock``, with its hash lines and its dependants."""

    name: str
    version: str
    text: str
    via: tuple[str, ...]


_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<ver>[^\s;\\]+)"
)


def normalize(name: str) -> str:
    """PEP 503 name: ``Python_Dateutil`` and ``python-dateutil`` are one package.

    A ``-r requirements.in`` dependant is the project itself.
    """
    if name.startswith("-r"):
        return PROJECT
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> list[LockEntry]:
    """Parse uv's/pip-compile's annotated, hashed lock into entries (order kept).

    The ``# via`` annotations are required: they are how the runtime-provided filter is checked.
    """
    entries: list[LockEntry] = []
    current: list[str] = []
    via: list[str] = []
    in_via = False

    def flush() -> None:
        if not current:
            return
        match = _REQUIREMENT.match(current[0])
        if match is None:
            raise BuildError(f"requirements.lock: cannot read the requirement {current[0]!r}")
        entries.append(
            LockEntry(
                name=normalize(match["name"]),
                version=match["ver"],
                text="\n".join(current) + "\n",
                via=tuple(via),
            )
        )
        current.clear()
        via.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if line and not line[0].isspace() and not line.startswith("#"):
            flush()
            current.append(line.rstrip())
            in_via = False
        elif stripped.startswith("--hash") and current:
            current.append(line.rstrip())
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                via.append(normalize(rest.split()[0]))
        elif in_via and stripped.startswith("#") and current:
            name = stripped.lstrip("#").strip()
            if name:
                via.append(normalize(name.split()[0]))
        elif not stripped.startswith("#"):
            in_via = False
    flush()
    if not entries:
        raise BuildError("requirements.lock lists no requirements: regenerate it with `make lock`")
    return entries


def split_runtime_provided(
    entries: Sequence[LockEntry], provided: Iterable[str] = RUNTIME_PROVIDED
) -> tuple[list[LockEntry], list[LockEntry]]:
    """Return (shipped, left out) and refuse when the lock's graph contradicts ``provided``.

    A left-out package must be needed only by left-out packages (else a shipped one would import
    something the artifact lacks); a shipped package must be needed by something shipped or by
    the project itself (else it is boto3-only weight that belongs in ``RUNTIME_PROVIDED``).
    """
    left_out_names = {normalize(name) for name in provided}
    unannotated = [entry.name for entry in entries if not entry.via]
    if unannotated:
        raise BuildError(
            f"requirements.lock has no '# via' annotation for {', '.join(unannotated)}: "
            "regenerate it with `make lock` (uv pip compile annotates every entry)"
        )
    kept = [entry for entry in entries if entry.name not in left_out_names]
    left_out = [entry for entry in entries if entry.name in left_out_names]
    for entry in left_out:
        shipped_users = [u for u in entry.via if u not in left_out_names and u != PROJECT]
        if shipped_users:
            raise BuildError(
                f"requirements.lock: {entry.name} is needed by {', '.join(shipped_users)}, which "
                f"is shipped, but {entry.name} is in RUNTIME_PROVIDED: remove it from "
                "RUNTIME_PROVIDED in okta_bridge_dev/release/wheels.py so the artifact carries it"
            )
    for entry in kept:
        if all(user in left_out_names for user in entry.via):
            raise BuildError(
                f"requirements.lock: {entry.name} is there only for {', '.join(entry.via)} "
                "(provided by the Lambda runtime): add it to RUNTIME_PROVIDED in "
                "okta_bridge_dev/release/wheels.py if the python3.13 runtime ships it"
            )
    return kept, left_out


def filtered_requirements(kept: Sequence[LockEntry]) -> str:
    """The lock restricted to ``kept``, hashes included, for ``pip --require-hashes``."""
    header = "# requirements.lock without the packages the Lambda runtime provides (generated)\n"
    return header + "".join(entry.text for entry in kept)


# -- install --------------------------------------------------------------------------------------


def pip_install(requirements: Path, target: Path, arch: str) -> None:
    """Install the hashed requirements as wheels for Lambda's platform into ``target``.

    ``--no-deps`` because the lock is complete: nothing outside it (or left out of it on
    purpose) may come in. ``--no-compile`` because pip's interpreter is not 3.13.
    """
    machine = ARCHITECTURES[arch]
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        "--require-hashes", "--no-deps", "--no-compile", "--only-binary=:all:",
        "--implementation", "cp",
        "--python-version", ".".join(map(str, LAMBDA_PYTHON)),
        *[arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{machine}")],
        "--target", str(target),
        "--requirement", str(requirements),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        detail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-12:])
        raise BuildError(
            "pip could not install the runtime dependencies for "
            f"python3.13/{machine} (PyPI is needed the first time; later builds use pip's "
            f"cache):\n{detail}"
        )


def prune_install(target: Path) -> None:
    """Drop what the runtime never uses and what would make two builds differ."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for dist_info in target.glob("*.dist-info"):
        for name in DIST_INFO_DROPPED:
            (dist_info / name).unlink(missing_ok=True)
    for name in RUNTIME_IMPORT_NAMES:
        if (target / name).exists() or (target / f"{name}.py").exists():
            raise BuildError(
                f"{name} ended up in the artifact although the runtime provides it: check "
                "requirements.lock and RUNTIME_PROVIDED in okta_bridge_dev/release/wheels.py"
            )

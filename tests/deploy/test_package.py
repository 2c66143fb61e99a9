"""``make package``: the lock filter, the inputs it refuses, and two real builds compared."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from okta_bridge_dev.cli import exit_codes
from okta_bridge_dev.cli import main as cli
from okta_bridge_dev.emulators.pki import LocalCA
from okta_bridge_dev.release import package, wheels
from okta_bridge_dev.release.errors import BuildError, UsageError

from .conftest import REPO, find_python313

LOCK = REPO / "requirements.lock"
PY313 = find_python313()
needs_py313 = pytest.mark.skipif(
    PY313 is None,
    reason="no CPython 3.13 found ($PY313, pyenv's 3.13.0 or python3.13 on PATH): the artifact "
    "must be compiled by Lambda's python3.13",
)


# -- the lock filter -------------------------------------------------------------------------


def test_the_real_lock_ships_only_what_boto3_does_not_bring() -> None:
    shipped, left_out = wheels.split_runtime_provided(wheels.parse_lock(LOCK.read_text()))
    assert {e.name for e in shipped} == {
        "cffi",
        "cryptography",
        "pycparser",
        "urllib3",
    }
    assert {e.name for e in left_out} == {
        "boto3",
        "botocore",
        "jmespath",
        "python-dateutil",
        "s3transfer",
        "six",
        # The ADOT layer brings the OpenTelemetry API with its SDK (tracing needs the layer).
        "opentelemetry-api",
        "typing-extensions",
    }


def test_the_filtered_requirements_keep_every_hash_of_what_is_shipped() -> None:
    entries = wheels.parse_lock(LOCK.read_text())
    shipped, left_out = wheels.split_runtime_provided(entries)
    text = wheels.filtered_requirements(shipped)
    for entry in shipped:
        hashes = [line.strip() for line in entry.text.splitlines() if "--hash=" in line]
        assert hashes, entry.name
        assert all(h.rstrip(" \\") in text for h in hashes)
    for entry in left_out:
        assert f"\n{entry.name}==" not in text
        assert entry.text not in text
    assert "urllib3==2" in text  # botocore needs it too, but so does the bridge: shipped


LOCK_TEMPLATE = """\
boto3==1.0 \\
    --hash=sha256:{h}
    # via okta-bridge (pyproject.toml)
botocore==1.0 \\
    --hash=sha256:{h}
    # via boto3
six==1.0 \\
    --hash=sha256:{h}
    # via
    #   botocore
    #   {six_user}
urllib3==2.0 \\
    --hash=sha256:{h}
    # via
    #   okta-bridge (pyproject.toml)
    #   botocore
{extra}"""


def fake_lock(*, six_user: str = "botocore", extra: str = "") -> list[wheels.LockEntry]:
    text = LOCK_TEMPLATE.format(h="0" * 64, six_user=six_user, extra=extra)
    return wheels.parse_lock(text)


def test_the_filter_refuses_to_leave_out_what_a_shipped_package_needs() -> None:
    with pytest.raises(BuildError, match="six is needed by urllib3"):
        wheels.split_runtime_provided(fake_lock(six_user="urllib3"), ("boto3", "botocore", "six"))


def test_the_filter_refuses_to_ship_what_only_boto3_needs() -> None:
    extra = "awscrt==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via botocore\n"
    with pytest.raises(BuildError, match="awscrt is there only for botocore"):
        wheels.split_runtime_provided(fake_lock(extra=extra), ("boto3", "botocore", "six"))


def test_a_lock_without_annotations_is_refused() -> None:
    entries = wheels.parse_lock("urllib3==2.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(BuildError, match="no '# via' annotation"):
        wheels.split_runtime_provided(entries)


# -- inputs ----------------------------------------------------------------------------------


def test_a_python_other_than_313_is_refused_with_the_make_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    python312 = tmp_path / "python3.12"
    python312.write_text("#!/bin/sh\necho CPython 3.12.4\n")
    python312.chmod(0o755)
    code = cli.main(["package", "--python", str(python312), "--output", str(tmp_path / "x.zip")])
    err = capsys.readouterr().err
    assert code == exit_codes.EXIT_USAGE
    assert "is CPython 3.12.4, but the Lambda runtime is python3.13" in err
    assert "make package PY313=/path/to/python3.13" in err
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize("python", ["", "/nonexistent/python3.13"])
def test_a_missing_python_is_refused_with_the_make_hint(python: str) -> None:
    with pytest.raises(UsageError, match=r"make package PY313=/path/to/python3\.13"):
        package.check_python(python)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"), common_name="Example Corp Root CA")


def test_a_pem_ca_bundle_is_accepted(ca: LocalCA, tmp_path: Path) -> None:
    bundle = tmp_path / "corp-root.pem"
    bundle.write_bytes(ca.ca_pem_path.read_bytes() * 2)
    assert package.validate_ca_bundle(bundle) == 2
    assert package.ca_bundle_warnings(bundle) == []


def test_a_leaf_certificate_is_accepted_with_a_warning(ca: LocalCA, tmp_path: Path) -> None:
    leaf = ca.issue("api")
    bundle = tmp_path / "leaf.pem"
    bundle.write_bytes(leaf.cert_path.read_bytes())
    assert package.validate_ca_bundle(bundle) == 1
    assert "not a CA certificate" in package.ca_bundle_warnings(bundle)[0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("corp.pem", b"", "no '-----BEGIN CERTIFICATE-----' block"),
        ("corp.cer", b"0\x82\x03\x01\x30\x82", "not PEM text"),
        ("corp.pem", b"KEY", "PRIVATE KEY"),
        ("corp root.pem", b"CERT", "rename it"),
        (
            "corp.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "does not parse",
        ),
    ],
)
def test_a_bad_ca_bundle_is_refused(
    ca: LocalCA, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    if content == b"KEY":
        key = ca.issue("leaf").key_path.read_bytes()
        content = ca.ca_pem_path.read_bytes() + key
    elif content == b"CERT":
        content = ca.ca_pem_path.read_bytes()
    bundle = tmp_path / name
    bundle.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        package.validate_ca_bundle(bundle)


# -- the zip ---------------------------------------------------------------------------------


def test_write_zip_ignores_mtimes_modes_and_creation_order(tmp_path: Path) -> None:
    def tree(root: Path, names: list[str], mtime: int, mode: int) -> Path:
        for name in names:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"content of {name}\n")
            path.chmod(mode)
            os.utime(path, (mtime, mtime))
        return root

    names = ["b/z.py", "a.py", "b/a.py", "c/d/e.txt"]
    first = tree(tmp_path / "one", names, 1_000_000_000, 0o600)
    second = tree(tmp_path / "two", list(reversed(names)), 1_700_000_000, 0o755)
    one = package.write_zip(first, tmp_path / "one.zip")
    two = package.write_zip(second, tmp_path / "two.zip")
    assert one.sha256 == two.sha256
    assert one.files == 4
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: i.external_attr >> 16 for i in infos}
    assert modes["a.py"] == 0o100644
    assert modes["b/"] == 0o040755
    assert {i.compress_type for i in infos if not i.is_dir()} == {zipfile.ZIP_DEFLATED}


# -- real builds (python3.13 and PyPI, or pip's cache) ---------------------------------------


@dataclass(frozen=True)
class Built:
    first: package.BuildResult
    second: package.BuildResult
    names: list[str]
    path: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, ca: LocalCA) -> Built:
    """Two builds of this checkout in separate directories, with an enterprise CA bundle."""
    assert PY313 is not None
    work = tmp_path_factory.mktemp("package")
    bundle = work / "enterprise-ca.pem"
    bundle.write_bytes(ca.ca_pem_path.read_bytes())
    results = []
    for name in ("first", "second"):
        results.append(
            package.build(
                root=REPO,
                python=PY313,
                output=work / name / "okta-bridge.zip",
                build_dir=work / name / "build",
                ca_bundle=bundle,
            )
        )
    with zipfile.ZipFile(results[0].zip.path) as archive:
        names = archive.namelist()
    return Built(results[0], results[1], names, results[0].zip.path)


@needs_py313
def test_two_builds_are_identical(built: Built) -> None:
    assert built.first.zip.sha256 == built.second.zip.sha256
    assert built.first.zip.path.read_bytes() == built.second.zip.path.read_bytes()
    assert built.first.zip.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()


@needs_py313
def test_the_artifact_has_the_bridge_and_its_dependencies_only(built: Built) -> None:
    names = set(built.names)
    assert "okta_bridge/handler.py" in names
    assert "okta_bridge/__pycache__/handler.cpython-313.pyc" in names
    # The rotation function ships in the same artifact (its own handler, same code).
    assert "okta_bridge/rotation/handler.py" in names
    assert "okta_bridge/rotation/__pycache__/handler.cpython-313.pyc" in names
    assert "okta_bridge/py.typed" in names
    for top in ("urllib3/", "cryptography/"):
        assert top in names
    assert "jwt/" not in names  # PyJWT is a dev dependency only (issue 18)
    assert any(n.startswith("cryptography/") and n.endswith(".so") for n in names), (
        "cryptography's compiled core"
    )
    tops = {name.split("/", 1)[0] for name in names}
    for forbidden in ("tests", "okta_bridge_dev", "boto3", "botocore", "s3transfer", "moto"):
        assert forbidden not in tops
    assert not any(n.endswith((".dist-info/RECORD", ".dist-info/INSTALLER")) for n in names)
    assert not [n for n in names if n.endswith(".pyc") and ".cpython-313." not in n]
    sources = {n for n in names if n.endswith(".py")}
    for source in sources:
        folder, _, module = source.rpartition("/")
        cached = f"{folder}/__pycache__/{module[:-3]}.cpython-313.pyc".lstrip("/")
        assert cached in names, f"{source} is not compiled"


@needs_py313
def test_cryptography_is_built_for_lambda_arm64(built: Built) -> None:
    with zipfile.ZipFile(built.path) as archive:
        core = next(n for n in built.names if n.startswith("cryptography/") and n.endswith(".so"))
        header = archive.read(core)[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64


@needs_py313
def test_the_ca_bundle_lands_in_certs(built: Built, ca: LocalCA) -> None:
    with zipfile.ZipFile(built.path) as archive:
        assert archive.read("certs/enterprise-ca.pem") == ca.ca_pem_path.read_bytes()
    assert built.first.ca_bundle == "enterprise-ca.pem"
    assert "CaBundleFile=enterprise-ca.pem" in package.report(built.first)


@needs_py313
def test_python313_imports_the_handler_from_the_shipped_pyc(built: Built, tmp_path: Path) -> None:
    """The .pyc are valid for 3.13 and used as they are: importing rewrites none of them."""
    assert PY313 is not None
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.pyc")}
    pyc = (tmp_path / "okta_bridge/__pycache__/handler.cpython-313.pyc").read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source never checked
    code = "import sys; sys.path.insert(0, sys.argv[1]); import okta_bridge.handler, urllib3"
    result = subprocess.run(  # noqa: S603 - the python3.13 found above
        [PY313, "-I", "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    after = {p: p.read_bytes() for p in tmp_path.rglob("*.pyc")}
    assert after == before


@needs_py313
def test_the_summary_names_size_hash_and_count(built: Built) -> None:
    text = package.report(built.first)
    assert built.first.zip.sha256 in text
    assert "MiB" in text
    assert f"files     {built.first.zip.files}" in text
    assert "left out  boto3, botocore" in text

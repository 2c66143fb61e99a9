"""Fixtures for the deployment tooling: moto over TLS on 127.0.0.1, and boto3 pointed at it.

moto is served with real TLS (the local stack's CA) rather than plain HTTP because the tooling is
run unmodified against it, exactly as against AWS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from okta_bridge_dev.emulators.pki import LocalCA, server_context
from okta_bridge_dev.emulators.secretsmanager import SecretsManagerServer
from okta_bridge_dev.release import aws as release_aws
from okta_bridge_dev.release import signing

from . import moto_shims, signer_shim

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def find_python313() -> str | None:
    """A CPython 3.13 for the packaging tests: $PY313, pyenv's 3.13.0, or python3.13 on PATH."""
    candidates = [os.environ.get("PY313", "")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run(  # noqa: S603 - pyenv, found on PATH
            [pyenv, "root"], capture_output=True, text=True, check=False
        ).stdout.strip()
        candidates.append(f"{root}/versions/3.13.0/bin/python")
    home = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates.extend(str(p) for p in sorted(home.glob("versions/3.13*/bin/python")))
    candidates.append(shutil.which("python3.13") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            answer = subprocess.run(  # noqa: S603 - the candidate interpreter itself
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if answer == "True":
                return candidate
    return None


@dataclass(frozen=True)
class Moto:
    """A running moto server and the account it serves."""

    server: SecretsManagerServer
    ca_bundle: Path

    @property
    def account(self) -> str:
        return self.server.account_id

    @property
    def endpoint(self) -> str:
        return self.server.endpoint_url


@pytest.fixture(scope="session")
def moto_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("moto-pki"))


@pytest.fixture
def moto(moto_ca: LocalCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """A fresh moto server (its own random account id, so no state leaks between tests)."""
    moto_shims.install()
    monkeypatch.setattr(moto_shims.ChangeSet, "apply", moto_shims.apply_with_outputs)
    monkeypatch.setattr(
        moto_shims.LayerVersion,
        "physical_resource_id",
        property(moto_shims.layer_version_arn),
        raising=False,
    )
    monkeypatch.setattr(
        moto_shims.LayerVersion,
        "create_from_cloudformation_json",
        classmethod(moto_shims.create_layer_version),
    )
    signer_shim.install(monkeypatch)
    server = SecretsManagerServer(
        server_context(moto_ca.issue("moto")), ca_bundle=moto_ca.ca_pem_path
    )
    server.start()
    try:
        yield Moto(server, moto_ca.ca_pem_path)
    finally:
        server.stop()


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Moto:
    """boto3 configured only by the environment, as on a developer's machine, pointed at moto."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "OKTA_BRIDGE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(moto.ca_bundle))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)  # no samconfig.toml unless a test writes one
    return moto


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """The real template.yaml, copied once per test so every deploy in a test reads the same."""
    copy = tmp_path / "template.yaml"
    shutil.copyfile(REPO / "template.yaml", copy)
    return copy


def deploy_argv(
    stack: str, zip_path: Path, layer_zip: Path, template: Path, *parameters: str
) -> list[str]:
    """``okta-bridge deploy`` of ``stack`` with the two zips, the template and each
    ``KEY=VALUE`` as a ``--parameter``."""
    argv = ["deploy", "--stack-name", stack, "--zip", str(zip_path), "--layer-zip", str(layer_zip)]
    argv += ["--template", str(template)]
    for parameter in parameters:
        argv += ["--parameter", parameter]
    return argv


SIGNING_PROFILE = "okta_bridge_release"
"""The AWS Signer profile of the code signing tests."""


@pytest.fixture
def bucket(aws: Moto) -> str:
    """The default artifact bucket, versioned as `make deploy` creates it (signing needs that)."""
    name = release_aws.default_bucket(aws.account, REGION)
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def profile_arn(aws: Moto) -> str:
    """A Lambda signing profile's version ARN, for CodeSigningProfileVersionArn."""
    signer = boto3.session.Session(region_name=REGION).client("signer")
    created = signer.put_signing_profile(
        profileName=SIGNING_PROFILE, platformId=signing.LAMBDA_PLATFORM
    )
    return str(created["profileVersionArn"])


@pytest.fixture
def fake_zip(tmp_path: Path) -> Path:
    """A tiny stand-in for dist/okta-bridge.zip: deploy only uploads it."""
    path = tmp_path / "okta-bridge.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "okta_bridge/handler.py", "def lambda_handler(event, context):\n    return {}\n"
        )
    return path


@pytest.fixture
def fake_layer_zip(tmp_path: Path) -> Path:
    """A tiny stand-in for dist/okta-bridge-layer.zip: deploy only uploads it."""
    path = tmp_path / "okta-bridge-layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python/okta_bridge/__init__.py", "")
    return path

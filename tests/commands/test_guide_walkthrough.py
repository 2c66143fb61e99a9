"""The guide's local steps, followed on a fresh clone as a first-time deployer would (issue 19).

Each step runs the guide's own shell block (found by what it does, in docs/guide.md) with bash, in
the clone, with a home directory of its own and AWS pointed at moto's server: ``make setup``, the
private directory, the key pair and its JWK, ``creds.json``, ``samconfig.toml`` from 4.2 with the
principal ``make whoami`` prints, the stack, ``make secret`` and the deletion, the same for the
admin app of section 5, and 4.7's variables. The caller is an IAM Identity Center (SSO) session,
whose role has the ``/aws-reserved/sso.amazonaws.com/<region>/`` path that ``AdminPrincipalArns``
needs.

Checked: every file lands in ``$HOME/.okta-bridge`` (mode 700, files 600) and nowhere else, each is
gone once stored, the secrets hold what the bridge and the rotation accept, ``make deploy`` refuses
the samconfig placeholder before uploading anything, and the clone's working tree holds no
credential file, tracked, untracked or ignored. The stack is deployed with the deploy command and
stand-in zips rather than ``make deploy`` (which also builds them: ``make package`` is checked by
test_fresh_clone).
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from okta_bridge.config import Settings
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.secret.credentials import parse_secret
from okta_bridge_dev.release import aws as release_aws
from tests.deploy.conftest import Moto, moto, moto_ca  # noqa: F401 - the fixtures, used by name
from tests.docs.markdown import parse

from .conftest import REPO, Clone

pytestmark = [
    pytest.mark.fresh_clone,
    pytest.mark.filterwarnings("ignore:Tried to parse .* not supported by moto:UserWarning"),
]

GUIDE = parse(REPO / "docs" / "guide.md")
REGION = "ap-northeast-1"
SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_PATH = f"/aws-reserved/sso.amazonaws.com/{REGION}/"
PRIVATE = ".okta-bridge"
# What the guide's steps write: none of it may ever be found in the repository.
CREDENTIAL_FILE = re.compile(
    r"(\.pem|\.key|^(creds|admin).*\.json|^(out|answer|export|diagnose|trail|sign|audit)\.json)$"
)
# Ignored trees that the commands legitimately create (virtual environments, builds, caches).
BUILT = {".git", ".venv", ".venv-313", ".venv-tools", "build", "dist", "__pycache__"}


def _block(*markers: str, skip: tuple[str, ...] = ()) -> str:
    """The first bash block of the guide holding every marker and none of ``skip``."""
    for info, body in GUIDE.blocks:
        if info == "bash" and all(m in body for m in markers) and not any(s in body for s in skip):
            return body
    raise AssertionError(f"the guide has no bash block with {markers}")


def _toml(*markers: str) -> str:
    for info, body in GUIDE.blocks:
        if info == "toml" and all(m in body for m in markers):
            return body
    raise AssertionError(f"the guide has no toml block with {markers}")


class Deployer:
    """A first-time deployer's shell in the clone: their own home, AWS credentials of an SSO
    session, and no AWS_REGION (the region is samconfig.toml's, as the guide says)."""

    def __init__(self, clone: Clone, home: Path, server: Moto, credentials: dict[str, str]) -> None:
        self.clone = clone
        self.home = home
        self.env = {
            **clone.env,
            "HOME": str(home),
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_CA_BUNDLE": str(server.ca_bundle),
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    @property
    def private(self) -> Path:
        return self.home / PRIVATE

    def run(self, script: str, *, ok: bool = True) -> str:
        """``script`` as the guide's reader types it (bash, from the repository root)."""
        done = self.clone.run(["bash", "-e", "-o", "pipefail", "-c", script], script, self.env)
        if ok:
            assert done.returncode == 0, f"{script}\n---\n{done.output[-4000:]}"
        else:
            assert done.returncode != 0, f"{script} should have failed:\n{done.output[-4000:]}"
        return done.output

    def files(self) -> dict[str, int]:
        """The private directory's files and their permission bits."""
        return {p.name: stat.S_IMODE(p.stat().st_mode) for p in self.private.iterdir()}


@pytest.fixture
def sso_session(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:  # noqa: F811
    """Temporary credentials of an IAM Identity Center permission set's role, as `aws sso login`
    gives them: the role lives under /aws-reserved/sso.amazonaws.com/<region>/."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(moto.ca_bundle))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = boto3.session.Session(region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{moto.account}:saml-provider/sso"},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
            }
        ],
    }
    role = session.client("iam").create_role(
        RoleName=SSO_ROLE, Path=SSO_PATH, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]
    assumed = session.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="first.deployer@yourcompany.com"
    )
    # The artifact bucket, made ahead: moto cannot honour the TLS-only policy `make deploy` sets.
    session.client("s3").create_bucket(
        Bucket=release_aws.default_bucket(moto.account, REGION),
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    return dict(assumed["Credentials"])


@pytest.fixture
def deployer(
    clone: Clone,
    moto: Moto,  # noqa: F811
    sso_session: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployer]:
    home = tmp_path_factory.mktemp("home")
    yield Deployer(clone, home, moto, sso_session)
    (clone.root / "samconfig.toml").unlink(missing_ok=True)


def _stand_in_zips(directory: Path) -> tuple[str, ...]:
    function, layer = directory / "okta-bridge.zip", directory / "okta-bridge-layer.zip"
    with zipfile.ZipFile(function, "w") as archive:
        archive.writestr(
            "okta_bridge/handler.py", "def lambda_handler(event, context):\n    pass\n"
        )
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("python/okta_bridge/__init__.py", "")
    return ("--zip", str(function), "--layer-zip", str(layer))


def _output(name: str) -> str:
    """One output of the stack the guide's samconfig.toml names."""
    stacks = boto3.session.Session(region_name=REGION).client("cloudformation")
    outputs = stacks.describe_stacks(StackName="okta-bridge")["Stacks"][0]["Outputs"]
    value = {o["OutputKey"]: o["OutputValue"] for o in outputs}[name]
    assert isinstance(value, str)
    return value


def _secret(name: str) -> str:
    secrets = boto3.session.Session(region_name=REGION).client("secretsmanager")
    value = secrets.get_secret_value(SecretId=_output(name))["SecretString"]
    assert isinstance(value, str)
    return value


def _no_credential_file_in(root: Path) -> list[str]:
    found = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in BUILT]
        found += [
            str(Path(directory, n).relative_to(root)) for n in names if CREDENTIAL_FILE.search(n)
        ]
    return found


def test_the_guides_local_steps_keep_every_credential_out_of_the_repository(
    deployer: Deployer,
    moto: Moto,  # noqa: F811
    tmp_path: Path,
) -> None:
    you = deployer

    # 0.2: the project's environment, which the snippets below run.
    you.run(_block("make setup"))

    # 0.4 and 2.3: the private directory, the key pair, the public JWK.
    you.run(_block("openssl genpkey -algorithm EC", "okta-bridge.pem", skip=("admin",)))
    assert you.files() == {"okta-bridge.pem": 0o600, "okta-bridge.pub.pem": 0o600}
    assert stat.S_IMODE(you.private.stat().st_mode) == 0o700
    jwk = json.loads(you.run(_block("to_jwk", "okta-bridge.pub.pem", skip=("admin",))))
    assert jwk["kty"] == "EC"
    assert "d" not in jwk

    # 3.1: creds.json, next to the key.
    you.run(_block('"private_key": open(', "creds.json"))
    assert you.files()["creds.json"] == 0o600
    pem = (you.private / "okta-bridge.pem").read_text(encoding="ascii")
    settings = Settings.from_env({"BRIDGE_SECRET_ID": "walkthrough"})
    assert parse_secret((you.private / "creds.json").read_text(), settings).key_id == jwk["kid"]

    # 3.2 before the stack exists (4.5): make secret fails, and so nothing is deleted.
    store = _block('make secret FILE="$HOME/.okta-bridge/creds.json"')
    you.run(store, ok=False)
    assert set(you.files()) == {"okta-bridge.pem", "okta-bridge.pub.pem", "creds.json"}

    # 4.2: samconfig.toml from the example, then the guide's minimal file; make deploy refuses its
    # placeholder before anything is uploaded, and make whoami prints the role ARN with its path.
    you.run(_block("cp samconfig.toml.example samconfig.toml"))
    (you.clone.root / "samconfig.toml").write_text(_toml("stack_name", "AdminPrincipalArns"))
    zips = _stand_in_zips(tmp_path)
    refused = you.run(".venv/bin/okta-bridge deploy " + " ".join(zips), ok=False)
    principal = f"arn:aws:iam::{moto.account}:role{SSO_PATH}{SSO_ROLE}"
    assert principal in refused, refused
    whoami = you.run("make --no-print-directory whoami")
    printed = re.search(r"AdminPrincipalArns=(\S+)", whoami)
    assert printed is not None, whoami
    assert printed.group(1) == principal
    config = (you.clone.root / "samconfig.toml").read_text()
    config = re.sub(r"AdminPrincipalArns=\S+?(?=[\s\"])", f"AdminPrincipalArns={principal}", config)
    (you.clone.root / "samconfig.toml").write_text(config)
    you.run(".venv/bin/okta-bridge deploy " + " ".join(zips))

    # 4.6: store the credentials, then delete every local file.
    you.run(store)
    assert you.files() == {}
    stored = parse_secret(_secret("SecretArn"), settings)
    assert stored.private_key == pem
    assert stored.key_id == jwk["kid"]

    # 5.2 and 5.3: the admin app's key, its JWK and admin.json, stored and deleted the same way.
    you.run(_block("openssl genpkey", "okta-bridge-admin.pem"))
    assert set(you.files()) == {"okta-bridge-admin.pem", "okta-bridge-admin.pub.pem"}
    admin_jwk = json.loads(you.run(_block("to_jwk", "okta-bridge-admin.pub.pem")))
    you.run(_block('"org_url": "https://', "admin.json"))
    you.run(_block('make secret ADMIN=1 FILE="$HOME/.okta-bridge/admin.json"'))
    assert you.files() == {}
    admin = parse_admin_secret(_secret("AdminSecretArn"))
    assert admin.key_id == admin_jwk["kid"]

    # 4.7: the stack and region are samconfig's, not the CLI's defaults.
    names = you.run(_block("ob() {") + '\nprintf "%s|%s|%s\\n" "$STACK" "$REGION" "$FN"\n')
    stack, region, function = names.strip().splitlines()[-1].split("|")
    assert (stack, region) == ("okta-bridge", REGION)
    assert function == _output("FunctionName")

    # Nothing of it in the clone: not tracked, not untracked, not even ignored.
    assert _no_credential_file_in(you.clone.root) == []
    assert you.clone.untracked() == []

"""Fixtures for the ``okta-bridge`` CLI: the local stack, its Lambda emulator serving the real
handler, a CloudFormation stack in moto with the outputs the CLI looks up, and an environment that
points boto3 and the bridge at all of them (nothing reaches AWS)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from okta_bridge import handler
from okta_bridge.ops.mints import MINTS
from okta_bridge_dev.cli import main as cli
from okta_bridge_dev.console import Console
from okta_bridge_dev.emulators.lambda_service import LambdaServer
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL, REGION
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

FUNCTION = "okta-bridge"
STACK = "okta-bridge-cli"
BRIDGE_SECRET = "cli/okta_api_creds"
STORED_SECRET = "cli/stored_creds"
ALLOWED_PATHS = "/v1/data,/v1/items,/v1/items/*"
ANSI = "\x1b["

stack = stack_fixture()  # this directory's own local stack


class TtyStringIO(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Captured(Console):
    """A console the test reads; ``tty`` makes standard output (and error) look like a terminal."""

    def __init__(self, *, tty: bool = False, err_tty: bool = False) -> None:
        super().__init__(
            out=TtyStringIO() if tty else io.StringIO(),
            err=TtyStringIO() if err_tty else io.StringIO(),
            ask=lambda prompt: "",
            ask_secret=lambda prompt: "",
            interactive=lambda: False,
        )

    @property
    def stdout(self) -> str:
        assert isinstance(self.out, io.StringIO)
        return self.out.getvalue()

    @property
    def stderr(self) -> str:
        assert isinstance(self.err, io.StringIO)
        return self.err.getvalue()


def run(*argv: str, console: Captured | None = None) -> tuple[int, Captured]:
    """``okta-bridge ARGV`` in this process; (exit code, the console it wrote to)."""
    console = console or Captured()
    return cli.main(list(argv), console=console), console


@pytest.fixture(scope="package")
def lambda_service(stack: LocalStack) -> LambdaServer:
    """The Lambda emulator serving the real bridge handler as ``okta-bridge``."""
    return stack.start_lambda_service({FUNCTION: handler.lambda_handler})


@pytest.fixture(scope="package")
def stored_secret_arn(stack: LocalStack) -> str:
    """A secret for ``secret put`` to write (the bridge reads another one)."""
    return stack.secrets_manager.put_secret(STORED_SECRET, {"placeholder": "1"})


@pytest.fixture(scope="package")
def cfn_stack(stack: LocalStack, stored_secret_arn: str) -> str:
    """A CloudFormation stack in moto whose outputs name the function and the secret."""
    cfn = boto3.session.Session().client(
        "cloudformation",
        region_name=REGION,
        endpoint_url=stack.secrets_manager.endpoint_url,
        verify=str(stack.ca.ca_pem_path),
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
    )
    template = {
        "Parameters": {"AdminPrincipalArns": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "FunctionName": {"Value": FUNCTION},
            "SecretArn": {"Value": stored_secret_arn},
        },
    }
    # moto's caller (arn:aws:sts::<account>:user/moto) is the admin `secret put` requires.
    admin = f"arn:aws:iam::{stack.secrets_manager.account_id}:user/moto"
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "AdminPrincipalArns", "ParameterValue": admin}],
    )
    cfn.close()
    return STACK


@pytest.fixture
def bridge_env(
    stack: LocalStack,
    lambda_service: LambdaServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """The process environment as on a developer's machine pointed at the local stack: boto3
    reaches Lambda, CloudFormation and Secrets Manager there, and the bridge (in the emulator or
    ``diagnose --local``) reads the stack's basic credentials."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BRIDGE_", "OKTA_BRIDGE_")) or name == "NO_COLOR":
            monkeypatch.delenv(name)
    environment = {
        **stack.environment(stack.store_secret("basic", BRIDGE_SECRET), delivery=True),
        **lambda_service.environment(),
        "AWS_ENDPOINT_URL_CLOUDFORMATION": stack.secrets_manager.endpoint_url,
        "AWS_ENDPOINT_URL_STS": stack.secrets_manager.endpoint_url,
        "AWS_ENDPOINT_URL_IAM": stack.secrets_manager.endpoint_url,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "BRIDGE_ALLOWED_PATHS": ALLOWED_PATHS,
        "BRIDGE_METRICS": "off",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no samconfig.toml
    stack.clear_faults()
    handler.set_bridge(None)
    MINTS.clear()  # each test's diagnose asks Okta afresh
    yield environment
    stack.clear_faults()
    handler.set_bridge(None)
    MINTS.clear()
    assert not lambda_service.errors


def assert_no_secrets(stack: LocalStack, text: str) -> None:
    """No credential, key or token the stack generated appears in ``text``."""
    leaked = [value[:8] for value in stack.all_secret_material() if value in text]
    assert not leaked, f"secret material in the output: {leaked}"

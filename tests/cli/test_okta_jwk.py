"""``okta-bridge okta-jwk`` (``make okta-jwk``) against the local stack's KMS (moto over TLS): the
JWK on standard output alone, its kid the key's RFC 7638 thumbprint, the secret's fields on
standard error; one ``error:`` line and the exit code of ``exit_codes`` for a key it cannot use."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from okta_bridge_dev.cli.exit_codes import EXIT_AWS, EXIT_OK, EXIT_USAGE
from okta_bridge_dev.emulators.stack import LocalStack

from .conftest import assert_no_secrets, run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kms_env(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """boto3 pointed at the stack's KMS (its endpoint, CA and dummy credentials), nothing else."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BRIDGE_", "OKTA_BRIDGE_")):
            monkeypatch.delenv(name)
    environment = {
        **stack.environment("unused"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    stack.kms.clear_faults()
    yield environment
    stack.kms.clear_faults()


def kms_client(env: dict[str, str]) -> Any:
    return boto3.session.Session().client(
        "kms",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL_KMS"],
        verify=env["AWS_CA_BUNDLE"],
    )


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638, written out: the required members in lexicographic order, no whitespace."""
    names = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({name: jwk[name] for name in names}, separators=(",", ":"))
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


def pem_of(jwk: dict[str, str]) -> str:
    public = jwt.PyJWK(jwk).key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def secret_fields(stderr: str) -> dict[str, str]:
    """The JSON object stderr ends with (after the one-line hint)."""
    hint, _, fields = stderr.partition("\n")
    assert "Public keys > Add key" in hint
    parsed: dict[str, str] = json.loads(fields)
    return parsed


@pytest.mark.parametrize(("spec", "alg"), [("RSA_2048", "RS256"), ("ECC_NIST_P256", "ES256")])
def test_prints_the_jwk_of_the_key_and_the_secret_fields(
    stack: LocalStack, kms_env: dict[str, str], spec: str, alg: str
) -> None:
    key = stack.kms.create_signing_key(spec)
    code, console = run("okta-jwk", "--key-id", key)
    assert code == EXIT_OK, console.stderr
    jwk = json.loads(console.stdout)  # standard output is the JWK and nothing else
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert jwk["kid"] == thumbprint(jwk)
    assert pem_of(jwk) == stack.kms.public_key_pem(key)
    assert set(jwk) <= {"kty", "n", "e", "crv", "x", "y", "use", "alg", "kid"}  # no "d"
    assert secret_fields(console.stderr) == {
        "kms_key_id": key,
        "key_id": jwk["kid"],
        "key_algorithm": alg,
    }
    assert_no_secrets(stack, console.stdout + console.stderr)


def test_an_alias_is_resolved_to_the_keys_arn_for_the_secret(
    stack: LocalStack, kms_env: dict[str, str]
) -> None:
    key = stack.kms.create_signing_key("ECC_NIST_P256")
    kms = kms_client(kms_env)
    kms.create_alias(AliasName="alias/okta-bridge-okta-signing", TargetKeyId=key)
    kms.close()
    code, console = run("okta-jwk", "--key-id", "alias/okta-bridge-okta-signing")
    assert code == EXIT_OK, console.stderr
    assert secret_fields(console.stderr)["kms_key_id"] == key  # the ARN: an alias may move


def test_the_region_of_a_key_arn_is_used_when_none_is_configured(
    stack: LocalStack, kms_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, console = run("okta-jwk", "--key-id", key)
    assert code == EXIT_OK, console.stderr
    code, console = run("okta-jwk", "--key-id", "alias/anything")
    assert code == EXIT_USAGE
    assert (
        console.stderr == "error: no AWS region: pass --region, use a key ARN, or set AWS_REGION\n"
    )


def test_a_missing_key_is_one_error_line_and_the_aws_exit_code(
    stack: LocalStack, kms_env: dict[str, str]
) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    missing = key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    code, console = run("okta-jwk", "--key-id", missing)
    assert code == EXIT_AWS
    assert console.stdout == ""
    (line,) = console.stderr.splitlines()
    assert line.startswith("error: AWS refused GetPublicKey: NotFoundException")


def test_a_denied_key_is_one_error_line_and_the_aws_exit_code(
    stack: LocalStack, kms_env: dict[str, str]
) -> None:
    key = stack.kms.create_signing_key("RSA_2048")
    stack.kms.inject_error("GetPublicKey", 400, "AccessDeniedException", times=10)
    code, console = run("okta-jwk", "--key-id", key)
    assert code == EXIT_AWS
    assert console.stdout == ""
    (line,) = console.stderr.splitlines()
    assert line.startswith("error: AWS refused GetPublicKey: AccessDeniedException")


@pytest.mark.parametrize(
    ("usage", "spec", "message"),
    [
        ("ENCRYPT_DECRYPT", "RSA_2048", "is a ENCRYPT_DECRYPT key: Okta needs a SIGN_VERIFY key"),
        ("SIGN_VERIFY", "ECC_NIST_P384", "the bridge signs RS256 (RSA_2048 or larger) or ES256"),
    ],
)
def test_a_key_the_bridge_cannot_sign_with_is_a_usage_error(
    kms_env: dict[str, str], usage: str, spec: str, message: str
) -> None:
    kms = kms_client(kms_env)
    key = kms.create_key(KeyUsage=usage, KeySpec=spec)["KeyMetadata"]["Arn"]
    kms.close()
    code, console = run("okta-jwk", "--key-id", key)
    assert code == EXIT_USAGE
    assert console.stdout == ""
    (line,) = console.stderr.splitlines()
    assert line.startswith(f"error: {key}")
    assert message in line


def test_without_a_key_id_it_says_so(kms_env: dict[str, str]) -> None:
    code, console = run("okta-jwk")
    assert code == EXIT_USAGE
    assert "--key-id is required" in console.stderr


def test_local_prints_the_jwk_of_the_kms_rs256_app(kms_env: dict[str, str]) -> None:
    code, console = run("okta-jwk", "--local")
    assert code == EXIT_OK, console.stderr
    jwk = json.loads(console.stdout)
    assert jwk["alg"] == "RS256"
    assert jwk["kid"] == thumbprint(jwk)
    fields = secret_fields(console.stderr)
    assert fields["key_id"] == jwk["kid"]
    assert fields["kms_key_id"].startswith("arn:aws:kms:")


def make(*arguments: str) -> str:
    """``make ARGUMENTS`` in the repository (make from PATH, as the README says); its output,
    without make's "Entering directory" lines (under ``make test`` this make is a nested one)."""
    done = subprocess.run(  # noqa: S603
        ["make", "--no-print-directory", *arguments],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_make_okta_jwk_passes_the_key_and_is_listed_in_help() -> None:
    dry = make("-n", "okta-jwk", "KEY=alias/okta-bridge-okta-signing", "REGION=eu-west-1")
    command = dry.strip().splitlines()[-1]
    program, *arguments = command.split()
    assert program.endswith("/bin/okta-bridge")  # .venv's, or .venv-313's under make test-313
    assert arguments == [
        "okta-jwk", "--key-id", '"alias/okta-bridge-okta-signing"', "--region", '"eu-west-1"',
    ]  # fmt: skip
    assert "make okta-jwk" in make("help")

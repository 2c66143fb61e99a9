"""The setup guides (docs/guide.md and docs/guide.zh-CN.md) stay in step and stay true.

The two languages must have the same headings (level and number), the same commands (every fenced
block identical, except mermaid diagrams whose labels are translated), the same tables (rows and
the names in their first column), every deployment parameter and make target, and a runbook that
maps every error code the bridge can answer. The key and secret snippets are run for real.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from okta_bridge.config import Settings
from okta_bridge.errors import CATALOG
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.secret.credentials import parse_secret
from tests.support.cfn import load_template

from .markdown import BACKTICKED, Doc, paired_rows, parse, section

ROOT = Path(__file__).resolve().parents[2]
GUIDES = {"en": ROOT / "docs" / "guide.md", "zh": ROOT / "docs" / "guide.zh-CN.md"}

# The template's parameters, as fixed by the deployment contract.
CONTRACT_PARAMETERS = (
    "SecretName",
    "RotationDays",
    "Architecture",
    "MemorySize",
    "Timeout",
    "ReservedConcurrency",
    "LogRetentionDays",
    "LogLevel",
    "Scopes",
    "AllowedPaths",
    "TokenUrl",
    "ApiBaseUrl",
    "CaBundleFile",
    "HttpsProxy",
    "NoProxy",
    "AlarmEmail",
    "CodeSigningProfileVersionArn",
    "AdminPrincipalArns",
    "VpcId",
    "SubnetIds",
    "CorporateCidrs",
    "OktaCidrs",
    "CreateSecretsManagerEndpoint",
    "CorporateNetwork",
    "RouteTableIds",
    "PeeringConnectionId",
    "TransitGatewayId",
    "RelaySubnetId",
    "RelayInstanceType",
    "RelayAmiParameter",
    "CustomerGatewayIp",
    "CustomerGatewayBgpAsn",
    "EnableFlowLogs",
    "ConsumerRoleArns",
)
CONTRACT_OUTPUTS = (
    "FunctionArn",
    "FunctionName",
    "SecretArn",
    "SecretName",
    "RoleArn",
    "LogGroupName",
    "DashboardUrl",
    "KmsKeyArn",
    "RotationFunctionName",
    "AdminSecretArn",
    "AdminSecretName",
    "LayerArn",
    "ConsumerPolicyArn",
)
MAKE_TARGETS = (
    "deploy",
    "secret",
    "rotate-now",
    "destroy",
    "package",
    "layer",
    "validate",
    "demo",
    "test",
)
RUNBOOK_NUMBER = "7.2"

CODE_TOKEN = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")


@pytest.fixture(scope="module")
def guides() -> dict[str, Doc]:
    return {lang: parse(path) for lang, path in GUIDES.items()}


def test_both_guides_have_the_same_number_of_sections_at_each_level(
    guides: dict[str, Doc],
) -> None:
    en, zh = guides["en"], guides["zh"]
    for level in range(1, 7):
        count_en = sum(1 for h in en.headings if h.level == level)
        count_zh = sum(1 for h in zh.headings if h.level == level)
        assert count_en == count_zh, f"level {level}: {count_en} English, {count_zh} Chinese"


def test_sections_are_numbered_alike_and_in_the_same_order(guides: dict[str, Doc]) -> None:
    en = [(h.level, h.number) for h in guides["en"].headings]
    zh = [(h.level, h.number) for h in guides["zh"].headings]
    assert en == zh
    numbered = [number for level, number in en if level >= 2]
    assert all(numbered), "every section below the title carries a number"
    assert len(set(numbered)) == len(numbered), "section numbers are unique"


def test_fenced_blocks_are_identical_in_both_languages(guides: dict[str, Doc]) -> None:
    en, zh = guides["en"].blocks, guides["zh"].blocks
    assert [info for info, _ in en] == [info for info, _ in zh], "block languages differ"
    for number, ((info, body_en), (_, body_zh)) in enumerate(zip(en, zh, strict=True), 1):
        if info == "mermaid":
            continue  # the diagram's labels are translated; its presence and place are checked
        assert body_en == body_zh, f"fenced block {number} ({info or 'plain'}) differs"


def test_there_is_an_architecture_diagram(guides: dict[str, Doc]) -> None:
    for lang, guide in guides.items():
        assert any(info == "mermaid" for info, _ in guide.blocks), lang


def test_tables_match_row_for_row(guides: dict[str, Doc]) -> None:
    for number, row_en, row_zh in paired_rows(guides["en"].tables, guides["zh"].tables):
        names_en = BACKTICKED.findall(row_en[0])
        names_zh = BACKTICKED.findall(row_zh[0])
        assert names_en == names_zh, f"table {number}: first column {names_en} != {names_zh}"


@pytest.mark.parametrize("name", CONTRACT_PARAMETERS + CONTRACT_OUTPUTS)
def test_every_contract_parameter_and_output_is_documented(
    guides: dict[str, Doc], name: str
) -> None:
    for lang, guide in guides.items():
        assert f"`{name}`" in guide.text, f"{name} missing from the {lang} guide"


def test_the_parameter_table_lists_every_parameter(guides: dict[str, Doc]) -> None:
    for lang, guide in guides.items():
        first_column = {
            name for table in guide.tables for row in table for name in BACKTICKED.findall(row[0])
        }
        missing = sorted(set(CONTRACT_PARAMETERS) - first_column)
        assert not missing, f"{lang}: parameters without a table row: {missing}"


def test_every_template_parameter_is_documented(guides: dict[str, Doc]) -> None:
    template = ROOT / "template.yaml"
    if not template.exists():
        pytest.skip("template.yaml is not in the repository yet")

    document = load_template(template)
    for name in document.get("Parameters", {}):
        for lang, guide in guides.items():
            assert f"`{name}`" in guide.text, f"template parameter {name} missing ({lang})"


def test_the_runbook_maps_every_error_code(guides: dict[str, Doc]) -> None:
    for lang, guide in guides.items():
        runbook = section(guide, RUNBOOK_NUMBER)
        mapped = set(CODE_TOKEN.findall(runbook)) & set(CATALOG)
        missing = sorted(set(CATALOG) - mapped)
        assert not missing, f"{lang} runbook does not map: {missing}"


def test_every_error_code_named_in_the_guides_exists(guides: dict[str, Doc]) -> None:
    stages = (
        "CONFIG_",
        "SECRET_",
        "TOKEN_",
        "UPSTREAM_",
        "TLS_",
        "BAD_",
        "PATH_",
        "METHOD_",
        "ROTATION_",
    )
    for lang, guide in guides.items():
        named = {t for t in CODE_TOKEN.findall(guide.prose) if t.startswith(stages)}
        unknown = sorted(named - set(CATALOG))
        assert not unknown, f"{lang} names codes the bridge never answers: {unknown}"


def test_the_runbook_codes_are_the_same_in_both_languages(guides: dict[str, Doc]) -> None:
    en = CODE_TOKEN.findall(section(guides["en"], RUNBOOK_NUMBER))
    zh = CODE_TOKEN.findall(section(guides["zh"], RUNBOOK_NUMBER))
    assert sorted(set(en)) == sorted(set(zh))


@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_every_make_target_is_shown(guides: dict[str, Doc], target: str) -> None:
    pattern = re.compile(rf"\bmake {target}\b")
    for lang, guide in guides.items():
        assert pattern.search(guide.text), f"`make {target}` missing from the {lang} guide"


def test_make_targets_named_in_the_guides_exist(guides: dict[str, Doc]) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([a-z0-9-]+):", makefile, flags=re.MULTILINE))
    for lang, guide in guides.items():
        used = set(re.findall(r"(?:^|`)make ([a-z][a-z0-9-]*)", guide.text, flags=re.MULTILINE))
        unknown = sorted(used - defined)
        assert not unknown, f"{lang} uses make targets the Makefile lacks: {unknown}"


def test_secrets_are_never_passed_on_a_command_line(guides: dict[str, Doc]) -> None:
    for info, body in guides["en"].blocks:
        if info == "bash":
            assert "--secret-string" not in body
            assert "put-secret-value" not in body


def test_the_guides_link_to_each_other(guides: dict[str, Doc]) -> None:
    assert "(guide.zh-CN.md)" in guides["en"].text
    assert "(guide.md)" in guides["zh"].text


# The snippets that make key material and the secret file are run as the guide shows them.


def _heredoc(guide: Doc, marker: str) -> tuple[list[str], str]:
    """The arguments and the Python program of the first heredoc block containing ``marker``."""
    for info, body in guide.blocks:
        if info != "bash" or marker not in body:
            continue
        lines = body.splitlines()
        start = next(i for i, line in enumerate(lines) if "<<'EOF'" in line)
        end = lines.index("EOF", start)
        command = shlex.split(lines[start].split("<<'EOF'")[0].split(">")[0])
        arguments = command[command.index("-") + 1 :]
        return arguments, "\n".join(lines[start + 1 : end]) + "\n"
    raise AssertionError(f"no bash block with {marker!r}")


def _here(argument: str, home: Path) -> str:
    """A snippet's argument as the shell would pass it, with ``$HOME`` the test's directory."""
    return argument.replace("$HOME", str(home))


def _place(argument: str, home: Path) -> Path:
    """Where a snippet's file argument lands (relative to ``home``), its directory made."""
    path = home / _here(argument, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _run(program: str, arguments: list[str], cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603 - the guide's own snippet, run with this interpreter
        [sys.executable, "-", *(_here(argument, cwd) for argument in arguments)],
        input=program,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _write_key(path: Path, kind: str) -> None:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "EC":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.with_suffix(".pub.pem").write_bytes(public)


@pytest.mark.parametrize(("kind", "alg"), [("EC", "ES256"), ("RSA", "RS256")])
def test_the_jwk_snippet_prints_a_public_jwk_with_the_kid(
    guides: dict[str, Doc], tmp_path: Path, kind: str, alg: str
) -> None:
    arguments, program = _heredoc(guides["en"], "to_jwk")
    public_path, kid = arguments
    _write_key(_place(public_path.replace(".pub.pem", ".pem"), tmp_path), kind)
    jwk = json.loads(_run(program, arguments, tmp_path))
    assert jwk["kty"] == kind
    assert jwk["kid"] == kid
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert "key_ops" not in jwk
    assert "d" not in jwk, "the JWK must hold the public key only"


def test_the_secret_snippet_writes_json_the_bridge_accepts(
    guides: dict[str, Doc], tmp_path: Path
) -> None:
    arguments, program = _heredoc(guides["en"], '"private_key": open(')
    (key_path,) = arguments
    _write_key(_place(key_path, tmp_path), "EC")
    raw = _run(program, arguments, tmp_path)
    credentials = parse_secret(raw, Settings.from_env({"BRIDGE_SECRET_ID": "test"}))
    assert credentials.auth_method == "private_key_jwt"
    assert credentials.private_key is not None
    assert credentials.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert credentials.key_id is not None


def test_the_admin_secret_snippet_writes_json_the_rotation_accepts(
    guides: dict[str, Doc], tmp_path: Path
) -> None:
    arguments, program = _heredoc(guides["en"], '"org_url": "https://')
    (key_path,) = arguments
    _write_key(_place(key_path, tmp_path), "EC")
    admin = parse_admin_secret(_run(program, arguments, tmp_path))
    assert admin.auth_method == "private_key_jwt"
    assert admin.token_url.endswith("/oauth2/v1/token"), "the org authorization server"
    assert admin.key_id is not None


def test_the_cloudtrail_snippet_lists_who_read_the_secret(
    guides: dict[str, Doc], tmp_path: Path
) -> None:
    arguments, program = _heredoc(guides["en"], "GetSecretValue")
    trail, name = arguments

    def event(arn: str, secret: str, error: str | None = None) -> str:
        record: dict[str, Any] = {
            "userIdentity": {"arn": arn},
            "sourceIPAddress": "192.0.2.10",
            "requestParameters": {"secretId": secret},
        }
        if error is not None:
            record["errorCode"] = error
            record["requestParameters"] = None
        return json.dumps(record)

    bridge = "arn:aws:sts::123456789012:assumed-role/okta-bridge-prod-BridgeRole-AbC/okta-bridge"
    events = [
        event(bridge, f"arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:{name}-AbCdEf"),
        event(bridge, name),
        event("arn:aws:iam::123456789012:user/mallory", name, error="AccessDenied"),
        event("arn:aws:iam::123456789012:user/other", "someone/elses_secret"),
    ]
    _place(trail, tmp_path).write_text(json.dumps(events), encoding="utf-8")
    lines = _run(program, arguments, tmp_path).splitlines()
    assert sum(1 for line in lines if bridge in line) == 2, lines  # by name and by ARN
    assert any("mallory" in line and "AccessDenied" in line for line in lines), lines
    assert not any("user/other" in line for line in lines), "another secret's reads are left out"


def test_the_json_examples_are_valid_secrets(guides: dict[str, Doc]) -> None:
    settings = Settings.from_env({"BRIDGE_SECRET_ID": "test"})
    examples = [
        body for info, body in guides["en"].blocks if info == "json" and "client_id" in body
    ]
    assert len(examples) >= 4
    for body in examples:
        data = json.loads(body)
        if "PRIVATE KEY" in data.get("private_key", ""):
            continue  # shortened on purpose; the snippet above makes a real one
        credentials = parse_secret(body, settings)
        assert credentials.client_id

"""The guide as a first-time deployer follows it (issue 19): where they got stuck, what was out of
date, and what weakened security stay fixed, in both languages.

- It opens with a checklist (roles, tools, values) and the Chinese guide has a glossary.
- Every samconfig example names ``AdminPrincipalArns``, which ``make whoami`` prints.
- Every credential file a step writes goes to ``$HOME/.okta-bridge``, never the repository, and
  ``.gitignore`` catches a copy made there by mistake.
- No step turns a security control off without saying, there, what is lost.
- Okta console labels and app names are the current ones; Chinese terms are the agreed ones.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .markdown import Doc, parse, section

ROOT = Path(__file__).resolve().parents[2]
DOCS = {
    "guide.en": ROOT / "docs" / "guide.md",
    "guide.zh": ROOT / "docs" / "guide.zh-CN.md",
    "runbook.en": ROOT / "docs" / "runbook.md",
    "runbook.zh": ROOT / "docs" / "runbook.zh-CN.md",
}
PRIVATE = '"$HOME/.okta-bridge/'
# The files the steps create: keys, the two credential files, answers, reports and audit trails.
CREDENTIAL_FILE = re.compile(
    r"""[^\s'"=]*(?:okta-bridge[\w-]*\.pem|"""
    r"""(?:creds|admin|out|answer|export|diagnose|trail|sign|audit)\.json)"""
)


@pytest.fixture(scope="module")
def docs() -> dict[str, Doc]:
    return {name: parse(path) for name, path in DOCS.items()}


def _lang(name: str) -> str:
    return name.split(".")[1]


def _instructions(doc: Doc) -> list[str]:
    """What a reader types: the shell blocks, and the commands quoted in the prose (inline code
    with a space in it; a lone file name is a name, not an instruction)."""
    inline = [code for code in re.findall(r"`([^`\n]+)`", doc.prose) if " " in code]
    return [body for info, body in doc.blocks if info in ("bash", "sh", "")] + inline


# The checklist and the glossary.


@pytest.mark.parametrize(("lang", "title"), [("en", "checklist"), ("zh", "清单")])
def test_the_guide_opens_with_the_first_deployment_checklist(
    docs: dict[str, Doc], lang: str, title: str
) -> None:
    guide = docs[f"guide.{lang}"]
    first = next(h for h in guide.headings if h.level == 2)
    assert first.number == "0", first
    assert title in first.text.lower()
    checklist = section(guide, "0")
    overview = section(guide, "1")
    assert len(checklist) < len(overview) * 2, "a checklist, not a second guide"
    for needed in (
        "make whoami",  # the AWS principal for AdminPrincipalArns
        "Super Admin",  # the Okta role the admin app's grants need
        "3.13",  # Lambda's Python, for make package
        "PIP_INDEX_URL",  # a PyPI mirror, for readers in mainland China
        "Session Manager",  # aws ssm start-session, for the relay
        "AdminPrincipalArns",
        "$HOME/.okta-bridge",
    ):
        assert needed in checklist, f"{lang}: the checklist does not mention {needed}"


def test_the_chinese_guide_has_a_glossary(docs: dict[str, Doc]) -> None:
    guide = docs["guide.zh"]
    heading = next((h for h in guide.headings if "术语" in h.text), None)
    assert heading is not None, "no glossary (术语表) in the Chinese guide"
    glossary = section(guide, heading.number)
    for term in (
        "密钥",
        "客户端密钥",
        "桥接函数",
        "轮换函数",
        "作用域",
        "受众",
        "密码模式",
        "客户端凭证模式",
    ):
        assert term in glossary, f"the glossary does not define {term}"


# AdminPrincipalArns wherever a samconfig is shown.


def test_every_samconfig_example_names_the_admin_principals(docs: dict[str, Doc]) -> None:
    examples = [
        (name, body)
        for name, doc in docs.items()
        for info, body in doc.blocks
        if "parameter_overrides" in body and info in ("toml", "bash", "")
    ]
    assert examples, "the guides show no samconfig example"
    for name, body in examples:
        for line in body.splitlines():
            if re.match(r"\s*#?\s*parameter_overrides\s*=", line):
                assert "AdminPrincipalArns=" in line, f"{name}: {line.strip()[:80]}..."


def test_the_example_samconfig_names_the_admin_principals_on_every_parameter_line() -> None:
    example = (ROOT / "samconfig.toml.example").read_text(encoding="utf-8")
    lines = [
        line for line in example.splitlines() if re.match(r"\s*#?\s*parameter_overrides\s*=", line)
    ]
    assert len(lines) >= 3
    for line in lines:
        assert "AdminPrincipalArns=" in line, line[:80]


# Credential files: in the private directory, never in the repository.


def test_every_credential_file_a_step_names_is_in_the_private_directory(
    docs: dict[str, Doc],
) -> None:
    for name, doc in docs.items():
        for text in _instructions(doc):
            for match in CREDENTIAL_FILE.finditer(text):
                start = match.start()
                prefix = text[max(0, start - len(PRIVATE)) : start + len(PRIVATE)]
                assert PRIVATE in prefix or match.group(0).startswith("$HOME/.okta-bridge/"), (
                    f"{name}: {text[max(0, start - 40) : match.end() + 10]!r}"
                )


def test_no_step_needs_shred(docs: dict[str, Doc]) -> None:
    """shred is absent on macOS, and overwriting does not erase on SSDs or copy-on-write disks."""
    for name, doc in docs.items():
        for _info, body in doc.blocks:
            assert "shred" not in body, f"{name}: a shell block uses shred"


@pytest.mark.parametrize(
    "name",
    [
        "okta-bridge.pem",
        "okta-bridge-admin.pem",
        "creds.json",
        "admin.json",
        "out.json",
        "answer.json",
        "diagnose.json",
        "x.key",
    ],
)
@pytest.mark.parametrize("where", ["", "docs/"])
def test_gitignore_catches_a_credential_file_left_in_the_repository(name: str, where: str) -> None:
    checked = subprocess.run(  # noqa: S603 - git with fixed arguments
        ["git", "check-ignore", "--no-index", "--quiet", f"{where}{name}"],  # noqa: S607
        cwd=ROOT,
        check=False,
    )
    assert checked.returncode == 0, f"{where}{name} is not ignored"


# Security controls are not switched off without saying what is lost.

# Instructions that switch a control off, and how the text nearby must say what that costs.
STATED_LOSS = re.compile("What you lose:|失去的保护:")
WEAKENINGS = (
    (
        re.compile(r"code signing (?:off|关闭)|关闭代码签名|turn(?:ing)? code signing off"),
        STATED_LOSS,
    ),
    (
        re.compile(r"OktaCidrs[^.\n。]*(?:empty|为空|留空)"),
        re.compile(
            "What you lose:|失去的保护:|any address|whole internet|任意地址|任何地址|整个互联网"
        ),
    ),
    (re.compile(r"AllowAnonymousProxy=on"), re.compile(r"\bnever\b|绝不|切勿|不要")),
)


def _paragraphs(doc: Doc) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", doc.prose) if p.strip()]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_turning_a_control_off_says_what_you_lose(docs: dict[str, Doc], lang: str) -> None:
    paragraphs = _paragraphs(docs[f"guide.{lang}"])
    for index, paragraph in enumerate(paragraphs):
        nearby = " ".join("\n".join(paragraphs[max(0, index - 1) : index + 2]).split())
        nearby += "\n" + "".join(nearby.split())  # Chinese wraps a phrase anywhere
        for weakening, loss in WEAKENINGS:
            if weakening.search(paragraph):
                assert loss.search(nearby), f"{lang}: {paragraph.strip()[:200]}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_rotation_schedule_that_is_rotation_off(docs: dict[str, Doc], lang: str) -> None:
    assert "RotationDays=1000" not in docs[f"guide.{lang}"].text


def test_the_admin_app_checks_public_client_app_admins(docs: dict[str, Doc]) -> None:
    for lang in ("en", "zh"):
        text = " ".join(section(docs[f"guide.{lang}"], "5.2").split())
        assert "Public client app admins" in text, lang


def test_the_admin_app_key_is_made_locally_and_gets_no_broad_role(docs: dict[str, Doc]) -> None:
    for lang, negation in (
        ("en", re.compile(r"\b(?:not|never|no)\b")),
        ("zh", re.compile("不|勿|禁止")),
    ):
        text = section(docs[f"guide.{lang}"], "5.2")
        assert "openssl genpkey" in text, f"{lang}: 5.2 lets Okta generate the key"
        for sentence in re.split(r"(?<=[.。])\s*", text):
            if "Application Administrator" in sentence or "Generate new key" in sentence:
                assert negation.search(sentence), f"{lang}: {sentence.strip()[:160]}"


# Current console labels, one name per thing, and the agreed Chinese terms.


def test_console_labels_and_names_are_current(docs: dict[str, Doc]) -> None:
    for name, doc in docs.items():
        assert "**Applications > Applications**" not in doc.text, name
        assert "okta-bridge-prod" not in doc.text, name
    for lang in ("en", "zh"):
        assert "**Applications and Resources > Applications**" in docs[f"guide.{lang}"].text


@pytest.mark.parametrize("name", ["guide.zh", "runbook.zh"])
def test_the_chinese_docs_use_the_agreed_terms(docs: dict[str, Doc], name: str) -> None:
    prose = docs[name].prose
    for avoided, use in (
        ("应答", "响应"),
        ("错误目录", "错误码表"),
        ("待定版本", "待处理版本"),
        ("鉴权", "IAM 授权"),
    ):
        assert avoided not in prose, f"{name}: {avoided} (use {use})"


def test_every_aws_command_after_the_outputs_names_the_region(docs: dict[str, Doc]) -> None:
    """4.7 reads the stack and the region from samconfig.toml; the AWS CLI's default region may be
    another one, so each command that uses those outputs says --region."""
    for lang in ("en", "zh"):
        guide = docs[f"guide.{lang}"]
        for info, body in guide.blocks:
            if info != "bash":
                continue
            for line in body.splitlines():
                uses_outputs = re.search(r"\$(?:\{)?(?:FN|LOG_GROUP|STACK)\b", line)
                if line.startswith("aws ") and uses_outputs:
                    assert '--region "$REGION"' in line, f"{lang}: {line[:100]}"


# Where the guide lets a reader switch a control off, it says there what is lost: the MFA of the
# password account (2.8), a gateway's Bearer exception (2.9), an empty OktaCidrs (4.3), no admin
# app and DPoP off for it (5.2), code signing off (7.5), no Signer in the China regions (4.13),
# each environment's own DPoP key given up for the shared token cache (4.14).
LOSSES = {"2.8": 1, "2.9": 1, "4.3": 1, "4.13": 1, "4.14": 1, "5.2": 2, "7.5": 1}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_switch_off_says_what_you_lose_in_its_section(docs: dict[str, Doc], lang: str) -> None:
    mark = {"en": "What you lose:", "zh": "失去的保护:"}[lang]
    guide = docs[f"guide.{lang}"]
    for number, expected in LOSSES.items():
        text = " ".join(section(guide, number).split())
        assert text.count(mark) >= expected, f"{lang} {number}: {mark} missing"


def test_what_you_lose_notes_are_the_same_in_both_languages(docs: dict[str, Doc]) -> None:
    en = " ".join(docs["guide.en"].text.split()).count("What you lose:")
    zh = " ".join(docs["guide.zh"].text.split()).count("失去的保护:")
    assert en == zh >= sum(LOSSES.values())


def test_a_failed_make_secret_deletes_no_file(docs: dict[str, Doc]) -> None:
    """The files are deleted only once stored: ``make secret ... &&`` then ``rm -f``."""
    chained = 0
    for name, doc in docs.items():
        for info, body in doc.blocks:
            if info != "bash" or "make secret" not in body or "rm -f" not in body:
                continue
            lines = [line.strip() for line in body.splitlines() if line.strip()]
            for index, line in enumerate(lines):
                if line.startswith("rm -f"):
                    previous = lines[index - 1] if index else ""
                    assert previous.endswith("&&"), f"{name}: {body[:120]}"
                    chained += 1
    assert chained >= 6, "3.2, 4.6 and 5.3 in both languages store and delete"

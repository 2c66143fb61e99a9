"""The error codes are a contract: every code raised exists in the catalog, and is documented."""

from __future__ import annotations

import re
from pathlib import Path

from okta_bridge import errors

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "src" / "okta_bridge").rglob("*.py"))
# A quoted upper-case code passed to an error, a Target, or a mapping table.
CODE = re.compile(r'"((?:[A-Z]+_)+[A-Z]+)"')
# Upper-case words of AWS's APIs, not codes of ours: KMS's KeyUsage values.
AWS_WORDS = frozenset({"SIGN_VERIFY", "ENCRYPT_DECRYPT"})


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        if path.name in ("errors.py", "config.py"):
            continue  # the catalog itself; config.py holds variable names
        found |= {
            c
            for c in CODE.findall(path.read_text())
            if not c.startswith(("BRIDGE_", "AWS_", "X_")) and c not in AWS_WORDS
        }
    return found


def test_every_code_used_is_in_the_catalog() -> None:
    used = codes_in_source()
    assert used, "the scan found nothing: the pattern is broken"
    assert used - set(errors.CATALOG) == set()


def test_every_catalog_code_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [code for code in errors.CATALOG if f"`{code}`" not in readme]
    assert missing == []


def test_every_catalog_entry_has_a_hint_and_an_error_status() -> None:
    for code, entry in errors.CATALOG.items():
        assert entry.hint.endswith("."), code
        assert 400 <= entry.status < 600, code

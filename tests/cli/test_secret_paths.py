"""``secret put``: a PEM path typed at the prompt, or given to ``--file``, is read as the shell
would read it (``$HOME/...``, ``${HOME}/...``, ``~/...``), as the guide tells people to type it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from okta_bridge_dev.console import Console
from okta_bridge_dev.release import secret
from okta_bridge_dev.release.errors import UsageError

PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"


def console(answers: list[str], environ: dict[str, str]) -> Console:
    return Console(
        out=io.StringIO(),
        err=io.StringIO(),
        ask=lambda prompt: answers.pop(0),
        ask_secret=lambda prompt: answers.pop(0),
        interactive=lambda: True,
        environ=environ,
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``$HOME/.okta-bridge`` with the key and a creds.json (HOME set for ``~``)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    private = tmp_path / ".okta-bridge"
    private.mkdir(mode=0o700)
    (private / "okta-bridge-admin.pem").write_text(PEM)
    (private / "creds.json").write_text(json.dumps({"client_id": "0oa1"}))
    (private / "creds.json").chmod(0o600)
    return tmp_path


@pytest.mark.parametrize(
    "typed",
    [
        "$HOME/.okta-bridge/okta-bridge-admin.pem",
        "${HOME}/.okta-bridge/okta-bridge-admin.pem",
        "~/.okta-bridge/okta-bridge-admin.pem",
        "  $HOME/.okta-bridge/okta-bridge-admin.pem  ",
    ],
)
def test_the_admin_prompt_reads_a_pem_path_as_the_shell_would(home: Path, typed: str) -> None:
    answers = ["https://example.okta.com", "0oa1admin", typed, "kid-1", ""]
    values = secret.prompt_admin_credentials(console(answers, {"HOME": str(home)}))
    assert values["private_key"] == PEM


def test_the_credentials_prompt_reads_a_pem_path_as_the_shell_would(home: Path) -> None:
    answers = [
        "0oa1",
        "https://example.okta.com/oauth2/default/v1/token",
        "https://api.example.com/v1/data",
        "private_key_jwt",
        "",  # no KMS key: a PEM file
        "$OKTA_DIR/okta-bridge-admin.pem",
        "kid-1",
        "",
        "",
        "",
    ]
    environ = {"HOME": str(home), "OKTA_DIR": str(home / ".okta-bridge")}
    values = secret.prompt_credentials(console(answers, environ))
    assert values["private_key"] == PEM
    assert values["auth_method"] == "private_key_jwt"


def test_an_unset_variable_is_named_in_the_refusal(home: Path) -> None:
    answers = ["https://example.okta.com", "0oa1admin", "$OKTA_KEYS/admin.pem"]
    with pytest.raises(UsageError) as raised:
        secret.prompt_admin_credentials(console(answers, {"HOME": str(home)}))
    assert "cannot read the private key file '$OKTA_KEYS/admin.pem' ($OKTA_KEYS is not set)" in str(
        raised.value
    )


def test_expand_path_leaves_unset_variables_and_plain_paths_alone(home: Path) -> None:
    environ = {"HOME": str(home)}
    assert secret.expand_path("$HOME/a", environ) == home / "a"
    assert secret.expand_path("$NOPE/a", environ) == Path("$NOPE/a")
    assert secret.expand_path("creds.json", environ) == Path("creds.json")
    assert secret.expand_path("~/a", environ) == home / "a"

"""Secret put: store the Okta credentials (or the admin app's) in the stack's secret.

Secret values are never accepted on the command line (shell history, ``ps``): they come from a
file, standard input or a no-echo prompt, are validated as the bridge (or the rotation function)
would read them, and are never printed.
"""

from __future__ import annotations

import json
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from okta_bridge.auth.client_auth import KEYS
from okta_bridge.config import Settings
from okta_bridge.errors import RotationError, SecretError
from okta_bridge.rotation.admin_secret import parse_admin_secret
from okta_bridge.secret.credentials import SECRET_KEYS, parse_secret
from okta_bridge_dev.console import Console
from okta_bridge_dev.release import principal as who
from okta_bridge_dev.release import stacks
from okta_bridge_dev.release.aws import Aws, DeployConfig
from okta_bridge_dev.release.errors import DeployError, UsageError

__all__ = [
    "SECRET_KEYS",
    "check_admin",
    "expand_path",
    "prompt_admin_credentials",
    "prompt_credentials",
    "put_secret",
    "validate_admin_secret",
    "validate_secret",
]


def put_secret(
    config: DeployConfig, console: Console, *, file: Path | None = None, admin: bool = False
) -> None:
    """Validate the credentials and store them as the stack's secret value (``admin``: the
    admin app's, in the admin secret). ``file`` ``-`` is standard input; None prompts.

    Raises ``UsageError`` for credentials the bridge would refuse (naming the key) or no way to
    read them, ``StackNotFound``/``DeployError`` when the stack or its secret is missing.
    """
    aws = Aws.connect(config)
    cfn = aws.client("cloudformation")
    outputs = stacks.stack_outputs(cfn, config.stack_name)
    parameters = stacks.stack_parameters(cfn, config.stack_name)
    check_admin(who.resolve(aws.client("sts"), aws.client("iam")), parameters, console)
    if admin:
        _store_admin_secret(file, aws, outputs, console)
        return
    secret_arn = outputs.get("SecretArn")
    if not secret_arn:
        raise DeployError(f"stack {config.stack_name} has no SecretArn output: is it okta-bridge?")
    if file is not None:
        text = _read_secret_file(file, console)
    else:
        if not console.interactive():
            raise UsageError("no terminal to prompt on: pass --file creds.json (or --file -)")
        text = json.dumps(prompt_credentials(console))
    keys = validate_secret(text, parameters)
    unknown = sorted(set(keys) - set(SECRET_KEYS))
    if unknown:
        console.say(f"note: the bridge ignores the key(s) {', '.join(unknown)}")
    stored = _put(aws, secret_arn, text)
    console.say(f"stored {', '.join(sorted(keys))} in {secret_arn}")
    console.say(
        f"version {stored.get('VersionId', '?')} is AWSCURRENT; warm functions pick it up within "
        "BRIDGE_SECRET_TTL_SECONDS, or at once on Okta's invalid_client"
    )


def _store_admin_secret(
    file: Path | None, aws: Aws, outputs: Mapping[str, str], console: Console
) -> None:
    """The Okta admin app's credentials, for the rotation function only."""
    secret_arn = outputs.get("AdminSecretArn")
    if not secret_arn:
        raise DeployError("the stack has no AdminSecretArn output: redeploy this version first")
    if file is not None:
        text = _read_secret_file(file, console)
    else:
        if not console.interactive():
            raise UsageError("no terminal to prompt on: pass --file admin.json (or --file -)")
        text = json.dumps(prompt_admin_credentials(console))
    validate_admin_secret(text)
    _put(aws, secret_arn, text)
    console.say(f"stored the admin app's credentials in {secret_arn}")


def check_admin(caller: who.Principal, parameters: Mapping[str, str], console: Console) -> None:
    """Refuse, before reading any credential, a caller not in the stack's AdminPrincipalArns:
    the secret's policy lets only admins write its value (deployers act through CloudFormation).
    """
    who.require(
        caller,
        who.parse_arns(parameters.get("AdminPrincipalArns")),
        f"not stored: {caller.arn} is not in the deployed stack's AdminPrincipalArns, and the "
        "secret's policy lets only those principals (and the account root user) write its "
        "value; then run `make deploy` again",
        console.say,
    )


def _put(aws: Aws, secret_arn: str, text: str) -> dict[str, Any]:
    """put_secret_value, with AWS's refusal turned into what to change."""
    try:
        answer: dict[str, Any] = aws.client("secretsmanager").put_secret_value(
            SecretId=secret_arn, SecretString=text
        )
    except ClientError as exc:
        if not who.denied(exc):
            raise
        raise DeployError(
            f"not stored: AWS denied secretsmanager:PutSecretValue on {secret_arn}: the caller "
            "must be in the stack's AdminPrincipalArns (`make whoami` prints the ARN to add, "
            "then `make deploy`) and have the IAM permission"
        ) from None
    return answer


def validate_admin_secret(text: str) -> None:
    """Refuse an admin secret the rotation function could not use, naming the key at fault."""
    try:
        admin = parse_admin_secret(text)
        KEYS.load(admin.private_key or "")
    except (RotationError, SecretError) as exc:
        raise UsageError(f"the admin credentials were not stored: {exc.message}") from None


def ask_dpop(console: Console) -> bool:
    """Whether the Okta app requires DPoP (Okta's default for new API Services apps)."""
    answer = console.ask(
        "dpop: does the app require DPoP (Okta's default for new API Services apps)? [Y/n]: "
    )
    return answer.strip().lower() not in ("n", "no", "false")


def prompt_admin_credentials(console: Console) -> dict[str, Any]:
    """Ask for the admin app's org URL, client id, private key file, kid and DPoP."""
    values = {
        "org_url": console.ask("org_url (https://<your-org>.okta.com, not an auth server): "),
        "client_id": console.ask("client_id (the okta-bridge-admin API Services app): "),
    }
    values["private_key"] = _read_key_file(console)
    values["key_id"] = console.ask("key_id (the kid Okta shows for the key): ")
    answers: dict[str, Any] = {
        key: value.strip() if key != "private_key" else value for key, value in values.items()
    }
    answers["dpop"] = ask_dpop(console)
    return answers


_VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def expand_path(text: str, environ: Mapping[str, str]) -> Path:
    """A path as the shell would read it: ``$HOME/...``, ``${HOME}/...``, ``~/...``.

    A path typed at a prompt (or quoted on the command line) reaches the tool unexpanded;
    variables not set in ``environ`` stay as they are (as ``os.path.expandvars`` leaves them).
    """

    def value(match: re.Match[str]) -> str:
        return environ.get(match.group(1) or match.group(2), match.group(0))

    return Path(_VARIABLE.sub(value, text.strip())).expanduser()


def _unset(text: str, environ: Mapping[str, str]) -> str:
    """`` ($NAME is not set)`` for the variables of ``text`` that ``environ`` lacks."""
    names = [a or b for a, b in _VARIABLE.findall(text) if (a or b) not in environ]
    return f" (${', $'.join(names)} {'is' if len(names) == 1 else 'are'} not set)" if names else ""


def _read_key_file(console: Console) -> str:
    """The PEM file whose path the person types (``$HOME/...`` and ``~/...`` work)."""
    typed = console.ask("private_key: path of the PEM file: ").strip()
    path = expand_path(typed, console.environ)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        unset = _unset(typed, console.environ)
        raise UsageError(f"cannot read the private key file {typed!r}{unset}: {exc}") from None


def _read_secret_file(given: Path, console: Console) -> str:
    if str(given) == "-":
        return sys.stdin.read().strip()
    path = expand_path(str(given), console.environ)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        shown = str(given) if str(path) == str(given) else f"{given} ({path})"
        raise UsageError(
            f"--file {shown}: no such file{_unset(str(given), console.environ)}"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"--file {path} is not UTF-8 JSON") from None
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        console.say(f"warning: {path} is readable by other users; delete it once stored")
    return text


def validate_secret(text: str, stack_parameters: Mapping[str, str]) -> list[str]:
    """The keys of a secret the bridge accepts; ``UsageError`` naming the key otherwise.

    The stack's TokenUrl/ApiBaseUrl parameters become ``BRIDGE_TOKEN_URL``/``BRIDGE_API_BASE_URL``
    and replace the matching secret keys, so a secret without them is valid for such a stack.
    """
    settings = Settings(
        secret_id="x",  # noqa: S106 - parse_secret only needs a placeholder id
        token_url=stack_parameters.get("TokenUrl") or None,
        api_base_url=stack_parameters.get("ApiBaseUrl") or None,
    )
    try:
        parse_secret(text, settings)
    except SecretError as exc:
        raise UsageError(f"the credentials were not stored: {exc.message}") from None
    data = json.loads(text)
    return [str(key) for key in data]


def prompt_credentials(console: Console) -> dict[str, Any]:
    """Ask for each key: no echo for secrets, a file path for the private key."""
    values: dict[str, Any] = {}

    def ask(key: str, prompt: str, *, secret: bool = False, default: str = "") -> str:
        asker = console.ask_secret if secret else console.ask
        answer = asker(prompt).strip() or default
        if answer:
            values[key] = answer
        return answer

    ask("client_id", "client_id (the Okta app's client id): ")
    ask("token_url", "token_url (https://<okta>/oauth2/<server>/v1/token): ")
    ask("api_endpoint", "api_endpoint (https://internal-api.../v1/data): ")
    method = ask(
        "auth_method",
        "auth_method [client_secret_basic] (client_secret_post, private_key_jwt): ",
        default="client_secret_basic",
    )
    if method == "private_key_jwt" and ask(
        "kms_key_id", "kms_key_id (a KMS key ARN or alias; Enter for a PEM file instead): "
    ):
        ask("key_id", "key_id (the kid make okta-jwk printed and Okta holds): ")
        ask("key_algorithm", "key_algorithm [RS256] (ES256 for an ECC_NIST_P256 key): ")
    elif method == "private_key_jwt":
        values["private_key"] = _read_key_file(console)
        ask("key_id", "key_id (the kid registered in Okta, recommended): ")
    else:
        ask("client_secret", "client_secret (not echoed): ", secret=True)
    if ask("username", "username (only for the password grant; Enter to skip): "):
        ask("password", "password (not echoed): ", secret=True)
    ask("scopes", "scopes (space-separated; Enter for the stack's default): ")
    values["dpop"] = ask_dpop(console)
    return values

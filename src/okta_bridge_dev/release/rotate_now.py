"""Rotate now: the emergency rotation after a leak, on the deployed stack or the local one.

It asks Secrets Manager to rotate at once (``RotateSecret``), follows the new version until the
rotation function has finished with it, then requests a token with the AWSPREVIOUS (old)
credential and confirms that Okta refuses it. ``okta-bridge rotate --now --local`` runs the same
against the local stack (``okta_bridge_dev/cli/rotate_local.py``, beside the demo: in a clone,
not in the wheel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError, SigningError, TokenError
from okta_bridge.secret.credentials import parse_secret
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.console import Console
from okta_bridge_dev.release import stacks
from okta_bridge_dev.release.aws import Aws, DeployConfig
from okta_bridge_dev.release.errors import DeployError, RotationFailed

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["confirm_old_refused", "rotate_deployed", "rotate_now", "stack_settings"]

POLL_SECONDS = 2.0
REFUSED = frozenset({"TOKEN_REJECTED", "TOKEN_GRANT_INVALID"})


def rotate_now(
    sm: SecretsManagerClient,
    secret_id: str,
    settings: Settings,
    console: Console,
    *,
    timeout: float = 300.0,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Rotate at once, wait for the rotation to finish, confirm the old credential is refused.

    Raises ``RotationFailed`` when the rotation does not finish in time or the old credential
    is not seen refused.
    """
    started = sm.rotate_secret(SecretId=secret_id, RotateImmediately=True)
    token = started["VersionId"]
    console.say(f"rotation started: new version {token}")
    if not _follow(
        sm, secret_id, token, console=console, timeout=timeout, poll=poll, sleep=sleep, clock=clock
    ):
        raise RotationFailed(
            f"the rotation did not finish within {timeout:.0f} s. The rotation function's log "
            "says which step failed and why (its error code is in the guide); Secrets Manager "
            "retries it, and make rotate-now runs it again."
        )
    confirm_old_refused(sm, secret_id, settings, console)


def _follow(
    sm: SecretsManagerClient,
    secret_id: str,
    token: str,
    *,
    console: Console,
    timeout: float,
    poll: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> bool:
    """Report progress until AWSCURRENT is on ``token`` and AWSPENDING is gone (finishSecret)."""
    end = clock() + timeout
    said: set[str] = set()

    def say_once(key: str, text: str) -> None:
        if key not in said:
            said.add(key)
            console.say(text)

    while True:
        stages = sm.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {}).get(token, [])
        if "AWSCURRENT" in stages:
            say_once("current", "  finishSecret: the new version is AWSCURRENT")
            if "AWSPENDING" not in stages:
                say_once("done", "  finishSecret: the old credential is retired in Okta")
                return True
        elif _has_value(sm, secret_id, token):
            say_once("pending", "  createSecret: the new credential is stored as AWSPENDING")
        if clock() >= end:
            return False
        sleep(poll)


def _has_value(sm: SecretsManagerClient, secret_id: str, token: str) -> bool:
    try:
        answer = sm.get_secret_value(SecretId=secret_id, VersionId=token)
    except sm.exceptions.ResourceNotFoundException:
        return False
    return "SecretString" in answer


def confirm_old_refused(
    sm: SecretsManagerClient, secret_id: str, settings: Settings, console: Console
) -> None:
    """Ask Okta for a token with the AWSPREVIOUS credential: it must be refused.

    Says so when it is; raises ``RotationFailed`` when it is not, or cannot be checked.
    """
    try:
        text = sm.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        raise RotationFailed(
            "the secret has no AWSPREVIOUS version: there is no old credential to test"
        ) from None
    old = parse_secret(text, settings)
    endpoint = TokenEndpoint(HttpClient(settings))
    try:
        endpoint.request(old, Deadline(settings.default_deadline))
    except TokenError as exc:
        if exc.code in REFUSED:
            console.say(f"confirmed: Okta refuses the old credential ({exc.code})")
            return
        raise RotationFailed(f"could not confirm from here: {exc}") from exc
    except SigningError as exc:
        if exc.code in SigningError.KEY_UNUSABLE:
            # A KMS-signed app: finishSecret disabled the old key once Okta refused its kid.
            console.say(
                f"confirmed: the old KMS key can no longer sign ({exc.code}); the rotation "
                "function disabled it after Okta refused it"
            )
            return
        raise RotationFailed(f"could not confirm from here: {exc}") from exc
    except BridgeError as exc:
        raise RotationFailed(
            f"could not reach Okta from here to confirm ({exc.code}); the rotation function "
            "logs 'Okta refuses the old credential' when it confirmed it"
        ) from exc
    raise RotationFailed(
        "THE OLD CREDENTIAL STILL GETS A TOKEN: deactivate and delete it in the Okta console now"
    )


def rotate_deployed(
    config: DeployConfig, console: Console, *, ca_bundle: Path | None = None, timeout: float = 300
) -> None:
    """Rotate the deployed stack's credentials at once and confirm the old one is refused."""
    aws = Aws.connect(config)
    cfn = aws.client("cloudformation")
    outputs = stacks.stack_outputs(cfn, config.stack_name)
    secret_arn = outputs.get("SecretArn")
    if not secret_arn:
        raise DeployError(f"stack {config.stack_name} has no SecretArn output: is it okta-bridge?")
    settings = stack_settings(
        stacks.stack_parameters(cfn, config.stack_name), ca_bundle, secret_arn
    )
    rotate_now(aws.client("secretsmanager"), secret_arn, settings, console, timeout=timeout)


def stack_settings(
    parameters: Mapping[str, str], ca_bundle: Path | None, secret_arn: str
) -> Settings:
    """The bridge's settings that matter for a token request, from the stack's parameters."""
    scopes = tuple((parameters.get("Scopes") or "").replace(",", " ").split()) or None
    return Settings(
        secret_id=secret_arn,
        token_url=parameters.get("TokenUrl") or None,
        api_base_url=parameters.get("ApiBaseUrl") or None,
        scopes=scopes,
        ca_bundle=None if ca_bundle is None else str(ca_bundle),
    )

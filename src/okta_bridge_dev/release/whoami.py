"""``make whoami``: the IAM principal ARN the stack's policies will see for the caller, the
parameter line that admits it, and whether the deployed stack already does."""

from __future__ import annotations

from botocore.exceptions import ClientError

from okta_bridge_dev.console import Console
from okta_bridge_dev.release import principal as who
from okta_bridge_dev.release import stacks
from okta_bridge_dev.release.aws import Aws, DeployConfig

__all__ = ["whoami"]


def whoami(config: DeployConfig, console: Console) -> None:
    """Print the caller, the IAM principal ARN the stack's policies see, the parameter line to
    paste, and (when the stack is readable) whether it already admits that principal."""
    aws = Aws.connect(config)
    caller = who.resolve(aws.client("sts"), aws.client("iam"))
    console.say(f"account:   {caller.account} ({aws.region})")
    console.say(f"caller:    {caller.caller_arn}")
    if caller.is_root:
        console.say(f"principal: {caller.arn} (the account root user: always admitted)")
        return
    if caller.kind == "other":
        raise who.refusal(caller, f"{caller.caller_arn} cannot be named in AdminPrincipalArns")
    source = "" if caller.kind != "role" else " (read with iam:GetRole)"
    if not caller.path_known:
        source = " (WITHOUT its path: iam:GetRole was denied)"
    console.say(f"principal: {caller.arn}{source}")
    hint = who.path_hint(caller)
    if hint:
        console.say(f"warning: {hint}")
    console.say("add to parameter_overrides in samconfig.toml (comma-separated with any others):")
    console.say(f"  AdminPrincipalArns={caller.arn}")
    _say_membership(aws, config, caller, console)


def _say_membership(
    aws: Aws, config: DeployConfig, caller: who.Principal, console: Console
) -> None:
    """Whether the deployed stack's parameters already list the principal."""
    stack = config.stack_name
    try:
        parameters = stacks.stack_parameters(aws.client("cloudformation"), stack)
    except ClientError as exc:
        if not who.denied(exc):
            raise
        console.say(f"stack {stack}: its parameters are not readable by this caller")
        return
    if not parameters:
        console.say(f"stack {stack}: not deployed in {aws.region} yet")
        return
    for name in ("AdminPrincipalArns", "DeployerPrincipalArns"):
        verdict = who.admission(caller, who.parse_arns(parameters.get(name)))
        state = "is" if verdict.admitted else "is not"
        console.say(f"stack {stack}: this principal {state} in {name}")

"""Who is calling AWS, as the stack's policies see it: the IAM principal ARN behind the caller.

The secrets' and the key's policies compare ``aws:PrincipalArn`` with ``AdminPrincipalArns`` and
``DeployerPrincipalArns``. For an assumed role that is the role's ARN *with its path*, which
``sts:GetCallerIdentity`` does not show (``…:assumed-role/<name>/<session>``): every IAM Identity
Center role lives under ``/aws-reserved/sso.amazonaws.com/`` (sometimes ``…/<region>/``), so the
path is read with ``iam:GetRole`` rather than guessed. ``make whoami``, ``make deploy`` and
``make secret`` all resolve the caller here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from okta_bridge_dev.release.aws import error_code
from okta_bridge_dev.release.errors import DeployError

__all__ = [
    "PLACEHOLDER",
    "Admission",
    "Principal",
    "admission",
    "denied",
    "iam_arn",
    "parse_arns",
    "path_hint",
    "refusal",
    "require",
    "resolve",
]

PLACEHOLDER = (
    "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/"
    "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
)
"""samconfig.toml.example's AdminPrincipalArns: refused until replaced by `make whoami`'s."""

Kind = Literal["root", "user", "role", "other"]

_CALLER = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)$"
)
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


@dataclass(frozen=True)
class Principal:
    """The caller (as STS reports it) and the IAM ARN that ``aws:PrincipalArn`` carries."""

    caller_arn: str
    arn: str
    account: str
    partition: str
    kind: Kind
    role_name: str | None = None
    path_known: bool = True
    """False when iam:GetRole was denied: ``arn`` is then the role's ARN without its path."""

    @property
    def is_root(self) -> bool:
        """The account root user: the policies always admit it."""
        return self.kind == "root"


def iam_arn(caller_arn: str) -> tuple[str, Kind, str | None]:
    """(the path-less IAM ARN, its kind, the role's name) for a caller ARN, without AWS calls.

    ``sts::<a>:assumed-role/<name>/<s>`` -> ``iam::<a>:role/<name>`` (its path still unknown);
    ``sts::<a>:user/<n>`` (moto's default caller) -> ``iam::<a>:user/<n>``; IAM users and the
    root user as they are. Anything else (a federated user) is returned unchanged, kind other.
    """
    match = _CALLER.match(caller_arn)
    if match is None:
        return caller_arn, "other", None
    partition, service = match["partition"], match["service"]
    account, resource = match["account"], match["resource"]
    prefix = f"arn:{partition}:iam::{account}:"
    if service == "iam" and resource == "root":
        return prefix + "root", "root", None
    if resource.startswith("user/"):
        return prefix + resource, "user", None
    if service == "sts" and resource.startswith("assumed-role/"):
        parts = resource.split("/")
        if len(parts) >= 3 and parts[1]:
            return f"{prefix}role/{parts[1]}", "role", parts[1]
    return caller_arn, "other", None


def resolve(sts: Any, iam: Any) -> Principal:
    """Ask STS who is calling and, for a role, IAM for its ARN with its path.

    When iam:GetRole is refused, the path-less ARN comes back with ``path_known`` False (every
    SSO role has a path, so such an ARN may not match the policies).
    """
    identity = sts.get_caller_identity()
    caller = str(identity["Arn"])
    account = str(identity["Account"])
    arn, kind, role_name = iam_arn(caller)
    match = _CALLER.match(caller)
    partition = match["partition"] if match else "aws"
    if kind != "role" or role_name is None:
        return Principal(caller, arn, account, partition, kind)
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except ClientError as exc:
        if error_code(exc) not in DENIED:
            raise
        return Principal(caller, arn, account, partition, kind, role_name, path_known=False)
    return Principal(caller, str(role["Arn"]), account, partition, kind, role_name)


def parse_arns(value: str | None) -> list[str]:
    """A comma-separated parameter value as a list (empty items dropped)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass(frozen=True)
class Admission:
    """Whether a list of ARNs admits the principal, and a note to print when it is a guess."""

    admitted: bool
    matched: str | None = None
    note: str | None = None


def admission(principal: Principal, arns: Iterable[str]) -> Admission:
    """Root always; else an exact (case-sensitive) ARN; with the path unknown, a listed role of
    the same account whose final name segment matches, with a note saying so."""
    listed = list(arns)
    if principal.is_root:
        return Admission(admitted=True, note="the account root user is always admitted")
    if principal.arn in listed:
        return Admission(admitted=True, matched=principal.arn)
    if principal.kind == "role" and not principal.path_known:
        for arn in listed:
            if _same_role_name(arn, principal):
                return Admission(
                    admitted=True,
                    matched=arn,
                    note=f"iam:GetRole was denied, so {arn} is taken to be this role "
                    f"({principal.role_name}) by its account and name",
                )
    return Admission(admitted=False)


def _same_role_name(arn: str, principal: Principal) -> bool:
    match = _CALLER.match(arn)
    return bool(
        match
        and match["service"] == "iam"
        and match["account"] == principal.account
        and match["resource"].startswith("role/")
        and match["resource"].rsplit("/", 1)[-1] == principal.role_name
    )


def path_hint(principal: Principal) -> str:
    """How to get the role's ARN with its path when iam:GetRole was denied ('' otherwise)."""
    if principal.kind != "role" or principal.path_known:
        return ""
    return (
        f"iam:GetRole was denied, so the role's path is unknown: a role with a path (every "
        f"IAM Identity Center role) needs it; ask an IAM admin for "
        f"`aws iam get-role --role-name {principal.role_name} --query Role.Arn`"
    )


def refusal(principal: Principal, problem: str, *, deployer: bool = False) -> DeployError:
    """The error that says ``problem``, then the parameter line that admits the principal."""
    parts = [problem]
    if principal.kind == "other":
        parts.append(
            f"the caller {principal.caller_arn} is not an IAM user or role: use a role "
            "(aws sso login, or a role's profile)"
        )
    else:
        also = f" (or DeployerPrincipalArns={principal.arn} for a CI role)" if deployer else ""
        parts.append(
            f"add AdminPrincipalArns={principal.arn}{also} to parameter_overrides in "
            "samconfig.toml (comma-separated with any others), as `make whoami` prints it"
        )
    hint = path_hint(principal)
    if hint:
        parts.append(hint)
    return DeployError("; ".join(parts))


def require(
    principal: Principal,
    arns: Iterable[str],
    problem: str,
    say: Callable[[str], None],
    *,
    deployer: bool = False,
) -> None:
    """Go on when ``arns`` admit the principal (saying the note of a guess), else raise the
    ``refusal`` that says ``problem`` and the line to add."""
    verdict = admission(principal, arns)
    if not verdict.admitted:
        raise refusal(principal, problem, deployer=deployer)
    if verdict.note:
        say(f"note: {verdict.note}")


def denied(exc: ClientError) -> bool:
    """Whether AWS refused the call for lack of permission."""
    return error_code(exc) in DENIED

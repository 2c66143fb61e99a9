"""The ``okta-bridge`` exit codes, and the one mapping from an expected failure to its code.

Release functions raise (``okta_bridge_dev.release.errors``, boto3's errors); only the CLI picks
exit codes, here.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserError

from okta_bridge_dev.release.errors import (
    BuildError,
    Cancelled,
    DeployError,
    RotationFailed,
    StackNotFound,
    UsageError,
)

__all__ = [
    "EXIT_AWS",
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "explain",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AWS = 3
EXIT_INTERRUPTED = 130
EXIT_CODES = (
    "Exit codes: 0 ok; 1 the bridge, diagnose or the rotation reported a failure (or the build "
    "or the stack operation failed); 2 usage or configuration error; 3 AWS refused or could not "
    "be reached (credentials, permissions, missing stack); 130 interrupted."
)


def explain(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit code for an expected failure; re-raise anything else."""
    if isinstance(exc, UsageError | Cancelled):
        return str(exc), EXIT_USAGE
    if isinstance(exc, StackNotFound):
        return str(exc), EXIT_AWS
    if isinstance(exc, DeployError | BuildError | RotationFailed):
        return str(exc), EXIT_FAILED
    if isinstance(exc, ProfileNotFound):
        return f"{exc}: check --profile, samconfig profile or AWS_PROFILE", EXIT_USAGE
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE (after `aws sso login`) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            EXIT_AWS,
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION or --region", EXIT_AWS
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return (
            f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}",
            EXIT_AWS,
        )
    if isinstance(exc, BotoCoreError):
        return f"AWS: {exc}", EXIT_AWS
    if isinstance(exc, ResponseParserError):
        return (
            "the AWS endpoint answered something that is not an AWS response "
            "(a proxy's page? a wrong AWS_ENDPOINT_URL?)",
            EXIT_AWS,
        )
    raise exc

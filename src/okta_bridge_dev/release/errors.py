"""The release tooling's expected failures: one small tree, mapped to exit codes by the CLI only.

::

    ReleaseError            an expected failure; the message says what happened and what to do
    ├── UsageError          bad input: configuration, flags, files, the template
    ├── Cancelled           the person said no at a prompt (the command already said so)
    ├── DeployError         a stack operation failed or cannot start
    │   └── StackNotFound   the command needs a stack that does not exist
    ├── BuildError          a build step failed (pip, compileall, lock drift)
    └── RotationFailed      the rotation did not finish, or the old credential was not refused

Release functions raise these and never choose an exit code: ``okta_bridge_dev.cli.exit_codes``
is the one place that turns them (and boto3's errors) into a line and a code.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "Cancelled",
    "DeployError",
    "ReleaseError",
    "RotationFailed",
    "StackNotFound",
    "UsageError",
]


class ReleaseError(Exception):
    """An expected failure of a release step: no traceback, one line for the person."""


class UsageError(ReleaseError):
    """Bad input (template, parameters, files, flags): the message says what to fix."""


class Cancelled(ReleaseError):
    """The person declined at a confirmation prompt; the message is what to tell them."""


class DeployError(ReleaseError):
    """The stack operation failed or cannot start; the message says why and what to do."""


class StackNotFound(DeployError):
    """The command needs a stack that does not exist (in this account and region)."""


class BuildError(ReleaseError):
    """A build step failed (pip, compileall, a lock the filter no longer matches)."""


class RotationFailed(ReleaseError):
    """The rotation did not finish, or Okta was not seen refusing the old credential."""

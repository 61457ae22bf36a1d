"""The error hierarchy, and the one place that maps errors to exit codes.

Every expected failure is a :class:`BundleError`; the CLI prints its message (no traceback unless
``-v`` or ``MOPS_DEBUG=1``) and exits with :attr:`BundleError.exit_code`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, the same for every command."""

    OK = 0
    FAILED = 1  # the operation was attempted and failed (network, integrity, conflict, I/O)
    USAGE = 2  # the command line or a configuration/state file is wrong
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class BundleError(Exception):
    """Base of every expected error. ``hint`` is an optional next step shown to the user."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(BundleError):
    """The command line asks for something impossible: bad path, unknown option value, not a project."""

    exit_code = ExitCode.USAGE


class ConfigError(BundleError):
    """A configuration or state file is missing, unreadable or invalid. Names the file (and line)."""

    exit_code = ExitCode.USAGE


class NotInitializedError(UsageError):
    """No ``.modelops-bundle/`` was found walking up from the current directory."""


class AlreadyInitializedError(UsageError):
    """``init`` on a folder that already holds a project."""


class PluginError(BundleError):
    """A plugin could not be loaded, or two plugins claim the same provider name."""

    exit_code = ExitCode.USAGE


class RegistryError(BundleError):
    """The OCI registry refused, failed or could not be reached."""


class StorageError(BundleError):
    """The blob store refused, failed or could not be reached."""


class IntegrityError(BundleError):
    """Bytes do not match the digest or size that names them."""


class TrustError(BundleError):
    """A version is refused by the trust policy: unsigned, or not signed by a key the policy trusts."""


class ConflictError(BundleError):
    """Local and remote changes collide (moved tag, local edits a pull would overwrite)."""


class LockedError(BundleError):
    """Another modelops-bundle command holds the project lock."""


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code of a command that ended with ``error``: expected errors carry their own, Ctrl-C is
    130, anything else (a bug, a plugin that raised) is a failure. The CLI's one error boundary
    (``cli/main.run``) asks only this."""
    if isinstance(error, BundleError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED

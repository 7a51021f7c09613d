"""The one exception tree of daskfleet.

Every error the library raises derives from :class:`DaskfleetError`. The
command line turns them into messages and exit codes; nothing else does.
Each message says what was expected, what was found and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass


class DaskfleetError(Exception):
    """Root of every error daskfleet raises on purpose."""

    #: Exit status the command line uses for this kind of error.
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


@dataclass(frozen=True)
class Location:
    """A place in a user's file: path, 1-based line and column."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        if self.column is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


class LocatedError(DaskfleetError):
    """An error in a user's file, named by file, line and key path."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        location: Location,
        key_path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.location = location
        self.key_path = key_path
        #: The message without the place, to carry over into another error.
        self.detail = message
        where = str(location)
        if key_path:
            where = f"{where}: {key_path}"
        super().__init__(f"{where}: {message}", hint=hint)


class InventoryError(LocatedError):
    """The inventory file cannot be read or does not validate."""


class PlaybookError(LocatedError):
    """A playbook cannot be read, does not validate, or a template fails."""


class HostError(DaskfleetError):
    """Something went wrong on one named host."""

    def __init__(self, host: str, message: str, *, hint: str | None = None) -> None:
        self.host = host
        super().__init__(f"{host}: {message}", hint=hint)


class UnreachableError(HostError):
    """The host could not be reached over SSH (network, sshd down, timeout)."""


class AuthenticationError(HostError):
    """SSH authentication was refused; retrying cannot help."""


class HostKeyError(HostError):
    """The host's SSH key is unknown or differs from the recorded one."""


class CommandError(HostError):
    """A remote command exited non-zero."""

    def __init__(
        self, host: str, command: str, exit_code: int, output: str = ""
    ) -> None:
        self.command = command
        self.exit_code_remote = exit_code
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-10:])
        message = f"command failed with exit code {exit_code}: {command}"
        if tail:
            message = f"{message}\n  output (last lines):\n    " + tail.replace(
                "\n", "\n    "
            )
        super().__init__(host, message)


class DockerError(HostError):
    """The Docker daemon on a host failed or does not answer."""


class PlanError(DaskfleetError):
    """The wanted cluster cannot be placed on the fleet (capacity, arch)."""

    exit_code = 2


class ImageError(DaskfleetError):
    """Building or shipping the Dask image failed."""


class HealthError(DaskfleetError):
    """The deployed cluster did not prove healthy."""


class LabError(DaskfleetError):
    """The local lab fleet could not be brought up, inspected or torn down."""


class UpgradeError(DaskfleetError):
    """A rolling upgrade stopped: staging failed, no room, or a batch failed."""


class LockError(DaskfleetError):
    """Another run holds the cluster's deploy lock, or the lock is unusable."""


class RotationError(DaskfleetError):
    """Certificate rotation was refused or stopped before it finished."""

"""Small files daskfleet keeps on hosts, written over SSH.

Content always travels on the command's stdin, never in its arguments, so
no secret shows in a process list or a log line. Each command is an argv
list with a constant ``sh`` script whose only inputs are its quoted
positional arguments: no value is ever spliced into shell text.
"""

from __future__ import annotations

from collections.abc import Sequence

from daskfleet.errors import CommandError
from daskfleet.inventory.model import Host
from daskfleet.ssh import CommandResult, SSHFleet

#: Exit status the scripts below use for "the lock is not yours / not free".
LOCK_TAKEN = 4

# Files are created 0600 and directories 0700 (umask 077) by the SSH user.
_WRITE = 'umask 077 && mkdir -p -- "${1%/*}" && cat > "$1.partial" && mv -f -- "$1.partial" "$1"'
_APPEND = 'umask 077 && mkdir -p -- "${1%/*}" && cat >> "$1"'
_MAKE_LOCK = f'umask 077 && mkdir -p -- "${{1%/*}}" || exit 1; mkdir -- "$1" 2>/dev/null || exit {LOCK_TAKEN}; cat > "$1/holder"'
_READ_LOCK = f'[ -d "$1" ] || exit {LOCK_TAKEN}; cat -- "$1/holder" 2>/dev/null; exit 0'
_DROP_LOCK = (
    f'grep -qF -- "$2" "$1/holder" 2>/dev/null || exit {LOCK_TAKEN}; rm -rf -- "$1"'
)


def script(body: str, *args: str) -> list[str]:
    """``sh -c BODY sh ARGS...``: the arguments arrive as ``$1``, ``$2``..."""
    return ["sh", "-c", body, "sh", *args]


def write_private_file(fleet: SSHFleet, host: Host, path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600), creating its directory."""
    fleet.run(host, script(_WRITE, path), stdin=data)


def append_private_file(fleet: SSHFleet, host: Host, path: str, data: bytes) -> None:
    """Append ``data`` to ``path`` (created with mode 0600)."""
    fleet.run(host, script(_APPEND, path), stdin=data)


def remove_files(fleet: SSHFleet, host: Host, paths: Sequence[str]) -> None:
    """Remove ``paths``; those already gone are no error."""
    if paths:
        fleet.run(host, ["rm", "-f", "--", *paths])


def make_lock_dir(fleet: SSHFleet, host: Host, path: str, holder: bytes) -> bool:
    """Create the lock directory with its holder file; False when it exists."""
    return _lock_command(fleet, host, script(_MAKE_LOCK, path), holder)


def read_lock_dir(fleet: SSHFleet, host: Host, path: str) -> str | None:
    """The holder file's text ("" while it is being written); None when free."""
    result = fleet.run(host, script(_READ_LOCK, path), check=False)
    if result.exit_code == LOCK_TAKEN:
        return None
    _check(result)
    return result.stdout


def drop_lock_dir(
    fleet: SSHFleet, host: Host, path: str, token: str | None = None
) -> bool:
    """Remove the lock; with ``token``, only if its holder file has it."""
    if token is None:
        fleet.run(host, ["rm", "-rf", "--", path])
        return True
    return _lock_command(fleet, host, script(_DROP_LOCK, path, token), None)


def _lock_command(
    fleet: SSHFleet, host: Host, command: list[str], stdin: bytes | None
) -> bool:
    result = fleet.run(host, command, check=False, stdin=stdin)
    if result.exit_code == LOCK_TAKEN:
        return False
    _check(result)
    return True


def _check(result: CommandResult) -> None:
    if not result.ok:
        raise CommandError(result.host, result.command, result.exit_code, result.output)

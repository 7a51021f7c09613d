"""What ``copy`` and ``directory`` share: a path's kind, mode and owner on a
host, and setting them, each with argv commands only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daskfleet.errors import CommandError
from daskfleet.playbook.module import HostCall


@dataclass(frozen=True)
class PathState:
    """A path as ``stat`` sees it."""

    kind: str  # "directory", "regular file", "regular empty file", ...
    mode: str  # four octal digits
    owner: str
    group: str

    @property
    def is_directory(self) -> bool:
        return self.kind == "directory"


def stat_path(call: HostCall, path: str) -> PathState | None:
    """The state of ``path``, or None when it does not exist."""
    result = call.fleet.run(
        call.host, ["stat", "-c", "%F|%a|%U|%G", "--", path], check=False
    )
    if not result.ok:
        if "No such file" in result.stderr:
            return None
        raise CommandError(
            call.host.name, result.command, result.exit_code, result.output
        )
    kind, mode, owner, group = result.stdout.strip().split("|")
    return PathState(kind, mode.rjust(4, "0"), owner, group)


def attribute_changes(state: PathState | None, args: dict[str, Any] | Any) -> list[str]:
    """What differs between ``state`` and the wanted mode, owner and group."""
    wanted = {
        "mode": args.get("mode"),
        "owner": args.get("owner"),
        "group": args.get("group"),
    }
    found = (
        {}
        if state is None
        else {"mode": state.mode, "owner": state.owner, "group": state.group}
    )
    return [
        f"{key} {found.get(key, '-')} -> {value}"
        for key, value in wanted.items()
        if value is not None and found.get(key) != value
    ]


def set_attributes(call: HostCall, path: str) -> None:
    """Give ``path`` the wanted mode, owner and group (those that are set)."""
    mode, owner, group = (call.args.get(k) for k in ("mode", "owner", "group"))
    if mode is not None:
        call.fleet.run(call.host, ["chmod", mode, "--", path])
    if owner is not None or group is not None:
        who = f"{owner or ''}:{group or ''}" if group else str(owner)
        call.fleet.run(call.host, ["chown", who, "--", path])

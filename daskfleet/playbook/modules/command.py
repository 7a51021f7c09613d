"""``command``: run one program with its arguments on each host, no shell.

The words are quoted one by one, so nothing in them (``;``, ``$``, ``*``)
reaches a shell. ``creates`` / ``removes`` make it idempotent: it is skipped
when that path already exists / does not exist. Skipped in check mode.
"""

from __future__ import annotations

from typing import Any

from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register
from daskfleet.ssh import CommandResult


def command_result(result: CommandResult) -> ModuleResult:
    """A finished command as a task result: changed, failed when non-zero."""
    return ModuleResult(
        changed=True,
        failed=not result.ok,
        msg=f"exit {result.exit_code}" if not result.ok else "",
        data={"rc": result.exit_code, "stdout": result.stdout, "stderr": result.stderr},
    )


def guarded_by_path(call: HostCall) -> ModuleResult | None:
    """The result when ``creates`` or ``removes`` says there is nothing to do."""
    for key, present in (("creates", True), ("removes", False)):
        path = call.args.get(key)
        if path is None:
            continue
        exists = call.fleet.run(call.host, ["test", "-e", path], check=False).ok
        if exists == present:
            return ModuleResult(msg=f"{path} {'exists' if present else 'is absent'}")
    return None


@register
class CommandModule(HostModule):
    name = "command"
    free_form = "argv"
    runs_in_check = False
    args = (
        Arg("argv", "argv", required=True),
        Arg("chdir", "str"),
        Arg("creates", "str"),
        Arg("removes", "str"),
        Arg("stdin", "str"),
    )

    def run(self, call: HostCall) -> ModuleResult:
        done = guarded_by_path(call)
        if done is not None:
            return done
        argv: list[str] = call.args["argv"]
        if call.args.get("chdir"):
            argv = ["env", "--chdir", call.args["chdir"], *argv]
        stdin = _encoded(call.args.get("stdin"))
        return command_result(call.fleet.run(call.host, argv, check=False, stdin=stdin))


def _encoded(text: Any) -> bytes | None:
    return None if text is None else str(text).encode()

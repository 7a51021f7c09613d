"""``shell``: a command line run by the host's shell, for pipes and globs.

The one module whose text reaches a shell as written: templating a value
into it is the playbook author's responsibility (quote with ``| quote``).
Prefer ``command``. Skipped in check mode.
"""

from __future__ import annotations

import shlex

from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register
from daskfleet.playbook.modules.command import command_result, guarded_by_path


@register
class ShellModule(HostModule):
    name = "shell"
    free_form = "cmd"
    runs_in_check = False
    args = (
        Arg("cmd", "str", required=True),
        Arg("chdir", "str"),
        Arg("creates", "str"),
        Arg("removes", "str"),
    )

    def run(self, call: HostCall) -> ModuleResult:
        done = guarded_by_path(call)
        if done is not None:
            return done
        line: str = call.args["cmd"]
        if call.args.get("chdir"):
            line = f"cd {shlex.quote(call.args['chdir'])} && {line}"
        return command_result(call.fleet.run(call.host, line, check=False))

"""``directory``: a directory present (with mode, owner, group) or absent.

The path is looked at first (``stat``); only what differs is changed, so a
second run reports ok. ``state: absent`` removes it with everything in it.
"""

from __future__ import annotations

from daskfleet.errors import HostError
from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register
from daskfleet.playbook.modules._paths import (
    attribute_changes,
    set_attributes,
    stat_path,
)


@register
class DirectoryModule(HostModule):
    name = "directory"
    free_form = "path"
    args = (
        Arg("path", "str", required=True),
        Arg("state", "str", default="present", choices=("present", "absent")),
        Arg("mode", "mode"),
        Arg("owner", "str"),
        Arg("group", "str"),
    )

    def run(self, call: HostCall) -> ModuleResult:
        path: str = call.args["path"]
        state = stat_path(call, path)
        if call.args["state"] == "absent":
            return self._absent(call, path, state is not None)
        if state is not None and not state.is_directory:
            raise HostError(
                call.host.name, f"{path} exists and is a {state.kind}, not a directory"
            )
        changes = (["create"] if state is None else []) + attribute_changes(
            state, call.args
        )
        if not changes:
            return ModuleResult(msg=f"{path} is as wanted")
        if not call.check:
            if state is None:
                call.fleet.run(call.host, ["mkdir", "-p", "--", path])
            set_attributes(call, path)
        return ModuleResult(changed=True, msg=f"{path}: {', '.join(changes)}")

    def _absent(self, call: HostCall, path: str, exists: bool) -> ModuleResult:
        if not exists:
            return ModuleResult(msg=f"{path} is absent")
        if not call.check:
            call.fleet.run(call.host, ["rm", "-rf", "--", path])
        return ModuleResult(changed=True, msg=f"{path}: removed")

"""``copy``: a file on each host with the given content, mode and owner.

The content is ``content`` or the controller file ``src`` (relative to the
playbook). The host's file is compared first (sha256, ``stat``): equal
content and attributes mean ok and nothing is sent. New content is written
to a temporary file beside the target, given its attributes, then moved
over it in one step, so no reader sees half a file.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from daskfleet.errors import HostError
from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register
from daskfleet.playbook.modules._paths import (
    attribute_changes,
    set_attributes,
    stat_path,
)


@register
class CopyModule(HostModule):
    name = "copy"
    args = (
        Arg("dest", "str", required=True),
        Arg("content", "str"),
        Arg("src", "str"),
        Arg("mode", "mode"),
        Arg("owner", "str"),
        Arg("group", "str"),
    )

    @classmethod
    def check_args(cls, args: Any) -> None:
        if (args.get("content") is None) == (args.get("src") is None):
            raise ValueError("copy needs exactly one of content and src")

    def run(self, call: HostCall) -> ModuleResult:
        dest: str = call.args["dest"]
        data = _data(call)
        state = stat_path(call, dest)
        if state is not None and state.is_directory:
            raise HostError(
                call.host.name, f"{dest} is a directory; name the file in dest"
            )
        same = (
            state is not None
            and _remote_sha256(call, dest) == hashlib.sha256(data).hexdigest()
        )
        changes = ([] if same else ["content"]) + attribute_changes(state, call.args)
        if not changes:
            return ModuleResult(msg=f"{dest} is as wanted")
        if not call.check:
            if same:
                set_attributes(call, dest)
            else:
                _replace(call, dest, data, existing=state is not None)
        return ModuleResult(changed=True, msg=f"{dest}: {', '.join(changes)}")


def _data(call: HostCall) -> bytes:
    if call.args.get("content") is not None:
        return str(call.args["content"]).encode()
    path = call.base_dir / Path(call.args["src"])
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HostError(
            call.host.name, f"cannot read src {path}: {exc.strerror or exc}"
        ) from None


def _remote_sha256(call: HostCall, path: str) -> str:
    result = call.fleet.run(call.host, ["sha256sum", "--", path])
    return result.stdout.split()[0] if result.stdout.strip() else ""


def _replace(call: HostCall, dest: str, data: bytes, *, existing: bool) -> None:
    temporary = f"{dest}.daskfleet-{secrets.token_hex(4)}"
    run = call.fleet.run
    run(call.host, ["dd", f"of={temporary}", "bs=65536", "status=none"], stdin=data)
    try:
        if existing:
            # Keep the file's mode and owner unless the task sets them.
            run(call.host, ["chmod", f"--reference={dest}", "--", temporary])
            run(call.host, ["chown", f"--reference={dest}", "--", temporary])
        set_attributes(call, temporary)
        run(call.host, ["mv", "-f", "--", temporary, dest])
    except Exception:
        run(call.host, ["rm", "-f", "--", temporary], check=False)
        raise

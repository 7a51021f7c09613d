"""``wait_for``: wait until a port answers (or closes), a path exists (or
not), or a command succeeds on the host, up to ``timeout`` seconds.

The port is tried from the controller, at the host's address unless
``host`` names another; the path and the command are checked on the host.
Skipped in check mode, where what it waits for may not exist yet.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from daskfleet.errors import HostError
from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register


@register
class WaitForModule(HostModule):
    name = "wait_for"
    runs_in_check = False
    args = (
        Arg("port", "int"),
        Arg("host", "str"),
        Arg("path", "str"),
        Arg("command", "argv"),
        Arg("state", "str", default="present", choices=("present", "absent")),
        Arg("timeout", "number", default=60),
        Arg("delay", "number", default=0),
        Arg("sleep", "number", default=1),
    )

    @classmethod
    def check_args(cls, args: Any) -> None:
        given = [k for k in ("port", "path", "command") if args.get(k) is not None]
        if len(given) != 1:
            raise ValueError("wait_for needs exactly one of port, path and command")

    def run(self, call: HostCall) -> ModuleResult:
        what, probe = _probe(call)
        wanted = call.args["state"] == "present"
        time.sleep(call.args["delay"])
        started = time.monotonic()
        deadline = started + call.args["timeout"]
        while probe() != wanted:
            if time.monotonic() >= deadline:
                state = "ready" if wanted else "gone"
                raise HostError(
                    call.host.name,
                    f"{what} was not {state} within {call.args['timeout']:.0f} s",
                )
            time.sleep(call.args["sleep"])
        elapsed = time.monotonic() - started
        return ModuleResult(
            msg=f"{what} after {elapsed:.1f} s", data={"elapsed": elapsed}
        )


def _probe(call: HostCall) -> tuple[str, Callable[[], bool]]:
    args = call.args
    if args.get("port") is not None:
        address = args.get("host") or call.host.address
        return f"port {address}:{args['port']}", lambda: _port_open(
            address, args["port"]
        )
    if args.get("path") is not None:
        argv = ["test", "-e", args["path"]]
        return args["path"], lambda: call.fleet.run(call.host, argv, check=False).ok
    command = args["command"]
    return " ".join(command), lambda: call.fleet.run(call.host, command, check=False).ok


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False

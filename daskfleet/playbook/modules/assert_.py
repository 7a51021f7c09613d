"""``assert``: conditions on variables, registered results and facts.

Each entry of ``that`` is an expression, as ``when`` takes (no braces):
``health.ok``, ``health.workers | length == 2``, ``facts.cpus >= 4``. The
task fails with ``fail_msg`` (or the first false condition) when one is
false. In check mode, an assert that reads a result of a task that check
mode skipped is skipped too.
"""

from __future__ import annotations

from typing import Any

from daskfleet.playbook import templating
from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register


@register
class AssertModule(HostModule):
    name = "assert"
    free_form = "that"
    expressions = ("that",)
    args = (
        Arg("that", "strings", required=True),
        Arg("fail_msg", "str"),
        Arg("success_msg", "str"),
    )

    def run(self, call: HostCall) -> ModuleResult:
        conditions: list[str] = call.args["that"]
        if call.check and _reads_skipped(conditions, call.variables):
            return ModuleResult(skipped=True, msg="reads a result check mode skipped")
        for condition in conditions:
            if not templating.evaluate(condition, call.variables, call.location):
                message = call.args.get("fail_msg") or f"assertion failed: {condition}"
                return ModuleResult(
                    failed=True, msg=message, data={"assertion": condition}
                )
        return ModuleResult(msg=call.args.get("success_msg") or "all assertions passed")


def _reads_skipped(conditions: list[str], variables: Any) -> bool:
    names: set[str] = set()
    for condition in conditions:
        names |= templating.names_used(condition, expression=True)
    return any(
        isinstance(variables.get(n), dict) and variables[n].get("skipped")
        for n in names
    )

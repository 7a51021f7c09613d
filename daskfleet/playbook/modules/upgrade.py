"""``upgrade``: the rolling upgrade of every worker, as ``daskfleet upgrade``.

The arguments are the command's options; unset ones come from the
inventory's ``upgrade:`` section. It acts on the whole cluster, so its play
should target ``all``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from daskfleet.errors import UpgradeError
from daskfleet.playbook.module import (
    Arg,
    ClusterCall,
    ClusterModule,
    ModuleResult,
    register,
)
from daskfleet.upgrade.run import UpgradeOptions, upgrade
from daskfleet.upgrade.settings import Amount, UpgradeSettings

_SETTINGS = (
    Arg("batch", "str"),
    Arg("canary", "int"),
    Arg("healthy_deadline", "number"),
    Arg("min_healthy_time", "number"),
    Arg("max_failed", "str"),
    Arg("rollback", "bool"),
)


@register
class UpgradeModule(ClusterModule):
    name = "upgrade"
    args = (
        *_SETTINGS,
        Arg("image", "str"),
        Arg("rebuild", "bool", default=False),
        Arg("restart_cluster", "bool", default=False),
    )

    def run(self, call: ClusterCall) -> ModuleResult:
        ctx = call.ctx
        options = UpgradeOptions(
            settings=settings(ctx.inventory.upgrade, call.args),
            image=call.args.get("image"),
            rebuild=bool(call.args.get("rebuild")),
            restart_cluster=bool(call.args.get("restart_cluster")),
            check=ctx.options.check,
            timeout=ctx.options.timeout,
            accept_new_host_keys=ctx.options.accept_new_host_keys,
            connect_timeout=ctx.options.connect_timeout,
            lock_wait=ctx.options.lock_wait,
        )
        recap = upgrade(ctx.inventory, options, ctx.events)
        call.session.adopt(recap)
        section = recap.sections.get("upgrade", {})
        return ModuleResult(
            failed=not recap.ok,
            msg="; ".join(recap.errors),
            data={"upgrade": section},
        )


def settings(base: UpgradeSettings, args: dict[str, Any] | Any) -> UpgradeSettings:
    """The inventory's upgrade settings with the task's arguments over them."""
    given = {a.name: args[a.name] for a in _SETTINGS if args.get(a.name) is not None}
    for name in ("batch", "max_failed"):
        if name in given:
            try:
                given[name] = Amount.parse(given[name])
            except ValueError as exc:
                raise UpgradeError(f"upgrade {name}: {exc}") from None
    return dataclasses.replace(base, **given)

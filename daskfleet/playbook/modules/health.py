"""``health``: prove the cluster healthy through a Dask client, as deploy does."""

from __future__ import annotations

from daskfleet.deploy import steps
from daskfleet.deploy.run import scheduler_usable
from daskfleet.playbook.module import ClusterCall, ClusterModule, ModuleResult, register

SCHEDULER_FAILED = "the scheduler host failed, so the cluster's health was not checked"


@register
class HealthModule(ClusterModule):
    """Every planned worker registered with its threads, memory, resources
    and versions, a probe task on each, and the scheduler's ``/health``.

    Registers ``ok``, ``workers`` (name to host, address, problems),
    ``unexpected`` and ``problems``. Skipped in check mode.
    """

    name = "health"
    runs_in_check = False

    def run(self, call: ClusterCall) -> ModuleResult:
        call.session.prepare()
        ctx = call.ctx
        if not scheduler_usable(ctx):
            ctx.recap.errors.append(SCHEDULER_FAILED)
            return ModuleResult(failed=True, msg=SCHEDULER_FAILED)
        call.session.once("health", steps.health)
        report = ctx.recap.to_dict()["health"] or {}
        ok = bool(report.get("ok"))
        problems = report.get("problems") or []
        return ModuleResult(
            failed=not ok,
            msg="healthy" if ok else "; ".join(problems),
            data={**report, "scheduler": ctx.recap.scheduler_address},
        )

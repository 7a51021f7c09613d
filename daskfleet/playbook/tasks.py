"""One task on the hosts still in a play: host modules per host, in parallel;
cluster modules once, on the play's shared deploy context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daskfleet.errors import DaskfleetError, PlaybookError
from daskfleet.inventory.model import Host
from daskfleet.playbook import templating
from daskfleet.playbook.model import Play, Task
from daskfleet.playbook.module import (
    ClusterCall,
    ClusterModule,
    HostCall,
    HostModule,
    Module,
    ModuleResult,
)
from daskfleet.playbook.recap import TaskOutcome, TaskStatus
from daskfleet.playbook.session import ClusterSession, Snapshot
from daskfleet.playbook.variables import Variables
from daskfleet.remote_docker import FleetDocker
from daskfleet.ssh import SSHFleet

Outcomes = dict[str, TaskOutcome]


@dataclass(frozen=True)
class TaskRun:
    """A task with what running it needs."""

    play: Play
    task: Task
    module: type[Module]
    variables: Variables
    check: bool
    overrides: Mapping[str, Any]
    fleet: SSHFleet
    docker: FleetDocker
    base_dir: Path

    def conditions_hold(self, variables: Mapping[str, Any]) -> bool:
        return self._holds(self.task.when, variables)

    def _holds(self, conditions: Sequence[str], variables: Mapping[str, Any]) -> bool:
        location = self.task.location
        return all(templating.evaluate(c, variables, location) for c in conditions)

    def judge(self, result: ModuleResult, variables: Mapping[str, Any]) -> ModuleResult:
        """Apply ``changed_when`` and ``failed_when`` to a host's result."""
        task = self.task
        if result.skipped or (task.changed_when is None and task.failed_when is None):
            return result
        seen = dict(variables)
        if task.register:
            seen[task.register] = result.as_vars()
        if task.changed_when is not None:
            result.changed = self._holds(task.changed_when, seen)
        if task.failed_when is not None:
            result.failed = self._holds(task.failed_when, seen)
        return result

    def arguments(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The task's arguments rendered for one host and checked."""
        given = {**self.task.args, **self.overrides}
        args: dict[str, Any] = {}
        for arg in self.module.args:
            where = self.task.arg_locations.get(arg.name, self.task.location)
            value = given.get(arg.name, arg.default)
            if arg.name not in self.module.expressions:
                value = templating.render(value, variables, where)
            if value is not None:
                value = _coerce(
                    arg.coerce, value, f"{self.module.name}.{arg.name}", where
                )
            args[arg.name] = value
        try:
            self.module.check_args(args)
        except ValueError as exc:
            raise PlaybookError(str(exc), location=self.task.location) from None
        return args

    def register(
        self, hosts: Sequence[str], result: ModuleResult, outcomes: Outcomes
    ) -> None:
        if self.task.register is None:
            return
        for name in hosts:
            value = result.as_vars()
            outcome = outcomes.get(name)
            if outcome is not None:
                value["changed"] = outcome.status == "changed"
                value["failed"] = outcome.status in ("failed", "unreachable")
            self.variables.register(name, self.task.register, value)


def _coerce(coerce: Any, value: Any, key_path: str, where: Any) -> Any:
    try:
        return coerce(value)
    except ValueError as exc:
        raise PlaybookError(
            f"expected {exc}, found {value!r}", location=where, key_path=key_path
        ) from None


def outcome(
    run: TaskRun, host: str, result: ModuleResult, unreachable: bool = False
) -> TaskOutcome:
    status: TaskStatus = "ok"
    if unreachable:
        status = "unreachable"
    elif result.failed:
        status = "failed"
    elif result.skipped:
        status = "skipped"
    elif result.changed:
        status = "changed"
    ignored = status == "failed" and run.task.ignore_errors
    return TaskOutcome(host, status, result.msg, ignored)


def skip_all(run: TaskRun, hosts: Sequence[Host], why: str) -> Outcomes:
    result = ModuleResult(skipped=True, msg=why)
    outcomes = {h.name: outcome(run, h.name, result) for h in hosts}
    run.register([h.name for h in hosts], result, outcomes)
    return outcomes


def run_host_task(run: TaskRun, hosts: Sequence[Host]) -> Outcomes:
    """The module on each host in parallel (only the first with run_once)."""
    module = run.module
    assert issubclass(module, HostModule)

    def on_host(host: Host) -> ModuleResult:
        variables = run.variables.for_host(run.play, host)
        if not run.conditions_hold(variables):
            return ModuleResult(skipped=True, msg="condition false")
        args = run.arguments(variables)
        call = HostCall(
            host,
            args,
            run.check,
            run.fleet,
            run.docker,
            variables,
            run.base_dir,
            run.task.location,
        )
        return run.judge(module().run(call), variables)

    targets = list(hosts[:1] if run.task.run_once else hosts)
    outcomes: Outcomes = {}
    for name, found in run.fleet.map(on_host, targets).items():
        result = found.value or ModuleResult(failed=True, msg=str(found.error))
        outcomes[name] = outcome(run, name, result, found.unreachable)
        shared = [h.name for h in hosts] if run.task.run_once else [name]
        run.register(shared, result, outcomes)
    return outcomes


def run_cluster_task(
    run: TaskRun, hosts: Sequence[Host], session: ClusterSession
) -> tuple[Outcomes, DaskfleetError | None]:
    """The module once on the shared context; per-host outcomes from the recap."""
    module = run.module
    assert issubclass(module, ClusterModule)
    variables = run.variables.for_host(run.play, hosts[0])
    if not run.conditions_hold(variables):
        return skip_all(run, hosts, "condition false"), None
    args = run.arguments(variables)
    ctx = session.context(hosts)
    before, errors_before = session.snapshot(), len(ctx.recap.errors)
    try:
        result = module().run(ClusterCall(ctx, session, args))
    except DaskfleetError as exc:
        failed = ModuleResult(failed=True, msg=str(exc))
        return {h.name: outcome(run, h.name, failed) for h in hosts}, exc
    for name, facts in ctx.facts.items():
        run.variables.facts[name] = facts.to_dict()
    names = _reported(session, hosts)
    after = session.snapshot()
    cluster_wide = result.failed and (
        len(session.errors) > errors_before
        or not any(after[n].errors > before.get(n, Snapshot()).errors for n in names)
    )
    outcomes = {
        n: _cluster_outcome(
            run, session, n, before.get(n, Snapshot()), result, cluster_wide
        )
        for n in names
    }
    run.register([h.name for h in hosts], result, outcomes)
    return outcomes, None


def _reported(session: ClusterSession, hosts: Sequence[Host]) -> list[str]:
    """The play's hosts, and departed hosts the context reached."""
    recap = session.recap
    assert recap is not None
    departed = [n for n in recap.hosts if n not in session.inventory.hosts]
    return [h.name for h in hosts if h.name in recap.hosts] + departed


def _cluster_outcome(
    run: TaskRun,
    session: ClusterSession,
    name: str,
    before: Snapshot,
    result: ModuleResult,
    cluster_wide: bool,
) -> TaskOutcome:
    recap = session.recap
    assert recap is not None
    host = recap.hosts[name]
    errors = host.errors[before.errors :]
    message = (
        "; ".join(errors) or "; ".join(host.actions[before.actions :]) or result.msg
    )
    if host.unreachable and not before.unreachable:
        return TaskOutcome(name, "unreachable", message)
    if errors or cluster_wide:
        return TaskOutcome(name, "failed", message, run.task.ignore_errors)
    if result.changed_hosts is not None:
        changed = name in result.changed_hosts
    else:
        changed = host.changed > before.changed or host.bytes_sent > before.bytes_sent
    return TaskOutcome(name, "changed" if changed else "ok", message)

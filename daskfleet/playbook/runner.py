"""Run a playbook: plays in order, each in ``serial`` batches, task by task.

A host whose task fails (unless ``ignore_errors``) or that cannot be reached
leaves the rest of its play; the others go on. A play stops when every host
of a batch has failed, when ``max_fail_percentage`` is passed, or when a
cluster task raises an error that concerns the whole cluster (image build,
capacity); that error also ends the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from daskfleet.deploy.context import DeployEvents, DeployOptions, QuietEvents
from daskfleet.facts import gather_facts
from daskfleet.inventory.model import Host, Inventory
from daskfleet.playbook.checks import check_playbook, select_hosts
from daskfleet.playbook.model import Play, Playbook, Task
from daskfleet.playbook.module import ClusterModule, registered_modules
from daskfleet.playbook.recap import (
    PlaybookRecap,
    PlayResult,
    TaskOutcome,
    TaskRecord,
    TaskStatus,
)
from daskfleet.playbook.serial import serial_batches
from daskfleet.playbook.session import ClusterSession
from daskfleet.playbook.tasks import TaskRun, run_cluster_task, run_host_task, skip_all
from daskfleet.playbook.variables import Variables
from daskfleet.remote_docker import FleetDocker
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayOptions:
    """How to run a playbook: check mode, host limit, tags, variables, SSH."""

    check: bool = False
    limit: str | None = None
    #: Run only tasks with one of these tags (and those tagged ``always``).
    tags: frozenset[str] = frozenset()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    #: Health and retire timeout; None: the inventory's.
    timeout: float | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    #: Module name to arguments that win over the playbook's (command options).
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Seconds to wait for another run's deploy lock; 0: fail at once.
    lock_wait: float = 0.0
    #: What the deploy lock and the audit log call this run.
    command: str = "play"


class PlayListener(Protocol):
    """What a front end may show as the run goes."""

    def play_start(self, name: str, hosts: Sequence[str]) -> None: ...
    def task_start(self, name: str, module: str) -> None: ...
    def task_done(self, record: TaskRecord) -> None: ...


class SilentListener:
    def play_start(self, name: str, hosts: Sequence[str]) -> None:
        logger.info("PLAY [%s] on %s", name, ", ".join(hosts) or "no host")

    def task_start(self, name: str, module: str) -> None:
        logger.info("TASK [%s] (%s)", name, module)

    def task_done(self, record: TaskRecord) -> None:
        for host, outcome in record.outcomes.items():
            logger.info("%s: [%s] %s", outcome.status, host, outcome.msg)


def run_playbook(
    playbook: Playbook,
    inventory: Inventory,
    options: PlayOptions | None = None,
    *,
    events: DeployEvents | None = None,
    listener: PlayListener | None = None,
) -> PlaybookRecap:
    """Check ``playbook`` against ``inventory``, then run it; see the module.

    Every :class:`PlaybookError` (pattern, template, variable) is raised
    before any host is reached; host failures land in the recap.
    """
    options = options or PlayOptions()
    inventories = check_playbook(playbook, inventory, options.extra_vars)
    started = time.monotonic()
    recap = PlaybookRecap(str(playbook.path), options.check)
    fleet = SSHFleet(
        inventory,
        accept_new_host_keys=options.accept_new_host_keys,
        connect_timeout=options.connect_timeout,
    )
    with fleet:
        docker = FleetDocker(fleet)
        run = _Run(
            playbook,
            options,
            events or QuietEvents(),
            listener or SilentListener(),
            fleet,
            docker,
            recap,
            Variables(inventory, options.extra_vars),
        )
        try:
            for play, play_inventory in zip(playbook.plays, inventories, strict=True):
                if not run.play(play, play_inventory):
                    break
        finally:
            docker.close()
    recap.seconds = time.monotonic() - started
    return recap


@dataclass
class _Run:
    playbook: Playbook
    options: PlayOptions
    events: DeployEvents
    listener: PlayListener
    fleet: SSHFleet
    docker: FleetDocker
    recap: PlaybookRecap
    variables: Variables

    def play(self, play: Play, inventory: Inventory) -> bool:
        """Run one play; False when the run must stop."""
        hosts = self._hosts(play, inventory)
        result = PlayResult(play.name, [h.name for h in hosts])
        self.recap.plays.append(result)
        self.listener.play_start(play.name, result.hosts)
        for batch in serial_batches(hosts, play.serial):
            session = self._session(play, inventory, hosts)
            try:
                going = self._batch(play, batch, session, result)
            finally:
                cluster = session.close()
                if cluster is not None:
                    result.clusters.append(cluster)
            if not going:
                result.aborted = result.error is None
                return False
        return True

    def _hosts(self, play: Play, inventory: Inventory) -> tuple[Host, ...]:
        hosts = select_hosts(inventory, play.hosts)
        if self.options.limit is None:
            return hosts
        allowed = {h.name for h in inventory.select(self.options.limit)}
        return tuple(h for h in hosts if h.name in allowed)

    def _session(
        self, play: Play, inventory: Inventory, hosts: tuple[Host, ...]
    ) -> ClusterSession:
        known = registered_modules()
        departed = (
            self.options.limit is None
            and {h.name for h in hosts} == set(inventory.hosts)
            and any(known[t.module].handles_departed for t in play.tasks)
        )
        options = DeployOptions(
            check=self.options.check,
            limit=self.options.limit,
            timeout=self.options.timeout,
            accept_new_host_keys=self.options.accept_new_host_keys,
            connect_timeout=self.options.connect_timeout,
            lock_wait=self.options.lock_wait,
        )
        return ClusterSession(
            inventory,
            options,
            self.fleet,
            self.docker,
            self.events,
            with_departed=departed,
            command=self.options.command,
        )

    def _batch(
        self, play: Play, batch: list[Host], session: ClusterSession, result: PlayResult
    ) -> bool:
        active = list(batch)
        if play.gather_facts:
            active = self._gather(batch, result)
        for task in play.tasks:
            if not active:
                break
            if task.selected(self.options.tags):
                active = self._task(play, task, active, session, result)
            if result.error is not None or self._too_many_failed(play, batch, active):
                return False
        return bool(active)

    def _too_many_failed(
        self, play: Play, batch: list[Host], active: list[Host]
    ) -> bool:
        if play.max_fail_percentage is None:
            return False
        failed = len(batch) - len(active)
        return failed * 100 / len(batch) > play.max_fail_percentage

    def _gather(self, hosts: list[Host], result: PlayResult) -> list[Host]:
        record = TaskRecord("Gathering Facts", "facts")
        result.tasks.append(record)
        self.listener.task_start(record.name, record.module)
        for name, found in gather_facts(self.fleet, hosts).items():
            if found.value is not None:
                self.variables.facts[name] = found.value.to_dict()
                outcome = TaskOutcome(name, "ok")
            else:
                status: TaskStatus = "unreachable" if found.unreachable else "failed"
                outcome = TaskOutcome(name, status, str(found.error))
            self.recap.record(record, outcome)
        self.listener.task_done(record)
        return [h for h in hosts if not record.outcomes[h.name].stops_host]

    def _task(
        self,
        play: Play,
        task: Task,
        active: list[Host],
        session: ClusterSession,
        result: PlayResult,
    ) -> list[Host]:
        module = registered_modules()[task.module]
        record = TaskRecord(task.name, task.module)
        result.tasks.append(record)
        self.listener.task_start(task.name, task.module)
        run = TaskRun(
            play,
            task,
            module,
            self.variables,
            self.options.check,
            self.options.overrides.get(task.module, {}),
            self.fleet,
            self.docker,
            self.playbook.path.parent,
        )
        if self.options.check and not module.runs_in_check:
            outcomes = skip_all(run, active, "check mode")
        elif issubclass(module, ClusterModule):
            outcomes, result.error = run_cluster_task(run, active, session)
        else:
            outcomes = run_host_task(run, active)
        for outcome in outcomes.values():
            self.recap.record(record, outcome)
        self.listener.task_done(record)
        return [h for h in active if not _stops(outcomes, h.name)]


def _stops(outcomes: Mapping[str, TaskOutcome], host: str) -> bool:
    found = outcomes.get(host)
    return found is not None and found.stops_host

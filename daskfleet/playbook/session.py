"""The deploy context that the cluster tasks of one play share.

It is made at the play's first cluster task, on the hosts still in the play,
and the deploy steps run on it at most once each: facts, observation, image
and plan are computed once however many cluster tasks follow. With
``serial``, each batch gets its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daskfleet.deploy import steps
from daskfleet.deploy.context import DeployContext, DeployEvents, DeployOptions
from daskfleet.deploy.recap import Recap
from daskfleet.deploy.run import departed_hosts, remember_hosts, start_recap
from daskfleet.guard import guarded_run
from daskfleet.inventory.model import Host, Inventory
from daskfleet.remote_docker import FleetDocker
from daskfleet.ssh import SSHFleet


@dataclass(frozen=True)
class Snapshot:
    """A host's counters in the cluster recap, to see what one task did."""

    changed: int = 0
    bytes_sent: int = 0
    errors: int = 0
    actions: int = 0
    unreachable: bool = False


class ClusterSession:
    """One deploy context, made on first use; see the module."""

    def __init__(
        self,
        inventory: Inventory,
        options: DeployOptions,
        fleet: SSHFleet,
        docker: FleetDocker,
        events: DeployEvents,
        *,
        with_departed: bool,
        command: str = "play",
    ) -> None:
        self.inventory = inventory
        self.options = options
        self.fleet = fleet
        self.docker = docker
        self.events = events
        self.with_departed = with_departed
        self.command = command
        self._guard = contextlib.ExitStack()
        self._ctx: DeployContext | None = None
        self._done: set[str] = set()
        self._departed: tuple[Host, ...] = ()
        self._started = 0.0

    def context(self, hosts: Sequence[Host]) -> DeployContext:
        """The shared context, made on ``hosts`` (and departed ones) if new."""
        if self._ctx is None:
            self._started = time.monotonic()
            if self.with_departed:
                self._departed = departed_hosts(self.inventory, self.options)
            chosen = (*hosts, *self._departed)
            recap = start_recap(self.inventory, chosen, self.options.check)
            self._ctx = DeployContext(
                self.inventory,
                self.options,
                self.fleet,
                self.docker,
                recap,
                self.events,
                chosen,
            )
        return self._ctx

    @property
    def recap(self) -> Recap | None:
        return None if self._ctx is None else self._ctx.recap

    @property
    def errors(self) -> list[str]:
        """Problems of the whole cluster recorded so far."""
        return [] if self._ctx is None else self._ctx.recap.errors

    def adopt(self, recap: Recap) -> None:
        """Take over the recap of a run that made its own context (upgrade)."""
        assert self._ctx is not None
        self._ctx.recap = recap

    def once(self, step: str, run: Callable[[DeployContext], None]) -> bool:
        """Run a deploy step unless it already ran; whether it ran now."""
        assert self._ctx is not None
        if step in self._done:
            return False
        self._done.add(step)
        run(self._ctx)
        return True

    def prepare(self) -> None:
        """Facts, observation, image and plan: what every cluster task reads."""
        for name, step in (
            ("gather", steps.gather),
            ("observe", steps.observe),
            ("build", steps.build),
            ("plan", steps.plan),
        ):
            self.once(name, step)

    def stage(self) -> None:
        """Prepare, then ship the image to hosts that lack it (not in check mode)."""
        self.lock()
        self.prepare()
        if not self.options.check:
            self.once("ship", steps.ship)

    def lock(self) -> None:
        """Take the deploy lock (and audit the run) before the first change.

        Held until :meth:`close`. Modules that run a whole command of their
        own (upgrade, teardown) take it themselves and must not call this.
        """
        assert self._ctx is not None
        if self.options.check or "lock" in self._done:
            return
        self._done.add("lock")
        self._guard.enter_context(
            guarded_run(
                self.fleet,
                self.inventory,
                self.command,
                self._ctx.recap,
                lock_wait=self.options.lock_wait,
            )
        )

    def snapshot(self) -> dict[str, Snapshot]:
        if self._ctx is None:
            return {}
        return {
            name: Snapshot(
                h.changed, h.bytes_sent, len(h.errors), len(h.actions), h.unreachable
            )
            for name, h in self._ctx.recap.hosts.items()
        }

    def close(self) -> Recap | None:
        """Finish the recap; remember the hosts after a real deploy of workers."""
        if self._ctx is None:
            return None
        recap = self._ctx.recap
        if not self.options.check and "workers" in self._done and self.with_departed:
            remember_hosts(self.inventory, self._departed, recap)
        recap.seconds = time.monotonic() - self._started
        self._guard.close()
        return recap

"""The PLAY RECAP: what every task did on every host, and counts per host."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from daskfleet.deploy.recap import Recap
from daskfleet.errors import DaskfleetError

TaskStatus = Literal["ok", "changed", "failed", "unreachable", "skipped"]


@dataclass(frozen=True)
class TaskOutcome:
    """One task on one host."""

    host: str
    status: TaskStatus
    msg: str = ""
    #: A failure that ``ignore_errors`` let pass.
    ignored: bool = False

    @property
    def stops_host(self) -> bool:
        """Whether the host leaves the play's remaining tasks."""
        return self.status in ("failed", "unreachable") and not self.ignored

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "msg": self.msg, "ignored": self.ignored}


@dataclass
class TaskRecord:
    """One task of a play and its outcome on each host it concerned."""

    name: str
    module: str
    outcomes: dict[str, TaskOutcome] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "hosts": {h: o.to_dict() for h, o in self.outcomes.items()},
        }


@dataclass
class HostStats:
    """Ansible's per-host counters."""

    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0

    def count(self, outcome: TaskOutcome) -> None:
        if outcome.ignored:
            self.ignored += 1
            return
        if outcome.status in ("failed", "unreachable", "skipped"):
            setattr(self, outcome.status, getattr(self, outcome.status) + 1)
            return
        self.ok += 1
        if outcome.status == "changed":
            self.changed += 1


@dataclass
class PlayResult:
    """One play: its hosts, tasks, the cluster recaps of its cluster tasks."""

    name: str
    hosts: list[str]
    tasks: list[TaskRecord] = field(default_factory=list)
    #: One per batch that ran a cluster module (one without ``serial``).
    clusters: list[Recap] = field(default_factory=list)
    #: An error that stopped the whole play (image build, capacity, ...).
    error: DaskfleetError | None = None
    #: The play stopped early: every host failed, or max_fail_percentage.
    aborted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hosts": list(self.hosts),
            "tasks": [t.to_dict() for t in self.tasks],
            "clusters": [c.to_dict() for c in self.clusters],
            "error": None if self.error is None else str(self.error),
            "aborted": self.aborted,
        }


@dataclass
class PlaybookRecap:
    """Every play of one run and the PLAY RECAP counters."""

    path: str
    check: bool = False
    plays: list[PlayResult] = field(default_factory=list)
    stats: dict[str, HostStats] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, task: TaskRecord, outcome: TaskOutcome) -> None:
        task.outcomes[outcome.host] = outcome
        self.stats.setdefault(outcome.host, HostStats()).count(outcome)

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.stats.values())

    @property
    def ok(self) -> bool:
        hosts_ok = all(not s.failed and not s.unreachable for s in self.stats.values())
        plays_ok = all(p.error is None and not p.aborted for p in self.plays)
        return hosts_ok and plays_ok

    @property
    def error(self) -> DaskfleetError | None:
        """The first error that stopped a play, if any."""
        return next((p.error for p in self.plays if p.error is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.path,
            "ok": self.ok,
            "check": self.check,
            "changed": self.changed,
            "seconds": round(self.seconds, 3),
            "plays": [p.to_dict() for p in self.plays],
            "recap": {h: vars(s) for h, s in self.stats.items()},
        }

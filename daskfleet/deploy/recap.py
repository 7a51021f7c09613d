"""The recap: what a run did on each host, and whether the cluster is healthy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from daskfleet.errors import DaskfleetError, HostError, UnreachableError
from daskfleet.health import HealthReport
from daskfleet.plan import Plan

HostStatus = Literal["ok", "changed", "failed", "unreachable"]


@dataclass
class HostRecap:
    """One host's outcome, filled in as the steps run."""

    host: str
    changed: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    unreachable: bool = False
    #: Human lines: what was done (``create daskfleet-lab-scheduler``).
    actions: list[str] = field(default_factory=list)

    @property
    def status(self) -> HostStatus:
        if self.unreachable:
            return "unreachable"
        if self.errors:
            return "failed"
        return "changed" if self.changed else "ok"

    def fail(self, error: DaskfleetError | str) -> None:
        """Record a failure; the host's name is not repeated in the text."""
        if isinstance(error, UnreachableError):
            self.unreachable = True
        text = str(error)
        if isinstance(error, HostError):
            text = text.removeprefix(f"{error.host}: ")
        self.errors.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "changed": self.changed,
            "bytes_sent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
            "actions": list(self.actions),
            "errors": list(self.errors),
        }


@dataclass
class Recap:
    """Every host's outcome, the plan and the health report of one run."""

    cluster: str
    hosts: dict[str, HostRecap]
    check: bool = False
    plan: Plan | None = None
    health: HealthReport | None = None
    dashboard_url: str | None = None
    scheduler_address: str | None = None
    #: Problems that belong to no single host (image build, health).
    errors: list[str] = field(default_factory=list)
    #: Things the user should know that did not fail the run.
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Command-specific parts of the report (an upgrade's batches).
    sections: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_hosts(cls, cluster: str, hosts: list[str], check: bool) -> Recap:
        return cls(cluster, {h: HostRecap(h) for h in hosts}, check=check)

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    @property
    def ok(self) -> bool:
        hosts_ok = all(h.status in ("ok", "changed") for h in self.hosts.values())
        healthy = self.check or self.health is None or self.health.ok
        return hosts_ok and healthy and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "ok": self.ok,
            "check": self.check,
            "changed": self.changed,
            "seconds": round(self.seconds, 3),
            "scheduler": self.scheduler_address,
            "dashboard": self.dashboard_url,
            "hosts": {name: h.to_dict() for name, h in self.hosts.items()},
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "health": _health_dict(self.health),
            "plan": self.plan.to_dict() if self.plan else None,
            **self.sections,
        }


def _health_dict(report: HealthReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "ok": report.ok,
        "workers": {
            w.name: {"host": w.host, "address": w.address, "problems": list(w.problems)}
            for w in report.workers
        },
        "unexpected": list(report.unexpected),
        "problems": report.problems(),
    }

"""Which worker hosts are upgraded together, in what order (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daskfleet.plan import Action
from daskfleet.upgrade.settings import UpgradeSettings


@dataclass(frozen=True)
class Batch:
    """Worker hosts whose containers are retired and replaced together."""

    number: int
    hosts: tuple[str, ...]
    actions: tuple[Action, ...]
    canary: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.number,
            "canary": self.canary,
            "hosts": list(self.hosts),
            "actions": [a.to_dict() for a in self.actions],
        }


def plan_batches(actions: Sequence[Action], settings: UpgradeSettings) -> list[Batch]:
    """Batches of the worker actions that change something, in host order.

    A batch counts worker hosts (all of a host's worker containers go
    together, since retiring is per host). With a canary, the first batch
    holds that many hosts and must prove healthy before the others start.
    """
    changing = [a for a in actions if a.role == "worker" and a.changes]
    hosts = list(dict.fromkeys(a.host for a in changing))
    if not hosts:
        return []
    size = settings.batch.of(len(hosts), minimum=1)
    sizes = [settings.canary] if settings.canary else []
    batches: list[Batch] = []
    start = 0
    while start < len(hosts):
        step = sizes.pop(0) if sizes else size
        chosen = tuple(hosts[start : start + step])
        batches.append(
            Batch(
                number=len(batches) + 1,
                hosts=chosen,
                actions=tuple(a for a in changing if a.host in chosen),
                canary=bool(settings.canary) and not batches,
            )
        )
        start += step
    return batches

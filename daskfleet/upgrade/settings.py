"""Rolling-upgrade settings: batch sizes and the limits of one upgrade.

Pure data and parsing, shared by the inventory's ``upgrade:`` section and
the ``daskfleet upgrade`` options (which override it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_AMOUNT = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


@dataclass(frozen=True)
class Amount:
    """A count of workers, or a percentage of them (rounded up)."""

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, text: str | int) -> Amount:
        """``3`` or ``"25%"``; ValueError naming what was expected."""
        match = _AMOUNT.match(str(text))
        if not match:
            raise ValueError(
                f"expected a count like 2 or a percentage like 25%, found {text!r}"
            )
        value, percent = int(match.group(1)), bool(match.group(2))
        if percent and not 0 <= value <= 100:
            raise ValueError(
                f"expected a count, or a percentage from 0% to 100%, found {text!r}"
            )
        return cls(value, percent)

    def of(self, total: int, *, minimum: int = 0) -> int:
        """How many of ``total`` this amount means."""
        count = math.ceil(total * self.value / 100) if self.percent else self.value
        return max(minimum, min(count, total))

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


@dataclass(frozen=True)
class UpgradeSettings:
    """How a rolling upgrade proceeds; every field has a safe default."""

    #: Worker containers replaced together.
    batch: Amount = Amount(1)
    #: Size of a first batch that must prove healthy before the rest; 0: none.
    canary: int = 0
    #: Seconds a new worker has to register and pass the health checks.
    healthy_deadline: float = 120.0
    #: Seconds a new batch must then stay healthy before the next one starts.
    min_healthy_time: float = 5.0
    #: Workers that may fail (and be rolled back) before the upgrade stops.
    max_failed: Amount = Amount(0)
    #: Roll a failed batch back to its previous containers.
    rollback: bool = True

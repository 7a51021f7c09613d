"""``serial``: the batches a play's hosts run in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from daskfleet.playbook.model import SerialStep

T = TypeVar("T")


def batch_size(step: SerialStep, total: int) -> int:
    """Hosts in a batch of ``step``: a count, or a percentage of ``total``
    rounded down but at least one."""
    if isinstance(step, str):
        return max(1, int(total * float(step.rstrip("%")) / 100))
    return step


def serial_batches(hosts: Sequence[T], serial: Sequence[SerialStep]) -> list[list[T]]:
    """``hosts`` split as ``serial`` says; its last step repeats (a ramp)."""
    if not serial:
        return [list(hosts)] if hosts else []
    batches: list[list[T]] = []
    start = 0
    while start < len(hosts):
        step = serial[min(len(batches), len(serial) - 1)]
        size = batch_size(step, len(hosts))
        batches.append(list(hosts[start : start + size]))
        start += size
    return batches

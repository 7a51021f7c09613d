"""The probe task run on each worker after a deploy.

Workers do not have daskfleet installed, so the probe must travel by value.
distributed pickles importable functions by reference; a function made
inside another cannot be, so distributed falls back to cloudpickle and sends
its code. Keep it free of daskfleet imports and module globals.
"""

from __future__ import annotations

from collections.abc import Callable


def make_probe() -> Callable[[], str]:
    """A task that returns the name of the worker it ran on."""

    def probe() -> str:
        from distributed import get_worker

        if sum(range(1000)) != 499500:
            return "arithmetic failed"
        return str(get_worker().name)

    return probe

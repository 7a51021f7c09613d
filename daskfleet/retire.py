"""Retire workers through the scheduler before their containers stop.

``docker stop`` alone drops the results a worker holds in memory. Retiring
asks the scheduler to copy every key the worker holds to other workers
first, then closes the worker; only then may its container go.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from typing import Any

from daskfleet.client import open_client
from daskfleet.errors import HealthError

logger = logging.getLogger(__name__)

RETIRE_TIMEOUT = 300.0


def worker_name_pattern(host: str) -> re.Pattern[str]:
    """Worker names daskfleet gives the processes on ``host``: ``<host>-<i>``,
    and ``<host>-gpu<index>`` for the worker of each GPU."""
    return re.compile(rf"{re.escape(host)}-(?:gpu)?\d+")


def workers_of_hosts(
    workers: Mapping[str, Mapping[str, Any]], hosts: Collection[str]
) -> dict[str, str]:
    """Scheduler worker address to name, for the workers on ``hosts``."""
    patterns = [worker_name_pattern(h) for h in hosts]
    found = {}
    for address, info in workers.items():
        name = str(info.get("name", ""))
        if any(p.fullmatch(name) for p in patterns):
            found[address] = name
    return found


def retire_hosts(
    scheduler_address: str,
    hosts: Collection[str],
    *,
    timeout: float = RETIRE_TIMEOUT,
    security: Any = None,
) -> list[str]:
    """Retire every worker on ``hosts``; return the names retired.

    The data they hold moves to the remaining workers. A scheduler that
    cannot be reached has nothing to preserve: that is logged and an empty
    list returned, so a broken cluster can still be repaired.
    """
    if not hosts:
        return []
    try:
        client = open_client(scheduler_address, timeout=10, security=security)
    except HealthError as exc:
        logger.warning(
            "scheduler %s unreachable, nothing to retire: %s", scheduler_address, exc
        )
        return []
    with client:
        info = client.scheduler_info(n_workers=-1)["workers"]
        chosen = workers_of_hosts(info, hosts)
        if not chosen:
            return []
        logger.info("retiring %s", ", ".join(sorted(chosen.values())))
        scheduler: Any = client.scheduler
        try:
            client.sync(  # type: ignore[no-untyped-call]
                scheduler.retire_workers,
                workers=list(chosen),
                close_workers=True,
                callback_timeout=timeout,
            )
        except TimeoutError as exc:
            raise HealthError(
                f"retiring {', '.join(sorted(chosen.values()))} did not finish in {timeout:.0f} s",
                hint="the remaining workers may lack memory for their data; check the dashboard",
            ) from exc
    return sorted(chosen.values())

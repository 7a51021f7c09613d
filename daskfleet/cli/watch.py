"""``daskfleet status --watch``: one table of hosts, workers and tasks, live."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from rich import box
from rich.live import Live
from rich.table import Table
from rich.text import Text

from daskfleet.cli.output import console
from daskfleet.sizes import format_size
from daskfleet.status import ClusterStatus, HostStatus, WorkerStatus

HOST_STYLES = {"ok": "green", "degraded": "bold yellow", "unreachable": "bold red"}
# Short headers: nine columns fit 80 characters.
HEADERS = ("host", "state", "worker", "memory", "limit", "threads")
TASK_HEADERS = ("run", "queue", "held")


def watch(
    observe: Callable[[], ClusterStatus], *, interval: float, count: int | None
) -> None:
    """Refresh the table every ``interval`` seconds, ``count`` times or until Ctrl-C.

    On a terminal the table is redrawn in place; otherwise each refresh is
    printed below the last, so logs and pipes get plain text.
    """
    refreshes = itertools.count() if count is None else range(count)
    if not console.is_terminal:
        for i in refreshes:
            _pause(i, interval)
            console.print(watch_table(observe()))
        return
    with Live(console=console, auto_refresh=False) as live:
        for i in refreshes:
            _pause(i, interval)
            live.update(watch_table(observe()), refresh=True)


def _pause(index: int, interval: float) -> None:
    if index:
        time.sleep(interval)


def watch_table(status: ClusterStatus) -> Table:
    """Per host its state, then one row per worker with memory and tasks."""
    table = Table(
        title=_title(status),
        title_justify="left",
        caption=_caption(status),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for header in HEADERS:
        table.add_column(header, no_wrap=True)
    for header in TASK_HEADERS:
        table.add_column(header, no_wrap=True, justify="right")
    for name, host in status.hosts.items():
        _add_host(table, name, host)
    return table


def _add_host(table: Table, name: str, host: HostStatus) -> None:
    state = Text(host.status, style=HOST_STYLES[host.status])
    if not host.workers:
        roles = ", ".join(sorted({c.role for c in host.containers})) or "-"
        table.add_row(name, state, Text(roles, style="dim"), *["" for _ in range(6)])
        return
    for i, worker in enumerate(host.workers):
        table.add_row(
            name if i == 0 else "",
            state if i == 0 else "",
            _worker_name(worker),
            _size(worker.memory),
            _size(worker.memory_limit),
            _number(worker.nthreads),
            _number(worker.executing),
            _number(worker.queued),
            _number(worker.in_memory),
        )


def _worker_name(worker: WorkerStatus) -> Text:
    if worker.registered is False:
        return Text(f"{worker.name} (missing)", style="bold red")
    return Text(worker.name)


def _title(status: ClusterStatus) -> Text:
    total = sum(len(h.workers) for h in status.hosts.values())
    up = sum(w.registered is True for h in status.hosts.values() for w in h.workers)
    return Text(f"cluster {status.cluster}: {up} of {total} workers registered")


def _caption(status: ClusterStatus) -> Text:
    stamp = status.observed_at.astimezone().strftime("%H:%M:%S")
    if status.scheduler_reachable:
        where = f"scheduler {status.scheduler}"
    else:
        where = f"scheduler {status.scheduler} does not answer"
    return Text(f"{where} · {stamp} · Ctrl-C to stop", style="dim")


def _size(value: int | None) -> str:
    return "-" if value is None else format_size(value)


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)

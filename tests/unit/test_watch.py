"""The live status table: task counts from the scheduler, one row per worker."""

from __future__ import annotations

from rich.console import Console

from daskfleet.cli.watch import watch, watch_table
from daskfleet.status import ClusterStatus, HostStatus, worker_statuses

SCHEDULER_WORKERS = {
    "tcp://10.0.0.2:4000": {
        "name": "n2-0",
        "memory_limit": 2**30,
        "nthreads": 2,
        "metrics": {
            "memory": 100 * 2**20,
            "task_counts": {"executing": 2, "ready": 3, "memory": 7, "flight": 1},
        },
    }
}


def status() -> ClusterStatus:
    workers = worker_statuses("n2", ["n2-0", "n2-1"], SCHEDULER_WORKERS)
    return ClusterStatus(
        cluster="c",
        scheduler="tcp://10.0.0.1:8786",
        dashboard="http://10.0.0.1:8787",
        scheduler_reachable=True,
        hosts={"n1": HostStatus("n1", "ok"), "n2": HostStatus("n2", "ok", (), workers)},
    )


def test_task_counts_come_from_the_heartbeat() -> None:
    first, second = status().hosts["n2"].workers
    assert (first.executing, first.queued, first.in_memory) == (2, 4, 7)
    assert first.to_dict()["in_memory"] == 7
    assert second.registered is False
    assert second.executing is None


def test_table_lists_hosts_workers_and_tasks() -> None:
    console = Console(width=80, record=True)
    console.print(watch_table(status()))
    text = console.export_text()
    assert "1 of 2 workers registered" in text
    assert "n2-1 (missing)" in text
    row = next(line for line in text.splitlines() if "n2-0" in line)
    assert row.split()[-3:] == ["2", "4", "7"]


def test_watch_stops_after_count() -> None:
    calls: list[int] = []

    def observe() -> ClusterStatus:
        calls.append(1)
        return status()

    watch(observe, interval=0.01, count=3)
    assert len(calls) == 3

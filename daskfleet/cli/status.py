"""``daskfleet status``: the cluster's containers and workers, host by host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich import box
from rich.table import Table
from rich.text import Text

from daskfleet.cli.hosts import load_selected, ssh_options
from daskfleet.cli.output import console, print_json
from daskfleet.cli.watch import watch as watch_live
from daskfleet.notebook import notebook_access
from daskfleet.sizes import format_size
from daskfleet.ssh import SSHFleet
from daskfleet.status import ClusterStatus, HostStatus, WorkerStatus, cluster_status

HOST_STYLES = {"ok": "green", "degraded": "bold yellow", "unreachable": "bold red"}


@click.command("status")
@ssh_options
@click.option("--watch", is_flag=True, help="Redraw a live table until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=3.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="With --watch: stop after this many refreshes.",
)
@click.option(
    "--show-token",
    is_flag=True,
    help="Show the notebook's login token (kept on this controller).",
)
def status_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
    watch: bool,
    interval: float,
    count: int | None,
    show_token: bool,
) -> None:
    """Show each host's cluster containers and the workers the scheduler sees.

    Lists every container (role, state, image, uptime) and every worker it
    should run, with its memory in use. Exit 0 when every host is ok, 1 when
    a host is unreachable or degraded (a container missing or stopped, a
    worker not registered) or the scheduler does not answer.

    With --watch, one table of hosts, workers, memory and tasks (running,
    queued, results stored) is refreshed every --interval seconds until
    Ctrl-C (or --count refreshes), and the exit status is 0.

    When the inventory has a notebook, its address is shown; its token only
    with --show-token.
    """
    if watch and as_json:
        raise click.UsageError("--watch draws a table; leave out --json")
    inventory, hosts = load_selected(inventory_path, limit)
    with SSHFleet(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
    ) as fleet:
        if watch:
            _watch(lambda: cluster_status(inventory, hosts, fleet), interval, count)
            return
        status = cluster_status(inventory, hosts, fleet, timeout=connect_timeout)
    access = notebook_access(inventory, with_token=show_token)
    if as_json:
        print_json({**status.to_dict(), "notebook": access})
    else:
        print_status(status, access)
    if not status.ok:
        raise click.exceptions.Exit(1)


def _watch(
    observe: Callable[[], ClusterStatus], interval: float, count: int | None
) -> None:
    try:
        watch_live(observe, interval=interval, count=count)
    except KeyboardInterrupt:
        console.print(Text("stopped watching", style="yellow"))


def _print_notebook(access: dict[str, str | None]) -> None:
    if "token" not in access:
        console.print(
            Text(f"notebook   {access['url']}  ")
            + Text("(--show-token for the login address)", style="dim")
        )
    elif access["token"] is None:
        console.print(
            f"notebook   {access['url']}  (no token on this controller: run daskfleet deploy)",
            soft_wrap=True,
        )
    else:
        url = f"{access['url']}?token={access['token']}"
        console.print(f"notebook   {url}", soft_wrap=True)


def print_status(
    status: ClusterStatus, notebook: dict[str, str | None] | None = None
) -> None:
    """Containers table, workers table, problems, then scheduler and verdict."""
    console.print(containers_table(status))
    if any(h.workers for h in status.hosts.values()):
        console.print(workers_table(status))
    for name, host in status.hosts.items():
        for line in _host_lines(host):
            console.print(Text(f"{name}: ", style="bold red") + Text(line))
    _print_scheduler(status)
    if notebook is not None:
        _print_notebook(notebook)
    for line in image_lines(status):
        console.print(line)
    hosts = status.hosts.values()
    ok = sum(h.status == "ok" for h in hosts)
    verdict = Text("ok", "bold green") if status.ok else Text("NOT ok", "bold red")
    console.print(
        Text(f"cluster {status.cluster} is ")
        + verdict
        + Text(f" ({ok} of {len(status.hosts)} hosts ok)")
    )


def _host_lines(host: HostStatus) -> list[str]:
    return ([host.error] if host.error else []) + list(host.problems)


def _print_scheduler(status: ClusterStatus) -> None:
    if status.scheduler_reachable:
        console.print(f"scheduler  {status.scheduler}")
    else:
        console.print(
            Text("scheduler  ", style="bold red")
            + Text(f"{status.scheduler} does not answer: {status.scheduler_error}")
        )
    console.print(f"dashboard  {status.dashboard}")


def containers_table(status: ClusterStatus) -> Table:
    # A light box: seven columns fit 80 characters without folding names.
    table = Table(
        title=f"cluster {status.cluster}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for header in ("host", "status", "container", "role", "state", "up", "image"):
        table.add_column(header, no_wrap=header != "image", overflow="fold")
    for name, host in status.hosts.items():
        state = Text(host.status, style=HOST_STYLES[host.status])
        if not host.containers:
            table.add_row(name, state, "-", "-", "-", "-", "-")
        for i, c in enumerate(host.containers):
            uptime = c.uptime(status.observed_at)
            table.add_row(
                name if i == 0 else "",
                state if i == 0 else "",
                c.name,
                c.role,
                Text(c.state, style="green" if c.running else "bold red"),
                "-" if uptime is None else format_duration(uptime),
                c.short_image_id,
            )
    return table


def image_lines(status: ClusterStatus) -> list[str]:
    """``image 553ebdbcab7a  daskfleet/lab:7664...`` for each image in use."""
    tags: dict[str, tuple[str, ...]] = {}
    for host in status.hosts.values():
        for c in host.containers:
            tags.setdefault(c.short_image_id, c.image_tags)
    return [
        f"image      {short}  {', '.join(names) or '(untagged)'}"
        for short, names in tags.items()
    ]


def workers_table(status: ClusterStatus) -> Table:
    table = Table(title="workers", title_justify="left")
    for header in ("host", "worker", "registered", "memory", "limit", "threads"):
        table.add_column(header, no_wrap=True)
    for name, host in status.hosts.items():
        for worker in host.workers:
            table.add_row(
                name,
                worker.name,
                _registered(worker),
                _size(worker.memory),
                _size(worker.memory_limit),
                "-" if worker.nthreads is None else str(worker.nthreads),
            )
    return table


def _registered(worker: WorkerStatus) -> Text:
    if worker.registered is None:
        return Text("unknown", style="yellow")
    if not worker.registered:
        return Text("missing", style="bold red")
    return Text("yes" if worker.expected else "yes (unexpected)", style="green")


def _size(value: int | None) -> str:
    return "-" if value is None else format_size(value)


def format_duration(seconds: float) -> str:
    """``42s``, ``5m07s``, ``3h05m``, ``2d04h``."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

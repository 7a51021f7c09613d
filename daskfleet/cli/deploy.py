"""``daskfleet deploy``: plan, ship, start, check, recap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from daskfleet.cli.hosts import load_selected, ssh_options
from daskfleet.cli.lock import lock_wait_option
from daskfleet.cli.output import console, print_json
from daskfleet.deploy import DeployOptions, Recap
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Inventory
from daskfleet.plan import Plan
from daskfleet.playbook import PlayOptions, run_shipped
from daskfleet.rotation import rotate_certificates
from daskfleet.sizes import format_size

STATUS_STYLES = {
    "ok": "green",
    "changed": "yellow",
    "failed": "bold red",
    "unreachable": "bold red",
}


class TerminalEvents:
    """Stage lines and one transfer bar per host, on a terminal only."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> TerminalEvents:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def stage(self, name: str) -> None:
        self._progress.stop()
        console.print(Text(f"• {name}", style="bold cyan"))

    def ship_start(self, host: str, total: int) -> None:
        self._progress.start()
        self._tasks[host] = self._progress.add_task(host, total=total or None)

    def ship_advance(self, host: str, nbytes: int) -> None:
        self._progress.advance(self._tasks[host], nbytes)

    def ship_end(self, host: str) -> None:
        task = self._tasks[host]
        done = self._progress.tasks[task].completed
        self._progress.update(task, total=done, completed=done)


@click.command("deploy")
@ssh_options
@click.option("--check", is_flag=True, help="Show what would change; change nothing.")
@lock_wait_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds to wait for the cluster to be healthy (default: the inventory's).",
)
@click.option(
    "--rotate-certs",
    is_flag=True,
    help="Issue a new CA and new certificates and replace every container: the scheduler first (results it holds in memory are lost), then the workers a batch at a time.",
)
def deploy_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
    check: bool,
    lock_wait: float,
    timeout: float | None,
    rotate_certs: bool,
) -> None:
    """Bring the cluster in INVENTORY up to date and prove it healthy.

    Gathers facts, builds the Dask image once, sends each host only the
    image layers it lacks, starts or replaces only the containers whose
    settings changed (workers are retired through the scheduler first) and
    checks every worker through a Dask client. Exit 0 when all is healthy,
    1 when a host or the cluster failed, 2 for bad input.

    This runs the shipped deploy playbook (see daskfleet play).

    With --rotate-certs (security: tls only), the cluster gets a new CA and
    new certificates for its hosts and clients; clients holding the old
    ones are refused afterwards. The old certificates are kept until the
    cluster is healthy again; a run that stops says what state it left and
    how to finish.
    """
    if rotate_certs:
        if check or limit:
            raise click.UsageError(
                "--rotate-certs replaces every container of the cluster: leave out --check and --limit"
            )
        _rotate(
            inventory_path,
            DeployOptions(
                timeout=timeout,
                accept_new_host_keys=accept_new_host_keys,
                connect_timeout=connect_timeout,
                lock_wait=lock_wait,
            ),
            as_json,
        )
        return
    inventory, _ = load_selected(inventory_path, limit)
    options = PlayOptions(
        check=check,
        limit=limit,
        timeout=timeout,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        lock_wait=lock_wait,
        command="deploy",
    )
    run_and_report("deploy", inventory, options, as_json, print_recap)


def _rotate(inventory_path: Path, options: DeployOptions, as_json: bool) -> None:
    inventory = load_inventory(inventory_path)
    if as_json or not console.is_terminal:
        recap = rotate_certificates(inventory, options)
    else:
        with TerminalEvents() as events:
            recap = rotate_certificates(inventory, options, events)
    if as_json:
        print_json(recap.to_dict())
    else:
        section = recap.sections.get("rotation")
        if section is not None:
            console.print(batches_table(section))
        print_recap(recap)
    if not recap.ok:
        raise click.exceptions.Exit(1)


def run_and_report(
    playbook: str,
    inventory: Inventory,
    options: PlayOptions,
    as_json: bool,
    show: Callable[[Recap], None],
) -> None:
    """Run a shipped playbook with terminal progress, print, exit 1 if not ok."""
    if as_json or not console.is_terminal:
        recap = run_shipped(playbook, inventory, options)
    else:
        with TerminalEvents() as events:
            recap = run_shipped(playbook, inventory, options, events)
    if as_json:
        print_json(recap.to_dict())
    else:
        show(recap)
    if not recap.ok:
        raise click.exceptions.Exit(1)


def print_recap(recap: Recap) -> None:
    """The plan (check mode) or the per-host recap, then problems and URLs."""
    if recap.check and recap.plan is not None:
        console.print(plan_table(recap.plan))
    if recap.plan is not None and recap.plan.distribution is not None:
        console.print("image distribution")
        for line in recap.plan.distribution.lines():
            console.print(f"  {line}", highlight=False)
    console.print(recap_table(recap))
    print_recap_errors(recap)
    if recap.check:
        console.print(
            f"check mode: {recap.plan.changes if recap.plan else 0} change(s) planned, nothing done"
        )
        return
    console.print(f"scheduler  {recap.scheduler_address}")
    console.print(f"dashboard  {recap.dashboard_url}")
    verdict = (
        Text("healthy", style="bold green")
        if recap.ok
        else Text("NOT healthy", style="bold red")
    )
    console.print(
        Text(f"cluster {recap.cluster} is ")
        + verdict
        + Text(f" ({recap.changed} changed, {recap.seconds:.1f} s)")
    )


def print_recap_errors(recap: Recap) -> None:
    """Each host's errors, those of the whole cluster, then the warnings."""
    for name, host in recap.hosts.items():
        for error in host.errors:
            console.print(Text(f"{name}: ", style="bold red") + Text(error))
    for error in recap.errors:
        console.print(Text("cluster: ", style="bold red") + Text(error))
    print_recap_warnings(recap)


def print_recap_warnings(recap: Recap) -> None:
    for warning in recap.warnings:
        console.print(Text("warning: ", style="bold yellow") + Text(warning))


def recap_table(recap: Recap) -> Table:
    table = Table(title="recap", title_justify="left")
    for header in ("host", "status", "changed", "sent", "seconds", "actions"):
        table.add_column(header, no_wrap=header != "actions")
    for name, host in recap.hosts.items():
        table.add_row(
            name,
            Text(host.status, style=STATUS_STYLES[host.status]),
            str(host.changed),
            format_size(host.bytes_sent) if host.bytes_sent else "-",
            f"{host.seconds:.1f}",
            "\n".join(host.actions) or "-",
        )
    return table


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"plan for cluster {plan.cluster}", title_justify="left")
    for header in ("host", "action", "container", "why", "to send"):
        table.add_column(header, no_wrap=header in ("host", "action"))
    for host, actions in plan.actions.items():
        sent = plan.transfer_bytes.get(host)
        for action in actions:
            table.add_row(
                host,
                Text(action.kind, style="dim" if not action.changes else "yellow"),
                action.name,
                "; ".join(action.reasons) or "-",
                format_size(sent) if sent else "-",
            )
    for host in plan.unplanned:
        table.add_row(
            host, Text("skipped", style="red"), "-", "no facts (unreachable)", "-"
        )
    return table


def batches_table(section: dict[str, Any]) -> Table:
    table = Table(title="batches", title_justify="left")
    for header in ("batch", "hosts", "actions", "status", "seconds"):
        table.add_column(header)
    for batch in section["batches"]:
        actions = "\n".join(
            f"{a['kind']} {a['name']}"
            + (f" ({'; '.join(a['reasons'])})" if a["reasons"] else "")
            for a in batch["actions"]
        )
        label = f"{batch['batch']}" + (" canary" if batch["canary"] else "")
        seconds = "-" if batch["seconds"] is None else f"{batch['seconds']:.1f}"
        table.add_row(
            label, ", ".join(batch["hosts"]), actions, batch["status"], seconds
        )
    if not section["batches"]:
        table.add_row("-", "-", "no worker needs the new image", "-", "-")
    return table

"""``daskfleet exec``: one command on many hosts, output grouped per host."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from daskfleet.adhoc import AdhocRun, host_state, run_adhoc
from daskfleet.cli.hosts import load_selected, ssh_options
from daskfleet.cli.output import console, print_json
from daskfleet.results import HostResult
from daskfleet.ssh import CommandResult, SSHFleet

STATE_STYLES = {"ok": "green", "failed": "bold red", "unreachable": "bold red"}


@click.command("exec", context_settings={"ignore_unknown_options": True})
@ssh_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds the command may run on a host before it counts as failed.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
    timeout: float | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND on every selected host in parallel.

    Write the command after `--`. Its words are passed as they are, without
    a shell: for pipes or `$(...)` write `sh -c '...'`. Each host's output
    is shown under its own header, then a table of exit codes. Exits 1 when
    the command failed or could not run on any host.

    \b
    daskfleet exec inventories/lab.yml -- uptime
    daskfleet exec inventories/lab.yml -l lab2 -- sh -c 'docker ps | wc -l'
    """
    inventory, hosts = load_selected(inventory_path, limit)
    with SSHFleet(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
    ) as fleet:
        run = run_adhoc(fleet, hosts, command, timeout=timeout)
    if as_json:
        print_json(run.to_dict())
    else:
        print_run(run)
    if not run.ok:
        raise click.exceptions.Exit(1)


def print_run(run: AdhocRun) -> None:
    """Each host's output under a header, then the recap table."""
    for name, result in run.results.items():
        _print_host(name, result)
    console.print(recap_table(run))
    failed = len(run.failed_hosts)
    style = "green" if not failed else "bold red"
    total = len(run.results)
    console.print(
        Text(f"exec: {total} hosts, {total - failed} ok, {failed} failed", style)
    )


def _print_host(name: str, result: HostResult[CommandResult]) -> None:
    state = host_state(result)
    console.print(Text(f"==> {name} ({_exit_text(result)}) <==", STATE_STYLES[state]))
    if result.error is not None:
        console.print(Text(result.error.message, style="red"))
        return
    value = result.value
    assert value is not None
    # Plain echo: the command's own output must not be read as rich markup.
    if value.stdout:
        click.echo(value.stdout, nl=not value.stdout.endswith("\n"))
    if value.stderr:
        click.echo(value.stderr, nl=not value.stderr.endswith("\n"), err=True)


def _exit_text(result: HostResult[CommandResult]) -> str:
    if result.value is not None:
        return f"exit {result.value.exit_code}"
    return "unreachable" if result.unreachable else "failed"


def recap_table(run: AdhocRun) -> Table:
    table = Table()
    for header in ("host", "status", "exit", "seconds"):
        table.add_column(header, no_wrap=True)
    for name, result in run.results.items():
        state = host_state(result)
        code = "-" if result.value is None else str(result.value.exit_code)
        table.add_row(
            name,
            Text(state, style=STATE_STYLES[state]),
            code,
            f"{result.seconds:.2f}",
        )
    return table

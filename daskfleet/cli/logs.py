"""``daskfleet logs``: the cluster's container logs, grouped by host."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from daskfleet.cli.hosts import load_selected, ssh_options
from daskfleet.cli.output import (
    console,
    error_dict,
    error_text,
    print_json,
    status_text,
    status_word,
)
from daskfleet.inventory.model import ROLES, Host, Inventory, Role
from daskfleet.logs import (
    DEFAULT_TAIL,
    ContainerLog,
    LogRequest,
    collect_logs,
    parse_since,
)
from daskfleet.results import Results
from daskfleet.ssh import SSHFleet


def _since(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("logs")
@ssh_options
@click.argument("host_name", metavar="[HOST]", required=False)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="Only this role's containers.",
)
@click.option(
    "--tail",
    "-n",
    type=click.IntRange(min=0),
    default=DEFAULT_TAIL,
    show_default=True,
    help="Lines from the end of each container's log.",
)
@click.option("--all", "all_lines", is_flag=True, help="Every line (overrides --tail).")
@click.option(
    "--since",
    callback=_since,
    default=None,
    help="Only lines since: 10m, 1h30m, 2d or an ISO time.",
)
def logs_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
    host_name: str | None,
    role: Role | None,
    tail: int,
    all_lines: bool,
    since: datetime | None,
) -> None:
    """Show the logs of the cluster's containers, host by host.

    HOST narrows to one host of INVENTORY. Each container's lines follow a
    header naming host, container, role and state. Exit 1 when a host could
    not be reached (the others are still shown).
    """
    inventory, hosts = load_selected(inventory_path, limit)
    hosts = narrow_to_host(inventory, hosts, host_name)
    request = LogRequest(role, None if all_lines else tail, since)
    with SSHFleet(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
    ) as fleet:
        results = collect_logs(inventory.cluster, hosts, fleet, request)
    if as_json:
        print_json(logs_dict(results))
    else:
        print_logs(results, inventory.cluster)
    if not results.ok:
        raise click.exceptions.Exit(1)


def narrow_to_host(
    inventory: Inventory, hosts: tuple[Host, ...], name: str | None
) -> tuple[Host, ...]:
    """``hosts``, or only ``name`` among them; a usage error names the known ones."""
    if name is None:
        return hosts
    if name not in inventory.hosts:
        known = ", ".join(inventory.hosts)
        raise click.BadParameter(
            f"no host {name!r} in {inventory.path}; its hosts are: {known}",
            param_hint="HOST",
        )
    chosen = tuple(h for h in hosts if h.name == name)
    if not chosen:
        raise click.BadParameter(f"{name!r} is not among the hosts --limit selects")
    return chosen


def print_logs(results: Results[list[ContainerLog]], cluster: str) -> None:
    """Each container's header then its lines; failed hosts with their error."""
    for name, result in results.items():
        if result.error is not None:
            line = Text(f"==> {name} ", style="bold") + status_text(result)
            console.print(line + Text(": ") + error_text(result.error))
            continue
        if not result.value:
            console.print(Text(f"==> {name}: no container of cluster {cluster}", "dim"))
        for log in result.value or []:
            console.print(Text(log.header, style="bold cyan"))
            for text in log.lines:
                click.echo(text)


def logs_dict(results: Results[list[ContainerLog]]) -> dict[str, Any]:
    """``{"hosts": {HOST: {"status", "containers" | "error"}}}``."""
    hosts: dict[str, Any] = {}
    for name, result in results.items():
        entry: dict[str, Any] = {"status": status_word(result)}
        if result.error is not None:
            entry["error"] = error_dict(result.error)
        else:
            entry["containers"] = [log.to_dict() for log in result.value or []]
        hosts[name] = entry
    return {"hosts": hosts}

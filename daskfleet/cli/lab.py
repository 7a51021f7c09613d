"""``daskfleet lab``: a fleet of simulated hosts on this machine."""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from daskfleet.errors import LabError
from daskfleet.lab import (
    DEFAULT_HOSTS,
    DEFAULT_NAME,
    LabStatus,
    lab_down,
    lab_status,
    lab_up,
    saved_config,
    saved_state,
)
from daskfleet.lab.uplink import parse_rate

console = Console()

name_option = click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="Lab name; every namespace, interface and directory derives from it.",
)


def _subnet(value: str | None) -> ipaddress.IPv4Network | None:
    if value is None:
        return None
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise LabError(f"invalid --subnet {value!r}: {exc}") from exc


@click.group("lab")
def lab_group() -> None:
    """A fleet of simulated hosts on this machine (needs root).

    Each host is a network namespace with its own address, sshd and dockerd
    (sshd only with --no-docker).
    """


@lab_group.command("up")
@click.option(
    "--hosts",
    "count",
    default=DEFAULT_HOSTS,
    show_default=True,
    type=click.IntRange(min=2),
    help="How many hosts; host 1 runs the scheduler.",
)
@click.option(
    "--inventory",
    "inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Inventory to write [default: inventories/<name>.yml].",
)
@name_option
@click.option("--subnet", help="IPv4 /24 or larger [default: derived from name].")
@click.option(
    "--gpus",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Simulated GPUs on host 2 (stand-ins for nvidia-smi and the container hook).",
)
@click.option(
    "--docker/--no-docker",
    default=None,
    help="Run a dockerd on each host, or sshd only [default: as last time, else docker].",
)
@click.option(
    "--uplink-rate",
    metavar="RATE",
    default=None,
    help="Limit this machine's traffic to the hosts (200mbit, 1gbit); off removes it [default: as last time].",
)
def up_command(
    count: int,
    inventory: Path | None,
    name: str,
    subnet: str | None,
    gpus: int,
    docker: bool | None,
    uplink_rate: str | None,
) -> None:
    """Bring the lab up, or repair it; safe to re-run."""
    config = saved_config(name, _subnet(subnet))
    previous = saved_state(config)
    if docker is None:
        docker = previous.docker if previous else True
    rate = previous.uplink_rate if previous else None
    if uplink_rate is not None:
        rate = parse_rate(uplink_rate)
    inventory = inventory or Path("inventories") / f"{name}.yml"
    started = time.monotonic()
    with console.status(f"bringing lab {name} up", spinner="dots"):
        state = lab_up(
            config, count, inventory, gpus=gpus, docker=docker, uplink_rate=rate
        )
    elapsed = time.monotonic() - started
    kind = "hosts" if state.docker else "hosts, sshd only"
    console.print(
        f"lab [bold]{name}[/] up: {len(state.hosts)} {kind} ({elapsed:.1f} s)"
    )
    for host in state.hosts:
        extra = f"  {host.gpus} simulated GPUs" if host.gpus else ""
        where = f"unix://{host.docker_socket}" if state.docker else "sshd"
        console.print(f"  {host.name}  {host.address}  {where}{extra}")
    if state.docker:
        console.print(f"  build daemon  unix://{state.build_socket}")
    if state.uplink_rate:
        console.print(
            f"  uplink        {state.uplink_rate} from this machine to the hosts"
        )
    console.print(f"  inventory     {state.inventory_path}")


def _pid(pid: int | None) -> str:
    return "[red]down[/]" if pid is None else f"[green]{pid}[/]"


def _api(answers: bool) -> str:
    return "[green]answers[/]" if answers else "[red]silent[/]"


def _uplink(status: LabStatus) -> str:
    found = status.uplink_bytes_per_second
    now = "none" if found is None else f"{found * 8 / 1e6:g}mbit"
    wanted = status.uplink_rate or "none"
    if status.uplink_ok:
        return f"uplink limit: {now}"
    return f"uplink limit: [red]{now}[/], expected {wanted} (daskfleet lab up --name {status.name} repairs it)"


def _status_table(status: LabStatus) -> Table:
    title = (
        f"lab {status.name} ({status.subnet}{'' if status.docker else ', sshd only'})"
    )
    table = Table(title=title, caption=_uplink(status))
    for column in ("host", "address", "netns", "sshd", "dockerd", "docker API"):
        table.add_column(column)
    for host in status.hosts:
        table.add_row(
            host.name,
            host.address,
            "[green]yes[/]" if host.netns else "[red]missing[/]",
            _pid(host.sshd_pid),
            _pid(host.dockerd_pid) if status.docker else "-",
            _api(host.docker_answers) if status.docker else "-",
        )
    if status.docker:
        build = _pid(status.build_pid), _api(status.build_answers)
        table.add_row("build", "-", "-", "-", *build)
    return table


@lab_group.command("status")
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show each host's namespace and daemons; exit 1 if one is down."""
    status = lab_status(saved_config(name))
    if as_json:
        click.echo(json.dumps(status.to_dict(), indent=2))
    else:
        console.print(_status_table(status))
    if not status.ok:
        ctx.exit(1)


@lab_group.command("down")
@name_option
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete the state dir (keys, daemons' data); the base image cache stays.",
)
def down_command(name: str, purge: bool) -> None:
    """Stop every daemon and remove namespaces, interfaces and mounts."""
    started = time.monotonic()
    with console.status(f"taking lab {name} down", spinner="dots"):
        lab_down(saved_config(name), purge=purge)
    elapsed = time.monotonic() - started
    console.print(f"lab [bold]{name}[/] down ({elapsed:.1f} s)")

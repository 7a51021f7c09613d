"""``daskfleet ping`` and ``daskfleet facts``: reach the hosts, describe them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from daskfleet.cli.output import (
    Column,
    print_json,
    print_notes,
    print_results,
    results_dict,
)
from daskfleet.facts import Facts, Ping, gather_facts, ping_hosts
from daskfleet.inventory.model import Host, Inventory
from daskfleet.sizes import format_size
from daskfleet.ssh import SSHFleet

F = TypeVar("F", bound=Callable[..., Any])

inventory_argument = click.argument(
    "inventory_path",
    metavar="INVENTORY",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
limit_option = click.option(
    "--limit",
    "-l",
    metavar="PATTERN",
    default=None,
    help="Only these hosts: names, groups, roles or globs, comma-separated; !x excludes.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of a table."
)
accept_new_option = click.option(
    "--accept-new-host-keys",
    is_flag=True,
    help="Record the SSH keys of hosts never seen before (changed keys are still refused).",
)
connect_timeout_option = click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a host's SSH server.",
)


def ssh_options(command: F) -> F:
    """The options every command that reaches hosts takes."""
    for option in (
        connect_timeout_option,
        accept_new_option,
        json_option,
        limit_option,
        inventory_argument,
    ):
        command = option(command)
    return command


def load_selected(path: Path, limit: str | None) -> tuple[Inventory, tuple[Host, ...]]:
    """The inventory and the hosts ``--limit`` selects (all by default)."""
    from daskfleet.inventory import load_inventory

    inventory = load_inventory(path)
    hosts = inventory.select(limit)
    if not hosts:
        raise click.BadParameter(f"{limit!r} matches no host", param_hint="--limit")
    return inventory, hosts


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


PING_COLUMNS: list[Column[Ping]] = [
    ("connect", lambda p: _ms(p.connect_seconds)),
    ("round trip", lambda p: _ms(p.rtt_seconds)),
    ("docker", lambda p: p.docker_version),
]


@click.command("ping")
@ssh_options
def ping_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
) -> None:
    """Check that every host answers over SSH and its Docker daemon runs.

    Exits 1 when any host fails.
    """
    inventory, hosts = load_selected(inventory_path, limit)
    with SSHFleet(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
    ) as fleet:
        results = ping_hosts(fleet, hosts)
    if as_json:
        print_json(results_dict(results, _ping_dict))
    else:
        print_results(results, PING_COLUMNS, what="ping")
    if not results.ok:
        raise click.exceptions.Exit(1)


def _ping_dict(ping: Ping) -> dict[str, Any]:
    return {
        "connect_seconds": round(ping.connect_seconds, 4),
        "rtt_seconds": round(ping.rtt_seconds, 4),
        "docker_version": ping.docker_version,
    }


def _optional_size(value: int | None) -> str:
    return "-" if value is None else format_size(value)


def _gpus(facts: Facts) -> str:
    if not facts.gpus:
        return "-"
    names = sorted({gpu.name for gpu in facts.gpus})
    return f"{len(facts.gpus)}× {', '.join(names)}"


FACTS_COLUMNS: list[Column[Facts]] = [
    ("cpus", lambda f: str(f.cpus)),
    ("memory", lambda f: format_size(f.memory)),
    ("arch", lambda f: f.docker_arch),
    ("docker", lambda f: f.docker_version or "-"),
    ("storage", lambda f: f.storage_driver or "-"),
    ("disk free", lambda f: _optional_size(f.disk_free)),
    ("gpus", _gpus),
]


@click.command("facts")
@ssh_options
def facts_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
) -> None:
    """Show what each host is: CPUs, memory, architecture, Docker, GPUs.

    Exits 1 when any host cannot be reached or read.
    """
    inventory, hosts = load_selected(inventory_path, limit)
    with SSHFleet(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
    ) as fleet:
        results = gather_facts(fleet, hosts)
    if as_json:
        print_json(results_dict(results, Facts.to_dict))
    else:
        print_results(results, FACTS_COLUMNS, what="facts")
        print_notes({name: f.notes for name, f in results.succeeded.items()})
    if not results.ok:
        raise click.exceptions.Exit(1)

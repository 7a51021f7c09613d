"""``daskfleet inventory``: check an inventory and show what it resolves to."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daskfleet.inventory import Host, Inventory, Volume, load_inventory
from daskfleet.masking import mask, mask_data
from daskfleet.sizes import format_size

#: Host fields that are bookkeeping rather than variables.
_NOT_VARIABLES = ("name", "sources")


@click.command("inventory")
@click.argument(
    "inventory_file",
    metavar="INVENTORY",
    type=click.Path(dir_okay=True, path_type=Path),
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON for machines (sizes in bytes) instead of a table.",
)
def inventory_command(inventory_file: Path, as_json: bool) -> None:
    """Check INVENTORY and show every host with its resolved variables.

    INVENTORY is a daskfleet inventory or an Ansible YAML inventory. Each
    host is listed with its final variables and where each value came from
    (the host, a group, defaults, or a built-in default). No host is
    contacted. An invalid inventory exits with status 2 and a message naming
    the file, line and key.

    \b
    Examples:
      daskfleet inventory inventories/prod.yml
      daskfleet inventory inventories/prod.yml --json
    """
    inventory = load_inventory(inventory_file)
    if as_json:
        click.echo(json.dumps(mask_data(inventory_as_dict(inventory)), indent=2))
    else:
        _print_inventory(inventory, Console(highlight=False))


def inventory_as_dict(inventory: Inventory) -> dict[str, object]:
    """The resolved inventory as plain JSON-ready data (sizes in bytes)."""
    image = inventory.image
    return {
        "cluster": inventory.cluster,
        "path": inventory.path,
        "settings": {
            "scheduler_port": inventory.scheduler_port,
            "dashboard_port": inventory.dashboard_port,
            "timeout": inventory.timeout,
            "image": {"packages": list(image.packages), "base": image.base},
        },
        "groups": {name: list(hosts) for name, hosts in inventory.groups.items()},
        "hosts": {name: host_variables(h) for name, h in inventory.hosts.items()},
        "sources": {name: _sources(h) for name, h in inventory.hosts.items()},
    }


def host_variables(host: Host) -> dict[str, object]:
    """Every variable of ``host`` as JSON-ready data; unset ones are None."""
    return {
        field.name: _plain(getattr(host, field.name))
        for field in dataclasses.fields(host)
        if field.name not in _NOT_VARIABLES
    }


def _sources(host: Host) -> dict[str, str]:
    """Where each set variable came from, in the order of the variables."""
    names = host_variables(host)
    return {name: host.sources[name] for name in names if name in host.sources}


def _plain(value: object) -> object:
    if isinstance(value, Volume):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _print_inventory(inventory: Inventory, console: Console) -> None:
    scheduler = inventory.scheduler
    where = f"{scheduler.address}:{inventory.scheduler_port}"
    console.print(
        Text(f"cluster {inventory.cluster}  ({inventory.path})", style="bold")
    )
    console.print(
        Text(
            f"scheduler {scheduler.name} ({where})"
            f", dashboard port {inventory.dashboard_port}"
            f", timeout {inventory.timeout:g}s"
        )
    )
    image = inventory.image
    if image.packages or image.base:
        base = image.base or "default base"
        console.print(
            Text(f"image: {base}; packages: {', '.join(image.packages) or '-'}")
        )
    for name, members in inventory.groups.items():
        console.print(Text(f"group {name}: {', '.join(members) or '-'}"))
    console.print(_host_table(inventory))
    console.print(
        Text(
            "Unset variables are not listed; deploy fills them from host facts.",
            style="dim",
        )
    )


def _host_table(inventory: Inventory) -> Table:
    table = Table("Host", "Variable")
    table.add_column("Value", overflow="fold")
    table.add_column("Source")
    for host in inventory.hosts.values():
        rows = [
            (name, _shown(name, value), host.sources.get(name, "inventory"))
            for name, value in host_variables(host).items()
            if value not in (None, [], {})
        ]
        for index, (name, shown, source) in enumerate(rows):
            label = host.name if index == 0 else ""
            last = index == len(rows) - 1
            table.add_row(
                Text(label),
                Text(name),
                Text(mask(shown)),
                Text(source),
                end_section=last,
            )
    return table


_SIZE_VARIABLES = ("memory", "rmm_pool_size", "device_memory_limit")


def _shown(name: str, value: object) -> str:
    if name in _SIZE_VARIABLES and isinstance(value, int):
        return format_size(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

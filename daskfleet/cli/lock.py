"""``daskfleet lock status|release``: see or break a cluster's deploy lock."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from daskfleet.cli.hosts import (
    accept_new_option,
    connect_timeout_option,
    inventory_argument,
    json_option,
)
from daskfleet.cli.output import console, print_json
from daskfleet.errors import LockError
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Inventory
from daskfleet.locking import LockState, break_lock, read_lock
from daskfleet.ssh import SSHFleet

lock_wait_option = click.option(
    "--lock-wait",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Wait this long for another run's deploy lock (default: fail at once).",
)


@click.group("lock")
def lock_group() -> None:
    """The deploy lock that lets one deploy, upgrade or down run at a time."""


@lock_group.command("status")
@inventory_argument
@json_option
@accept_new_option
@connect_timeout_option
def status_command(
    inventory_path: Path,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
) -> None:
    """Whether the cluster in INVENTORY is locked, and by whom. Exit 0 either way."""
    inventory = load_inventory(inventory_path)
    with _fleet(inventory, accept_new_host_keys, connect_timeout) as fleet:
        state = read_lock(fleet, inventory)
    if as_json:
        print_json(_state_dict(state))
    else:
        console.print(f"cluster {inventory.cluster}: {state.describe()}")


@lock_group.command("release")
@inventory_argument
@click.option(
    "--force", is_flag=True, help="Break a lock whose run may still be alive."
)
@accept_new_option
@connect_timeout_option
def release_command(
    inventory_path: Path,
    force: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
) -> None:
    """Break the deploy lock of the cluster in INVENTORY left by a crashed run.

    Without --force, only a lock whose run started on this machine and no
    longer runs is broken; any other needs --force.
    """
    inventory = load_inventory(inventory_path)
    with _fleet(inventory, accept_new_host_keys, connect_timeout) as fleet:
        state = read_lock(fleet, inventory)
        if not state.held:
            console.print(f"cluster {inventory.cluster}: not locked")
            return
        stale = state.holder is not None and state.holder.is_stale()
        if not (stale or force):
            raise LockError(
                f"cluster {inventory.cluster} is {state.describe()}, and that run may still be alive",
                hint=f"make sure it is gone, then: daskfleet lock release {inventory_path} --force",
            )
        break_lock(fleet, inventory)
    console.print(f"cluster {inventory.cluster}: lock released")


def _fleet(inventory: Inventory, accept_new: bool, timeout: float) -> SSHFleet:
    return SSHFleet(inventory, accept_new_host_keys=accept_new, connect_timeout=timeout)


def _state_dict(state: LockState) -> dict[str, Any]:
    holder = None
    if state.holder is not None:
        holder = dataclasses.asdict(state.holder)
        holder.pop("token")
    return {
        "host": state.host,
        "path": state.path,
        "held": state.held,
        "holder": holder,
    }

"""``daskfleet down``: retire or stop the workers, remove the containers."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.text import Text

from daskfleet.cli.deploy import print_recap_errors, recap_table
from daskfleet.cli.hosts import load_selected, ssh_options
from daskfleet.cli.lock import lock_wait_option
from daskfleet.cli.output import console, print_json
from daskfleet.deploy import Recap
from daskfleet.inventory.model import Host, Inventory
from daskfleet.playbook import PlayOptions, run_shipped
from daskfleet.teardown import scheduler_leaves


@click.command("down")
@ssh_options
@click.option(
    "--purge-images",
    is_flag=True,
    help="Also remove the cluster's images from the hosts.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds retiring workers may take (default: the inventory's timeout).",
)
@lock_wait_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def down_command(
    inventory_path: Path,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
    purge_images: bool,
    timeout: float | None,
    lock_wait: float,
    yes: bool,
) -> None:
    """Remove the cluster in INVENTORY from its hosts (or those --limit selects).

    When the scheduler stays (--limit names worker hosts only), their workers
    are first retired through it, so the data they hold moves to the other
    workers. When the scheduler goes too, workers are stopped cleanly, then
    the scheduler. Asks for confirmation on a terminal unless --yes; without
    a terminal --yes is required. Exit 0 when done, 1 when a host failed.

    This runs the shipped teardown playbook (see daskfleet play).
    """
    inventory, hosts = load_selected(inventory_path, limit)
    if not yes:
        _confirm(inventory, hosts, purge_images)
    options = PlayOptions(
        limit=limit,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        lock_wait=lock_wait,
        command="down",
        overrides={"teardown": {"purge_images": purge_images, "timeout": timeout}},
    )
    recap = run_shipped("teardown", inventory, options)
    if as_json:
        print_json(recap.to_dict())
    else:
        print_down_recap(recap)
    if not recap.ok:
        raise click.exceptions.Exit(1)


def _confirm(inventory: Inventory, hosts: tuple[Host, ...], purge: bool) -> None:
    if not sys.stdin.isatty():
        raise click.UsageError(
            "down removes containers: pass --yes to confirm without a terminal"
        )
    what = "containers and images" if purge else "containers"
    names = ", ".join(h.name for h in hosts)
    scope = "the whole cluster" if scheduler_leaves(inventory, hosts) else "workers"
    click.confirm(
        f"Remove cluster {inventory.cluster}'s {what} ({scope}) from {names}?",
        abort=True,
    )


def print_down_recap(recap: Recap) -> None:
    """The per-host recap, problems, and one summary line."""
    console.print(recap_table(recap))
    print_recap_errors(recap)
    verdict = Text("down", "bold green") if recap.ok else Text("NOT down", "bold red")
    console.print(
        Text(f"cluster {recap.cluster} on {len(recap.hosts)} host(s): ")
        + verdict
        + Text(f" ({recap.changed} changed, {recap.seconds:.1f} s)")
    )

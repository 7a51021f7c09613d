"""``daskfleet tunnel``: the scheduler and dashboard on localhost, over SSH."""

from __future__ import annotations

import threading
from pathlib import Path

import click
from rich.text import Text

from daskfleet.cli.hosts import accept_new_option, connect_timeout_option
from daskfleet.cli.output import console
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Inventory
from daskfleet.ssh import SSHFleet
from daskfleet.tls import client_files
from daskfleet.tunnel import Tunnel, cluster_forwards

port_type = click.IntRange(0, 65535)


@click.command("tunnel")
@click.argument(
    "inventory_path",
    metavar="INVENTORY",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--local-port",
    type=port_type,
    default=None,
    help="Local port for the scheduler (default: the cluster's scheduler_port; 0: any free port).",
)
@click.option(
    "--dashboard-port",
    type=port_type,
    default=None,
    help="Local port for the dashboard (default: the cluster's dashboard_port; 0: any free port).",
)
@accept_new_option
@connect_timeout_option
def tunnel_command(
    inventory_path: Path,
    local_port: int | None,
    dashboard_port: int | None,
    accept_new_host_keys: bool,
    connect_timeout: float,
) -> None:
    """Forward the scheduler and dashboard to localhost over SSH.

    For fleets where only SSH is open. Listens on 127.0.0.1 only, prints
    the addresses to use, and runs until Ctrl-C. With TLS (the default) the
    connections stay encrypted end to end: connect with the client
    certificate that daskfleet client-config shows, and trust the
    cluster's CA for the dashboard (its certificate names localhost too).

    \b
    daskfleet tunnel inventories/lab.yml
    daskfleet client-config inventories/lab.yml   # with tls://localhost:8786
    """
    inventory = load_inventory(inventory_path)
    forwards = cluster_forwards(
        inventory, scheduler_port=local_port, dashboard_port=dashboard_port
    )
    with SSHFleet(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
    ) as fleet:
        tunnel = Tunnel(fleet, inventory.scheduler, forwards)
        ports = tunnel.start()
        try:
            _print_addresses(inventory, ports)
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print(Text("closing the tunnel", style="yellow"))
        finally:
            tunnel.close()


def _print_addresses(inventory: Inventory, ports: dict[str, int]) -> None:
    secure = inventory.security == "tls"
    scheme, web = ("tls", "https") if secure else ("tcp", "http")
    console.print(f"scheduler  {scheme}://localhost:{ports['scheduler']}")
    console.print(f"dashboard  {web}://localhost:{ports['dashboard']}/status")
    if secure:
        ca = client_files(inventory.cluster)[0]
        console.print(
            Text(
                f"TLS: connect with the client certificate (daskfleet client-config {inventory.path}); the dashboard's CA is {ca}",
                style="dim",
            )
        )
    console.print(
        Text(
            f"forwarding over SSH to {inventory.scheduler.name}; press Ctrl-C to stop",
            style="dim",
        )
    )

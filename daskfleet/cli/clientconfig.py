"""``daskfleet client-config``: how to connect to the cluster from Python."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from daskfleet.cli.hosts import inventory_argument
from daskfleet.deploy import dashboard_url
from daskfleet.inventory import load_inventory
from daskfleet.specs import scheduler_address
from daskfleet.tls import client_files


@click.command("client-config")
@inventory_argument
def client_config_command(inventory_path: Path) -> None:
    """Print how to connect a Dask client to the cluster in INVENTORY.

    With TLS on (the default), this shows the client certificate files on
    this machine, as a dask configuration snippet and as Python lines.
    """
    inventory = load_inventory(inventory_path)
    address = scheduler_address(inventory)
    click.echo(f"# scheduler {address}\n# dashboard {dashboard_url(inventory)}")
    if inventory.security != "tls":
        click.echo(f"\nfrom distributed import Client\nclient = Client({address!r})")
        return
    ca, cert, key = (str(p) for p in client_files(inventory.cluster))
    config = {
        "distributed": {
            "comm": {
                "require-encryption": True,
                "tls": {"ca-file": ca, "client": {"cert": cert, "key": key}},
            }
        }
    }
    click.echo("\n# ~/.config/dask/daskfleet.yaml")
    click.echo(yaml.safe_dump(config, sort_keys=False).rstrip())
    click.echo(
        "\n# or in Python\n"
        "from distributed import Client\n"
        "from distributed.security import Security\n"
        f"security = Security(tls_ca_file={ca!r}, tls_client_cert={cert!r},\n"
        f"                    tls_client_key={key!r}, require_encryption=True)\n"
        f"client = Client({address!r}, security=security)"
    )

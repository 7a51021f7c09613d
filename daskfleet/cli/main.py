"""Entry point: the ``daskfleet`` command group and its error handling.

This is the one place that turns library errors into messages and exit
codes: 0 success, 1 a host or the cluster failed, 2 bad input.
"""

from __future__ import annotations

import logging

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from daskfleet import __version__
from daskfleet.errors import DaskfleetError
from daskfleet.masking import MaskingFilter, mask

err_console = Console(stderr=True)


class DaskfleetGroup(click.Group):
    """A click group whose commands report DaskfleetError without traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DaskfleetError as exc:
            message = Text.assemble(("error: ", "bold red"), mask(str(exc)))
            err_console.print(message, soft_wrap=True, highlight=False)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print(Text("interrupted", style="yellow"))
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            # A bug, not a user error: one line, the traceback only at -vv.
            logging.getLogger("daskfleet").debug("internal error", exc_info=True)
            what = f"internal error: {type(exc).__name__}: {mask(str(exc))}"
            err_console.print(Text.assemble(("error: ", "bold red"), what))
            err_console.print("  run again with -vv to see where; please report it")
            ctx.exit(1)


@click.group(
    cls=DaskfleetGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="daskfleet")
@click.option("-v", "--verbose", count=True, help="More output: -v info, -vv debug.")
def cli(verbose: int) -> None:
    """Deploy and keep Dask clusters on machines you already own.

    Point daskfleet at an inventory of hosts; it reaches them over SSH, ships
    one Dask image to each without a registry and starts a scheduler and
    workers with each host's limits.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = RichHandler(console=err_console, show_path=False)
    handler.addFilter(MaskingFilter())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    if verbose < 2:
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def _register() -> None:
    from daskfleet.cli import (
        adhoc,
        clientconfig,
        completion,
        deploy,
        down,
        hosts,
        inventory,
        lab,
        lock,
        logs,
        play,
        status,
        tunnel,
        upgrade,
    )

    cli.add_command(inventory.inventory_command)
    cli.add_command(deploy.deploy_command)
    cli.add_command(clientconfig.client_config_command)
    cli.add_command(upgrade.upgrade_command)
    cli.add_command(hosts.ping_command)
    cli.add_command(hosts.facts_command)
    cli.add_command(lab.lab_group)
    cli.add_command(status.status_command)
    cli.add_command(down.down_command)
    cli.add_command(logs.logs_command)
    cli.add_command(adhoc.exec_command)
    cli.add_command(tunnel.tunnel_command)
    cli.add_command(completion.completion_command)
    cli.add_command(play.play_command)
    cli.add_command(lock.lock_group)


_register()


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="daskfleet")

"""Entry point: the ``daskfleet`` command group and its error handling.

This is the one place that turns library errors into messages and exit
codes: 0 success, 1 a host or the cluster failed, 2 bad input.
"""

from __future__ import annotations

import importlib
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
    """A click group whose commands report DaskfleetError without traceback.

    Commands of :data:`COMMANDS` are imported on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module, attribute = COMMANDS[name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, name)
        return super().get_command(ctx, name)

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


#: Each command's module and attribute, imported only when it runs (or when
#: --help lists them all): ``facts`` need not import Dask, Docker or rich's
#: tables for the other commands, which is half a second on a busy machine.
COMMANDS = {
    "inventory": ("daskfleet.cli.inventory", "inventory_command"),
    "deploy": ("daskfleet.cli.deploy", "deploy_command"),
    "client-config": ("daskfleet.cli.clientconfig", "client_config_command"),
    "upgrade": ("daskfleet.cli.upgrade", "upgrade_command"),
    "ping": ("daskfleet.cli.hosts", "ping_command"),
    "facts": ("daskfleet.cli.hosts", "facts_command"),
    "lab": ("daskfleet.cli.lab", "lab_group"),
    "status": ("daskfleet.cli.status", "status_command"),
    "down": ("daskfleet.cli.down", "down_command"),
    "logs": ("daskfleet.cli.logs", "logs_command"),
    "exec": ("daskfleet.cli.adhoc", "exec_command"),
    "tunnel": ("daskfleet.cli.tunnel", "tunnel_command"),
    "completion": ("daskfleet.cli.completion", "completion_command"),
    "play": ("daskfleet.cli.play", "play_command"),
    "lock": ("daskfleet.cli.lock", "lock_group"),
}


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="daskfleet")

"""``daskfleet upgrade``: a new image to every worker, a batch at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.text import Text

from daskfleet.cli.deploy import (
    batches_table,
    print_recap,
    print_recap_errors,
    print_recap_warnings,
    recap_table,
    run_and_report,
)
from daskfleet.cli.hosts import (
    accept_new_option,
    connect_timeout_option,
    inventory_argument,
    json_option,
)
from daskfleet.cli.lock import lock_wait_option
from daskfleet.cli.output import console
from daskfleet.deploy import Recap
from daskfleet.inventory import load_inventory
from daskfleet.playbook import PlayOptions
from daskfleet.upgrade.settings import Amount


class AmountType(click.ParamType[Amount]):
    """A count like 2 or a percentage like 25%."""

    name = "N|N%"

    def convert(self, value: Any, param: Any, ctx: Any) -> Amount:
        if isinstance(value, Amount):
            return value
        try:
            return Amount.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("upgrade")
@inventory_argument
@click.option(
    "--image",
    "image_ref",
    metavar="REF",
    help="Roll out this image from the build daemon instead of building one.",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Build the image even if one with the same inputs exists.",
)
@click.option(
    "--batch",
    type=AmountType(),
    help="Worker hosts replaced together (default 1, or the inventory's).",
)
@click.option(
    "--canary",
    type=click.IntRange(min=0),
    help="Hosts in a first batch that must prove healthy before the rest.",
)
@click.option(
    "--healthy-deadline",
    type=click.FloatRange(min=1),
    help="Seconds a new worker has to become healthy.",
)
@click.option(
    "--min-healthy-time",
    type=click.FloatRange(min=0),
    help="Seconds a new batch must stay healthy before the next.",
)
@click.option(
    "--max-failed",
    type=AmountType(),
    help="Worker hosts that may fail (rolled back) before the upgrade stops.",
)
@click.option(
    "--no-rollback", is_flag=True, help="Leave a failed batch as it is, for inspection."
)
@click.option(
    "--restart-cluster",
    is_flag=True,
    help="Allow replacing the scheduler too; in-memory results are lost.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Show the batches and what each will do; change nothing.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    help="Seconds for retiring and the final health check.",
)
@lock_wait_option
@json_option
@accept_new_option
@connect_timeout_option
def upgrade_command(
    inventory_path: Path,
    image_ref: str | None,
    rebuild: bool,
    check: bool,
    no_rollback: bool,
    restart_cluster: bool,
    timeout: float | None,
    lock_wait: float,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
    **overrides: Any,
) -> None:
    """Upgrade the workers of the cluster in INVENTORY to a new image.

    The image reaches every host first. Then, batch by batch, workers are
    retired through the scheduler (the data they hold moves to the other
    workers), replaced, and must prove healthy before the next batch
    starts. A batch that fails is rolled back to its previous containers and
    the upgrade stops with exit 1. A re-run continues an interrupted one.

    This runs the shipped upgrade playbook (see daskfleet play).
    """
    if image_ref and rebuild:
        raise click.UsageError("--image and --rebuild exclude each other")
    inventory = load_inventory(inventory_path)
    arguments = {
        **_arguments(overrides, no_rollback),
        "image": image_ref,
        "rebuild": rebuild,
        "restart_cluster": restart_cluster,
    }
    options = PlayOptions(
        check=check,
        timeout=timeout,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        lock_wait=lock_wait,
        command="upgrade",
        overrides={"upgrade": arguments},
    )
    run_and_report("upgrade", inventory, options, as_json, _print)


def _arguments(overrides: dict[str, Any], no_rollback: bool) -> dict[str, Any]:
    """The upgrade task's arguments: the options given (over the inventory's)."""
    given = {k: str(v) if isinstance(v, Amount) else v for k, v in overrides.items()}
    given = {k: v for k, v in given.items() if v is not None}
    if no_rollback:
        given["rollback"] = False
    return given


def _print(recap: Recap) -> None:
    section = recap.sections.get("upgrade")
    if section is not None:
        console.print(batches_table(section))
    if recap.check:
        print_recap(recap)
        return
    console.print(recap_table(recap))
    if not recap.ok:
        print_recap_errors(recap)
        console.print(
            Text(f"upgrade of {recap.cluster} stopped", style="bold red")
            + Text(f" after {recap.changed} change(s), {recap.seconds:.1f} s")
        )
        return
    print_recap_warnings(recap)
    console.print(
        Text(f"upgrade of {recap.cluster} done: ", style="bold green")
        + Text(f"{recap.changed} containers replaced in {recap.seconds:.1f} s")
    )

"""``daskfleet play``: run an Ansible-style playbook on an inventory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table
from rich.text import Text

from daskfleet.cli.deploy import TerminalEvents, print_recap_errors
from daskfleet.cli.hosts import (
    accept_new_option,
    connect_timeout_option,
    json_option,
    limit_option,
)
from daskfleet.cli.lock import lock_wait_option
from daskfleet.cli.output import console, print_json
from daskfleet.inventory import load_inventory
from daskfleet.playbook import (
    PlaybookRecap,
    PlayOptions,
    load_playbook,
    run_playbook,
    shipped_playbook,
)
from daskfleet.playbook.recap import TaskRecord

STYLES = {
    "ok": "green",
    "changed": "yellow",
    "skipped": "cyan",
    "failed": "bold red",
    "unreachable": "bold red",
}


class PrintingListener:
    """Ansible-like lines: a header per play and task, a line per host."""

    def play_start(self, name: str, hosts: Sequence[str]) -> None:
        console.print(
            Text(f"PLAY [{name}] ", style="bold")
            + Text(f"on {', '.join(hosts) or 'no host'}")
        )

    def task_start(self, name: str, module: str) -> None:
        console.print(
            Text(f"TASK [{name}]", style="bold") + Text(f" ({module})", style="dim")
        )

    def task_done(self, record: TaskRecord) -> None:
        for host, outcome in record.outcomes.items():
            word = "...ignoring" if outcome.ignored else ""
            line = Text(f"  {outcome.status}: [{host}]", style=STYLES[outcome.status])
            if outcome.msg:
                line += Text(f" {outcome.msg}")
            if word:
                line += Text(f" {word}", style="cyan")
            console.print(line)


@click.command("play")
@click.argument("playbook_path", metavar="PLAYBOOK")
@click.option(
    "--inventory",
    "-i",
    "inventory_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The inventory file.",
)
@click.option("--check", is_flag=True, help="Show what would change; change nothing.")
@click.option(
    "--tags",
    "-t",
    multiple=True,
    metavar="TAGS",
    help="Only tasks with these tags (comma-separated; repeatable).",
)
@click.option(
    "--extra-vars",
    "-e",
    multiple=True,
    metavar="K=V",
    help="Variables over all others: K=V, a YAML mapping, or @file.yml (repeatable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds for health checks and retiring (default: the inventory's).",
)
@lock_wait_option
@limit_option
@json_option
@accept_new_option
@connect_timeout_option
def play_command(
    playbook_path: str,
    inventory_path: Path,
    check: bool,
    tags: tuple[str, ...],
    extra_vars: tuple[str, ...],
    timeout: float | None,
    lock_wait: float,
    limit: str | None,
    as_json: bool,
    accept_new_host_keys: bool,
    connect_timeout: float,
) -> None:
    """Run PLAYBOOK, a YAML list of plays, on the hosts of the inventory.

    PLAYBOOK is a file, or the name of a shipped playbook (deploy, upgrade,
    teardown). The playbook is checked in full before any host is reached.
    Exit 0 when no host failed, 1 when one did, 2 for a bad playbook or
    inventory.
    """
    playbook = load_playbook(resolve_playbook(playbook_path))
    inventory = load_inventory(inventory_path)
    if limit is not None and not inventory.select(limit):
        raise click.BadParameter(f"{limit!r} matches no host", param_hint="--limit")
    options = PlayOptions(
        check=check,
        limit=limit,
        tags=frozenset(
            t.strip() for group in tags for t in group.split(",") if t.strip()
        ),
        extra_vars=parse_extra_vars(extra_vars),
        timeout=timeout,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        lock_wait=lock_wait,
    )
    if as_json:
        recap = run_playbook(playbook, inventory, options)
        print_json(recap.to_dict())
    elif console.is_terminal:
        with TerminalEvents() as events:
            recap = run_playbook(
                playbook, inventory, options, events=events, listener=PrintingListener()
            )
        print_play_recap(recap)
    else:
        recap = run_playbook(playbook, inventory, options, listener=PrintingListener())
        print_play_recap(recap)
    if recap.error is not None:
        raise recap.error
    if not recap.ok:
        raise click.exceptions.Exit(1)


def resolve_playbook(name: str) -> Path:
    """A playbook file, or the shipped playbook of that name."""
    path = Path(name)
    if path.exists():
        return path
    try:
        return shipped_playbook(name)
    except KeyError:
        return path  # loading names the missing file


def parse_extra_vars(items: Sequence[str]) -> dict[str, Any]:
    """``K=V`` pairs (V read as YAML), YAML mappings and ``@file`` mappings."""
    found: dict[str, Any] = {}
    for item in items:
        text = Path(item[1:]).read_text() if item.startswith("@") else item
        if (
            "=" in text
            and not text.lstrip().startswith("{")
            and not item.startswith("@")
        ):
            key, _, value = text.partition("=")
            found[key.strip()] = yaml.safe_load(value) if value else ""
            continue
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise click.BadParameter(
                f"expected K=V, a YAML mapping or @file.yml, found {item!r}",
                param_hint="--extra-vars",
            )
        found.update({str(k): v for k, v in loaded.items()})
    return found


def print_play_recap(recap: PlaybookRecap) -> None:
    """The PLAY RECAP table, problems, and one summary line."""
    table = Table(title="PLAY RECAP", title_justify="left")
    columns = ("ok", "changed", "unreachable", "failed", "skipped", "ignored")
    table.add_column("host", style="bold", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right")
    for host, stats in recap.stats.items():
        values = [getattr(stats, c) for c in columns]
        table.add_row(
            host,
            *(
                Text(str(v), style=STYLES.get(c, "") if v else "dim")
                for c, v in zip(columns, values, strict=True)
            ),
        )
    console.print(table)
    for play in recap.plays:
        for cluster in play.clusters:
            print_recap_errors(cluster)
    mode = "check mode, nothing done: " if recap.check else ""
    verdict = (
        Text("ok", style="bold green") if recap.ok else Text("FAILED", style="bold red")
    )
    console.print(
        Text(f"{mode}playbook {recap.path}: ")
        + verdict
        + Text(f" ({recap.changed} changed, {recap.seconds:.1f} s)")
    )

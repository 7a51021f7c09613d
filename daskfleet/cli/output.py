"""Shared terminal output: per-host result tables, JSON, error hints."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daskfleet.errors import DaskfleetError, HostError
from daskfleet.masking import mask_data
from daskfleet.results import HostResult, Results

T = TypeVar("T")

console = Console(highlight=False)

#: A column of a results table: header and how to show a host's value.
Column = tuple[str, Callable[[T], str]]

HINT_STYLE = "yellow"


def status_text(result: HostResult[Any]) -> Text:
    """``ok``, ``UNREACHABLE`` or ``FAILED``, coloured."""
    if result.ok:
        return Text("ok", style="green")
    if result.unreachable:
        return Text("UNREACHABLE", style="bold red")
    return Text("FAILED", style="bold red")


def status_word(result: HostResult[Any]) -> str:
    return status_text(result).plain.lower()


def error_message(error: DaskfleetError) -> str:
    """The message without the ``host:`` prefix a table already shows."""
    message = error.message
    if isinstance(error, HostError) and message.startswith(f"{error.host}: "):
        message = message[len(error.host) + 2 :]
    return message


def error_text(error: DaskfleetError) -> Text:
    """An error's message, then its ``fix:`` hint on its own line."""
    text = Text(error_message(error))
    if error.hint:
        text.append("\n  fix: ", style=f"bold {HINT_STYLE}")
        text.append(error.hint, style=HINT_STYLE)
    return text


def results_table(
    results: Results[T], columns: Sequence[Column[T]], *, title: str | None = None
) -> Table:
    """One row per host: its status and the given columns (blank if failed)."""
    table = Table(title=title, title_justify="left")
    table.add_column("host", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for header, _ in columns:
        table.add_column(header)
    for name, result in results.items():
        table.add_row(name, status_text(result), *_values(result, columns))
    return table


def print_results(
    results: Results[T], columns: Sequence[Column[T]], *, what: str
) -> None:
    """The table, each failed host's error with its fix, and a summary."""
    console.print(results_table(results, columns))
    for name, result in results.items():
        if result.error is not None:
            line = Text(f"{name} ", style="bold")
            line.append_text(status_text(result))
            line.append(": ")
            line.append_text(error_text(result.error))
            console.print(line)
    print_summary(results, what)


def print_notes(notes: Mapping[str, Sequence[str]]) -> None:
    """Remarks per host that are not failures (``host: note``)."""
    for name, lines in notes.items():
        for note in lines:
            console.print(
                Text(f"{name}: ", style="bold") + Text(note, style=HINT_STYLE)
            )


def _values(result: HostResult[T], columns: Sequence[Column[T]]) -> list[str]:
    if result.error is not None or result.value is None:
        return ["" for _ in columns]
    value = result.value
    return [show(value) for _, show in columns]


def error_dict(error: DaskfleetError) -> dict[str, Any]:
    return {
        "kind": type(error).__name__,
        "message": error_message(error),
        "hint": error.hint,
    }


def results_dict(
    results: Results[T], to_dict: Callable[[T], Mapping[str, Any]]
) -> dict[str, Any]:
    """Host name to ``{"status", "seconds", "value" | "error"}``."""
    data: dict[str, Any] = {}
    for name, result in results.items():
        entry: dict[str, Any] = {
            "status": status_word(result),
            "seconds": round(result.seconds, 3),
        }
        if result.error is not None:
            entry["error"] = error_dict(result.error)
        elif result.value is not None:
            entry["value"] = dict(to_dict(result.value))
        data[name] = entry
    return data


def print_json(data: object) -> None:
    """Plain JSON on stdout (no colour, no wrapping), secrets masked."""
    click.echo(json.dumps(mask_data(data), indent=2))


def print_summary(results: Results[Any], what: str) -> None:
    """``3 hosts: 2 ok, 1 failed`` under a table."""
    failed = len(results.failed)
    ok = len(results) - failed
    style = "green" if not failed else "red"
    console.print(
        Text(f"{what}: {len(results)} hosts, {ok} ok, {failed} failed", style=style)
    )

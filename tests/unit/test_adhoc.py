"""Ad-hoc command results: per-host states, JSON and the printed recap."""

from __future__ import annotations

from rich.console import Console

from daskfleet.adhoc import AdhocRun, host_state
from daskfleet.cli import adhoc as adhoc_cli
from daskfleet.errors import HostError, UnreachableError
from daskfleet.results import HostResult, Results
from daskfleet.ssh import CommandResult


def command(host: str, code: int, out: str = "", err: str = "") -> CommandResult:
    return CommandResult(host, "uname -n", code, out, err, 0.25)


def sample() -> AdhocRun:
    results = Results(
        {
            "a": HostResult("a", value=command("a", 0, "a\n")),
            "b": HostResult("b", value=command("b", 3, err="boom\n")),
            "c": HostResult("c", error=UnreachableError("c", "connection refused")),
            "d": HostResult("d", error=HostError("d", "channel refused")),
        }
    )
    return AdhocRun("uname -n", results)


def test_states_per_host() -> None:
    run = sample()
    states = {name: host_state(r) for name, r in run.results.items()}
    assert states == {"a": "ok", "b": "failed", "c": "unreachable", "d": "failed"}
    assert run.failed_hosts == ("b", "c", "d")
    assert not run.ok


def test_json_keeps_output_and_exit_codes() -> None:
    data = sample().to_dict()
    assert data["ok"] is False
    assert data["hosts"]["a"]["stdout"] == "a\n"
    assert data["hosts"]["b"]["exit_code"] == 3
    assert data["hosts"]["b"]["stderr"] == "boom\n"
    assert data["hosts"]["c"]["exit_code"] is None
    assert data["hosts"]["c"]["error"] == "c: connection refused"


def test_all_ok_when_every_command_exits_zero() -> None:
    run = AdhocRun("true", Results({"a": HostResult("a", value=command("a", 0))}))
    assert run.ok


def test_recap_table_lists_every_host() -> None:
    console = Console(width=100, record=True)
    console.print(adhoc_cli.recap_table(sample()))
    text = console.export_text()
    for line in ("a │ ok", "b │ failed", "c │ unreachable"):
        assert line.replace(" ", "") in text.replace(" ", "")

"""Log helpers: --since parsing, line splitting, headers, host narrowing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
import pytest

from daskfleet.cli.logs import narrow_to_host
from daskfleet.inventory.model import Host, Inventory
from daskfleet.logs import ContainerLog, parse_since, split_lines
from daskfleet.teardown import scheduler_leaves

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
HOSTS = {
    "lab1": Host("lab1", "10.0.0.1", roles=("scheduler",)),
    "lab2": Host("lab2", "10.0.0.2"),
    "lab3": Host("lab3", "10.0.0.3"),
}
INVENTORY = Inventory("lab.yml", "lab", HOSTS)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2D", timedelta(days=2)),
        ("0.5h", timedelta(minutes=30)),
    ],
)
def test_parse_since_durations(text: str, ago: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - ago


def test_parse_since_iso_times() -> None:
    assert parse_since("2026-12-03T10:00+00:00", NOW) == NOW - timedelta(hours=2)
    local = parse_since("2026-12-03T10:00", NOW)
    assert local == datetime(2026, 12, 3, 10, 0).astimezone(timezone.utc)


@pytest.mark.parametrize("text", ["yesterday", "10", "5m10", "m", ""])
def test_parse_since_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since(text, NOW)


def test_split_lines_decodes_and_replaces() -> None:
    raw = b"Scheduler at: tcp://10.0.0.1:8786\r\nbad \xff byte\n"
    assert split_lines(raw) == ("Scheduler at: tcp://10.0.0.1:8786", "bad \ufffd byte")
    assert split_lines(b"") == ()


def test_header_names_host_container_role_and_state() -> None:
    log = ContainerLog("lab2", "daskfleet-lab-worker-lab2", "worker", "running", ())
    assert log.header == "==> lab2 daskfleet-lab-worker-lab2 (worker, running) <=="


def test_narrow_to_host() -> None:
    everything = tuple(HOSTS.values())
    assert narrow_to_host(INVENTORY, everything, None) == everything
    assert narrow_to_host(INVENTORY, everything, "lab2") == (HOSTS["lab2"],)
    with pytest.raises(click.BadParameter, match="its hosts are: lab1, lab2, lab3"):
        narrow_to_host(INVENTORY, everything, "lab9")
    with pytest.raises(click.BadParameter, match="not among the hosts --limit"):
        narrow_to_host(INVENTORY, (HOSTS["lab3"],), "lab2")


def test_scheduler_leaves_only_with_its_host() -> None:
    assert scheduler_leaves(INVENTORY, tuple(HOSTS.values()))
    assert scheduler_leaves(INVENTORY, (HOSTS["lab1"],))
    assert not scheduler_leaves(INVENTORY, (HOSTS["lab2"], HOSTS["lab3"]))

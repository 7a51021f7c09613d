"""``daskfleet ping`` and ``daskfleet facts`` on the lab fleet.

Real sshd and dockerd per lab host. The ``lab`` fixture (tests/e2e/
conftest.py) gives ``inventory_path`` and ``stop_sshd`` / ``start_sshd``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml
from click.testing import CliRunner, Result

from daskfleet.cli.main import cli
from daskfleet.facts import gather_facts, ping_hosts
from daskfleet.inventory import load_inventory
from daskfleet.ssh import SSHFleet

pytestmark = pytest.mark.e2e


def daskfleet(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def json_of(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def host_names(inventory_path: Path) -> list[str]:
    return list(load_inventory(inventory_path).hosts)


def inventory_with_known_hosts(lab: Any, tmp_path: Path, known: Path) -> Path:
    """A copy of the lab inventory that checks keys against ``known``."""
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    data.setdefault("defaults", {})["known_hosts"] = str(known)
    for entry in data["hosts"].values():
        if isinstance(entry, dict):
            entry.pop("known_hosts", None)
    copy = tmp_path / "inventory.yml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def test_ping_every_host(lab: Any) -> None:
    result = daskfleet("ping", lab.inventory_path, "--json")
    assert result.exit_code == 0, result.output
    data = json_of(result)
    assert list(data) == host_names(lab.inventory_path)
    for entry in data.values():
        assert entry["status"] == "ok"
        assert entry["value"]["docker_version"].startswith("20.")
        assert 0 < entry["value"]["rtt_seconds"] < 10


def test_ping_table(lab: Any) -> None:
    result = daskfleet("ping", lab.inventory_path)
    assert result.exit_code == 0, result.output
    for name in host_names(lab.inventory_path):
        assert name in result.stdout
    assert "0 failed" in result.stdout


def test_facts_of_every_host(lab: Any) -> None:
    result = daskfleet("facts", lab.inventory_path, "--json")
    assert result.exit_code == 0, result.output
    data = json_of(result)
    assert list(data) == host_names(lab.inventory_path)
    for entry in data.values():
        facts = entry["value"]
        # Lab hosts are network namespaces: same kernel, CPUs and memory.
        assert facts["cpus"] == len(os.sched_getaffinity(0))
        assert facts["memory"] > 0
        assert facts["kernel"] == os.uname().release
        assert facts["docker_arch"] in ("amd64", "arm64")
        assert facts["docker_version"].startswith("20.")
        assert facts["storage_driver"] == "overlay2"
        assert facts["disk_free"] > 0
        assert facts["gpus"] == []
        assert facts["notes"] == []


def test_facts_limit(lab: Any) -> None:
    first = host_names(lab.inventory_path)[0]
    result = daskfleet("facts", lab.inventory_path, "--limit", first, "--json")
    assert result.exit_code == 0, result.output
    assert list(json_of(result)) == [first]


def test_one_connection_per_host_across_steps(lab: Any) -> None:
    inventory = load_inventory(lab.inventory_path)
    with SSHFleet(inventory) as fleet:
        facts = gather_facts(fleet)
        transports = {h.name: fleet.transport(h) for h in inventory.hosts.values()}
        pings = ping_hosts(fleet)
        again = {h.name: fleet.transport(h) for h in inventory.hosts.values()}
    assert facts.ok and pings.ok
    assert all(again[name] is transports[name] for name in transports)


def test_host_with_sshd_stopped_is_unreachable(lab: Any) -> None:
    names = host_names(lab.inventory_path)
    down = names[1]
    lab.stop_sshd(down)
    try:
        result = daskfleet("ping", lab.inventory_path, "--json")
        table = daskfleet("ping", lab.inventory_path)
    finally:
        lab.start_sshd(down)
    assert result.exit_code == 1
    data = json_of(result)
    assert data[down]["status"] == "unreachable"
    assert "connection refused" in data[down]["error"]["message"]
    assert all(data[name]["status"] == "ok" for name in names if name != down)
    assert table.exit_code == 1
    assert "UNREACHABLE" in table.stdout
    assert "fix:" in table.stdout


def test_unknown_host_keys_are_refused_then_accepted(lab: Any, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.touch()
    inventory = inventory_with_known_hosts(lab, tmp_path, known)
    names = host_names(inventory)

    refused = daskfleet("ping", inventory)
    assert refused.exit_code == 1
    assert "unknown SSH host key" in refused.stdout
    assert "ssh-keyscan -p 22 -t " in refused.stdout
    assert "--accept-new-host-keys" in refused.stdout
    assert known.read_text() == ""

    accepted = daskfleet("ping", inventory, "--accept-new-host-keys")
    assert accepted.exit_code == 0, accepted.output
    recorded = paramiko.HostKeys(str(known))
    for host in load_inventory(inventory).hosts.values():
        assert recorded.lookup(host.address) is not None
    assert len(known.read_text().splitlines()) == len(names)

    again = daskfleet("ping", inventory)
    assert again.exit_code == 0, again.output


def test_changed_host_key_is_refused_even_with_accept_new(
    lab: Any, tmp_path: Path
) -> None:
    impostor = paramiko.ECDSAKey.generate()
    hosts = load_inventory(lab.inventory_path).hosts.values()
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(
            f"{h.address} {impostor.get_name()} {impostor.get_base64()}\n"
            for h in hosts
        )
    )
    before = known.read_text()
    inventory = inventory_with_known_hosts(lab, tmp_path, known)

    result = daskfleet("ping", inventory, "--accept-new-host-keys", "--json")
    assert result.exit_code == 1
    for entry in json_of(result).values():
        assert entry["status"] == "failed"
        assert "HOST KEY CHANGED" in entry["error"]["message"]
        assert "ssh-keygen -R " in entry["error"]["hint"]
    assert known.read_text() == before

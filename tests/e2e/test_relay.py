"""The image relay on the lab: a host killed mid-stream costs only itself.

The cluster's image is built on a base of its own (the lab's base and a
random layer), so no host has it. The last host is given the lab's base
first, so the hosts lack different layers, as on a real fleet; all three
still form one relay chain, with the layers any of them lacks. The
controller's link to the hosts is slowed with ``tc`` so the stream lasts
long enough to kill the middle host of the chain while it relays: every
process of its network namespace, sshd and dockerd included, as when a
machine dies. The others must still get the image and run; after the host
returns, a re-run converges.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from distributed import Client

from daskfleet.inventory import load_inventory
from daskfleet.lab import BASE_IMAGE as LAB_BASE
from daskfleet.lab import dockerd
from daskfleet.lab.uplink import apply_uplink_rate
from daskfleet.playbook import PlayOptions
from daskfleet.playbook.shipped import run_shipped

pytestmark = pytest.mark.e2e

BASE = "daskfleet/base:relay-e2e"
#: Slow enough that the stream lasts several agent heartbeats.
UPLINK_RATE = "60mbit"


@pytest.fixture(scope="module")
def inventory(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    builder = docker.DockerClient(base_url=f"unix://{lab.build_socket}")
    dockerfile = (
        f"FROM {LAB_BASE}\nRUN head -c 16M /dev/urandom > /opt/relay-e2e-blob\n"
    )
    builder.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=BASE, rm=True)
    builder.close()
    give_lab_base(lab, lab.host_names[-1])
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    data["cluster"] = "relay"
    data["image"]["base"] = BASE
    path = tmp_path_factory.mktemp("relay") / "relay.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    yield path
    apply_uplink_rate(lab.config, None)
    for name in lab.host_names:
        revive(lab, name)
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "daskfleet",
            "down",
            str(path),
            "--yes",
            "--purge-images",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]


def give_lab_base(lab: Any, name: str) -> None:
    """``docker save`` of the lab's base on the build daemon, loaded on ``name``."""
    save = subprocess.Popen(
        ["docker", "-H", f"unix://{lab.build_socket}", "save", LAB_BASE],
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        ["docker", "-H", f"unix://{lab.host_socket(name)}", "load", "--quiet"],
        stdin=save.stdout,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait(timeout=60) == 0


class KillOnRelay:
    """Deploy events that kill ``victim`` once it has relayed some bytes."""

    def __init__(self, victim: str, kill: Callable[[], None]) -> None:
        self.victim = victim
        self.kill = kill
        self.killed_after = 0

    def stage(self, name: str) -> None:
        pass

    def ship_start(self, host: str, total: int) -> None:
        pass

    def ship_advance(self, host: str, nbytes: int) -> None:
        if host == self.victim and not self.killed_after:
            self.killed_after = nbytes
            self.kill()

    def ship_end(self, host: str) -> None:
        pass


def kill_host(lab: Any, name: str) -> None:
    """Every process of the host's network namespace, at once."""
    netns = lab.config.host(lab.host_names.index(name) + 1).netns
    listing = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=True
    )
    for pid in listing.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def revive(lab: Any, name: str) -> None:
    spec = dockerd.host_daemon(lab.config.host(lab.host_names.index(name) + 1))
    dockerd.spawn(spec)
    dockerd.wait_ready(spec)
    lab.start_sshd(name)


def test_check_mode_shows_who_sends_the_image_to_whom(
    lab: Any, inventory: Path
) -> None:
    first, middle, last = lab.host_names
    result = subprocess.run(
        [sys.executable, "-m", "daskfleet", "deploy", str(inventory), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"controller -> {first} -> {middle} -> {last}  (relay:" in result.stdout


def test_a_relay_host_killed_mid_stream_costs_only_itself(
    lab: Any, inventory: Path, connect: Callable[..., Client]
) -> None:
    first, middle, last = lab.host_names
    loaded = load_inventory(inventory)

    def kill() -> None:
        kill_host(lab, middle)
        # The slow link has served its purpose: let the fallback run fast.
        apply_uplink_rate(lab.config, None)

    events = KillOnRelay(middle, kill)
    apply_uplink_rate(lab.config, UPLINK_RATE)
    try:
        recap = run_shipped("deploy", loaded, PlayOptions(), events)
    finally:
        apply_uplink_rate(lab.config, None)

    assert recap.plan is not None and recap.plan.distribution is not None
    assert recap.plan.distribution.chains[0].hosts == (first, middle, last)
    assert events.killed_after > 0, "the middle host was never seen relaying"
    statuses = {name: host.status for name, host in recap.hosts.items()}
    assert statuses[middle] in ("failed", "unreachable"), statuses
    assert statuses[first] == statuses[last] == "changed", recap.to_dict()
    warnings = "\n".join(recap.warnings)
    assert f"{last}: image relay failed" in warnings
    assert f"{first}: passing the image on failed" in warnings
    # The head got the stream from the controller; the last host, cut off
    # from its upstream, got the image directly.
    assert recap.hosts[first].bytes_sent > 0
    assert recap.hosts[last].bytes_sent > 0
    with connect(inventory) as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        hosts = {w["host"] for w in client.scheduler_info()["workers"].values()}
    assert loaded.hosts[last].address in hosts


def test_after_the_host_returns_a_rerun_converges(lab: Any, inventory: Path) -> None:
    middle = lab.host_names[1]
    revive(lab, middle)
    recap = run_shipped("deploy", load_inventory(inventory), PlayOptions())
    assert recap.ok, recap.to_dict()
    assert recap.hosts[middle].status == "changed"
    assert not recap.warnings or all("relay" not in w for w in recap.warnings)

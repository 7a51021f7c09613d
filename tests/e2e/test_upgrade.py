"""``daskfleet upgrade`` on the lab under load: nothing held is lost.

Three workers (the scheduler host runs one too). A client holds results
computed before the upgrade and keeps submitting tasks while it runs.
"""

from __future__ import annotations

import io
import json
import operator
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from distributed import Client, Future

pytestmark = pytest.mark.e2e

DASKFLEET = [sys.executable, "-m", "daskfleet"]
#: The submitting thread stops by itself after this many tasks or seconds.
LOAD_TASKS = 400
LOAD_SECONDS = 240.0


def daskfleet(
    *args: str | Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DASKFLEET, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def inventory(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's fleet with a worker on the scheduler host too: 3 workers."""
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    first = lab.host_names[0]
    data["hosts"][first]["roles"] = ["scheduler", "worker"]
    data["upgrade"] = {"min_healthy_time": 1, "healthy_deadline": 60}
    path = tmp_path_factory.mktemp("upgrade") / "fleet.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = daskfleet("deploy", path, "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def dockers(lab: Any, inventory: Path) -> Iterator[dict[str, docker.DockerClient]]:
    clients = {
        name: docker.DockerClient(base_url=f"unix://{lab.host_socket(name)}")
        for name in lab.host_names
    }
    yield clients
    daskfleet("down", inventory, "--yes", "--purge-images")
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def builder(lab: Any) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=f"unix://{lab.build_socket}")
    yield client
    client.close()


def worker_images(dockers: dict[str, docker.DockerClient]) -> dict[str, str]:
    return {
        c.name: c.image.id
        for client in dockers.values()
        for c in client.containers.list(
            all=True, filters={"label": "daskfleet.role=worker"}
        )
    }


def build_on(builder: docker.DockerClient, tag: str, base: str, line: str) -> str:
    """A user's one-line change on top of ``base``, built on the lab builder."""
    dockerfile = f"FROM {base}\n{line}\n".encode()
    image, _ = builder.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return str(image.id)


def running_image(dockers: dict[str, docker.DockerClient]) -> str:
    images = set(worker_images(dockers).values())
    assert len(images) == 1, images
    return images.pop()


class Load:
    """Tasks submitted while an upgrade runs; bounded in count and time."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.futures: list[tuple[int, Future]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._submit, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _submit(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        for i in range(LOAD_TASKS):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self.futures.append((i, self.client.submit(operator.mul, i, 3, pure=False)))
            time.sleep(0.05)

    def check(self) -> None:
        assert self.futures, "no task was submitted during the upgrade"
        results = self.client.gather([f for _, f in self.futures])
        assert results == [i * 3 for i, _ in self.futures]
        assert all(f.status == "finished" for _, f in self.futures)


def held_results(client: Client) -> list[Future]:
    """Results computed before the upgrade, spread over every worker."""
    futures = client.map(operator.pow, range(60), [2] * 60, pure=False)
    client.gather(futures)
    holders = {w for who in client.who_has(futures).values() for w in who}
    assert len(holders) == 3, "every worker should hold some of the results"
    return futures


def test_rolling_upgrade_under_load_loses_nothing(
    inventory: Path,
    dockers: dict[str, docker.DockerClient],
    builder: Any,
    lab: Any,
    connect: Any,
) -> None:
    before = running_image(dockers)
    new = build_on(
        builder, "daskfleet/e2e-upgrade:v2", before, "RUN echo v2 > /etc/app-version"
    )
    with connect(inventory) as client:
        held = held_results(client)
        with Load(client) as load:
            result = daskfleet(
                "upgrade", inventory, "--image", "daskfleet/e2e-upgrade:v2", "--json"
            )
        recap = json.loads(result.stdout)
        assert result.returncode == 0, (recap["errors"], recap["hosts"])
        assert client.gather(held) == [i**2 for i in range(60)]
        load.check()
    batches = recap["upgrade"]["batches"]
    assert [b["status"] for b in batches] == ["ok", "ok", "ok"]
    assert running_image(dockers) == new
    assert all(h["bytes_sent"] < 1_000_000 for h in recap["hosts"].values())


def test_failed_batch_is_rolled_back_and_named(
    inventory: Path,
    dockers: dict[str, docker.DockerClient],
    builder: Any,
    lab: Any,
    connect: Any,
) -> None:
    before = running_image(dockers)
    build_on(
        builder, "daskfleet/e2e-upgrade:broken", before, "RUN rm /opt/dask/bin/dask"
    )
    with connect(inventory) as client:
        held = held_results(client)
        result = daskfleet(
            "upgrade",
            inventory,
            "--image",
            "daskfleet/e2e-upgrade:broken",
            "--healthy-deadline",
            "15",
            "--json",
        )
        assert client.gather(held) == [i**2 for i in range(60)]
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 3
    recap = json.loads(result.stdout)
    assert result.returncode == 1
    first = recap["upgrade"]["batches"][0]
    assert first["status"] == "failed"
    (failed_host,) = first["hosts"]
    assert recap["hosts"][failed_host]["status"] == "failed"
    message = "\n".join(recap["errors"])
    assert failed_host in message and "exec dask failed" in message
    assert "rolled back" in message
    assert [b["status"] for b in recap["upgrade"]["batches"][1:]] == [
        "planned",
        "planned",
    ]
    assert running_image(dockers) == before
    assert not [n for n in worker_images(dockers) if n.endswith(".previous")]


def test_interrupted_upgrade_completes_on_rerun(
    inventory: Path, dockers: dict[str, docker.DockerClient], builder: Any, lab: Any
) -> None:
    before = running_image(dockers)
    new = build_on(
        builder, "daskfleet/e2e-upgrade:v3", before, "RUN echo v3 > /etc/app-version"
    )
    command = [
        *DASKFLEET,
        "upgrade",
        str(inventory),
        "--image",
        "daskfleet/e2e-upgrade:v3",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        while new not in worker_images(dockers).values():
            assert process.poll() is None, (
                "the upgrade ended before it could be interrupted"
            )
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert set(worker_images(dockers).values()) != {new}, (
        "killed too late to prove resuming"
    )

    result = daskfleet(
        "upgrade", inventory, "--image", "daskfleet/e2e-upgrade:v3", "--json"
    )
    recap = json.loads(result.stdout)
    assert result.returncode == 0, (recap["errors"], recap["hosts"])
    images = worker_images(dockers)
    assert set(images.values()) == {new}
    assert len(images) == 3, images

"""Faults on the lab fleet: secrets, locks, restarts, cut links, bad input.

The tests run in file order on one cluster with three workers (the
scheduler's host runs one too) and a secret in every container's
environment. Each is bounded in time and leaves the lab whole: links up,
daemons running, and in the end no cluster container.

A worker host unreachable at the start of a deploy is covered by
``test_deploy.py::test_unreachable_host_is_reported_and_healed``.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from click.testing import CliRunner

from daskfleet.audit import remote_audit_path
from daskfleet.cli.main import cli
from daskfleet.envfiles import env_file_path
from daskfleet.lab import dockerd
from daskfleet.locking import lock_path

pytestmark = pytest.mark.e2e

DASKFLEET = [sys.executable, "-m", "daskfleet"]
SECRET_ENV = "DASKFLEET_E2E_SECRET"
SECRET = "s3cr3t-'$(id)'-`x`-\"quoted\""
FIXTURES = Path(__file__).parent.parent / "unit" / "fixtures"
#: Fixtures under fixtures/inventories that are valid on purpose.
VALID_INVENTORIES = {"native-full.yml", "ansible-example.yml", "ansible-no-cluster.yml"}
HEAL_SECONDS = 150.0


def daskfleet(
    *args: str | Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DASKFLEET, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, SECRET_ENV: SECRET},
    )


def start_daskfleet(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*DASKFLEET, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, SECRET_ENV: SECRET},
    )


def stop(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` if it still runs (stopped or not) and close its pipes."""
    if process.poll() is None:
        process.kill()
        process.communicate()


def recap_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr[-3000:]
    recap: dict[str, Any] = json.loads(result.stdout)
    return recap


@pytest.fixture(scope="module", autouse=True)
def secret_in_environment() -> Iterator[None]:
    """The secret in this process's environment too, as in a user's shell:
    the tests' own clients load the inventory, which reads it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, SECRET)
        yield


@pytest.fixture(scope="module")
def inventory(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three workers, the first listed (upgraded first) a worker-only host."""
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    first, second, third = lab.host_names
    hosts = data["hosts"]
    hosts[first]["roles"] = ["scheduler", "worker"]
    data["hosts"] = {third: hosts[third], first: hosts[first], second: hosts[second]}
    data.setdefault("defaults", {})["env"] = {"FLEET_TOKEN": {"from_env": SECRET_ENV}}
    data["upgrade"] = {"min_healthy_time": 1, "healthy_deadline": 30}
    path = tmp_path_factory.mktemp("faults") / "fleet.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    yield path
    heal_lab(lab)
    daskfleet("lock", "release", path, "--force")  # a failed test's killed run
    result = daskfleet("down", path, "--yes", "--purge-images")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def cluster(inventory: Path) -> str:
    return str(yaml.safe_load(inventory.read_text())["cluster"])


@pytest.fixture(scope="module")
def dockers(lab: Any) -> Iterator[dict[str, docker.DockerClient]]:
    clients = {
        name: docker.DockerClient(base_url=f"unix://{lab.host_socket(name)}")
        for name in lab.host_names
    }
    yield clients
    for client in clients.values():
        client.close()


def host_config(lab: Any, name: str) -> Any:
    return lab.config.host(lab.host_names.index(name) + 1)


def set_link(lab: Any, name: str, state: str) -> None:
    veth = host_config(lab, name).veth
    subprocess.run(["ip", "link", "set", veth, state], check=True, timeout=10)


def heal_lab(lab: Any) -> None:
    """Every link up and every daemon answering, whatever a test left."""
    for name in lab.host_names:
        set_link(lab, name, "up")
        spec = dockerd.host_daemon(host_config(lab, name))
        dockerd.spawn(spec)
        dockerd.wait_ready(spec)


def cluster_containers(client: docker.DockerClient, cluster: str) -> list[Any]:
    return client.containers.list(
        all=True, filters={"label": f"daskfleet.cluster={cluster}"}
    )


def wait_healthy(inventory: Path, seconds: float = HEAL_SECONDS) -> float:
    """Seconds until ``status`` says the whole cluster is ok; fail past ``seconds``."""
    started = time.monotonic()
    while True:
        result = daskfleet("status", inventory, "--json", timeout=60)
        if result.returncode == 0:
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, result.stdout[-3000:]
        time.sleep(2)


# Secrets -------------------------------------------------------------------


def test_deploy_keeps_the_secret_out_of_docker_and_logs(
    inventory: Path,
    cluster: str,
    dockers: dict[str, docker.DockerClient],
    lab: Any,
    connect: Any,
) -> None:
    result = daskfleet("-vv", "deploy", inventory, "--json")
    recap = recap_of(result)
    assert result.returncode == 0, (recap["errors"], recap["hosts"])
    assert SECRET not in result.stdout + result.stderr

    containers = [c for d in dockers.values() for c in cluster_containers(d, cluster)]
    assert len(containers) == 4
    for container in containers:
        assert SECRET not in json.dumps(container.attrs)
        env_file = Path(env_file_path(cluster, container.name))
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    with connect(inventory) as client:
        # A lambda travels by value; os.environ.get would carry our environ.
        seen = client.run(lambda: __import__("os").environ.get("FLEET_TOKEN"))
    assert set(seen.values()) == {SECRET} and len(seen) == 3


def test_the_audit_log_names_the_run_without_secrets(cluster: str) -> None:
    local = Path(os.environ["DASKFLEET_STATE_DIR"]) / "audit.log"
    remote = Path(remote_audit_path(cluster))
    for log in (local, remote):
        text = log.read_text()
        assert SECRET not in text
        entry = json.loads(text.splitlines()[-1])
        assert entry["command"].startswith("deploy ")
        assert entry["outcome"] == "ok"
        assert entry["changed"] >= 4
        assert entry["user"] and entry["controller"]


# Locks ---------------------------------------------------------------------


def wait_for_lock(cluster: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not (Path(lock_path(cluster)) / "holder").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the deploy never took its lock"
        time.sleep(0.05)


def test_two_deploys_at_once_one_waits_one_fails(inventory: Path, cluster: str) -> None:
    first = start_daskfleet("deploy", inventory, "--json")
    try:
        wait_for_lock(cluster, first)
        first.send_signal(signal.SIGSTOP)  # holds the lock as long as we need
        refused = daskfleet("deploy", inventory, "--json")
        waiting = start_daskfleet("deploy", inventory, "--json", "--lock-wait", "300")
        time.sleep(5)
        assert waiting.poll() is None, "the second deploy did not wait"
        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    finally:
        stop(first)
    assert first.returncode == 0, err[-3000:]
    assert refused.returncode == 1
    assert f"cluster {cluster} is locked" in refused.stderr
    assert "(pid " in refused.stderr and f"deploy {inventory}" in refused.stderr
    assert "daskfleet lock release" in refused.stderr
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err[-3000:]
    assert json.loads(out)["changed"] == 0


def test_a_crashed_runs_lock_is_taken_over_by_the_next_run(
    inventory: Path, cluster: str
) -> None:
    crashed = start_daskfleet("deploy", inventory)
    wait_for_lock(cluster, crashed)
    crashed.kill()
    crashed.communicate()

    status = daskfleet("lock", "status", inventory, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["holder"]["pid"] == crashed.pid
    # Its process is gone and it ran on this controller: the lock is stale.
    result = daskfleet("deploy", inventory, "--json")
    assert result.returncode == 0, recap_of(result)["errors"]
    assert "no longer running" in result.stderr


def test_another_controllers_lock_is_named_and_released(
    inventory: Path, cluster: str
) -> None:
    lock = Path(lock_path(cluster))
    lock.mkdir(parents=True)
    holder = {
        "user": "ana",
        "controller": "elsewhere",
        "pid": 4242,
        "since": "2026-01-01T00:00:00+00:00",
        "command": "deploy prod.yml",
        "token": "t" * 32,
    }
    (lock / "holder").write_text(json.dumps(holder))

    refused = daskfleet("deploy", inventory)
    assert refused.returncode == 1
    assert "is locked" in refused.stderr and "ana@elsewhere" in refused.stderr
    careful = daskfleet("lock", "release", inventory)
    assert careful.returncode == 1 and "--force" in careful.stderr
    assert lock.exists()
    released = daskfleet("lock", "release", inventory, "--force")
    assert released.returncode == 0, released.stderr
    assert not lock.exists()
    result = daskfleet("deploy", inventory, "--json")
    assert result.returncode == 0, recap_of(result)["errors"]


# Restarts ------------------------------------------------------------------


def test_restarted_dockerd_brings_its_worker_back(inventory: Path, lab: Any) -> None:
    spec = dockerd.host_daemon(host_config(lab, lab.host_names[1]))
    dockerd.stop(spec)
    dockerd.spawn(spec)
    dockerd.wait_ready(spec)
    assert wait_healthy(inventory) < HEAL_SECONDS


def test_killed_scheduler_returns_with_its_workers(
    inventory: Path,
    cluster: str,
    dockers: dict[str, docker.DockerClient],
    lab: Any,
    connect: Any,
) -> None:
    scheduler = dockers[lab.host_names[0]].containers.get(
        f"daskfleet-{cluster}-scheduler"
    )
    started = scheduler.attrs["State"]["StartedAt"]
    # As a crash would: `docker kill` counts as a stop the restart policy obeys.
    os.kill(scheduler.attrs["State"]["Pid"], signal.SIGKILL)
    assert wait_healthy(inventory) < HEAL_SECONDS
    scheduler.reload()
    assert scheduler.attrs["State"]["StartedAt"] != started
    with connect(inventory) as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 3
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


# A link cut during an upgrade ----------------------------------------------


def held_results(client: Any) -> list[Any]:
    """Results spread over every worker: ``i ** 2`` for i below 60."""
    futures = client.map(pow, range(60), [2] * 60, pure=False)
    client.gather(futures)
    return list(futures)


def test_link_cut_mid_upgrade_stops_cleanly_and_loses_nothing_else(
    inventory: Path, dockers: dict[str, docker.DockerClient], lab: Any, connect: Any
) -> None:
    cut = lab.host_names[2]  # listed first: the first batch
    builder = docker.DockerClient(base_url=f"unix://{lab.build_socket}")
    base = dockers[cut].containers.list(filters={"label": "daskfleet.role=worker"})
    image = builder.images.get(base[0].image.id)
    build_on(builder, image.id, "daskfleet/e2e-faults:v2")

    with connect(inventory) as client:
        held = held_results(client)
        who_has = client.who_has(held)
        cut_ip = lab.state.host(cut).address
        elsewhere = [
            i
            for i, future in enumerate(held)
            if any(_ip(a) != cut_ip for a in who_has[future.key])
        ]
        assert 0 < len(elsewhere) < len(held)
        upgrade = start_daskfleet(
            "upgrade", inventory, "--image", "daskfleet/e2e-faults:v2",
            "--timeout", "30", "--json",
        )  # fmt: skip
        try:
            wait_for_image(dockers[cut], "daskfleet/e2e-faults:v2", upgrade)
            set_link(lab, cut, "down")
            out, err = upgrade.communicate(timeout=400)
        finally:
            stop(upgrade)
            set_link(lab, cut, "up")
        kept = client.gather([held[i] for i in elsewhere])
        assert kept == [i**2 for i in elsewhere]

    recap = json.loads(out)
    assert upgrade.returncode == 1, err[-3000:]
    assert recap["hosts"][cut]["status"] in ("failed", "unreachable")
    assert cut in "\n".join(recap["errors"]) + json.dumps(recap["upgrade"])
    others = [h for h in lab.host_names if h != cut]
    assert all(recap["hosts"][h]["status"] == "ok" for h in others), recap["hosts"]
    assert [b["status"] for b in recap["upgrade"]["batches"][1:]] == ["planned"] * 2

    # Once the link is back, running the same upgrade again completes it.
    result = daskfleet("upgrade", inventory, "--image", "daskfleet/e2e-faults:v2")
    assert result.returncode == 0, result.stdout[-3000:]
    assert wait_healthy(inventory) < HEAL_SECONDS
    builder.close()


def _ip(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


def build_on(builder: docker.DockerClient, base: str, tag: str) -> str:
    import io

    dockerfile = f"FROM {base}\nRUN echo v2 > /etc/app-version\n".encode()
    image, _ = builder.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return str(image.id)


def wait_for_image(
    client: docker.DockerClient, image: str, process: subprocess.Popen[str]
) -> None:
    """Until the host holds ``image`` (tagged last): staging is done there."""
    deadline = time.monotonic() + 240
    while True:
        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the image never reached the host"
        time.sleep(0.05)


# Bad input -----------------------------------------------------------------


def accepted_logins(lab: Any) -> int:
    """SSH logins the lab's sshds have accepted so far, all hosts together."""
    logs = [host_config(lab, n).host_dir / "sshd.log" for n in lab.host_names]
    return sum(log.read_text().count("Accepted publickey") for log in logs)


def broken_lab_inventories(lab: Any, tmp: Path) -> list[Path]:
    """The lab's inventory, broken in ways that look plausible."""
    text = Path(lab.inventory_path).read_text()
    first = lab.host_names[0]
    breakages = {
        "unknown-variable": text.replace(f"  {first}: {{", f"  {first}: {{cpu: 2, "),
        "secret-missing": text.replace(
            "defaults: {", 'defaults: {env: {T: "${DASKFLEET_UNSET_SECRET}"}, '
        ),
        "bad-yaml": text + "hosts: [\n",
    }
    paths = []
    for name, broken in breakages.items():
        path = tmp / f"{name}.yml"
        path.write_text(broken)
        paths.append(path)
    return paths


def test_bad_input_exits_2_before_any_host_is_touched(lab: Any, tmp_path: Path) -> None:
    corpus = sorted((FIXTURES / "inventories").glob("*.yml"))
    inventories = [p for p in corpus if p.name not in VALID_INVENTORIES]
    playbooks = sorted((FIXTURES / "playbooks").glob("*.yml"))
    playbooks = [p for p in playbooks if p.name != "fleet.yml"]
    before = accepted_logins(lab)

    lab_broken = broken_lab_inventories(lab, tmp_path)
    runs = [("deploy", p) for p in inventories + lab_broken]
    runs += [(c, p) for c in ("upgrade", "down") for p in lab_broken]
    # One real process, as a user runs it; the rest in-process, for speed.
    command, path = runs[0]
    result = daskfleet(command, path, timeout=60)
    assert result.returncode == 2, (path.name, command, result.stderr)
    assert result.stderr.startswith("error: ") and path.name in result.stderr
    runner = CliRunner()
    for command, path in runs:
        extra = ["--yes"] if command == "down" else []
        outcome = runner.invoke(cli, [command, str(path), *extra])
        assert outcome.exit_code == 2, (path.name, command, outcome.output)
        assert outcome.stderr.startswith("error: "), outcome.stderr
        assert path.name in outcome.stderr, outcome.stderr
    for path in playbooks:
        args = ["play", str(path), "-i", str(lab.inventory_path)]
        outcome = runner.invoke(cli, args)
        assert outcome.exit_code == 2, (path.name, outcome.output)
        assert path.name in outcome.stderr, outcome.stderr

    assert accepted_logins(lab) == before

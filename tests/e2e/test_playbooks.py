"""``daskfleet play`` on the lab fleet: the shipped playbooks and a user's own.

The tests run in file order on one cluster this module deploys itself with
the shipped deploy playbook. They end with the shipped teardown playbook,
and the module leaves the lab without any container of the cluster even
when a test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

pytestmark = pytest.mark.e2e

DASKFLEET = [sys.executable, "-m", "daskfleet"]
#: The lab's hosts share the controller's file system, so each host's data
#: directory is its own subdirectory.
DATA_ROOT = Path("/srv/daskfleet-e2e-data")
DATA_DIR = f"{DATA_ROOT}/{{{{ inventory_hostname }}}}"

USER_PLAYBOOK = f"""\
- name: a data directory on every worker host
  hosts: workers
  tasks:
    - name: the directory
      directory: {{path: "{DATA_DIR}", mode: "0755"}}
    - name: a file in it, written once
      copy:
        dest: {DATA_DIR}/README
        content: "data of {{{{ cluster }}}} on {{{{ inventory_hostname }}}}\\n"
        mode: "0640"
    - name: read it back without a shell
      command: [cat, "{DATA_DIR}/README"]
      register: readme
      changed_when: false
    - name: the file says what was written
      assert:
        that: "'on ' + inventory_hostname in readme.stdout"

- name: the cluster, with the data directory mounted into the workers
  hosts: all
  vars:
    # Only worker hosts got a directory; the scheduler-only host mounts none.
    volumes: "{{{{ ['{DATA_ROOT}/' ~ inventory_hostname ~ ':/data:ro'] if 'worker' in roles else [] }}}}"
  tasks:
    - image: {{}}
    - scheduler: {{}}
    - workers: {{}}
    - health: {{}}
      register: cluster_health
    - name: every worker is healthy
      assert:
        that:
          - cluster_health.ok
          - cluster_health.workers | length == groups.workers | length
      run_once: true
    - name: a step that only runs on the scheduler host
      command: [hostname]
      when: "'scheduler' in roles"
      changed_when: false
"""


def daskfleet(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DASKFLEET, *map(str, args)], capture_output=True, text=True, timeout=600
    )


def play(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = daskfleet("play", *args, "--json")
    assert result.stdout.startswith("{"), result.stdout[-2000:] + result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def inventory(lab: Any) -> Path:
    return Path(lab.inventory_path)


@pytest.fixture(scope="module")
def user_playbook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's playbook, and no data directories before or after."""
    shutil.rmtree(DATA_ROOT, ignore_errors=True)
    path = tmp_path_factory.mktemp("user") / "site.yml"
    path.write_text(USER_PLAYBOOK)
    yield path
    shutil.rmtree(DATA_ROOT, ignore_errors=True)


@pytest.fixture(scope="module")
def dockers(lab: Any) -> Iterator[dict[str, docker.DockerClient]]:
    """Each host's daemon through its socket; cleans the lab up at the end."""
    clients = {
        name: docker.DockerClient(base_url=f"unix://{lab.host_socket(name)}")
        for name in lab.host_names
    }
    yield clients
    for client in clients.values():
        for container in client.containers.list(all=True):
            if container.labels.get("daskfleet.cluster"):
                container.remove(force=True)
        client.close()


def container_ids(dockers: dict[str, docker.DockerClient]) -> dict[str, str]:
    return {
        c.name: c.id
        for client in dockers.values()
        for c in client.containers.list(
            all=True, filters={"label": "daskfleet.cluster"}
        )
    }


def test_shipped_deploy_playbook_makes_the_deploy_cluster(
    inventory: Path, dockers: dict[str, docker.DockerClient], lab: Any
) -> None:
    code, recap = play("deploy", "-i", inventory)
    assert code == 0, recap
    (cluster,) = recap["plays"][0]["clusters"]
    assert cluster["ok"] is True and cluster["health"]["ok"] is True
    workers = lab.host_names[1:]
    assert sorted(cluster["health"]["workers"]) == sorted(f"{w}-0" for w in workers)
    assert {h: s["failed"] for h, s in recap["recap"].items()} == dict.fromkeys(
        lab.host_names, 0
    )
    # The deploy command finds exactly the cluster it would have made.
    before = container_ids(dockers)
    result = daskfleet("deploy", inventory, "--json")
    assert result.returncode == 0, result.stdout[-3000:]
    again = json.loads(result.stdout)
    assert again["changed"] == 0, again["hosts"]
    assert container_ids(dockers) == before


def test_check_mode_of_every_shipped_playbook_changes_nothing(
    inventory: Path, dockers: dict[str, docker.DockerClient]
) -> None:
    before = container_ids(dockers)
    for name in ("deploy", "upgrade", "teardown"):
        code, recap = play(name, "-i", inventory, "--check")
        assert code == 0, (name, recap)
        assert recap["check"] is True
    assert container_ids(dockers) == before
    teardown = recap["plays"][0]["tasks"][0]["hosts"]
    assert {o["status"] for o in teardown.values()} == {"changed"}


def test_a_bad_playbook_stops_before_any_task(
    inventory: Path, dockers: dict[str, docker.DockerClient], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("- hosts: all\n  tasks:\n    - teardown: {}\n    - comand: [ls]\n")
    before = container_ids(dockers)
    result = daskfleet("play", path, "-i", inventory)
    assert result.returncode == 2
    assert f"{path}:4:7" in result.stderr and "did you mean 'command'" in result.stderr
    assert container_ids(dockers) == before


def test_user_playbook_mounts_a_data_directory_and_asserts_health(
    inventory: Path,
    dockers: dict[str, docker.DockerClient],
    lab: Any,
    user_playbook: Path,
) -> None:
    code, recap = play(user_playbook, "-i", inventory)
    assert code == 0, json.dumps(recap["plays"], indent=1)[-4000:]
    scheduler, *workers = lab.host_names
    for name in workers:
        (worker,) = dockers[name].containers.list(
            filters={"label": "daskfleet.role=worker"}
        )
        mounts = {m["Destination"]: m for m in worker.attrs["Mounts"]}
        assert mounts["/data"]["Source"] == f"{DATA_ROOT}/{name}"
        assert mounts["/data"]["RW"] is False
        readme = (DATA_ROOT / name / "README").read_text()
        assert (
            readme
            == f"data of {recap['plays'][1]['clusters'][0]['cluster']} on {name}\n"
        )
    data_tasks = recap["plays"][0]["tasks"]
    assert [t["hosts"][workers[0]]["status"] for t in data_tasks] == [
        "changed",  # directory
        "changed",  # copy
        "ok",  # command, changed_when: false
        "ok",  # assert
    ]
    tasks = {t["name"]: t for t in recap["plays"][1]["tasks"]}
    assert {tasks["workers"]["hosts"][w]["status"] for w in workers} == {"changed"}
    only_scheduler = tasks["a step that only runs on the scheduler host"]["hosts"]
    assert only_scheduler[scheduler]["status"] == "ok"
    assert {only_scheduler[w]["status"] for w in workers} == {"skipped"}


def test_user_playbook_second_run_changes_nothing(
    inventory: Path, dockers: dict[str, docker.DockerClient], user_playbook: Path
) -> None:
    before = container_ids(dockers)
    code, recap = play(user_playbook, "-i", inventory)
    assert code == 0, recap
    assert recap["changed"] == 0, recap["recap"]
    assert container_ids(dockers) == before


def test_shipped_teardown_playbook_removes_the_cluster(
    inventory: Path, dockers: dict[str, docker.DockerClient], lab: Any
) -> None:
    code, recap = play("teardown", "-i", inventory)
    assert code == 0, recap
    assert container_ids(dockers) == {}
    # Later test modules start from hosts without the image too.
    result = daskfleet("down", inventory, "--yes", "--purge-images")
    assert result.returncode == 0, result.stdout + result.stderr

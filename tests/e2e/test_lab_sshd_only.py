"""An sshd-only lab with a limited uplink: no dockerd, facts still work.

Brings up its own small lab (a random name, so its subnet too) with
``--no-docker --uplink-rate``, through the real command line, and checks
that re-runs keep both settings, that facts report "no Docker" instead of
failing, that one run (facts; a playbook of two plays and five tasks, the
engine ``deploy`` runs) opens one SSH connection per host, counted by the
server in each host's sshd log, and that ``lab down`` leaves nothing.
"""

from __future__ import annotations

import json
import os
import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daskfleet.cli.main import cli
from daskfleet.lab import LabConfig, LabState, lab_down, lab_status, load_state
from daskfleet.lab.network import link_exists
from daskfleet.lab.requirements import missing_commands
from daskfleet.lab.uplink import observed_rate

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(bool(missing_commands()), reason="lab packages missing"),
]

HOSTS = 4


def daskfleet(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def config() -> LabConfig:
    return LabConfig("so" + "".join(random.choices(string.ascii_lowercase, k=4)))


@pytest.fixture(scope="module")
def lab(config: LabConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    inventory = tmp_path_factory.mktemp("lab") / "lab.yml"
    try:
        result = daskfleet(
            *("lab", "up", "--name", config.name, "--hosts", HOSTS),
            *("--no-docker", "--uplink-rate", "200mbit", "--inventory", inventory),
        )
        assert result.exit_code == 0, result.output
        yield inventory
    finally:
        lab_down(config, purge=True)


def logins(state: LabState) -> dict[str, int]:
    """Connections each host's sshd accepted so far, from its own log."""
    return {
        h.name: (h.host_dir / "sshd.log").read_text().count("Accepted publickey")
        for h in state.hosts
    }


def test_hosts_run_sshd_and_no_dockerd(lab: Path, config: LabConfig) -> None:
    state = load_state(config.name)
    assert (state.docker, state.uplink_rate) == (False, "200mbit")
    status = lab_status(config)
    assert status.ok
    assert all(h.sshd_pid is not None for h in status.hosts)
    assert all(h.dockerd_pid is None for h in status.hosts)
    assert status.build_pid is None
    assert observed_rate(config) == 200_000_000 // 8


def test_facts_report_no_docker_with_one_connection_per_host(
    lab: Path, config: LabConfig
) -> None:
    state = load_state(config.name)
    before = logins(state)
    result = daskfleet("facts", lab, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data) == HOSTS
    for entry in data.values():
        facts = entry["value"]
        assert facts["cpus"] >= 1
        assert facts["docker_version"] is None
        assert any(note.startswith("docker:") for note in facts["notes"])
    after = logins(state)
    assert {name: after[name] - before[name] for name in after} == {
        h.name: 1 for h in state.hosts
    }


PLAYBOOK = """\
- name: first play
  hosts: all
  gather_facts: true
  tasks:
    - command: [uname, -r]
      changed_when: false
    - shell: "nproc | wc -c"
      changed_when: false
    - directory: {dir}
- name: second play
  hosts: all
  tasks:
    - command: [echo, two]
      changed_when: false
"""


def test_a_playbook_run_keeps_one_connection_per_host_through_every_step(
    lab: Path, config: LabConfig, tmp_path: Path
) -> None:
    playbook = tmp_path / "steps.yml"
    playbook.write_text(PLAYBOOK.format(dir=tmp_path / "made"))
    state = load_state(config.name)
    before = logins(state)
    result = daskfleet("play", playbook, "-i", lab)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "made").is_dir()
    after = logins(state)
    assert {name: after[name] - before[name] for name in after} == {
        h.name: 1 for h in state.hosts
    }


def test_sessions_have_the_hosts_own_home_and_path(
    lab: Path, config: LabConfig
) -> None:
    state = load_state(config.name)
    result = daskfleet("exec", lab, "-l", state.hosts[0].name, "--", "env")
    assert result.exit_code == 0, result.output
    assert f"HOME={state.hosts[0].host_dir / 'home'}" in result.output
    assert ".pyenv" not in result.output


def test_up_again_keeps_both_settings_and_restarts_nothing(
    lab: Path, config: LabConfig
) -> None:
    before = lab_status(config)
    result = daskfleet(
        *("lab", "up", "--name", config.name, "--hosts", HOSTS, "--inventory", lab)
    )
    assert result.exit_code == 0, result.output
    assert "sshd only" in result.output and "200mbit" in result.output
    after = lab_status(config)
    assert after.ok and after.uplink_rate == "200mbit"
    assert [h.sshd_pid for h in after.hosts] == [h.sshd_pid for h in before.hosts]


def test_uplink_limit_off_removes_it(lab: Path, config: LabConfig) -> None:
    result = daskfleet(
        *("lab", "up", "--name", config.name, "--hosts", HOSTS, "--inventory", lab),
        *("--uplink-rate", "off"),
    )
    assert result.exit_code == 0, result.output
    assert observed_rate(config) is None
    assert load_state(config.name).uplink_rate is None
    assert lab_status(config).ok


def test_bad_rate_is_refused_before_anything_changes(
    lab: Path, config: LabConfig
) -> None:
    result = daskfleet(
        *("lab", "up", "--name", config.name, "--hosts", HOSTS, "--inventory", lab),
        *("--uplink-rate", "200mb"),
    )
    assert result.exit_code != 0
    assert "invalid uplink rate '200mb'" in result.output
    assert "Traceback" not in result.output


def test_down_leaves_nothing(lab: Path, config: LabConfig) -> None:
    state = load_state(config.name)
    result = daskfleet("lab", "down", "--name", config.name)
    assert result.exit_code == 0, result.output
    assert not link_exists(config.bridge)
    for host in state.hosts:
        assert not Path("/var/run/netns", host.netns).exists()
    assert not lab_status(config).ok

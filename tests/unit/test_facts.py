"""Parsing of the facts script's output, from recorded outputs.

``script_docker.txt`` and ``script_no_daemon.txt`` are the real output of
FACTS_SCRIPT on a Debian 12 machine with and without a Docker 20.10 daemon;
``script_gpu.txt`` adds four GPUs of a two-socket server in nvidia-smi's CSV
format and their sysfs ``local_cpulist``; in ``script_gpu_topo.txt`` sysfs
did not answer and ``nvidia-smi topo -m`` (tabs and escape codes as printed)
did.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from daskfleet.errors import HostError
from daskfleet.facts import (
    FACTS_SCRIPT,
    Facts,
    Gpu,
    parse_df_avail,
    parse_docker_info,
    parse_facts,
    parse_meminfo,
    parse_nproc,
    parse_sections,
)
from daskfleet.gpufacts import (
    parse_cpu_list,
    parse_gpu_query,
    parse_sysfs_cpus,
    parse_topo_cpus,
)

DATA = Path(__file__).parent / "data" / "facts"
MIB = 1024 * 1024


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_sections_split_at_marks_with_exit_codes() -> None:
    output = "@@daskfleet a 0\none\ntwo\n@@daskfleet b 127\nsh: b: not found\n"
    sections = parse_sections(output)
    assert sections["a"].exit_code == 0
    assert sections["a"].text == "one\ntwo"
    assert sections["b"].exit_code == 127
    assert sections["b"].text == "sh: b: not found"


def test_sections_ignore_text_before_the_first_mark() -> None:
    sections = parse_sections("motd line\n@@daskfleet cpus 0\n4\n")
    assert list(sections) == ["cpus"]


def test_meminfo_total_in_bytes() -> None:
    text = "MemTotal:       24683568 kB\nMemFree:         1000 kB\n"
    assert parse_meminfo(text) == 24683568 * 1024


def test_meminfo_without_total_is_an_error() -> None:
    with pytest.raises(ValueError, match="MemTotal"):
        parse_meminfo("MemFree: 1 kB\n")


def test_nproc() -> None:
    assert parse_nproc("16\n") == 16


def test_docker_info_from_a_real_daemon() -> None:
    info = parse_docker_info(read("docker_info_20.10.json"))
    assert info.version == "20.10.24+dfsg1"
    assert info.storage_driver == "overlay2"
    assert info.root == "/tmp/imgdev/host/data"


def test_docker_info_without_a_daemon_names_the_client_error() -> None:
    section = parse_sections(read("script_no_daemon.txt"))["docker"]
    with pytest.raises(ValueError, match="Cannot connect to the Docker daemon"):
        parse_docker_info(section.text)


def test_docker_info_server_errors_field() -> None:
    text = json.dumps({"ServerVersion": "", "ServerErrors": ["permission denied"]})
    with pytest.raises(ValueError, match="permission denied"):
        parse_docker_info(text)


def test_df_avail() -> None:
    assert parse_df_avail("      Avail\n83351302144\n") == 83351302144


def test_df_garbage_is_an_error() -> None:
    with pytest.raises(ValueError, match="df output"):
        parse_df_avail("df: /nope: No such file or directory\n")


def test_nvidia_smi_csv() -> None:
    text = (
        "0, GPU-aaaa, NVIDIA A100-SXM4-80GB, 81920, 00000000:07:00.0, 550.54.15\n"
        "1, GPU-bbbb, Tesla T4, 15360, 00000000:3B:00.0, 550.54.15\n"
    )
    query = parse_gpu_query(text)
    assert query.gpus == (
        Gpu(0, "GPU-aaaa", "NVIDIA A100-SXM4-80GB", 81920 * MIB, "00000000:07:00.0"),
        Gpu(1, "GPU-bbbb", "Tesla T4", 15360 * MIB, "00000000:3B:00.0"),
    )
    assert query.driver == "550.54.15"


def test_nvidia_smi_csv_of_four_fields_has_no_driver() -> None:
    query = parse_gpu_query("0, GPU-aaaa, Tesla T4, 15360\n")
    assert query.gpus == (Gpu(0, "GPU-aaaa", "Tesla T4", 15360 * MIB),)
    assert query.driver is None


def test_nvidia_smi_unexpected_line() -> None:
    with pytest.raises(ValueError, match="nvidia-smi"):
        parse_gpu_query("NVIDIA-SMI has failed because it couldn't communicate\n")


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3\n", (0, 1, 2, 3)),
        ("0-1,8,10-11", (0, 1, 8, 10, 11)),
        ("5", (5,)),
        ("", ()),
    ],
)
def test_cpu_list(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


def test_cpu_list_garbage() -> None:
    with pytest.raises(ValueError, match="not a CPU list"):
        parse_cpu_list("ff,ffffffff")


def test_sysfs_lines_skip_unread_devices() -> None:
    text = "00000000:07:00.0 0-1\n00000000:0F:00.0 -\n"
    assert parse_sysfs_cpus(text) == {"00000000:07:00.0": (0, 1)}


def test_topo_matrix_cpu_affinity() -> None:
    section = read("script_gpu_topo.txt").split("@@daskfleet gpu_topo 0\n")[1]
    found = parse_topo_cpus(section)
    assert sorted(found) == [0, 1, 2, 3]
    assert found[0] == (*range(0, 32), *range(64, 96))
    assert found[3] == (*range(32, 64), *range(96, 128))


def test_topo_without_affinity_column() -> None:
    with pytest.raises(ValueError, match="CPU Affinity"):
        parse_topo_cpus("\tGPU0\nGPU0\t X \n")


def test_facts_of_a_docker_host() -> None:
    facts = parse_facts("lab1", read("script_docker.txt"))
    assert facts.host == "lab1"
    assert facts.cpus == 2
    assert facts.memory == 24683568 * 1024
    assert (facts.arch, facts.docker_arch) == ("x86_64", "amd64")
    assert facts.kernel == "6.18.44-fc-v1098"
    assert facts.docker_version == "20.10.24+dfsg1"
    assert facts.storage_driver == "overlay2"
    assert facts.docker_root == "/tmp/imgdev/host/data"
    assert facts.disk_free == 83351302144
    assert facts.gpus == ()
    assert facts.notes == ()


def test_facts_with_gpus() -> None:
    facts = parse_facts("gpu1", read("script_gpu.txt"))
    assert [gpu.index for gpu in facts.gpus] == [0, 1, 2, 3]
    assert facts.gpus[1].uuid == "GPU-9e8d7c6b-aaaa-bbbb-cccc-ddddeeeeffff"
    assert facts.gpus[0].memory == 81920 * MIB
    assert facts.gpus[2].pci_bus_id == "00000000:87:00.0"
    assert facts.gpus[1].local_cpus == (*range(0, 32), *range(64, 96))
    assert facts.gpus[2].local_cpus == (*range(32, 64), *range(96, 128))
    assert facts.gpu_driver == "550.54.15"
    assert facts.notes == ()


def test_gpu_cpus_from_topo_when_sysfs_fails() -> None:
    sysfs = parse_facts("gpu1", read("script_gpu.txt"))
    topo = parse_facts("gpu1", read("script_gpu_topo.txt"))
    assert topo.gpus == sysfs.gpus
    assert topo.notes == ()


def test_gpus_with_unknown_cpus_are_noted() -> None:
    text = read("script_gpu_topo.txt").split("@@daskfleet gpu_topo")[0]
    facts = parse_facts("gpu1", text)
    assert all(g.local_cpus == () for g in facts.gpus)
    assert facts.notes == ("gpus: CPUs near GPU 0, 1, 2, 3 unknown",)


def test_facts_without_a_docker_daemon_succeed_with_a_note() -> None:
    facts = parse_facts("lab2", read("script_no_daemon.txt"))
    assert facts.docker_version is None
    assert facts.storage_driver is None
    assert facts.disk_free is None
    assert facts.cpus == 2
    assert len(facts.notes) == 1
    assert "Cannot connect to the Docker daemon" in facts.notes[0]


def test_facts_without_docker_installed() -> None:
    facts = parse_facts("arm", read("script_no_docker.txt"))
    assert facts.docker_arch == "arm64"
    assert facts.memory == 528280000 * 1024
    assert facts.docker_version is None
    assert facts.notes == ("docker: the docker command is not installed",)


def test_failing_nvidia_smi_is_a_note_not_a_failure() -> None:
    output = read("script_docker.txt") + (
        "@@daskfleet gpus 9\nNVIDIA-SMI has failed because it couldn't "
        "communicate with the NVIDIA driver.\n"
    )
    facts = parse_facts("lab1", output)
    assert facts.gpus == ()
    assert "NVIDIA driver" in facts.notes[0]


def test_missing_basic_facts_fail_the_host() -> None:
    with pytest.raises(HostError, match="lab3: cannot read the host's basic facts"):
        parse_facts("lab3", "@@daskfleet cpus 127\nsh: nproc: not found\n")


def test_facts_to_dict_is_json() -> None:
    facts = parse_facts("gpu1", read("script_gpu.txt"))
    data = json.loads(json.dumps(facts.to_dict()))
    assert data["docker_arch"] == "amd64"
    assert data["gpus"][0] == {
        "index": 0,
        "uuid": "GPU-4f3a2b1c-1111-2222-3333-444455556666",
        "name": "NVIDIA A100-SXM4-80GB",
        "memory": 81920 * MIB,
        "pci_bus_id": "00000000:07:00.0",
        "local_cpus": [*range(0, 32), *range(64, 96)],
    }
    assert data["gpu_driver"] == "550.54.15"


def test_unknown_arch_keeps_its_name() -> None:
    facts = Facts("x", 1, 1, "mips64", "k", None, None, None, None)
    assert facts.docker_arch == "mips64"


def test_script_runs_docker_once_and_finds_its_root_in_the_json(
    tmp_path: Path,
) -> None:
    """The real script under sh, with a stand-in ``docker`` that logs its calls."""
    info = json.loads(read("docker_info_20.10.json"))
    info["DockerRootDir"] = str(tmp_path)
    # Compact, as Go writes it.
    (tmp_path / "info.json").write_text(json.dumps(info, separators=(",", ":")))
    stand_in = tmp_path / "bin" / "docker"
    stand_in.parent.mkdir()
    stand_in.write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\ncat {tmp_path}/info.json\n'
    )
    stand_in.chmod(0o755)
    env = {"PATH": f"{stand_in.parent}:{os.environ['PATH']}"}
    output = subprocess.run(
        ["sh", "-s"], input=FACTS_SCRIPT, env=env, capture_output=True, text=True
    ).stdout

    assert (tmp_path / "calls").read_text() == "info --format {{json .}}\n"
    facts = parse_facts("h", output)
    assert facts.docker_root == str(tmp_path)
    assert facts.disk_free is not None and facts.disk_free > 0
    assert facts.notes == ()

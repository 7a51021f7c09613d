"""Ansible YAML inventories: mapping, precedence, groups and foreign vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskfleet.errors import InventoryError
from daskfleet.inventory import Inventory, load_inventory

FIXTURES = Path(__file__).parent / "fixtures" / "inventories"


@pytest.fixture(scope="module")
def lab() -> Inventory:
    return load_inventory(FIXTURES / "ansible-example.yml")


def test_cluster_and_settings_from_all_vars(lab: Inventory) -> None:
    assert lab.cluster == "lab"
    assert lab.timeout == 60


def test_connection_variables_are_mapped(lab: Inventory) -> None:
    w1 = lab.hosts["w1"]
    assert (w1.address, w1.port, w1.user) == ("10.1.0.2", 2201, "ops")
    assert w1.sources["user"] == "group all"
    g1 = lab.hosts["g1"]
    assert g1.identity_file == str(Path("~/.ssh/lab").expanduser())


def test_scheduler_group_gives_the_role(lab: Inventory) -> None:
    assert lab.scheduler.name == "head"
    assert lab.scheduler.roles == ("scheduler",)
    assert lab.scheduler.sources["roles"] == "group scheduler"
    assert {h.name for h in lab.workers} == {"w1", "g1"}


def test_precedence_host_over_child_over_parent_over_all(lab: Inventory) -> None:
    g1 = lab.hosts["g1"]
    assert g1.memory == 32 * 2**30
    assert g1.sources["memory"] == "group gpu"
    assert g1.nthreads == 8
    assert g1.sources["nthreads"] == "host"
    assert g1.gpus == "all"
    w1 = lab.hosts["w1"]
    assert w1.memory == 8 * 2**30
    assert (w1.nthreads, w1.cpus) == (2, 8)


def test_groups_include_descendants(lab: Inventory) -> None:
    assert lab.groups["workers"] == ("w1", "g1")
    assert lab.groups["gpu"] == ("g1",)
    assert lab.groups["zz_last"] == ()
    assert "all" not in lab.groups
    assert lab.hosts["g1"].groups == ("workers", "gpu")


def test_foreign_variables_are_ignored(lab: Inventory) -> None:
    assert lab.hosts["head"].address == "10.1.0.1"
    assert "ntp_server" not in lab.hosts["head"].sources


def test_cluster_name_defaults_to_file_stem() -> None:
    inventory = load_inventory(FIXTURES / "ansible-no-cluster.yml")
    assert inventory.cluster == "ansible-no-cluster"
    assert inventory.hosts["s1"].address == "s1"


def test_top_level_groups_without_all(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text(
        "scheduler:\n  hosts:\n    s1:\nworkers:\n  hosts:\n    w1: {nthreads: 2}\n"
    )
    inventory = load_inventory(path)
    assert inventory.cluster == "site"
    assert inventory.hosts["w1"].nthreads == 2
    assert inventory.scheduler.name == "s1"


def test_same_depth_groups_apply_by_name(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        """\
all:
  children:
    zeta: {vars: {cpus: 2}, hosts: {w1: }}
    alpha: {vars: {cpus: 1}, hosts: {w1: }}
    scheduler: {hosts: {s1: }}
"""
    )
    w1 = load_inventory(path).hosts["w1"]
    assert (w1.cpus, w1.sources["cpus"]) == (2, "group zeta")


def test_unusable_file_name_needs_daskfleet_cluster(tmp_path: Path) -> None:
    path = tmp_path / "my hosts.yml"
    path.write_text("all:\n  hosts:\n    s1: {roles: [scheduler, worker]}\n")
    with pytest.raises(InventoryError, match="daskfleet_cluster") as info:
        load_inventory(path)
    assert "all: vars" in (info.value.hint or "")


def test_no_scheduler_hint_mentions_the_group(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  hosts:\n    w1:\n")
    with pytest.raises(InventoryError, match="scheduler role") as info:
        load_inventory(path)
    assert "group named scheduler" in (info.value.hint or "")
    assert info.value.key_path == "all"

"""The native format resolves to hosts with the right values and sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskfleet.errors import InventoryError
from daskfleet.inventory import ImageSettings, Inventory, Volume, load_inventory
from daskfleet.upgrade.settings import Amount

FIXTURES = Path(__file__).parent / "fixtures" / "inventories"


@pytest.fixture(scope="module")
def full() -> Inventory:
    return load_inventory(FIXTURES / "native-full.yml")


def test_cluster_settings(full: Inventory) -> None:
    assert full.cluster == "full"
    assert full.path == str(FIXTURES / "native-full.yml")
    assert (full.scheduler_port, full.dashboard_port, full.timeout) == (9786, 9787, 300)
    assert full.image == ImageSettings(
        packages=("xgboost", "pyarrow>=15"),
        base="python:3.11-slim",
        distribution="direct",
    )


def test_hosts_keep_file_order_and_roles(full: Inventory) -> None:
    assert list(full.hosts) == ["node1", "node2", "gpu1", "node4"]
    assert full.scheduler.name == "node1"
    assert [h.name for h in full.workers] == ["node2", "gpu1", "node4"]


def test_precedence_host_over_later_group_over_earlier_group(full: Inventory) -> None:
    gpu1 = full.hosts["gpu1"]
    assert gpu1.memory == 256 * 2**30
    assert gpu1.sources["memory"] == "group gpu"
    assert gpu1.nthreads == 4
    assert gpu1.sources["nthreads"] == "group big"
    assert gpu1.gpus == (0, "GPU-8f6f1c3e-aaaa-bbbb")
    assert gpu1.sources["gpus"] == "host"
    assert gpu1.resources == {"GPU": 2}
    assert gpu1.groups == ("big", "gpu")


def test_defaults_and_built_in_defaults(full: Inventory) -> None:
    node4 = full.hosts["node4"]
    assert node4.address == "node4"
    assert node4.sources["address"] == "host name"
    assert node4.roles == ("worker",)
    assert node4.sources["roles"] == "default"
    assert node4.port == 22
    assert node4.sources["port"] == "default"
    assert node4.user == "dask"
    assert node4.sources["user"] == "defaults"
    assert node4.env == {"OMP_NUM_THREADS": "1"}
    assert node4.cpus is None and node4.memory is None and node4.gpus is None


def test_paths_expand_home_and_follow_the_inventory(full: Inventory) -> None:
    node1 = full.hosts["node1"]
    assert node1.identity_file == str(FIXTURES / "keys" / "id_ed25519")
    assert node1.known_hosts == str(Path("~/.ssh/known_hosts").expanduser())


def test_volumes_labels_and_numbers(full: Inventory) -> None:
    node2 = full.hosts["node2"]
    assert node2.volumes == (
        Volume("/data", "/data", read_only=True),
        Volume("/scratch", "/scratch"),
    )
    assert node2.labels == {"rack": "a1"}
    assert node2.cpus == 16 and node2.nworkers == 2
    assert full.hosts["gpu1"].cpus == 32.5
    assert full.hosts["gpu1"].port == 2222


def test_groups_are_recorded(full: Inventory) -> None:
    assert dict(full.groups) == {"big": ("node2", "gpu1"), "gpu": ("gpu1",)}
    assert [h.name for h in full.select("gpu")] == ["gpu1"]


def test_inventory_is_immutable(full: Inventory) -> None:
    with pytest.raises(TypeError):
        full.hosts["x"] = full.hosts["node1"]  # type: ignore[index]
    with pytest.raises(TypeError):
        full.hosts["gpu1"].resources["GPU"] = 3  # type: ignore[index]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    return path


def test_single_host_with_both_roles(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "cluster: one\nhosts:\n  solo: {roles: [scheduler, worker]}\n")
    )
    assert inventory.scheduler is inventory.workers[0]
    assert inventory.scheduler_port == 8786 and inventory.timeout == 120


def test_yaml_aliases_share_values(tmp_path: Path) -> None:
    text = """\
cluster: anchors
hosts:
  a: {roles: [scheduler], env: &env {TZ: UTC}}
  b: {env: *env}
"""
    inventory = load_inventory(write(tmp_path, text))
    assert inventory.hosts["b"].env == {"TZ": "UTC"}


def test_merge_key_fills_only_missing_keys(tmp_path: Path) -> None:
    text = """\
cluster: anchors
defaults: &base {cpus: 4, memory: 1GiB}
hosts:
  a: {roles: [scheduler]}
  b: {<<: *base, cpus: 8}
"""
    b = load_inventory(write(tmp_path, text)).hosts["b"]
    assert (b.cpus, b.memory) == (8, 2**30)
    assert b.sources["cpus"] == "host" and b.sources["memory"] == "host"


def test_quoted_numbers_get_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster: c\nhosts:\n  a: {cpus: '8', roles: [scheduler]}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.hint == "write the number without quotes: 8"


EXAMPLES = Path(__file__).parents[2] / "inventories"


@pytest.mark.parametrize("name", ["prod.yml", "gpu-lab.yml", "ansible-example.yml"])
def test_shipped_examples_load(name: str) -> None:
    inventory = load_inventory(EXAMPLES / name)
    assert inventory.scheduler.name in inventory.hosts
    assert inventory.workers


def test_upgrade_section(tmp_path: Path) -> None:
    path = tmp_path / "up.yml"
    path.write_text(
        "cluster: t\n"
        "hosts:\n"
        "  a: {address: 10.0.0.1, roles: [scheduler]}\n"
        "  b: {address: 10.0.0.2}\n"
        "upgrade: {batch: 50%, canary: 1, min_healthy_time: 2, rollback: false}\n"
    )
    settings = load_inventory(path).upgrade
    assert settings.batch == Amount(50, percent=True)
    assert (settings.canary, settings.min_healthy_time, settings.rollback) == (
        1,
        2,
        False,
    )
    assert settings.max_failed == Amount(0)


def test_upgrade_batch_must_be_a_count_or_percentage(tmp_path: Path) -> None:
    path = tmp_path / "up.yml"
    path.write_text(
        "cluster: t\n"
        "hosts:\n"
        "  a: {address: 10.0.0.1, roles: [scheduler, worker]}\n"
        "upgrade: {batch: 5x}\n"
    )
    with pytest.raises(
        InventoryError, match=r"up.yml:4:18: upgrade.batch: expected a count"
    ):
        load_inventory(path)

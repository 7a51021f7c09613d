"""Every kind of bad inventory gets one precise, helpful error.

Each case is a fixture file under fixtures/inventories/ and the error it must
produce: line, column, key path, what was expected and found, and the hint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

from daskfleet.errors import InventoryError
from daskfleet.inventory import load_inventory

FIXTURES = Path(__file__).parent / "fixtures" / "inventories"


class Case(NamedTuple):
    fixture: str
    line: int
    column: int
    key_path: str | None
    message: tuple[str, ...]
    hint: str | None = None


CASES = [
    Case(
        "yaml-syntax.yml",
        4,
        3,
        None,
        ("invalid YAML", "expected ',' or '}'"),
        "indentation",
    ),
    Case("yaml-tab.yml", 4, 1, None, ("invalid YAML", "'\\t'"), "tabs"),
    Case(
        "not-mapping.yml",
        1,
        1,
        None,
        ("expected a mapping with cluster, hosts", "found a list"),
    ),
    Case("empty.yml", 1, 1, None, ("the file is empty",), "inventories/prod.yml"),
    Case(
        "unknown-host-variable.yml",
        4,
        31,
        "hosts.node2.cpu",
        ("unknown variable 'cpu'",),
        "did you mean 'cpus'?",
    ),
    Case(
        "unknown-top-level.yml",
        4,
        1,
        "rollout",
        ("unknown key 'rollout'", "expected one of: cluster"),
    ),
    Case(
        "misspelt-top-level.yml",
        1,
        1,
        "clustr",
        ("unknown key 'clustr'",),
        "did you mean 'cluster'?",
    ),
    Case(
        "missing-cluster.yml",
        1,
        1,
        None,
        ("expected the key 'cluster'", "found none"),
        "cluster: prod",
    ),
    Case(
        "port-string.yml",
        3,
        9,
        "defaults.port",
        ("expected a port number from 1 to 65535", 'found the string "abc"'),
    ),
    Case(
        "port-range.yml",
        3,
        45,
        "hosts.node1.port",
        ("from 1 to 65535", "found the number 70000"),
    ),
    Case("scheduler-port-zero.yml", 2, 17, "scheduler_port", ("found the number 0",)),
    Case("same-ports.yml", 2, 17, "dashboard_port", ("to differ", "8786 for both")),
    Case(
        "roles-string.yml",
        4,
        12,
        "hosts.node1.roles",
        ("expected a list of roles", 'found the string "scheduler"'),
        "roles: [scheduler]",
    ),
    Case(
        "roles-unknown.yml",
        4,
        24,
        "hosts.node1.roles[1]",
        ("expected a role: scheduler or worker", '"workers"'),
        "did you mean 'worker'?",
    ),
    Case(
        "memory-bad-unit.yml",
        5,
        13,
        "hosts.node2.memory",
        ("expected a size with a unit", 'found the string "4 GX"'),
        "unknown unit 'GX'",
    ),
    Case(
        "memory-no-unit.yml",
        5,
        13,
        "hosts.node2.memory",
        ("found the number 64",),
        "64GiB",
    ),
    Case(
        "cpus-zero.yml",
        4,
        17,
        "hosts.node2.cpus",
        ("expected a number greater than 0", "found the number 0"),
    ),
    Case(
        "cpus-negative.yml",
        4,
        17,
        "hosts.node2.cpus",
        ("greater than 0", "found the number -1"),
    ),
    Case(
        "nworkers-zero.yml",
        6,
        17,
        "groups.small.vars.nworkers",
        ("expected a whole number of at least 1", "found the number 0"),
    ),
    Case(
        "bool-for-number.yml",
        5,
        15,
        "hosts.node2.nthreads",
        ("whole number", "found the boolean yes"),
        "YAML reads yes as true/false",
    ),
    Case(
        "no-scheduler.yml",
        3,
        3,
        "hosts",
        ("exactly one host with the scheduler role", "found none"),
        "roles: [scheduler]",
    ),
    Case(
        "two-schedulers.yml",
        4,
        18,
        "hosts.node2.roles",
        ("exactly one host with the scheduler role", "found node1, node2"),
    ),
    Case(
        "no-worker.yml",
        4,
        12,
        "hosts.node1.roles",
        ("at least one host with the worker role", "found none"),
        "[scheduler, worker]",
    ),
    Case(
        "group-undefined-host.yml",
        4,
        19,
        "groups.gpu.hosts[1]",
        ("expected a host defined under hosts:", "'gpu3'"),
        "did you mean 'gpu2'?",
    ),
    Case(
        "duplicate-host.yml",
        5,
        3,
        "hosts.node2",
        ("duplicate key 'node2'", "first written at line 4"),
    ),
    Case(
        "duplicate-address.yml",
        5,
        20,
        "hosts.node3.address",
        ("a different address for each host", "'10.0.0.11' for both node1 and node3"),
    ),
    Case(
        "volumes-bad.yml",
        7,
        9,
        "hosts.node2.volumes[1]",
        ("host_path:container_path", '"data:/data2:rw"'),
        "/data:/data:ro",
    ),
    Case(
        "volumes-mode.yml",
        5,
        15,
        "hosts.node2.volumes[0]",
        ("absolute paths",),
        "ro or rw",
    ),
    Case(
        "gpus-bad.yml",
        5,
        11,
        "hosts.node2.gpus",
        ("all, a count of GPUs, or a list", 'found the string "0,1"'),
        "gpus: [0,1]",
    ),
    Case("gpus-bad-item.yml", 5, 15, "hosts.node2.gpus[1]", ("a GPU index", '"first"')),
    Case(
        "bad-host-name.yml",
        4,
        3,
        "hosts.node 2",
        ("expected a host name of letters", "'node 2'"),
    ),
    Case(
        "bad-cluster-name.yml",
        1,
        10,
        "cluster",
        ("expected a cluster name", "'prod cluster'"),
    ),
    Case(
        "address-in-defaults.yml",
        3,
        3,
        "defaults.address",
        ("only on a host",),
        "each host's own entry",
    ),
    Case(
        "host-as-string.yml",
        4,
        10,
        "hosts.node2",
        ('found the string "10.0.0.12"',),
        "{address: 10.0.0.11}",
    ),
    Case(
        "image-unknown-key.yml",
        3,
        3,
        "image.pakages",
        ("unknown key 'pakages'",),
        "did you mean 'packages'?",
    ),
    Case(
        "image-distribution-bad.yml",
        3,
        17,
        "image.distribution",
        ("expected one of: auto, relay, direct", 'found the string "p2p"'),
    ),
    Case(
        "ansible-bad-prefix.yml",
        5,
        14,
        "all.children.scheduler.hosts.s1.daskfleet_cpu",
        ("unknown daskfleet variable 'daskfleet_cpu'",),
        "did you mean 'daskfleet_cpus'?",
    ),
    Case(
        "ansible-cycle.yml", 3, 5, "all.children.a", ("without cycles", "a -> b -> a")
    ),
    Case(
        "ansible-cluster-setting-misplaced.yml",
        4,
        14,
        "all.children.scheduler.vars.daskfleet_cluster",
        ("under all: vars:",),
        "move it",
    ),
    Case(
        "ansible-two-spellings.yml",
        4,
        34,
        "all.hosts.w1.daskfleet_address",
        ("one value for address", "'ansible_host' and 'daskfleet_address'"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.fixture for c in CASES])
def test_bad_inventory_names_file_line_key_and_fix(case: Case) -> None:
    path = FIXTURES / case.fixture
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    error = info.value
    text = str(error)

    assert error.exit_code == 2
    assert (error.location.line, error.location.column) == (case.line, case.column)
    assert text.startswith(f"{path}:{case.line}:{case.column}: ")
    assert error.key_path == case.key_path
    if case.key_path:
        assert f": {case.key_path}: " in text
    for fragment in case.message:
        assert fragment in error.message
    if case.hint:
        assert case.hint in (error.hint or "")


def test_every_fixture_that_is_not_an_example_has_a_case() -> None:
    covered = {case.fixture for case in CASES}
    examples = {"native-full.yml", "ansible-example.yml", "ansible-no-cluster.yml"}
    assert {p.name for p in FIXTURES.glob("*.yml")} == covered | examples


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(InventoryError, match="no such file") as info:
        load_inventory(path)
    assert info.value.location.path == str(path)
    assert str(info.value).startswith(f"{path}: ")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="found a directory") as info:
        load_inventory(tmp_path)
    assert info.value.location.path == str(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.yml"
    path.write_text("cluster: x\n")
    path.chmod(0)
    with pytest.raises(InventoryError, match="permission denied") as info:
        load_inventory(path)
    assert "chmod u+r" in (info.value.hint or "")


def test_permission_error_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root can read a mode-000 file, so simulate the refusal as well.
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(InventoryError, match="permission denied"):
        load_inventory(tmp_path / "inv.yml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"cluster: prod\nhosts:\n  caf\xe9:\n")
    with pytest.raises(InventoryError, match="UTF-8") as info:
        load_inventory(path)
    assert (info.value.location.line, info.value.location.column) == (3, 6)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cluster: prod\nhosts: {}\n", "expected at least one host, found none"),
        ("cluster: prod\nhosts:\n", "expected a mapping of host names"),
        ("cluster: prod\nhosts: [node1]\n", "found a list"),
        ("a: &x [*x]\n", "alias refers to its own parent"),
        ("cluster: prod\nhosts:\n  n1: {cpus: .inf}\n", "greater than 0"),
        ("cluster: prod\nhosts:\n  n1: {user: !vault abc}\n", "a value tagged !vault"),
        ("cluster: prod\nhosts:\n  n1: {env: {A: yes}}\n", "expected text or a number"),
        ("cluster: prod\nhosts:\n  n1: {gpus: [0, 0]}\n", "each GPU once"),
        ("cluster: prod\nhosts:\n  n1: {roles: []}\n", "expected a list of roles"),
        ("cluster: prod\nhosts:\n  n1: {address: 'a b'}\n", "host name or IP"),
        ("cluster: prod\ngroups:\n  all: {hosts: []}\nhosts:\n  n1:\n", "'all'"),
        ("cluster: prod\nhosts:\n  n1: {scheduler_port: 1}\n", "cluster setting"),
        ("user: dask\n", "user is a host variable"),
        ("---\n", "the file is empty"),
        ("cluster: prod\n", "expected the key 'hosts'"),
        ("---\na: 1\n---\nb: 2\n", "expected a single document"),
    ],
)
def test_more_bad_values(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert fragment in str(info.value)
    assert info.value.location.path == str(path)

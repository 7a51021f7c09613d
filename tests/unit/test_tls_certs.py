"""TLS without a cluster: the default, the planned containers, the
certificates and their rotation on the controller, the host-side scripts."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from daskfleet import tls
from daskfleet.deploy.certs import PRUNE_SCRIPT
from daskfleet.deploy.context import DeployOptions
from daskfleet.deploy.run import security_warnings
from daskfleet.errors import InventoryError, RotationError
from daskfleet.facts import Facts
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Inventory
from daskfleet.plan import Observed, ObservedContainer, plan_deploy
from daskfleet.rotation import rotate_certificates
from daskfleet.specs import ImageRef

INVENTORY = """\
cluster: sec
hosts:
  s1: {address: 10.0.0.1, roles: [scheduler]}
  w1: {address: 10.0.0.2}
"""
IMAGE = ImageRef("sha256:cluster", "daskfleet/sec:1", "amd64")


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DASKFLEET_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DASKFLEET_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "state"


def inventory(tmp_path: Path, extra: str = "") -> Inventory:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY + extra)
    return load_inventory(path)


def facts() -> dict[str, Facts]:
    disk = (2**40,)
    docker = ("20.10", "overlay2", "/var/lib/docker")
    return {
        n: Facts(n, 4, 8 * 2**30, "x86_64", "6.1", *docker, *disk) for n in ("s1", "w1")
    }


def test_tls_is_the_default_and_none_an_explicit_choice(tmp_path: Path) -> None:
    assert inventory(tmp_path).security == "tls"
    assert inventory(tmp_path, "security: none\n").security == "none"
    with pytest.raises(InventoryError, match="tls or none"):
        inventory(tmp_path, "security: off\n")


def test_only_security_none_warns_in_the_recap(tmp_path: Path) -> None:
    assert security_warnings(inventory(tmp_path)) == []
    (warning,) = security_warnings(inventory(tmp_path, "security: none\n"))
    assert str(tmp_path / "inv.yml") in warning
    assert "tcp://10.0.0.1:8786" in warning
    assert "runs code sent by anyone" in warning


def fingerprints(inv: Inventory) -> dict[str, str]:
    return {
        name: tls.ensure_host_pair(inv.cluster, name, host.address).fingerprint
        for name, host in inv.hosts.items()
    }


def deployed(inv: Inventory) -> dict[str, Observed]:
    plan = plan_deploy(inv, facts(), {}, IMAGE, certificates=fingerprints(inv))
    return {
        host: Observed(
            host,
            tuple(
                ObservedContainer(
                    s.name, s.image, "running", s.to_docker_kwargs()["labels"]
                )
                for s in plan.specs
                if s.host == host
            ),
            frozenset({IMAGE.id}),
        )
        for host in ("s1", "w1")
    }


def test_planned_containers_speak_tls_with_their_hosts_pair(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    prints = fingerprints(inv)
    plan = plan_deploy(inv, facts(), {}, IMAGE, certificates=prints)
    assert {s.role for s in plan.specs} == {"scheduler", "worker"}
    for spec in plan.specs:
        assert spec.command[-len(tls.TLS_ARGUMENTS) :] == tls.TLS_ARGUMENTS
        assert spec.environment["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
        mount = spec.volumes[-1]
        assert mount.host_path == (
            f"/var/lib/daskfleet/clusters/sec/tls/{spec.host}/{prints[spec.host]}"
        )
        assert (mount.container_path, mount.read_only) == ("/etc/daskfleet/tls", True)


def test_new_certificates_replace_every_container(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    observed = deployed(inv)
    again = plan_deploy(inv, facts(), observed, IMAGE, certificates=fingerprints(inv))
    assert {a.kind for a in again.all_actions} == {"unchanged"}

    tls.begin_rotation(inv.cluster)
    rotated = plan_deploy(inv, facts(), observed, IMAGE, certificates=fingerprints(inv))
    assert [(a.role, a.kind) for a in rotated.all_actions] == [
        ("scheduler", "replace"),
        ("worker", "replace"),
    ]


def test_rotation_sets_aside_undoes_and_finishes(state: Path) -> None:
    old_ca = tls.ensure_ca("sec").cert
    old_client = tls.client_files("sec")[1].read_bytes()

    backup = tls.begin_rotation("sec")
    assert (backup / "ca.pem").read_bytes() == old_ca
    assert tls.ensure_ca("sec").cert != old_ca
    assert tls.client_files("sec")[1].read_bytes() != old_client
    tls.undo_rotation("sec")
    assert tls.ensure_ca("sec").cert == old_ca
    assert not backup.exists()

    tls.begin_rotation("sec")
    new_ca = tls.ensure_ca("sec").cert
    tls.finish_rotation("sec")
    assert not backup.exists()
    assert tls.ensure_ca("sec").cert == new_ca


def test_host_certificate_names_its_address_and_localhost() -> None:
    pair = tls.ensure_host_pair("sec", "s1", "10.0.0.1")
    cert = x509.load_pem_x509_certificate(pair.cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_pruning_keeps_only_the_named_bundles(tmp_path: Path) -> None:
    root = tmp_path / "tls" / "s1"
    for entry in ("aaaa", "bbbb", "client-cccc", "client-dddd"):
        (root / entry).mkdir(parents=True)
        (root / entry / "node.pem").write_text("x")
    # Files of the layout before fingerprints, directly in the host's dir.
    for name in ("ca.pem", "node.pem", ".digest"):
        (root / name).write_text("old")
    subprocess.run(
        ["sh", "-c", PRUNE_SCRIPT, "sh", str(root), "bbbb", "client-dddd"], check=True
    )
    assert sorted(p.name for p in root.iterdir()) == ["bbbb", "client-dddd"]
    assert (root / "bbbb" / "node.pem").exists()


def test_pruning_a_host_without_tls_files_is_no_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    subprocess.run(["sh", "-c", PRUNE_SCRIPT, "sh", str(missing), "x"], check=True)
    assert not missing.exists()


def test_rotation_is_refused_before_any_connection(tmp_path: Path) -> None:
    with pytest.raises(RotationError, match="no certificates to rotate"):
        rotate_certificates(inventory(tmp_path, "security: none\n"))
    for options in (DeployOptions(check=True), DeployOptions(limit="w1")):
        with pytest.raises(RotationError, match="leave out --check and --limit"):
            rotate_certificates(inventory(tmp_path), options)


def test_the_client_bundle_is_in_the_users_config_dir_readable_by_them_only(
    tmp_path: Path,
) -> None:
    ca, cert, key = tls.client_files("sec")
    folder = tmp_path / "config" / "clusters" / "sec"
    assert (ca, cert, key) == (
        folder / "ca.pem",
        folder / "client.pem",
        folder / "client-key.pem",
    )
    assert ca.read_bytes() == tls.ensure_ca("sec").cert
    assert cert.read_bytes() == tls.ensure_client_pair("sec").cert
    for path in (ca, cert, key):
        assert path.stat().st_mode & 0o077 == 0, path
    assert folder.stat().st_mode & 0o077 == 0

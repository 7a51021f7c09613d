"""TLS on the lab: encrypted Dask traffic with the cluster's own CA.

The lab's inventory says nothing about security: TLS is the default. Only
a client holding a certificate from the cluster's CA can connect and submit
work; a plain ``tcp://`` connection and a stranger's certificate are
refused; the dashboard answers over HTTPS. Then the certificates are
rotated, and last the cluster is deployed with ``security: none``.
"""

from __future__ import annotations

import json
import operator
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from distributed import Client
from distributed.security import Security

from daskfleet import tls
from daskfleet.client import open_client
from daskfleet.errors import HealthError
from daskfleet.inventory import load_inventory

pytestmark = pytest.mark.e2e

DASKFLEET = [sys.executable, "-m", "daskfleet"]
#: open_client turns a refused or failed connection into this.
REFUSED = HealthError


def daskfleet(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DASKFLEET, *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def inventory(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    assert "security" not in data, "the lab's inventory must keep the default"
    path = tmp_path_factory.mktemp("tls") / "fleet.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = daskfleet("deploy", path, "--json")
    recap = json.loads(result.stdout)
    assert result.returncode == 0, (recap["errors"], recap["hosts"])
    assert recap["scheduler"].startswith("tls://")
    assert recap["dashboard"].startswith("https://")
    assert recap["warnings"] == []
    yield path
    daskfleet("down", path, "--yes")


def connect(address: str, security: Security | None = None) -> Client:
    return open_client(address, timeout=5, security=security)


def test_cluster_client_runs_tasks(inventory: Path) -> None:
    loaded = load_inventory(inventory)
    address = recap_address(inventory)
    with connect(address, tls.client_security(loaded)) as client:
        assert client.submit(operator.add, 2, 3).result(timeout=30) == 5
        info = client.scheduler_info()
        assert all(w.startswith("tls://") for w in info["workers"])


def test_plain_tcp_is_refused(inventory: Path) -> None:
    address = recap_address(inventory).replace("tls://", "tcp://")
    with pytest.raises(REFUSED):
        connect(address)


def test_tls_without_a_client_certificate_is_refused(inventory: Path) -> None:
    """A TLS client that trusts the cluster but shows no certificate."""
    loaded = load_inventory(inventory)
    ca, _, _ = tls.client_files(loaded.cluster)
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    address = (loaded.scheduler.address, loaded.scheduler_port)
    with (
        socket.create_connection(address, timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
        context.wrap_socket(raw) as secured,
    ):
        # TLS 1.3 reports the missing certificate on the first read.
        if secured.recv(1) == b"":
            raise ConnectionResetError("closed by the scheduler")


def test_certificate_of_another_ca_is_refused(
    inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASKFLEET_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DASKFLEET_CONFIG_DIR", str(tmp_path / "config"))
    ca, cert, key = tls.client_files("stranger")
    stranger = Security(
        tls_ca_file=str(ca),
        tls_client_cert=str(cert),
        tls_client_key=str(key),
        require_encryption=True,
    )
    with pytest.raises(REFUSED):
        connect(recap_address(inventory), stranger)


def test_dashboard_answers_over_https_with_the_cluster_ca(inventory: Path) -> None:
    loaded = load_inventory(inventory)
    ca, _, _ = tls.client_files(loaded.cluster)
    host = loaded.scheduler.address
    context = ssl.create_default_context(cafile=str(ca))
    url = f"https://{host}:{loaded.dashboard_port}/health"
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        assert response.read() == b"ok"


def test_client_config_prints_the_connection(inventory: Path) -> None:
    result = daskfleet("client-config", inventory)
    assert result.returncode == 0, result.stderr
    assert "require-encryption: true" in result.stdout
    assert recap_address(inventory) in result.stdout


def recap_address(inventory: Path) -> str:
    loaded = load_inventory(inventory)
    return f"tls://{loaded.scheduler.address}:{loaded.scheduler_port}"


# Rotation --------------------------------------------------------------------


def host_bundles(inventory: Path) -> dict[str, bytes]:
    """Every host's installed certificate files, by path."""
    loaded = load_inventory(inventory)
    return {
        str(path): path.read_bytes()
        for name in loaded.hosts
        for path in Path(tls.host_tls_root(loaded.cluster, name)).glob("*/*.pem")
    }


def test_rotation_replaces_every_certificate_and_refuses_the_old_ones(
    inventory: Path, tmp_path: Path
) -> None:
    loaded = load_inventory(inventory)
    old = tmp_path / "old"
    old.mkdir()
    for path in tls.client_files(loaded.cluster):
        shutil.copy(path, old / path.name)
    old_security = Security(
        tls_ca_file=str(old / "ca.pem"),
        tls_client_cert=str(old / "client.pem"),
        tls_client_key=str(old / "client-key.pem"),
        require_encryption=True,
    )
    before = host_bundles(inventory)
    assert len(before) == 3 * 3  # ca, node and key on each of the three hosts

    result = daskfleet("deploy", inventory, "--rotate-certs", "--json")
    recap = json.loads(result.stdout)
    assert result.returncode == 0, (recap["errors"], recap["hosts"])
    assert any("results it held in memory are lost" in w for w in recap["warnings"])
    batches = recap["rotation"]["batches"]
    assert [b["status"] for b in batches] == ["ok"] * len(loaded.workers)
    assert recap["health"]["ok"] is True

    with connect(recap_address(inventory), tls.client_security(loaded)) as client:
        assert client.submit(operator.mul, 6, 7).result(timeout=30) == 42
    with pytest.raises(REFUSED):
        connect(recap_address(inventory), old_security)

    after = host_bundles(inventory)
    assert len(after) == 3 * 3
    assert not set(before) & set(after), "the old bundles are removed"
    assert not set(before.values()) & set(after.values())
    backup = tls.tls_dir(loaded.cluster).with_name("tls.previous")
    assert not backup.exists(), "the controller's old certificates go on success"


def test_rotation_is_refused_with_check_or_limit(inventory: Path) -> None:
    result = daskfleet("deploy", inventory, "--rotate-certs", "--check")
    assert result.returncode == 2
    assert "leave out --check and --limit" in result.stderr
    assert "Traceback" not in result.stderr


# security: none ----------------------------------------------------------------


def test_security_none_warns_in_every_recap(inventory: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(inventory.read_text())
    data["security"] = "none"
    plain = tmp_path / "plain.yml"
    plain.write_text(yaml.safe_dump(data, sort_keys=False))

    result = daskfleet("deploy", plain, "--json")
    recap = json.loads(result.stdout)
    assert result.returncode == 0, (recap["errors"], recap["hosts"])
    (warning,) = recap["warnings"]
    assert "runs code sent by anyone" in warning and str(plain) in warning
    address = recap["scheduler"]
    assert address.startswith("tcp://")
    with connect(address) as client:
        assert client.submit(operator.add, 1, 1).result(timeout=30) == 2

    text = daskfleet("deploy", plain)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "warning: security: none" in " ".join(text.stdout.split())
    upgrade = daskfleet("upgrade", plain, "--check", "--json")
    assert json.loads(upgrade.stdout)["warnings"] == [warning]
    assert daskfleet("down", plain, "--yes").returncode == 0

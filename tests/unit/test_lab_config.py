"""Names, addresses and paths a lab derives from its name."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from daskfleet.errors import LabError
from daskfleet.lab import LabConfig
from daskfleet.lab.config import IFNAMSIZ, default_subnet


def test_default_lab_addresses() -> None:
    config = LabConfig("lab", state_dir=Path("/srv/lab"))
    assert str(config.network) == "10.213.1.0/24"
    assert config.bridge_address == "10.213.1.1"
    hosts = config.hosts(3)
    assert [h.name for h in hosts] == ["lab1", "lab2", "lab3"]
    assert [h.address for h in hosts] == ["10.213.1.11", "10.213.1.12", "10.213.1.13"]


def test_state_dir_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASKFLEET_LAB_DIR", raising=False)
    assert LabConfig("lab").root == Path("/var/lib/daskfleet/lab/lab")
    monkeypatch.setenv("DASKFLEET_LAB_DIR", "/tmp/labs")
    config = LabConfig("t1")
    assert config.root == Path("/tmp/labs/t1")
    assert config.build_socket == Path("/tmp/labs/t1/build/docker.sock")
    assert config.host(2).docker_socket == Path("/tmp/labs/t1/hosts/t12/docker.sock")


def test_other_names_get_other_subnets_and_names() -> None:
    default = LabConfig("lab", state_dir=Path("/x"))
    other = LabConfig("test", state_dir=Path("/y"))
    assert other.network != default.network
    assert other.network == default_subnet("test")
    assert other.bridge != default.bridge
    assert other.host(1).netns != default.host(1).netns
    assert other.host(1).veth != default.host(1).veth
    assert other.host(1).name == "test1"


def test_digit_names_do_not_collide_in_netns() -> None:
    # lab "lab1" host 2 and lab "lab" host 12 are both named lab12 ...
    a = LabConfig("lab1", state_dir=Path("/a")).host(2)
    b = LabConfig("lab", state_dir=Path("/b")).host(12)
    # ... but their namespaces and veths differ.
    assert a.netns != b.netns
    assert a.veth != b.veth


def test_interface_names_fit_ifnamsiz() -> None:
    config = LabConfig("abcdefgh", state_dir=Path("/x"))
    assert len(config.bridge) <= IFNAMSIZ
    assert len(config.host(config.max_hosts).veth) <= IFNAMSIZ


def test_explicit_subnet() -> None:
    subnet = ipaddress.IPv4Network("10.213.9.0/24")
    config = LabConfig("t", subnet=subnet, state_dir=Path("/x"))
    assert config.host(2).address == "10.213.9.12"
    assert config.host(2).prefixlen == 24


@pytest.mark.parametrize("name", ["", "Lab", "1lab", "la-b", "abcdefghi"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        LabConfig(name, state_dir=Path("/x"))


def test_host_count_bounds() -> None:
    config = LabConfig("lab", state_dir=Path("/x"))
    with pytest.raises(LabError, match="1 to 244 hosts"):
        config.hosts(0)
    with pytest.raises(LabError):
        config.hosts(245)


def test_too_small_subnet() -> None:
    with pytest.raises(LabError, match="too small"):
        LabConfig("lab", subnet=ipaddress.IPv4Network("10.0.0.0/29"))


def test_state_dir_too_long_for_sockets() -> None:
    with pytest.raises(LabError, match="too long for unix socket"):
        LabConfig("lab", state_dir=Path("/" + "d" * 80))

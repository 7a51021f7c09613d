"""The lab network: one bridge, and per host a namespace joined by a veth.

Every function is idempotent: it checks what is there, repairs what is
half there (a namespace file left without its mount, a veth without its
peer) and only then creates what is missing.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from daskfleet.errors import LabError
from daskfleet.lab._proc import run
from daskfleet.lab.config import HostConfig, LabConfig

logger = logging.getLogger(__name__)

PEER_NAME = "eth0"


def link_exists(name: str, netns: str | None = None) -> bool:
    """True when interface ``name`` exists (in ``netns`` when given)."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return run([*prefix, "link", "show", "dev", name], check=False).returncode == 0


def netns_usable(host: HostConfig) -> bool:
    """True when the namespace file exists and is a live namespace mount."""
    if not host.netns_path.exists():
        return False
    probe = run(["ip", "-n", host.netns, "link", "show", "lo"], check=False)
    return probe.returncode == 0


def ensure_bridge(config: LabConfig) -> None:
    """Create the lab bridge with the lab's first address, if missing."""
    _refuse_overlapping_address(config)
    if not link_exists(config.bridge):
        logger.debug("creating bridge %s", config.bridge)
        run(["ip", "link", "add", config.bridge, "type", "bridge"])
    cidr = f"{config.bridge_address}/{config.network.prefixlen}"
    set_only_address(config.bridge, cidr)
    # Bridged lab traffic must not cross the machine's iptables FORWARD chain.
    run(
        ["ip", "link", "set", config.bridge, "type", "bridge", "nf_call_iptables", "0"],
        check=False,
    )
    run(["ip", "link", "set", config.bridge, "up"])


def _refuse_overlapping_address(config: LabConfig) -> None:
    listing = run(["ip", "-j", "addr", "show"]).stdout
    for link in json.loads(listing or "[]"):
        if link.get("ifname") == config.bridge:
            continue
        for info in link.get("addr_info", []):
            if info.get("family") != "inet":
                continue
            if ipaddress.IPv4Address(info["local"]) in config.network:
                raise LabError(
                    f"subnet {config.network} of lab {config.name!r} is already "
                    f"used by interface {link.get('ifname')} ({info['local']})",
                    hint="choose another one: daskfleet lab up --subnet 10.213.50.0/24",
                )


def set_only_address(link: str, cidr: str, netns: str | None = None) -> None:
    """Make ``cidr`` the one IPv4 address of ``link`` (a lab may change subnet)."""
    ip = ["ip", "-n", netns] if netns else ["ip"]
    listing = json.loads(run([*ip, "-j", "-4", "addr", "show", "dev", link]).stdout)
    present = {
        f"{info['local']}/{info['prefixlen']}"
        for entry in listing
        for info in entry.get("addr_info", [])
    }
    if present == {cidr}:
        return
    if present:
        run([*ip, "-4", "addr", "flush", "dev", link])
    run([*ip, "addr", "add", cidr, "dev", link])


def ensure_netns(host: HostConfig) -> None:
    """Create the host's namespace, replacing a stale namespace file."""
    if netns_usable(host):
        return
    if host.netns_path.exists():
        logger.debug("replacing stale namespace file %s", host.netns_path)
        run(["ip", "netns", "delete", host.netns], check=False)
        if host.netns_path.exists():
            host.netns_path.unlink()
    run(["ip", "netns", "add", host.netns])


def ensure_host_network(config: LabConfig, host: HostConfig) -> None:
    """Namespace, veth pair, address, loopback and default route of a host."""
    ensure_netns(host)
    outside = link_exists(host.veth)
    inside = link_exists(PEER_NAME, host.netns)
    if not (outside and inside):
        if outside:
            run(["ip", "link", "delete", host.veth])
        if inside:
            run(["ip", "-n", host.netns, "link", "delete", PEER_NAME])
        peer = ["peer", "name", PEER_NAME, "netns", host.netns]
        run(["ip", "link", "add", host.veth, "type", "veth", *peer])
    run(["ip", "link", "set", host.veth, "master", config.bridge, "up"])
    ns = ["ip", "-n", host.netns]
    set_only_address(PEER_NAME, f"{host.address}/{host.prefixlen}", host.netns)
    run([*ns, "link", "set", PEER_NAME, "up"])
    run([*ns, "link", "set", "lo", "up"])
    run([*ns, "route", "replace", "default", "via", config.bridge_address])


def remove_host_network(host: HostConfig) -> None:
    """Delete the host's veth and namespace; missing pieces are fine."""
    if link_exists(host.veth):
        run(["ip", "link", "delete", host.veth])
    if host.netns_path.exists():
        run(["ip", "netns", "delete", host.netns], check=False)
    if host.netns_path.exists():
        run(["umount", "-l", str(host.netns_path)], check=False)
        host.netns_path.unlink(missing_ok=True)


def remove_bridge(config: LabConfig) -> None:
    """Delete the lab bridge if it exists."""
    if link_exists(config.bridge):
        run(["ip", "link", "delete", config.bridge])

"""Who sends the image to whom: the direct push or a relay chain. Pure.

Hosts that need the same payload (the same layers, compressed the same
way) form a group. A group of at least :data:`RELAY_MIN_HOSTS` hosts that
can all relay becomes a chain: the controller sends the payload to the
chain's head once and every host passes it on to the next while loading it.
Every other host gets the payload straight from the controller, as does
any host of a chain whose relay fails.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daskfleet.inventory.model import ImageDistribution
from daskfleet.sizes import format_size

Mode = ImageDistribution

#: In ``auto`` mode, the smallest group worth a relay. With two hosts the
#: direct push sends two copies in parallel and a chain saves one copy at
#: the price of a hop; from three on the controller's link dominates.
RELAY_MIN_HOSTS = 3


@dataclass(frozen=True)
class HostNeed:
    """What one host needs of the image, and whether it can relay."""

    host: str
    #: Hosts with equal keys need byte-identical payloads.
    payload_key: str
    bytes: int
    #: The host runs the relay agent (python3) and has a routable address.
    can_relay: bool
    #: Why it cannot, for the plan's reader.
    why_not: str = ""


@dataclass(frozen=True)
class Chain:
    """Controller -> hosts[0] -> hosts[1] -> ...: one payload, sent once."""

    hosts: tuple[str, ...]
    payload_key: str
    bytes: int


@dataclass(frozen=True)
class Distribution:
    """Every host that needs the image, on a chain or pushed directly."""

    mode: Mode
    chains: tuple[Chain, ...] = ()
    #: Host to the bytes the controller sends it.
    direct: Mapping[str, int] = field(default_factory=dict)
    #: Why a host that might have relayed is pushed directly.
    notes: tuple[str, ...] = ()

    def retry(self, failed: Collection[str]) -> Distribution:
        """Routes for the chain hosts in ``failed``: a chain again where
        enough of one chain's hosts are left, else the direct push."""
        chains: list[Chain] = []
        direct: dict[str, int] = {}
        for chain in self.chains:
            left = tuple(h for h in chain.hosts if h in failed)
            if len(left) >= smallest_chain(self.mode):
                chains.append(dataclasses.replace(chain, hosts=left))
            else:
                direct.update(dict.fromkeys(left, chain.bytes))
        return Distribution(self.mode, tuple(chains), direct)

    @property
    def controller_bytes(self) -> int:
        """Bytes that cross the controller's link."""
        return sum(c.bytes for c in self.chains) + sum(self.direct.values())

    def lines(self) -> list[str]:
        """Who sends what to whom, one route per line."""
        lines = [
            f"controller -> {' -> '.join(c.hosts)}"
            f"  (relay: {format_size(c.bytes)}, sent once)"
            for c in self.chains
        ]
        lines += [
            f"controller -> {host}  (direct: {format_size(size)})"
            for host, size in self.direct.items()
        ]
        return lines + list(self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "chains": [
                {"hosts": list(c.hosts), "bytes": c.bytes, "payload": c.payload_key}
                for c in self.chains
            ],
            "direct": dict(self.direct),
            "controller_bytes": self.controller_bytes,
            "notes": list(self.notes),
        }


def plan_distribution(needs: Sequence[HostNeed], mode: Mode = "auto") -> Distribution:
    """Chains for groups that may relay, the direct push for the rest.

    Hosts keep their given order within a chain, so plans are stable.
    """
    chains: list[Chain] = []
    direct: dict[str, int] = {}
    notes: list[str] = []
    for key, group in _groups(needs).items():
        able = [n for n in group if n.can_relay]
        if mode != "direct":
            notes += [
                f"{n.host}: pushed directly: {n.why_not}"
                for n in group
                if not n.can_relay
            ]
        if mode == "direct" or len(able) < smallest_chain(mode):
            direct.update((n.host, n.bytes) for n in group)
            continue
        chains.append(Chain(tuple(n.host for n in able), key, able[0].bytes))
        direct.update((n.host, n.bytes) for n in group if not n.can_relay)
    return Distribution(mode, tuple(chains), direct, tuple(notes))


def smallest_chain(mode: Mode) -> int:
    """The fewest hosts that make a chain in ``mode``."""
    return 2 if mode == "relay" else RELAY_MIN_HOSTS


def _groups(needs: Sequence[HostNeed]) -> dict[str, list[HostNeed]]:
    groups: dict[str, list[HostNeed]] = {}
    for need in needs:
        groups.setdefault(need.payload_key, []).append(need)
    return groups


def relay_address_problem(address: str) -> str:
    """Why peers cannot reach ``address``; empty when they can."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""  # a name: peers resolve it as the controller does
    if ip.is_loopback:
        return f"its address {address} is a loopback address"
    if ip.is_unspecified:
        return f"its address {address} is unspecified"
    return ""

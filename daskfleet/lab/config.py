"""Names, addresses and paths of one lab, all derived from its name.

Two labs with different names never share a namespace, an interface, a
state directory or (by default) a subnet, so a test lab cannot clobber a
user's lab.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from daskfleet.errors import LabError

DEFAULT_NAME = "lab"
DEFAULT_HOSTS = 3
STATE_ROOT = Path("/var/lib/daskfleet/lab")
CACHE_DIR = Path("/var/cache/daskfleet")
#: Environment variable: parent of every lab's state dir (``<root>/<name>``).
STATE_ROOT_ENV = "DASKFLEET_LAB_DIR"
#: Environment variable: where the base image tarball is cached.
CACHE_DIR_ENV = "DASKFLEET_CACHE_DIR"

#: Host ``i`` (1-based) gets address ``network + HOST_OFFSET + i``.
HOST_OFFSET = 10
#: Unix socket paths longer than this do not fit ``sockaddr_un``.
MAX_SOCKET_PATH = 100
IFNAMSIZ = 15

_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")


def default_subnet(name: str) -> ipaddress.IPv4Network:
    """10.213.1.0/24 for ``lab``; a stable 10.213.X.0/24 for any other name."""
    if name == DEFAULT_NAME:
        return ipaddress.IPv4Network("10.213.1.0/24")
    third = 2 + zlib.crc32(name.encode()) % 250
    return ipaddress.IPv4Network(f"10.213.{third}.0/24")


def _state_root() -> Path:
    return Path(os.environ.get(STATE_ROOT_ENV) or STATE_ROOT)


def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or CACHE_DIR)


@dataclass(frozen=True)
class HostConfig:
    """One simulated host: its names, address and files."""

    index: int
    name: str
    address: str
    prefixlen: int
    netns: str
    veth: str
    host_dir: Path

    @property
    def netns_path(self) -> Path:
        return Path("/var/run/netns") / self.netns

    @property
    def docker_socket(self) -> Path:
        return self.host_dir / "docker.sock"

    @property
    def bin_dir(self) -> Path:
        """Prepended to PATH of this host's dockerd and SSH sessions."""
        return self.host_dir / "bin"

    @property
    def cgroup_parent(self) -> str:
        return f"daskfleet-{self.netns}"


@dataclass(frozen=True)
class LabConfig:
    """Everything about a lab that follows from its name and subnet."""

    name: str = DEFAULT_NAME
    subnet: ipaddress.IPv4Network | None = None
    state_dir: Path | None = None
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise LabError(
                f"invalid lab name {self.name!r}: expected 1-8 characters, "
                "a lowercase letter then lowercase letters or digits",
                hint="daskfleet lab up --name lab2",
            )
        subnet = self.subnet or default_subnet(self.name)
        if subnet.num_addresses < HOST_OFFSET + 3:
            raise LabError(f"subnet {subnet} is too small for a lab")
        object.__setattr__(self, "subnet", subnet)
        object.__setattr__(
            self, "state_dir", self.state_dir or _state_root() / self.name
        )
        object.__setattr__(self, "cache_dir", self.cache_dir or _cache_dir())
        self._check_socket_length()

    @property
    def network(self) -> ipaddress.IPv4Network:
        assert self.subnet is not None
        return self.subnet

    @property
    def root(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir

    @property
    def cache(self) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir

    @property
    def max_hosts(self) -> int:
        return self.network.num_addresses - HOST_OFFSET - 2

    @property
    def bridge(self) -> str:
        return f"df-{self.name}-br"

    @property
    def bridge_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def key_path(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def build_socket(self) -> Path:
        """The lab's build daemon (root network namespace) socket."""
        return self.build_dir / "docker.sock"

    def host(self, index: int) -> HostConfig:
        """Host ``index`` (1-based): ``<name><index>``."""
        if not 1 <= index <= self.max_hosts:
            raise LabError(
                f"host index {index} out of range: subnet {self.network} "
                f"holds at most {self.max_hosts} lab hosts"
            )
        name = f"{self.name}{index}"
        return HostConfig(
            index=index,
            name=name,
            address=str(self.network.network_address + HOST_OFFSET + index),
            prefixlen=self.network.prefixlen,
            netns=f"dfl-{self.name}-{index}",
            veth=f"df-{self.name}-{index}",
            host_dir=self.root / "hosts" / name,
        )

    def hosts(self, count: int) -> list[HostConfig]:
        """The first ``count`` hosts."""
        if not 1 <= count <= self.max_hosts:
            raise LabError(
                f"a lab has 1 to {self.max_hosts} hosts in subnet {self.network}, "
                f"not {count}"
            )
        return [self.host(i) for i in range(1, count + 1)]

    def _check_socket_length(self) -> None:
        longest = self.root / "hosts" / f"{self.name}999" / "exec" / "containerd"
        longest = longest / "containerd-debug.sock"
        if len(str(longest)) > MAX_SOCKET_PATH:
            raise LabError(
                f"lab state dir {self.root} is too long for unix socket paths "
                f"(at most {MAX_SOCKET_PATH} characters with its sockets)",
                hint=f"set {STATE_ROOT_ENV} to a shorter directory, e.g. /tmp/dfl",
            )

"""Facts: what each host is (CPUs, memory, architecture, Docker, GPUs).

One remote shell script per host prints labelled sections; pure functions
parse them. A host without a working Docker daemon still has facts: its
Docker fields are ``None`` and ``notes`` says why, so that ``facts`` shows
the whole fleet and the planner can refuse such a host with a clear reason.
``ping`` is the quick check that SSH and the Docker daemon both answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from daskfleet.errors import DockerError, HostError
from daskfleet.gpufacts import (
    GPU_SCRIPT,
    Gpu,
    GpuQuery,
    parse_gpu_query,
    parse_sysfs_cpus,
    parse_topo_cpus,
    with_local_cpus,
)
from daskfleet.inventory.model import Host
from daskfleet.results import Results
from daskfleet.ssh import SSHFleet

log = logging.getLogger(__name__)
K = TypeVar("K", str, int)

#: ``uname -m`` to the architecture names Docker images use.
DOCKER_ARCHES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

_MARK = "@@daskfleet"

# POSIX sh, fed on stdin to `sh -s` so no login shell has to parse quoting.
# One docker CLI run only (Docker's root comes out of its JSON with shell
# builtins): on a host without a daemon it is most of the script's cost.
FACTS_SCRIPT = f"""\
emit() {{ name=$1; shift; out=$("$@" 2>&1); rc=$?; printf '{_MARK} %s %s\\n%s\\n' "$name" "$rc" "$out"; }}
emit cpus nproc
emit memory grep MemTotal /proc/meminfo
emit arch uname -m
emit kernel uname -r
if command -v docker >/dev/null 2>&1; then
  emit docker docker info --format '{{{{json .}}}}'
  key='"DockerRootDir":"'
  case $out in *"$key"*) root=${{out#*"$key"}}; root=${{root%%'"'*}};; *) root=;; esac
  if [ -n "$root" ]; then emit disk df -B1 --output=avail "$root"; fi
fi
if command -v nvidia-smi >/dev/null 2>&1; then
{GPU_SCRIPT}fi
exit 0
"""

PING_COMMAND = ["docker", "version", "--format", "{{.Server.Version}}"]


@dataclass(frozen=True)
class Facts:
    """What one host is. Sizes in bytes; Docker fields None without Docker."""

    host: str
    cpus: int
    memory: int
    arch: str
    kernel: str
    docker_version: str | None
    storage_driver: str | None
    docker_root: str | None
    disk_free: int | None
    gpus: tuple[Gpu, ...] = ()
    notes: tuple[str, ...] = field(default=())
    #: The NVIDIA driver's version, when the host has nvidia-smi.
    gpu_driver: str | None = None

    @property
    def docker_arch(self) -> str:
        """The architecture as Docker names it (``amd64``, ``arm64``)."""
        return DOCKER_ARCHES.get(self.arch, self.arch)

    @property
    def has_docker(self) -> bool:
        return self.docker_version is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["docker_arch"] = self.docker_arch
        data["gpus"] = [asdict(gpu) for gpu in self.gpus]
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class Section:
    """One labelled part of the facts script's output."""

    exit_code: int
    text: str


@dataclass(frozen=True)
class DockerInfo:
    version: str
    storage_driver: str | None
    root: str | None


@dataclass(frozen=True)
class Ping:
    """SSH and Docker both answered; how quickly."""

    host: str
    connect_seconds: float
    rtt_seconds: float
    docker_version: str


def parse_sections(output: str) -> dict[str, Section]:
    """Split the script's output at its ``@@daskfleet NAME RC`` lines."""
    sections: dict[str, Section] = {}
    name: str | None = None
    exit_code = 0
    lines: list[str] = []
    for line in [*output.splitlines(), f"{_MARK} end 0"]:
        words = line.split()
        if len(words) == 3 and words[0] == _MARK and words[2].lstrip("-").isdigit():
            if name is not None:
                sections[name] = Section(exit_code, "\n".join(lines).strip())
            name, exit_code, lines = words[1], int(words[2]), []
        elif name is not None:
            lines.append(line)
    return sections


def parse_meminfo(text: str) -> int:
    """MemTotal of /proc/meminfo, in bytes."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "MemTotal":
            number, _, unit = value.strip().partition(" ")
            scale = 1024 if unit.strip().lower() == "kb" else 1
            return int(number) * scale
    raise ValueError("no MemTotal line in /proc/meminfo")


def parse_nproc(text: str) -> int:
    return int(text.strip())


def parse_docker_info(text: str) -> DockerInfo:
    """The daemon's version, storage driver and root from ``docker info``."""
    line = next((x for x in text.splitlines() if x.startswith("{")), None)
    if line is None:
        raise ValueError(_last_line(text) or "docker info printed nothing")
    info = json.loads(line)
    errors = info.get("ServerErrors") or []
    if errors or not info.get("ServerVersion"):
        rest = [x for x in text.splitlines() if not x.startswith("{")]
        raise ValueError(
            "; ".join(errors) or _last_line("\n".join(rest)) or "no server"
        )
    return DockerInfo(
        version=info["ServerVersion"],
        storage_driver=info.get("Driver") or None,
        root=info.get("DockerRootDir") or None,
    )


def parse_df_avail(text: str) -> int:
    """Bytes available from ``df -B1 --output=avail PATH``."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if len(lines) < 2 or not lines[-1].isdigit():
        raise ValueError(f"unexpected df output: {text!r}")
    return int(lines[-1])


def parse_facts(host: str, output: str) -> Facts:
    """Facts from the whole output of :data:`FACTS_SCRIPT`."""
    sections = parse_sections(output)
    try:
        cpus = parse_nproc(_required(sections, "cpus"))
        memory = parse_meminfo(_required(sections, "memory"))
        arch = _required(sections, "arch")
        kernel = _required(sections, "kernel")
    except ValueError as exc:
        raise HostError(host, f"cannot read the host's basic facts: {exc}") from exc
    notes: list[str] = []
    docker = _docker_facts(sections, notes)
    disk_free = _disk_facts(sections, notes) if docker else None
    gpus = _gpu_facts(sections, notes)
    return Facts(
        host=host,
        cpus=cpus,
        memory=memory,
        arch=arch,
        kernel=kernel,
        docker_version=docker.version if docker else None,
        storage_driver=docker.storage_driver if docker else None,
        docker_root=docker.root if docker else None,
        disk_free=disk_free,
        gpus=gpus.gpus,
        notes=tuple(notes),
        gpu_driver=gpus.driver,
    )


def _required(sections: Mapping[str, Section], name: str) -> str:
    section = sections.get(name)
    if section is None:
        raise ValueError(f"section {name!r} missing from the output")
    if section.exit_code != 0:
        raise ValueError(
            f"{name}: exit {section.exit_code}: {_last_line(section.text)}"
        )
    return section.text


def _docker_facts(
    sections: Mapping[str, Section], notes: list[str]
) -> DockerInfo | None:
    section = sections.get("docker")
    if section is None:
        notes.append("docker: the docker command is not installed")
        return None
    try:
        return parse_docker_info(section.text)
    except ValueError as exc:
        notes.append(f"docker: the daemon does not answer: {exc}")
        return None


def _disk_facts(sections: Mapping[str, Section], notes: list[str]) -> int | None:
    section = sections.get("disk")
    try:
        if section is None or section.exit_code != 0:
            raise ValueError(_last_line(section.text) if section else "not measured")
        return parse_df_avail(section.text)
    except ValueError as exc:
        notes.append(f"disk: free space under Docker's root unknown: {exc}")
        return None


def _gpu_facts(sections: Mapping[str, Section], notes: list[str]) -> GpuQuery:
    section = sections.get("gpus")
    if section is None:
        return GpuQuery((), None)
    try:
        if section.exit_code != 0:
            raise ValueError(_last_line(section.text))
        query = parse_gpu_query(section.text)
    except ValueError as exc:
        notes.append(f"gpus: nvidia-smi is installed but failed: {exc}")
        return GpuQuery((), None)
    gpus = with_local_cpus(
        query.gpus,
        _parsed(sections, "gpu_cpus", parse_sysfs_cpus, notes),
        _parsed(sections, "gpu_topo", parse_topo_cpus, notes),
    )
    unknown = [str(g.index) for g in gpus if not g.local_cpus]
    if unknown:
        notes.append(f"gpus: CPUs near GPU {', '.join(unknown)} unknown")
    return GpuQuery(gpus, query.driver)


def _parsed(
    sections: Mapping[str, Section],
    name: str,
    parse: Callable[[str], Mapping[K, tuple[int, ...]]],
    notes: list[str],
) -> Mapping[K, tuple[int, ...]]:
    """A GPU CPU-affinity section, parsed; empty when absent or unreadable."""
    section = sections.get(name)
    if section is None:
        return {}
    try:
        return parse(section.text)
    except ValueError as exc:
        notes.append(f"{name}: {exc}")
        return {}


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else ""


def gather_facts(
    fleet: SSHFleet, hosts: Iterable[Host] | None = None
) -> Results[Facts]:
    """Facts of every host (or ``hosts``), one SSH round trip each."""

    def gather(host: Host) -> Facts:
        result = fleet.run(host, "sh -s", stdin=FACTS_SCRIPT.encode())
        facts = parse_facts(host.name, result.stdout)
        log.debug("%s: facts in %.2fs: %s", host.name, result.seconds, facts)
        return facts

    return fleet.map(gather, hosts)


def ping_hosts(fleet: SSHFleet, hosts: Iterable[Host] | None = None) -> Results[Ping]:
    """Check that each host's sshd and Docker daemon answer."""

    def ping(host: Host) -> Ping:
        started = time.monotonic()
        fleet.connection(host)
        connected = time.monotonic()
        fleet.run(host, "true")
        rtt = time.monotonic() - connected
        result = fleet.run(host, PING_COMMAND, check=False)
        if not result.ok or not result.stdout.strip():
            raise DockerError(
                host.name,
                f"the Docker daemon does not answer: {_last_line(result.output)}",
                hint="start dockerd on the host, and check that the SSH user may use it (docker group, or DOCKER_HOST in the SSH environment)",
            )
        return Ping(host.name, connected - started, rtt, result.stdout.strip())

    return fleet.map(ping, hosts)

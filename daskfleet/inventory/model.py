"""The resolved inventory: hosts with their final variables.

These types are what every later layer (SSH, facts, planner) consumes. They
are immutable; loading and validation live in the sibling modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from daskfleet.upgrade.settings import UpgradeSettings

Role = Literal["scheduler", "worker"]
ROLES: tuple[Role, ...] = ("scheduler", "worker")

#: ``all``, a count, or explicit GPU indices / UUIDs.
GpuRequest = Literal["all"] | int | tuple[int | str, ...]
#: How a GPU's worker runs: ``dask cuda worker`` or a plain ``dask worker``.
GpuWorker = Literal["dask-cuda", "plain"]
GPU_WORKERS: tuple[GpuWorker, ...] = ("dask-cuda", "plain")
#: Which Dockerfile builds the cluster's image.
ImageKind = Literal["cpu", "gpu"]
IMAGE_KINDS: tuple[ImageKind, ...] = ("cpu", "gpu")
#: How the image reaches hosts: hosts relaying it to each other, straight
#: from the controller, or (``auto``) the relay for groups large enough.
ImageDistribution = Literal["auto", "relay", "direct"]
IMAGE_DISTRIBUTIONS: tuple[ImageDistribution, ...] = ("auto", "relay", "direct")

DEFAULT_SCHEDULER_PORT = 8786
DEFAULT_DASHBOARD_PORT = 8787
DEFAULT_SSH_PORT = 22
DEFAULT_TIMEOUT = 120.0

Security = Literal["tls", "none"]
SECURITY_MODES: tuple[Security, ...] = ("tls", "none")
DEFAULT_SECURITY: Security = "tls"
DEFAULT_NOTEBOOK_PORT = 8888


def _frozen(mapping: Mapping[str, object] | None = None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Volume:
    """A bind mount ``host_path:container_path[:ro]``."""

    host_path: str
    container_path: str
    read_only: bool = False

    def __str__(self) -> str:
        suffix = ":ro" if self.read_only else ""
        return f"{self.host_path}:{self.container_path}{suffix}"


@dataclass(frozen=True)
class Host:
    """One machine of the fleet with every variable resolved.

    ``memory`` is in bytes. ``None`` means "not set": later layers fill it
    from the host's facts.
    """

    name: str
    address: str
    user: str | None = None
    port: int = DEFAULT_SSH_PORT
    identity_file: str | None = None
    known_hosts: str | None = None
    roles: tuple[Role, ...] = ("worker",)
    cpus: float | None = None
    memory: int | None = None
    gpus: GpuRequest | None = None
    #: None: ``dask-cuda`` when the image has it, else ``plain``.
    gpu_worker: GpuWorker | None = None
    #: dask-cuda's ``--rmm-pool-size`` and ``--device-memory-limit``, bytes.
    rmm_pool_size: int | None = None
    device_memory_limit: int | None = None
    nworkers: int | None = None
    nthreads: int | None = None
    resources: Mapping[str, float] = field(default_factory=_frozen)  # type: ignore[arg-type]
    volumes: tuple[Volume, ...] = ()
    env: Mapping[str, str] = field(default_factory=_frozen)  # type: ignore[arg-type]
    labels: Mapping[str, str] = field(default_factory=_frozen)  # type: ignore[arg-type]
    groups: tuple[str, ...] = ()
    #: Variable name to where its value came from, e.g. ``"group gpu"``.
    sources: Mapping[str, str] = field(default_factory=_frozen)  # type: ignore[arg-type]

    @property
    def is_scheduler(self) -> bool:
        return "scheduler" in self.roles

    @property
    def is_worker(self) -> bool:
        return "worker" in self.roles


@dataclass(frozen=True)
class ImageSettings:
    """How the cluster's Dask image is built."""

    packages: tuple[str, ...] = ()
    base: str | None = None
    #: Docker daemon that builds the image (``unix://...``, ``ssh://...``);
    #: None means the controller's own (``DOCKER_HOST`` or the default).
    builder: str | None = None
    #: None: ``gpu`` when some host asks for GPUs, else ``cpu``.
    kind: ImageKind | None = None
    distribution: ImageDistribution = "auto"


@dataclass(frozen=True)
class NotebookSettings:
    """A JupyterLab container beside the cluster, on one of its hosts."""

    host: str
    port: int = DEFAULT_NOTEBOOK_PORT
    #: Extra pip requirements for the notebook's image only.
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    """A validated inventory file."""

    path: str
    cluster: str
    hosts: Mapping[str, Host]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)  # type: ignore[arg-type]
    image: ImageSettings = ImageSettings()
    scheduler_port: int = DEFAULT_SCHEDULER_PORT
    dashboard_port: int = DEFAULT_DASHBOARD_PORT
    timeout: float = DEFAULT_TIMEOUT
    upgrade: UpgradeSettings = field(default_factory=UpgradeSettings)
    notebook: NotebookSettings | None = None
    #: ``tls``: every Dask connection encrypted with the cluster's own CA.
    security: Security = DEFAULT_SECURITY

    @property
    def scheduler(self) -> Host:
        """The one host with the scheduler role (validation guarantees it)."""
        return next(h for h in self.hosts.values() if h.is_scheduler)

    @property
    def workers(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts.values() if h.is_worker)

    @property
    def image_kind(self) -> ImageKind:
        """The image's kind: as set, else ``gpu`` when a host asks for GPUs."""
        if self.image.kind is not None:
            return self.image.kind
        wants_gpus = any(h.gpus is not None for h in self.hosts.values())
        return "gpu" if wants_gpus else "cpu"

    def select(self, pattern: str | None) -> tuple[Host, ...]:
        """Hosts whose name or group matches ``pattern`` (fnmatch, ``,``-list).

        ``None`` or ``"all"`` selects every host.
        """
        from daskfleet.inventory.patterns import match_hosts

        return match_hosts(self, pattern)

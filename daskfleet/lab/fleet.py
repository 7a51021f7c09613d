"""Bring a lab up, look at it, tear it down."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from daskfleet.errors import LabError
from daskfleet.lab import baseimage, dockerd, keys, network, reaper, sshd, uplink
from daskfleet.lab._proc import file_lock
from daskfleet.lab.config import HostConfig, LabConfig
from daskfleet.lab.gpu_standins import simulated_gpus, sync_standins
from daskfleet.lab.mounts import mounts_under, unmount_under
from daskfleet.lab.requirements import check_requirements
from daskfleet.lab.state import LabHost, LabState, load_state, render_inventory

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: The host given simulated GPUs: the first worker host.
GPU_HOST_INDEX = 2


def _parallel(func: Callable[[T], R], items: Iterable[T]) -> list[R]:
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(func, items))


def lab_up(
    config: LabConfig,
    hosts: int,
    inventory_path: Path,
    gpus: int = 0,
    *,
    docker: bool = True,
    uplink_rate: str | None = None,
) -> LabState:
    """Bring ``config``'s lab to ``hosts`` running hosts; safe to re-run.

    With ``gpus``, host 2 gets that many simulated GPUs; without, none has any.
    Without ``docker`` the hosts run sshd only: no dockerd, no build daemon,
    no base image. ``uplink_rate`` (``200mbit``) limits the machine's traffic
    to the hosts; None removes a limit set before.
    """
    if gpus < 0 or (gpus and hosts < GPU_HOST_INDEX):
        raise LabError(
            f"simulated GPUs go to host {GPU_HOST_INDEX}: a lab with {gpus} GPUs needs at least {GPU_HOST_INDEX} hosts",
            hint=f"daskfleet lab up --hosts 3 --gpus {max(gpus, 1)}",
        )
    if gpus and not docker:
        raise LabError(
            f"simulated GPUs need a Docker daemon on host {GPU_HOST_INDEX}, and a lab without Docker has none",
            hint=f"daskfleet lab up --name {config.name} --docker --gpus {gpus}",
        )
    if uplink_rate is not None:
        uplink_rate = uplink.parse_rate(uplink_rate)
    check_requirements()
    with file_lock(_lock_path(config)):
        return _up(config, hosts, inventory_path, gpus, docker, uplink_rate)


def _lock_path(config: LabConfig) -> Path:
    # Outside the state dir, which ``down --purge`` deletes.
    return config.root.parent / f".{config.name}.lock"


def _up(
    config: LabConfig,
    hosts: int,
    inventory_path: Path,
    gpus: int,
    docker: bool,
    uplink_rate: str | None,
) -> LabState:
    started = time.monotonic()
    wanted = config.hosts(hosts)
    what = "hosts" if docker else "hosts (sshd only)"
    logger.info("lab %s: %d %s in %s", config.name, hosts, what, config.network)
    _remove_extra_hosts(config, keep=hosts)

    for host in wanted:
        host.bin_dir.mkdir(parents=True, exist_ok=True)
    _sync_gpus(wanted, gpus)
    network.ensure_bridge(config)
    for host in wanted:
        network.ensure_host_network(config, host)
    uplink.apply_uplink_rate(config, uplink_rate)

    daemons = _daemons(config, wanted)
    specs = daemons if docker else []
    if not docker:
        _stop_daemons(daemons)
    for spec in specs:
        dockerd.spawn(spec)
    tarball = baseimage.ensure_base_tarball(config.cache) if docker else None

    public_key = keys.ensure_client_key(config)
    for host in wanted:
        sshd.prepare(host, public_key)
    keys.write_known_hosts(config.known_hosts, wanted)
    _parallel(sshd.start, wanted)
    _parallel(dockerd.wait_ready, specs)
    if tarball is not None:
        baseimage.import_base_image(tarball, config.build_socket)

    state = _write_state(
        config, wanted, inventory_path, gpus, docker=docker, uplink_rate=uplink_rate
    )
    logger.info("lab %s up in %.1f s", config.name, time.monotonic() - started)
    return state


def _daemons(config: LabConfig, hosts: list[HostConfig]) -> list[dockerd.DaemonSpec]:
    """Every host's dockerd, then the build daemon."""
    return [dockerd.host_daemon(h) for h in hosts] + [dockerd.build_daemon(config)]


def _stop_daemons(specs: list[dockerd.DaemonSpec]) -> None:
    """Stop those still running (a lab that had Docker and now has none)."""
    running = [spec for spec in specs if dockerd.recorded_pid(spec) is not None]
    if running:
        logger.info("stopping %d Docker daemons: sshd-only lab", len(running))
        _parallel(dockerd.stop, running)


def _sync_gpus(hosts: list[HostConfig], gpus: int) -> None:
    """Stand-ins for ``gpus`` simulated GPUs on host 2, none elsewhere.

    dockerd looks for the container hook only when it starts: a host whose
    stand-ins changed has its dockerd stopped, so that it starts afresh.
    """
    cpus = os.cpu_count() or 1
    for host in hosts:
        count = gpus if host.index == GPU_HOST_INDEX else 0
        if sync_standins(host.bin_dir, simulated_gpus(host.name, count, cpus)):
            logger.info("%s: %d simulated GPUs", host.name, count)
            dockerd.stop(dockerd.host_daemon(host))


def _write_state(
    config: LabConfig,
    hosts: list[HostConfig],
    inventory_path: Path,
    gpus: int,
    *,
    docker: bool,
    uplink_rate: str | None,
) -> LabState:
    def gpus_of(host: HostConfig) -> int:
        return gpus if host.index == GPU_HOST_INDEX else 0

    state = LabState(
        name=config.name,
        subnet=str(config.network),
        state_dir=config.root,
        hosts=tuple(LabHost.from_config(h, gpus_of(h)) for h in hosts),
        key_path=config.key_path,
        known_hosts=config.known_hosts,
        build_socket=config.build_socket,
        inventory_path=inventory_path.resolve(),
        docker=docker,
        uplink_rate=uplink_rate,
    )
    config.state_file.write_text(state.to_json())
    inventory_path.parent.mkdir(parents=True, exist_ok=True)
    inventory_path.write_text(render_inventory(state))
    return state


def known_host_indexes(config: LabConfig) -> list[int]:
    """Hosts of this lab found anywhere: state dir, namespaces, interfaces."""
    found: set[int] = set()
    hosts_dir = config.root / "hosts"
    if hosts_dir.is_dir():
        pattern = re.compile(rf"^{config.name}(\d+)$")
        found |= {
            int(m[1]) for p in hosts_dir.iterdir() if (m := pattern.match(p.name))
        }
    netns_dir = Path("/var/run/netns")
    if netns_dir.is_dir():
        pattern = re.compile(rf"^dfl-{config.name}-(\d+)$")
        found |= {
            int(m[1]) for p in netns_dir.iterdir() if (m := pattern.match(p.name))
        }
    return sorted(i for i in found if 1 <= i <= config.max_hosts)


def _remove_extra_hosts(config: LabConfig, keep: int) -> None:
    extra = [config.host(i) for i in known_host_indexes(config) if i > keep]
    if extra:
        logger.info("removing hosts %s", ", ".join(h.name for h in extra))
        _parallel(_remove_host, extra)
        for host in extra:
            shutil.rmtree(host.host_dir, ignore_errors=True)


def _remove_host(host: HostConfig) -> None:
    dockerd.stop(dockerd.host_daemon(host))
    sshd.stop(host)
    reaper.sweep_netns(host.netns_path)
    network.remove_host_network(host)
    unmount_under(host.host_dir)


def lab_down(config: LabConfig, purge: bool = False) -> None:
    """Stop every daemon and remove every namespace, interface and mount.

    With ``purge`` the state dir (keys, daemons' data) goes too; the base
    image cache always stays.
    """
    check_requirements()
    with file_lock(_lock_path(config)):
        _down(config, purge)


def _down(config: LabConfig, purge: bool) -> None:
    started = time.monotonic()
    hosts = [config.host(i) for i in known_host_indexes(config)]
    logger.info("lab %s: stopping %d hosts", config.name, len(hosts))
    _parallel(_remove_host, hosts)
    dockerd.stop(dockerd.build_daemon(config))
    network.remove_bridge(config)
    unmount_under(config.root)

    left = mounts_under(config.root)
    if left:
        raise LabError(f"mounts left under {config.root}: {', '.join(map(str, left))}")
    if purge and config.root.exists():
        shutil.rmtree(config.root)
        logger.info("removed %s", config.root)
    logger.info("lab %s down in %.1f s", config.name, time.monotonic() - started)


def lab_state(config: LabConfig) -> LabState:
    """The saved state of ``config``'s lab."""
    return load_state(config.name, config)

"""Find and end what a lab daemon leaves behind: processes, cgroups, mounts.

A dockerd killed with SIGKILL leaves its containerd, the containerd shims
and their containers running, and their overlay mounts mounted. These
sweeps find them by the daemon's directory (command lines mentioning it),
by the cgroup parent the daemon gave its containers, and by network
namespace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from daskfleet.lab._proc import kill_pids, stop_pids
from daskfleet.lab.mounts import unmount_under

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def pids_mentioning(directory: Path) -> list[int]:
    """Processes whose command line names a path inside ``directory``."""
    needle = (str(directory).rstrip("/") + "/").encode()
    found = []
    for pid in _all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and pid != os.getpid():
            found.append(pid)
    return found


def pids_in_netns(netns_path: Path) -> list[int]:
    """Processes that live in the network namespace bound at ``netns_path``."""
    try:
        inode = os.stat(netns_path).st_ino
    except OSError:
        return []
    target = f"net:[{inode}]"
    found = []
    for pid in _all_pids():
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == target:
                found.append(pid)
        except OSError:
            continue
    return found


def pid_in_netns(pid: int, netns_path: Path) -> bool:
    """True when ``pid`` runs in the namespace bound at ``netns_path``.

    A daemon can outlive its namespace file (deleted and recreated): it
    then still runs, but in an orphaned namespace nobody can reach.
    """
    try:
        inode = os.stat(netns_path).st_ino
        return os.readlink(f"/proc/{pid}/ns/net") == f"net:[{inode}]"
    except OSError:
        return False


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory at or below ``parent``, deepest first."""
    found: list[Path] = []
    for controller in CGROUP_ROOT.iterdir():
        top = controller / parent
        if top.is_dir():
            found += [Path(root) for root, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def pids_in_cgroups(parent: str) -> list[int]:
    """Processes in any cgroup at or below ``parent``."""
    pids: set[int] = set()
    for directory in cgroup_dirs(parent):
        try:
            text = (directory / "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(line) for line in text.split())
    return sorted(pids)


def remove_cgroups(parent: str) -> None:
    """Remove the (empty) cgroups at or below ``parent``."""
    for directory in cgroup_dirs(parent):
        try:
            directory.rmdir()
        except OSError as exc:
            logger.debug("cannot remove cgroup %s: %s", directory, exc.strerror)


def sweep_daemon_leftovers(dirs: Sequence[Path], cgroup_parent: str) -> None:
    """Kill a dead dockerd's containers, shims and containerd; unmount its dirs.

    ``dirs`` are the daemon's own directories (data and exec root): the
    containerd and shims it started name them on their command lines.
    """
    leftovers = set(pids_in_cgroups(cgroup_parent))
    for directory in dirs:
        leftovers |= set(pids_mentioning(directory))
    if leftovers:
        logger.debug("killing leftover processes: %s", sorted(leftovers))
        kill_pids(sorted(leftovers))
    remove_cgroups(cgroup_parent)
    for directory in dirs:
        unmount_under(directory)


def sweep_netns(netns_path: Path) -> None:
    """End every process still running in a namespace (sessions, containers)."""
    pids = [pid for pid in pids_in_netns(netns_path) if pid != os.getpid()]
    if pids:
        logger.debug("ending processes in %s: %s", netns_path, pids)
        stop_pids(pids, grace=5.0)

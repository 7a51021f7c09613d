"""Docker daemons of the lab: one per host namespace, plus the build daemon."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from daskfleet.errors import LabError
from daskfleet.lab import reaper
from daskfleet.lab._proc import file_tail, read_pid, run, stop_pids
from daskfleet.lab.config import HostConfig, LabConfig
from daskfleet.lab.sshd import session_path

logger = logging.getLogger(__name__)

START_TIMEOUT = 60.0
#: dockerd waits this long for containers to stop before it kills them.
STOP_GRACE = 20.0


@dataclass(frozen=True)
class DaemonSpec:
    """Where one dockerd keeps everything, and which namespace it runs in."""

    label: str
    root: Path
    netns_path: Path | None
    cgroup_parent: str
    path_env: str

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def pid_file(self) -> Path:
        return self.root / "docker.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def own_dirs(self) -> tuple[Path, Path]:
        return (self.data_root, self.exec_root)


def host_daemon(host: HostConfig) -> DaemonSpec:
    """The dockerd of one lab host, inside its namespace."""
    return DaemonSpec(
        label=host.name,
        root=host.host_dir,
        netns_path=host.netns_path,
        cgroup_parent=host.cgroup_parent,
        path_env=session_path(host),
    )


def build_daemon(config: LabConfig) -> DaemonSpec:
    """The lab's build daemon, in the machine's own network namespace."""
    return DaemonSpec(
        label="build daemon",
        root=config.build_dir,
        netns_path=None,
        cgroup_parent=f"daskfleet-{config.name}-build",
        path_env=os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    )


def daemon_command(spec: DaemonSpec) -> list[str]:
    """The command line that starts ``spec``'s dockerd, detached."""
    prefix = ["nsenter", f"--net={spec.netns_path}"] if spec.netns_path else []
    return [
        *prefix,
        "setsid",
        "-f",
        "dockerd",
        f"--data-root={spec.data_root}",
        f"--exec-root={spec.exec_root}",
        f"--pidfile={spec.pid_file}",
        f"--host=unix://{spec.socket}",
        f"--cgroup-parent={spec.cgroup_parent}",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
        "--storage-driver=overlay2",
    ]


def recorded_pid(spec: DaemonSpec) -> int | None:
    """The live process recorded as ``spec``'s dockerd, wherever it runs."""
    return read_pid(spec.pid_file, expect="dockerd")


def dockerd_pid(spec: DaemonSpec) -> int | None:
    """``spec``'s dockerd if it runs in its namespace, else None."""
    pid = recorded_pid(spec)
    if pid is None:
        return None
    if spec.netns_path and not reaper.pid_in_netns(pid, spec.netns_path):
        return None
    return pid


def ping(sock: Path, timeout: float = 2.0) -> bool:
    """True when the Docker API on unix socket ``sock`` answers ``/_ping``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(sock))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = conn.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def spawn(spec: DaemonSpec) -> bool:
    """Start ``spec``'s dockerd unless it runs and answers; True if started."""
    pid = dockerd_pid(spec)
    if pid is not None and ping(spec.socket):
        return False
    if recorded_pid(spec) is not None:
        logger.info("%s: dockerd is unreachable or astray, restarting it", spec.label)
    stop(spec)
    spec.root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PATH=spec.path_env)
    with spec.log.open("ab") as log:
        run(daemon_command(spec), env=env, stdout=log.fileno())
    return True


def wait_ready(spec: DaemonSpec, timeout: float = START_TIMEOUT) -> int:
    """Wait for ``spec``'s API to answer; return the dockerd pid."""
    deadline = time.monotonic() + timeout
    seen_alive = False
    while time.monotonic() < deadline:
        pid = dockerd_pid(spec)
        if pid is not None:
            seen_alive = True
            if ping(spec.socket):
                return pid
        elif seen_alive:
            _fail(spec, "dockerd exited while starting")
        time.sleep(0.1)
    _fail(spec, f"dockerd did not answer within {timeout:.0f} s")
    raise AssertionError("unreachable")


def _fail(spec: DaemonSpec, what: str) -> None:
    raise LabError(
        f"{spec.label}: {what} on unix://{spec.socket}\n  {spec.log} (last lines):\n"
        "    " + file_tail(spec.log).replace("\n", "\n    ")
    )


def stop(spec: DaemonSpec) -> None:
    """SIGTERM dockerd (it stops its containers), then SIGKILL; sweep leftovers."""
    pid = recorded_pid(spec)
    if pid is not None:
        logger.debug("%s: stopping dockerd %s", spec.label, pid)
        stop_pids([pid], grace=STOP_GRACE)
    reaper.sweep_daemon_leftovers(spec.own_dirs, spec.cgroup_parent)
    _remove_stale_files(spec)


def _remove_stale_files(spec: DaemonSpec) -> None:
    # dockerd trusts a pid file whose pid still exists, and a killed
    # containerd can linger as an unreaped zombie: drop both pid files.
    spec.pid_file.unlink(missing_ok=True)
    (spec.exec_root / "containerd" / "containerd.pid").unlink(missing_ok=True)
    spec.socket.unlink(missing_ok=True)

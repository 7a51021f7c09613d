"""What the lab needs from the machine: root and a handful of commands."""

from __future__ import annotations

import os
import shutil

from daskfleet.errors import LabError

#: Every Debian package the lab needs; CI installs exactly these.
LAB_APT_PACKAGES = (
    "docker.io",
    "openssh-server",
    "openssh-client",
    "iproute2",
    "util-linux",
    "mount",
    "debootstrap",
    "zstd",
)

#: Command the lab runs -> the Debian package that provides it.
COMMAND_PACKAGES = {
    "ip": "iproute2",
    "tc": "iproute2",
    "nsenter": "util-linux",
    "setsid": "util-linux",
    "umount": "mount",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "debootstrap": "debootstrap",
    "zstd": "zstd",
    "tar": "tar",
}

EXTRA_PATH = ("/usr/sbin", "/sbin")


def missing_commands() -> dict[str, str]:
    """Commands not found on PATH (or in /usr/sbin), with their packages."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_PATH])
    return {
        command: package
        for command, package in COMMAND_PACKAGES.items()
        if shutil.which(command, path=path) is None
    }


def check_requirements() -> None:
    """Raise LabError unless running as root with every command present."""
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root: it creates network namespaces, a bridge and "
            "Docker daemons",
            hint="sudo daskfleet lab up",
        )
    missing = missing_commands()
    if missing:
        packages = sorted(set(missing.values()))
        raise LabError(
            f"commands missing for the lab: {', '.join(sorted(missing))}",
            hint=f"apt-get install -y {' '.join(packages)}",
        )

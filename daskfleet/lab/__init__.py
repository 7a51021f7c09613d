"""The lab: a fleet of simulated hosts on one Linux machine.

Each host is a network namespace on a bridge, with its own address, its own
sshd and its own dockerd, so that daskfleet's tests cross real SSH and real
Docker APIs. A "build daemon" (one more dockerd, in the machine's own
network namespace) holds :data:`BASE_IMAGE` and is where images get built.
A lab brought up with ``docker=False`` has sshd only (SSH at scale: fifty
hosts cost no daemons), and ``uplink_rate`` limits the machine's own
traffic to the hosts, like a controller behind a slower link.

Python API::

    from daskfleet.lab import LabConfig, lab_up, lab_status, lab_down

    config = LabConfig("t", subnet=ipaddress.IPv4Network("10.213.9.0/24"))
    state = lab_up(config, hosts=2, inventory_path=Path("t.yml"))
    state.hosts[0].docker_socket   # unix socket of host t1's dockerd
    state.build_socket             # the build daemon's socket
    lab_status(config).ok          # every namespace and daemon alive?
    lab_down(config, purge=True)   # nothing left; purge drops the state dir

- :class:`LabConfig` derives every name from the lab name: namespaces
  ``dfl-<name>-<i>``, bridge ``df-<name>-br``, veths ``df-<name>-<i>``,
  state dir ``/var/lib/daskfleet/lab/<name>`` (parent overridable with
  ``DASKFLEET_LAB_DIR``) and a default subnet (10.213.1.0/24 for ``lab``).
- :func:`lab_up` is idempotent and repairs a half-alive lab (stale pid
  files, dead daemons, leftover namespaces, links and mounts). It writes
  the inventory, ``state.json`` (with ``docker`` and ``uplink_rate``), the
  SSH key pair and known_hosts.
- :func:`load_state` reads a lab's ``state.json`` back by name;
  :func:`host_docker_socket` and :func:`build_socket` answer the two usual
  questions from it; :func:`saved_state` is the state or None;
  :func:`saved_config` rebuilds a lab's config (with the subnet it was
  brought up with) from its name.
- :func:`lab_down` stops daemons and their containers and removes
  namespaces, interfaces and mounts; the base image cache (shared by every
  lab, ``/var/cache/daskfleet`` or ``DASKFLEET_CACHE_DIR``) always stays.
- :data:`LAB_APT_PACKAGES` lists the Debian packages the lab needs.

Everything needs root. Progress goes to ``logging``; nothing is printed.
"""

from daskfleet.lab.baseimage import BASE_IMAGE
from daskfleet.lab.config import DEFAULT_HOSTS, DEFAULT_NAME, HostConfig, LabConfig
from daskfleet.lab.fleet import lab_down, lab_up
from daskfleet.lab.requirements import LAB_APT_PACKAGES, check_requirements
from daskfleet.lab.state import (
    LabHost,
    LabState,
    build_socket,
    host_docker_socket,
    load_state,
    render_inventory,
    saved_config,
    saved_state,
)
from daskfleet.lab.status import HostStatus, LabStatus, lab_status

__all__ = [
    "BASE_IMAGE",
    "DEFAULT_HOSTS",
    "DEFAULT_NAME",
    "LAB_APT_PACKAGES",
    "HostConfig",
    "HostStatus",
    "LabConfig",
    "LabHost",
    "LabState",
    "LabStatus",
    "build_socket",
    "check_requirements",
    "host_docker_socket",
    "lab_down",
    "lab_status",
    "lab_up",
    "load_state",
    "render_inventory",
    "saved_config",
    "saved_state",
]

"""How the inventory's ``env`` reaches a container without Docker seeing it.

Values are written to a file of mode 0600 on the host
(``/var/lib/daskfleet/clusters/<cluster>/<container>.env``), bind-mounted
read-only into the container, and sourced by a tiny ``sh`` entrypoint just
before it ``exec``\\ s the Dask command. So neither the Docker container
config (``docker inspect``) nor any command line holds a value; the
container's spec hash holds only a digest of them, so a changed secret
still replaces the container.

This module is pure: it names paths and renders text. Writing the files
over SSH is :mod:`daskfleet.hostfiles`.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Root of the per-cluster state daskfleet keeps on each host.
REMOTE_ROOT = "/var/lib/daskfleet/clusters"
#: Where the env file appears inside the container.
CONTAINER_PATH = "/run/daskfleet/env"
#: Exports every assignment of the file, then becomes the real command.
ENTRYPOINT_SCRIPT = f'set -a; . {CONTAINER_PATH}; set +a; exec "$@"'


def cluster_dir(cluster: str) -> str:
    """The cluster's directory on every host (lock, audit log, env files)."""
    return f"{REMOTE_ROOT}/{cluster}"


def env_file_path(cluster: str, container: str) -> str:
    return f"{cluster_dir(cluster)}/{container}.env"


@dataclass(frozen=True)
class EnvFile:
    """One container's environment, as it is stored on its host."""

    path: str
    values: Mapping[str, str]

    @property
    def digest(self) -> str:
        """sha256 of the values: what the spec hash records instead of them."""
        canonical = json.dumps(dict(self.values), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def render(self) -> bytes:
        """``NAME='value'`` lines that ``sh`` reads back exactly."""
        lines = [f"{k}={shlex.quote(v)}\n" for k, v in sorted(self.values.items())]
        return "".join(lines).encode()

    def wrap(self, command: Sequence[str]) -> tuple[str, ...]:
        """``command`` started after the file's variables are exported."""
        return ("sh", "-c", ENTRYPOINT_SCRIPT, "sh", *command)

    def volume(self) -> dict[str, dict[str, str]]:
        """The read-only bind mount, in the docker SDK's form."""
        return {self.path: {"bind": CONTAINER_PATH, "mode": "ro"}}


def env_file_for(
    cluster: str, container: str, values: Mapping[str, str]
) -> EnvFile | None:
    """The container's env file, or None when it has no variables."""
    if not values:
        return None
    return EnvFile(env_file_path(cluster, container), dict(values))


def parse_env_file(text: str) -> dict[str, str]:
    """The variables of a rendered env file (the inverse of ``render``)."""
    # A quoted value may span lines; splitting the whole file as sh would
    # keeps each NAME=value assignment together.
    words = (word.partition("=") for word in shlex.split(text))
    return {name: value for name, _, value in words}

"""A Docker SDK client that reaches a host's daemon through our SSH layer.

The SDK's own ``ssh://`` transport opens a second, separate SSH connection
with its own host-key and identity rules. Instead, each HTTP connection of
this client is one ``docker system dial-stdio`` channel on the connection
the SSH layer already holds, so one handshake serves facts, image shipping
and the Docker API alike, under the same known_hosts checks.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import docker
import paramiko
import requests.adapters
import urllib3
from docker.transport.sshconn import SSHConnection

from daskfleet.errors import DockerError
from daskfleet.inventory.model import Host
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)

#: The oldest daemon we support speaks this API version (Docker 20.10).
MINIMUM_API_VERSION = "1.41"
_BASE_URL = "http://localhost:2375"


class _DialStdioPool(urllib3.connectionpool.HTTPConnectionPool):
    """HTTP connections, each a fresh dial-stdio channel on one transport."""

    def __init__(self, transport: paramiko.Transport, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=4)
        self._transport = transport
        self._timeout = timeout

    def _new_conn(self) -> SSHConnection:
        return SSHConnection(self._transport, self._timeout)


class _DialStdioAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, transport: paramiko.Transport, timeout: float) -> None:
        super().__init__()
        self._pool = _DialStdioPool(transport, timeout)

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> _DialStdioPool:
        return self._pool

    def get_connection(self, url: Any, proxies: Any = None) -> _DialStdioPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()


def docker_over_ssh(
    host: str, transport: paramiko.Transport, *, timeout: float = 120.0
) -> docker.DockerClient:
    """A DockerClient for ``host``'s daemon, speaking over ``transport``.

    The API version is negotiated down to what the daemon speaks.
    """
    api = docker.APIClient(base_url=_BASE_URL, version=MINIMUM_API_VERSION)
    adapter = _DialStdioAdapter(transport, timeout)
    api.mount("http://", adapter)
    api.mount("http+docker://", adapter)
    try:
        served = api.version(api_version=False)["ApiVersion"]
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise DockerError(
            host,
            f"the Docker daemon does not answer over SSH: {exc}",
            hint="check that dockerd runs and `docker version` works for the SSH user",
        ) from exc
    api._version = _lower_version(served, docker.constants.DEFAULT_DOCKER_API_VERSION)
    logger.debug("%s: Docker API %s over SSH", host, api._version)
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client


def _lower_version(a: str, b: str) -> str:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    return min(a, b, key=key)


class FleetDocker:
    """One Docker client per host, over the fleet's SSH connections."""

    def __init__(self, fleet: SSHFleet) -> None:
        self._fleet = fleet
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()

    def client(self, host: Host) -> docker.DockerClient:
        with self._lock:
            client = self._clients.get(host.name)
        if client is None:
            client = docker_over_ssh(host.name, self._fleet.transport(host))
            with self._lock:
                self._clients[host.name] = client
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

"""Observe and change one host's cluster containers through the Docker API.

The planner decides; this module only carries out one :class:`Action` at a
time on one host's daemon. Retiring workers through the scheduler happens
before, in the deploy steps, never here.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import docker
import docker.errors
import docker.types
from docker.models.containers import Container

from daskfleet.errors import DockerError
from daskfleet.plan import Action, ObservedContainer
from daskfleet.specs import LABEL_CLUSTER, ContainerSpec

logger = logging.getLogger(__name__)

#: Seconds Docker waits after SIGTERM before it kills a container.
STOP_TIMEOUT = 20


def observe_containers(
    client: docker.DockerClient, cluster: str
) -> tuple[ObservedContainer, ...]:
    """The cluster's containers on one daemon, running or not."""
    return tuple(
        ObservedContainer(
            name=c.name,
            image_id=c.attrs.get("Image", ""),
            state=c.attrs.get("State", {}).get("Status", "unknown"),
            labels=dict(c.labels),
        )
        for c in cluster_containers(client, cluster)
    )


def cluster_containers(client: docker.DockerClient, cluster: str) -> list[Container]:
    """Every container of ``cluster`` on the daemon, running or not."""
    found: list[Container] = client.containers.list(
        all=True, filters={"label": f"{LABEL_CLUSTER}={cluster}"}
    )
    return found


def apply_action(client: docker.DockerClient, action: Action) -> bool:
    """Carry out one action; True when something changed."""
    try:
        return _apply(client, action)
    except docker.errors.APIError as exc:
        raise DockerError(
            action.host,
            f"{action.kind} {action.name} failed: {exc.explanation or exc}",
        ) from exc


def _apply(client: docker.DockerClient, action: Action) -> bool:
    if action.kind == "unchanged":
        return False
    if action.kind == "start":
        client.containers.get(action.name).start()
    elif action.kind == "remove":
        remove_container(client, action.name)
    else:  # create or replace
        assert action.spec is not None
        remove_container(client, action.name)
        run_container(client, action.spec)
    logger.info("%s: %s %s", action.host, action.kind, action.name)
    return True


def run_container(client: docker.DockerClient, spec: ContainerSpec) -> None:
    """Create and start the container ``spec`` describes."""
    kwargs: dict[str, Any] = spec.to_docker_kwargs()
    kwargs["device_requests"] = [
        docker.types.DeviceRequest(**request) for request in kwargs["device_requests"]
    ]
    container = client.containers.create(**kwargs)
    container.start()


def stop_restarting(client: docker.DockerClient, name: str) -> None:
    """Turn off the restart policy of ``name``, so a retired worker stays down.

    Retiring closes the Dask worker; with its policy still in place, Docker
    would start the container again and the worker would rejoin.
    """
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).update(restart_policy={"Name": "no"})


def remove_container(client: docker.DockerClient, name: str) -> bool:
    """Stop and remove ``name`` if it exists; True when it did."""
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return False
    if container.status in ("running", "restarting", "paused"):
        container.stop(timeout=STOP_TIMEOUT)
    container.remove(force=True)
    return True

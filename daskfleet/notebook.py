"""A JupyterLab container beside the cluster, on the host the inventory names.

Its image is built FROM the cluster's image (``images/Dockerfile.notebook``)
so the kernel runs exactly the cluster's Python and Dask, and the workers'
image stays as small as it was. The container runs on host networking like
the others, reaches the scheduler through ``DASK_SCHEDULER_ADDRESS`` and
keeps notebooks in a named volume that outlives replacements.

The token is made once per cluster and kept on the controller, readable by
its owner only; it reaches Jupyter through the container's env file (mode
0600 on the host), never a command line, a label, ``docker inspect`` or a
log line.

With ``security: tls`` the container also gets the cluster's client
bundle, mounted read-only, and the Dask settings that make ``Client()`` in
a kernel connect over ``tls://`` with it (in the same env file).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from daskfleet.envfiles import env_file_for
from daskfleet.images import (
    BuildRequest,
    BuiltImage,
    ImageArchive,
    build_image,
    docker_client,
    paramiko_opener,
    probe_host_images,
    save_image,
    ship_image,
)
from daskfleet.inventory.model import Host, Inventory, Volume
from daskfleet.paths import state_dir
from daskfleet.specs import (
    LABEL_CLUSTER,
    LABEL_HOST,
    LABEL_ROLE,
    LABEL_SPEC,
    ContainerSpec,
    ImageRef,
    scheduler_address,
)
from daskfleet.tls import CLIENT_ENVIRONMENT, client_mount, ensure_client_pair

if TYPE_CHECKING:
    from daskfleet.deploy.context import DeployContext

logger = logging.getLogger(__name__)

NOTEBOOK_ROLE: Final = "notebook"
NOTEBOOK_DOCKERFILE = (
    Path(__file__).resolve().parents[1] / "images" / "Dockerfile.notebook"
)
JUPYTERLAB = "jupyterlab"
#: Jupyter reads its token from this variable when none is configured.
TOKEN_ENV = "JUPYTER_TOKEN"
#: Where notebooks live in the container: a named volume, kept across
#: replacements and ``down``.
WORK_DIR = "/root/work"
_TOKEN_BYTES = 24


@dataclass(frozen=True)
class NotebookImage:
    """The notebook's built image and token: what the planner needs."""

    built: BuiltImage
    token: str = ""
    #: Fingerprint of the client certificate it connects with (TLS only).
    client_certificate: str = ""

    @property
    def ref(self) -> ImageRef:
        return ImageRef(self.built.id, self.built.tag, self.built.architecture)


def notebook_container_name(cluster: str) -> str:
    return f"daskfleet-{cluster}-notebook"


def notebook_volume_name(cluster: str) -> str:
    return f"daskfleet-{cluster}-notebook"


def notebook_url(inventory: Inventory) -> str | None:
    """``http://ADDRESS:PORT/lab`` of the notebook, None when none is set."""
    settings = inventory.notebook
    if settings is None:
        return None
    address = inventory.hosts[settings.host].address
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{settings.port}/lab"


def notebook_access(
    inventory: Inventory, *, with_token: bool
) -> dict[str, str | None] | None:
    """The notebook's host and address, and its token when asked for."""
    url = notebook_url(inventory)
    if url is None or inventory.notebook is None:
        return None
    access = {"host": inventory.notebook.host, "url": url}
    if not with_token:
        return dict(access)
    return {**access, "token": read_token(inventory.cluster)}


# The token ------------------------------------------------------------------


def token_path(cluster: str) -> Path:
    """The controller's file holding the cluster's notebook token."""
    return state_dir() / "clusters" / f"{cluster}.notebook-token"


def read_token(cluster: str) -> str | None:
    """The cluster's notebook token, None when no deploy has made one."""
    try:
        return token_path(cluster).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_token(cluster: str) -> str:
    """The cluster's token, made on first use (file mode 0600)."""
    existing = read_token(cluster)
    if existing:
        return existing
    path = token_path(cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(_TOKEN_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    logger.info("made a notebook token for cluster %s in %s", cluster, path)
    return token


# The image ------------------------------------------------------------------


def notebook_request(inventory: Inventory, cluster_image: BuiltImage) -> BuildRequest:
    """Cluster image plus JupyterLab, the image's and the notebook's packages."""
    assert inventory.notebook is not None
    packages = (JUPYTERLAB, *inventory.image.packages, *inventory.notebook.packages)
    return BuildRequest(
        cluster=f"{inventory.cluster}-{NOTEBOOK_ROLE}",
        base=cluster_image.tag,
        packages=packages,
        versions=cluster_image.versions,
        dockerfile=NOTEBOOK_DOCKERFILE,
        builder=inventory.image.builder,
    )


def prepare_notebook(
    inventory: Inventory, cluster_image: BuiltImage
) -> NotebookImage | None:
    """Build the notebook image and make sure a token exists; None if unset."""
    if inventory.notebook is None:
        return None
    with closing(docker_client(inventory.image.builder)) as client:
        built = build_image(client, notebook_request(inventory, cluster_image))
    certificate = ""
    if inventory.security == "tls":
        certificate = ensure_client_pair(inventory.cluster).fingerprint
    return NotebookImage(built, ensure_token(inventory.cluster), certificate)


# The container --------------------------------------------------------------


def notebook_spec(inventory: Inventory, notebook: NotebookImage) -> ContainerSpec:
    """The JupyterLab container: host network, token from its env file."""
    settings = inventory.notebook
    assert settings is not None
    host = inventory.hosts[settings.host]
    name = notebook_container_name(inventory.cluster)
    environment = {"DASK_SCHEDULER_ADDRESS": scheduler_address(inventory)}
    private = {TOKEN_ENV: notebook.token}
    volumes = [Volume(notebook_volume_name(inventory.cluster), WORK_DIR)]
    summary = {
        "image": notebook.built.id,
        "address": host.address,
        "port": settings.port,
        "scheduler": scheduler_address(inventory),
        "packages": list(settings.packages),
        "env": sorted([*environment, *private]),
    }
    if inventory.security == "tls":
        private.update(CLIENT_ENVIRONMENT)
        fingerprint = notebook.client_certificate
        volumes.append(client_mount(inventory.cluster, host.name, fingerprint))
        summary.update(env=sorted([*environment, *private]), tls=fingerprint)
    labels = {
        LABEL_CLUSTER: inventory.cluster,
        LABEL_ROLE: NOTEBOOK_ROLE,
        LABEL_HOST: host.name,
        LABEL_SPEC: json.dumps(summary, sort_keys=True, separators=(",", ":")),
    }
    return ContainerSpec(
        name=name,
        host=host.name,
        role=NOTEBOOK_ROLE,
        image=notebook.built.id,
        command=_command(host, settings.port),
        environment=environment,
        labels=labels,
        # Not part of the host's budget: no CPU or memory limit.
        cpus=0.0,
        memory=0,
        volumes=tuple(volumes),
        env_file=env_file_for(inventory.cluster, name, private),
    )


def _command(host: Host, port: int) -> tuple[str, ...]:
    return (
        *("jupyter", "lab", "--no-browser", "--allow-root"),
        f"--ip={host.address}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={WORK_DIR}",
    )


def add_notebook_spec(
    wanted: Mapping[str, list[ContainerSpec]],
    inventory: Inventory,
    notebook: NotebookImage | None,
) -> None:
    """Append the notebook's spec to its host's, when that host is planned."""
    settings = inventory.notebook
    if settings is None or notebook is None or settings.host not in wanted:
        return
    wanted[settings.host].append(notebook_spec(inventory, notebook))


def leaves_notebook_alone(inventory: Inventory, notebook: NotebookImage | None) -> bool:
    """True when a plan must neither touch nor remove the notebook container.

    That is when the inventory asks for a notebook but the caller did not
    prepare its image (a run about the workers only).
    """
    return inventory.notebook is not None and notebook is None


# Deploy step ----------------------------------------------------------------


def ship_notebook(ctx: DeployContext) -> None:
    """Send the notebook's host the layers of the notebook image it lacks."""
    notebook, plan, settings = ctx.notebook, ctx.plan, ctx.inventory.notebook
    if notebook is None or plan is None or settings is None:
        return
    observed = ctx.observed.get(settings.host)
    wanted = any(
        a.role == NOTEBOOK_ROLE and a.spec is not None
        for a in plan.actions.get(settings.host, ())
    )
    if not wanted or observed is None or notebook.built.id in observed.image_ids:
        return
    with closing(docker_client(ctx.inventory.image.builder)) as client:
        archive = ImageArchive(save_image(client, notebook.built))

    def send(host: Host) -> int:
        opener = paramiko_opener(ctx.fleet.transport(host))
        present = ctx.host_images[host.name]
        ctx.events.ship_start(host.name, archive.plan_for(present).bytes_estimate)
        try:
            result = ship_image(
                opener,
                host.name,
                archive,
                present,
                progress=lambda n: ctx.events.ship_advance(host.name, n),
            )
        finally:
            ctx.events.ship_end(host.name)
        # The cluster image is sent next: it now finds these layers there.
        ctx.host_images[host.name] = probe_host_images(opener, host.name)
        return result.bytes_sent

    for name, sent in ctx.on_hosts(ctx.healthy_hosts([settings.host]), send).items():
        ctx.recap.hosts[name].bytes_sent += sent

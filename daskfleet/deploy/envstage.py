"""Put each planned container's env file on its host before containers change.

Every file is rewritten on every run (its content is small): a container
whose values changed gets a new spec hash and is replaced afterwards; one
whose values did not reads the same text as before. ``down`` removes the
files of the containers it removed.
"""

from __future__ import annotations

from daskfleet.deploy.context import DeployContext
from daskfleet.envfiles import EnvFile, env_file_path
from daskfleet.hostfiles import remove_files, write_private_file
from daskfleet.inventory.model import Host


def stage_env_files(ctx: DeployContext) -> None:
    """Write the env files of every planned container on the healthy hosts."""
    assert ctx.plan is not None
    files: dict[str, list[EnvFile]] = {}
    for spec in ctx.plan.specs:
        if spec.env_file is not None:
            files.setdefault(spec.host, []).append(spec.env_file)

    def write(host: Host) -> None:
        for env_file in files[host.name]:
            write_private_file(ctx.fleet, host, env_file.path, env_file.render())

    ctx.on_hosts(ctx.healthy_hosts(files), write)


def remove_env_files(ctx: DeployContext) -> None:
    """Remove the env files of the observed containers on the healthy hosts."""
    cluster = ctx.inventory.cluster
    paths = {
        name: [env_file_path(cluster, c.name) for c in observed.containers]
        for name, observed in ctx.observed.items()
    }

    def remove(host: Host) -> None:
        remove_files(ctx.fleet, host, paths[host.name])

    ctx.on_hosts(ctx.healthy_hosts(n for n, p in paths.items() if p), remove)

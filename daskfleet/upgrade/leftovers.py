"""What an interrupted upgrade left behind, and how a re-run continues.

A batch renames each container it replaces to ``<name>.previous`` and
deletes it once the new one is healthy. A run stopped in between (Ctrl-C,
lost connection) leaves such containers. The next run takes them out of
the observed state before planning: where the new container exists, the
old one is deleted after the upgrade has proven the cluster healthy; where
it does not, the old container gets its name back, so the plan replaces it
like any other.
"""

from __future__ import annotations

import dataclasses
import logging

from daskfleet.containers import remove_container
from daskfleet.deploy.context import DeployContext
from daskfleet.inventory.model import Host
from daskfleet.plan import ObservedContainer
from daskfleet.upgrade.roll import PREVIOUS_SUFFIX

logger = logging.getLogger(__name__)

#: Host name to the names of its leftover previous containers.
Leftovers = dict[str, list[str]]


def split_leftovers(ctx: DeployContext) -> Leftovers:
    """Take previous containers out of ``ctx.observed``; restore orphans."""
    leftovers: Leftovers = {}
    for host, observed in list(ctx.observed.items()):
        current = {c.name for c in observed.containers}
        kept: list[ObservedContainer] = []
        for container in observed.containers:
            if not container.name.endswith(PREVIOUS_SUFFIX):
                kept.append(container)
                continue
            original = container.name.removesuffix(PREVIOUS_SUFFIX)
            if original in current:
                leftovers.setdefault(host, []).append(container.name)
            else:
                _rename_back(ctx, host, container.name, original)
                kept.append(dataclasses.replace(container, name=original))
        ctx.observed[host] = dataclasses.replace(observed, containers=tuple(kept))
    return leftovers


def _rename_back(ctx: DeployContext, host: str, name: str, original: str) -> None:
    logger.info("%s: %s left by an interrupted upgrade is renamed back", host, name)
    client = ctx.docker.client(_host(ctx, host))
    client.containers.get(name).rename(original)


def drop_leftovers(ctx: DeployContext, leftovers: Leftovers) -> None:
    """Delete previous containers an interrupted upgrade left behind."""

    def drop(host: Host) -> None:
        client = ctx.docker.client(host)
        for name in leftovers[host.name]:
            remove_container(client, name)

    ctx.on_hosts([h for h in ctx.hosts if h.name in leftovers], drop)


def _host(ctx: DeployContext, name: str) -> Host:
    return next(h for h in ctx.hosts if h.name == name)

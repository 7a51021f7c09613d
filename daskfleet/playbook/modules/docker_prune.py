"""``docker_prune``: remove dangling images (and stopped containers) on each host.

Containers of daskfleet clusters are never pruned, even stopped ones: an
upgrade keeps the previous containers for a rollback. ``all_images`` also
removes every image no container uses (not only untagged ones), which
includes images staged for a coming upgrade. In check mode the candidates
are only counted.
"""

from __future__ import annotations

from typing import Any

from daskfleet.playbook.module import Arg, HostCall, HostModule, ModuleResult, register
from daskfleet.specs import LABEL_CLUSTER


@register
class DockerPruneModule(HostModule):
    name = "docker_prune"
    args = (
        Arg("images", "bool", default=True),
        Arg("all_images", "bool", default=False),
        Arg("containers", "bool", default=False),
    )

    def run(self, call: HostCall) -> ModuleResult:
        client = call.docker.client(call.host)
        containers = _stopped_containers(client) if call.args["containers"] else []
        images = _images(client, call.args) if call.args["images"] else []
        if call.check or not (images or containers):
            found = len(images) + len(containers)
            return ModuleResult(
                changed=bool(found),
                msg=f"{len(images)} image(s), {len(containers)} container(s) to remove",
            )
        reclaimed = 0
        if containers:
            done = client.containers.prune(filters={"label!": LABEL_CLUSTER})
            reclaimed += int(done.get("SpaceReclaimed") or 0)
        if images:
            done = client.images.prune(
                filters={"dangling": not call.args["all_images"]}
            )
            reclaimed += int(done.get("SpaceReclaimed") or 0)
        return ModuleResult(
            changed=True,
            msg=f"removed {len(images)} image(s), {len(containers)} container(s)",
            data={
                "space_reclaimed": reclaimed,
                "images": images,
                "containers": containers,
            },
        )


def _stopped_containers(client: Any) -> list[str]:
    found = client.containers.list(all=True, filters={"status": "exited"})
    return [c.name for c in found if LABEL_CLUSTER not in c.labels]


def _images(client: Any, args: Any) -> list[str]:
    if not args["all_images"]:
        return [i.short_id for i in client.images.list(filters={"dangling": True})]
    used = {c.attrs.get("Image") for c in client.containers.list(all=True)}
    return [i.short_id for i in client.images.list() if i.id not in used]

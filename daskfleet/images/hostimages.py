"""What images and layers a host's Docker already holds, in one command.

One SSH command asks the host's docker CLI for every image's ID, tags and
layer diff IDs, and whether ``zstd`` is there to decompress on arrival. The
chain IDs of every prefix of every image's layers are what ``docker load``
will find in the layer store and skip.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from daskfleet.errors import DockerError
from daskfleet.images.archive import chain_ids
from daskfleet.images.channel import ChannelOpener, run_with_input

logger = logging.getLogger(__name__)

#: POSIX sh; the markers at line starts make the output easy to check.
PROBE_COMMAND = (
    "if command -v zstd >/dev/null 2>&1; "
    'then echo "zstd yes"; else echo "zstd no"; fi; '
    # The relay agent needs Python 3.8 or newer.
    "if python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))' "
    '>/dev/null 2>&1; then echo "python3 yes"; else echo "python3 no"; fi; '
    "docker version --format 'docker {{.Server.Version}}' || exit 1; "
    "ids=$(docker image ls --quiet --no-trunc | sort -u); "
    'if [ -n "$ids" ]; then '
    "docker image inspect --format "
    "'image {{.Id}} {{json .RepoTags}} {{json .RootFS.Layers}}' $ids; fi; "
    # daskfleet's containers, of every cluster, in the same round trip.
    "cids=$(docker ps --all --quiet --no-trunc --filter label=daskfleet.cluster); "
    'if [ -n "$cids" ]; then '
    "docker inspect --format 'container {{json .Name}} {{json .Image}} "
    "{{json .State.Status}} {{json .Config.Labels}}' $cids; fi"
)


def _empty() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True)
class HostContainer:
    """A container carrying daskfleet's labels, as the probe saw it."""

    name: str
    image_id: str
    state: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class HostImages:
    """Images and layer chains on one host's Docker daemon."""

    host: str
    docker_version: str = ""
    zstd: bool = False
    #: Python 3.8 or newer is there to run the relay agent.
    python3: bool = False
    #: Image ID to its repo tags.
    images: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    chain_ids: frozenset[str] = frozenset()
    #: daskfleet's containers on the host, of every cluster.
    containers: tuple[HostContainer, ...] = ()

    def has_image(self, image_id: str) -> bool:
        return image_id in self.images

    def has_tag(self, image_id: str, tag: str) -> bool:
        return tag in self.images.get(image_id, ())


def parse_probe(host: str, output: str) -> HostImages:
    """Read :data:`PROBE_COMMAND`'s output. Pure."""
    zstd = python3 = False
    version = ""
    images: dict[str, tuple[str, ...]] = {}
    chains: set[str] = set()
    containers: list[HostContainer] = []
    for line in output.splitlines():
        kind, _, rest = line.strip().partition(" ")
        if kind == "zstd":
            zstd = rest.strip() == "yes"
        elif kind == "python3":
            python3 = rest.strip() == "yes"
        elif kind == "docker":
            version = rest.strip()
        elif kind == "image":
            image_id, tags, layers = _parse_image(host, rest)
            images[image_id] = tags
            chains.update(chain_ids(layers))
        elif kind == "container":
            containers.append(_parse_container(host, rest))
    if not version:
        raise DockerError(
            host, f"docker did not answer the image probe:\n    {output.strip()}"
        )
    return HostImages(
        host,
        version,
        zstd,
        python3,
        MappingProxyType(images),
        frozenset(chains),
        tuple(containers),
    )


def _parse_container(host: str, rest: str) -> HostContainer:
    decoder = json.JSONDecoder()
    values: list[object] = []
    position = 0
    try:
        for _ in range(4):
            value, position = decoder.raw_decode(rest, position)
            values.append(value)
            position = len(rest) - len(rest[position:].lstrip())
    except json.JSONDecodeError as exc:
        raise DockerError(
            host, f"unreadable container listing {rest!r}: {exc}"
        ) from exc
    name, image_id, state, labels = values
    return HostContainer(
        str(name).lstrip("/"),
        str(image_id),
        str(state),
        dict(labels or {}),  # type: ignore[call-overload]
    )


def _parse_image(host: str, rest: str) -> tuple[str, tuple[str, ...], list[str]]:
    image_id, _, payload = rest.partition(" ")
    decoder = json.JSONDecoder()
    try:
        tags, end = decoder.raw_decode(payload)
        layers, _ = decoder.raw_decode(payload[end:].lstrip())
    except json.JSONDecodeError as exc:
        raise DockerError(host, f"unreadable image listing {rest!r}: {exc}") from exc
    return image_id, tuple(tags or ()), [str(layer) for layer in layers or ()]


def probe_host_images(open_channel: ChannelOpener, host: str) -> HostImages:
    """Ask ``host`` what its Docker holds."""
    result = run_with_input(open_channel, PROBE_COMMAND)
    if result.exit_status != 0:
        raise DockerError(
            host,
            f"listing images failed (exit {result.exit_status}):\n    {result.output}",
            hint="check that docker is installed on the host and its daemon runs",
        )
    found = parse_probe(host, result.stdout)
    logger.debug(
        "%s: docker %s, %d images, %d layer chains, zstd %s",
        host,
        found.docker_version,
        len(found.images),
        len(found.chain_ids),
        found.zstd,
    )
    return found

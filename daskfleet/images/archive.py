"""Read ``docker save`` archives and write deltas of them. Pure: no Docker.

A saved image is a tar with ``manifest.json``, the image config (whose
``rootfs.diff_ids`` list the layers bottom-up) and one tar per layer. Docker
20.10's ``docker load`` reads a layer's tar only when the layer's *chain*
(the layer with every layer below it) is missing from its layer store. A
delta archive therefore keeps every entry but writes the layers a host
already has as empty files: same manifest, same config, same image ID.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import posixpath
import tarfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from daskfleet.errors import ImageError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
OCI_LAYOUT = "oci-layout"
#: Header blocks, padding and end-of-archive of a tar, per archive.
TAR_OVERHEAD = 2 * tarfile.RECORDSIZE


@dataclass(frozen=True)
class Layer:
    """One layer of a saved image, bottom-up."""

    diff_id: str
    chain_id: str
    #: Member name of the layer's tar inside the archive.
    path: str
    #: Bytes of the layer's tar in the archive (0 when it links to another).
    size: int
    #: Member the entry links to when Docker stored a repeated layer once.
    link_target: str | None = None


@dataclass(frozen=True)
class ArchiveIndex:
    """What a saved image archive holds, read from its headers and JSON."""

    image_id: str
    config_path: str
    repo_tags: tuple[str, ...]
    layers: tuple[Layer, ...]
    layout: Literal["docker", "oci"]
    #: Bytes of every member's data, layers included.
    content_bytes: int

    @property
    def chain_ids(self) -> tuple[str, ...]:
        return tuple(layer.chain_id for layer in self.layers)


@dataclass(frozen=True)
class ShipmentPlan:
    """Which layers one host needs, and about how many bytes that is."""

    image_present: bool
    send: tuple[Layer, ...]
    skip: tuple[Layer, ...]
    bytes_estimate: int

    @property
    def mode(self) -> Literal["none", "delta", "full"]:
        if self.image_present:
            return "none"
        return "delta" if self.skip else "full"


def chain_ids(diff_ids: Iterable[str]) -> tuple[str, ...]:
    """Chain ID of every prefix of ``diff_ids``, as the Docker layer store has.

    The first layer's chain is its diff ID; each next one is the sha256 of
    ``"<chain below> <diff id>"``.
    """
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
            continue
        text = f"{chains[-1]} {diff_id}".encode()
        chains.append("sha256:" + hashlib.sha256(text).hexdigest())
    return tuple(chains)


def read_index(path: Path) -> ArchiveIndex:
    """Index a ``docker save`` archive holding exactly one image."""
    try:
        with tarfile.open(path, "r:") as archive:
            return _index(archive, path)
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise ImageError(f"{path}: not a readable docker save archive: {exc}") from exc


def _index(archive: tarfile.TarFile, path: Path) -> ArchiveIndex:
    members = {member.name: member for member in archive.getmembers()}
    manifest = _read_json(archive, members, MANIFEST)
    if not isinstance(manifest, list) or len(manifest) != 1:
        raise ImageError(
            f"{path}: expected one image in {MANIFEST}, found {manifest!r}"
        )
    entry = manifest[0]

    config_path = str(entry["Config"])
    config_bytes = _read_bytes(archive, members, config_path)
    diff_ids = [str(d) for d in json.loads(config_bytes)["rootfs"]["diff_ids"]]
    layer_paths = [str(p) for p in entry["Layers"]]
    if len(diff_ids) != len(layer_paths):
        raise ImageError(
            f"{path}: manifest lists {len(layer_paths)} layers, config {len(diff_ids)}"
        )

    chains = chain_ids(diff_ids)
    layers = tuple(
        _layer(members, layer_path, diff_id, chain)
        for layer_path, diff_id, chain in zip(
            layer_paths, diff_ids, chains, strict=True
        )
    )
    return ArchiveIndex(
        image_id="sha256:" + hashlib.sha256(config_bytes).hexdigest(),
        config_path=config_path,
        repo_tags=tuple(str(t) for t in entry.get("RepoTags") or ()),
        layers=layers,
        layout="oci" if OCI_LAYOUT in members else "docker",
        content_bytes=sum(m.size for m in members.values() if m.isfile()),
    )


def _layer(
    members: dict[str, tarfile.TarInfo], name: str, diff_id: str, chain: str
) -> Layer:
    member = members[name]
    if member.issym() or member.islnk():
        target = member.linkname
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        return Layer(diff_id, chain, name, 0, link_target=target)
    return Layer(diff_id, chain, name, member.size)


def _read_bytes(
    archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str
) -> bytes:
    handle = archive.extractfile(members[name])
    if handle is None:
        raise ImageError(f"{name} in the archive is not a regular file")
    with handle:
        return handle.read()


def _read_json(
    archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str
) -> Any:
    return json.loads(_read_bytes(archive, members, name))


def plan_shipment(
    layers: Sequence[Layer],
    host_chain_ids: Collection[str],
    *,
    image_present: bool = False,
) -> ShipmentPlan:
    """Split ``layers`` into what a host needs and what it has. Pure.

    ``bytes_estimate`` counts the layers to send plus a tar's overhead; the
    small manifest and config entries are inside that overhead's margin.
    """
    if image_present:
        return ShipmentPlan(True, (), tuple(layers), 0)
    send = tuple(layer for layer in layers if layer.chain_id not in host_chain_ids)
    skip = tuple(layer for layer in layers if layer.chain_id in host_chain_ids)
    estimate = sum(layer.size for layer in send) + TAR_OVERHEAD
    return ShipmentPlan(False, send, skip, estimate)


def blank_paths(plan: ShipmentPlan) -> frozenset[str]:
    """Member names a delta may write empty: skipped, and no kept entry's target."""
    needed = {layer.link_target for layer in plan.send if layer.link_target}
    return frozenset(
        layer.path
        for layer in plan.skip
        if layer.link_target is None and layer.path not in needed
    )


def write_delta(source: Path, out: IO[bytes], blank: Collection[str]) -> int:
    """Copy archive ``source`` to ``out``, writing members in ``blank`` empty.

    Both sides stream: no member is held in memory whole. Returns the
    number of member data bytes written.
    """
    written = 0
    with (
        tarfile.open(source, "r|") as reader,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as writer,
    ):
        for member in reader:
            if member.isfile() and member.name in blank:
                writer.addfile(_emptied(member))
                continue
            data = reader.extractfile(member) if member.isfile() else None
            writer.addfile(member, data)
            written += member.size if member.isfile() else 0
    logger.debug(
        "delta of %s: %d member bytes, %d blanked", source, written, len(blank)
    )
    return written


def _emptied(member: tarfile.TarInfo) -> tarfile.TarInfo:
    empty = copy.copy(member)
    empty.size = 0
    empty.pax_headers = {k: v for k, v in member.pax_headers.items() if k != "size"}
    return empty

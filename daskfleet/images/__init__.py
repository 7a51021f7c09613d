"""The Dask image: built once on the controller, shipped over SSH.

Build (:func:`build_image`) on the controller's Docker daemon, save once
(:func:`save_image`), then per host: learn what it holds
(:func:`probe_host_images`), plan (:func:`plan_shipment`, pure, for
``deploy --check``) and send only what it lacks (:func:`ship_image`).
"""

from daskfleet.images.archive import (
    ArchiveIndex,
    Layer,
    ShipmentPlan,
    chain_ids,
    plan_shipment,
    read_index,
    write_delta,
)
from daskfleet.images.build import (
    BuildRequest,
    BuiltImage,
    build_image,
    default_base,
    docker_client,
    image_repository,
    save_image,
)
from daskfleet.images.channel import (
    Channel,
    ChannelOpener,
    LocalChannel,
    local_opener,
    paramiko_opener,
)
from daskfleet.images.hostimages import HostImages, parse_probe, probe_host_images
from daskfleet.images.ship import ImageArchive, ShipResult, ship_image
from daskfleet.images.versions import Versions, controller_versions

__all__ = [
    "ArchiveIndex",
    "BuildRequest",
    "BuiltImage",
    "Channel",
    "ChannelOpener",
    "HostImages",
    "ImageArchive",
    "Layer",
    "LocalChannel",
    "ShipResult",
    "ShipmentPlan",
    "Versions",
    "build_image",
    "chain_ids",
    "controller_versions",
    "default_base",
    "docker_client",
    "image_repository",
    "local_opener",
    "paramiko_opener",
    "parse_probe",
    "plan_shipment",
    "probe_host_images",
    "read_index",
    "save_image",
    "ship_image",
    "write_delta",
]

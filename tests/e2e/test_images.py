"""The Dask image on the lab fleet: built once, shipped over real SSH.

Every host gets the image through its own sshd into its own dockerd; a
one-line change reaches the hosts as a delta of a few kilobytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from daskfleet.errors import ImageError
from daskfleet.images import (
    BuildRequest,
    BuiltImage,
    ImageArchive,
    ShipResult,
    build_image,
    controller_versions,
    docker_client,
    paramiko_opener,
    probe_host_images,
    save_image,
    ship_image,
)
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Host, Inventory
from daskfleet.ssh import SSHFleet

pytestmark = pytest.mark.e2e

CHANGE_FILE = "/etc/daskfleet-e2e-change"


@pytest.fixture(scope="module")
def inventory(lab: Any) -> Inventory:
    return load_inventory(lab.inventory_path)


@pytest.fixture(scope="module")
def request_(lab: Any, inventory: Inventory) -> BuildRequest:
    request = BuildRequest.from_inventory(inventory)
    return dataclasses.replace(
        request, builder=request.builder or f"unix://{lab.build_socket}"
    )


@pytest.fixture(scope="module")
def client(request_: BuildRequest) -> Iterator[Any]:
    builder = docker_client(request_.builder)
    yield builder
    builder.close()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="module")
def built(client: Any, request_: BuildRequest) -> BuiltImage:
    return build_image(client, request_)


@pytest.fixture(scope="module")
def fleet(inventory: Inventory) -> Iterator[SSHFleet]:
    with SSHFleet(inventory) as ssh:
        yield ssh


def _with_line(request: BuildRequest, tmp: Path, line: str) -> BuildRequest:
    dockerfile = tmp / "Dockerfile"
    dockerfile.write_text(request.dockerfile.read_text() + line + "\n")
    return dataclasses.replace(request, dockerfile=dockerfile)


def _ship_all(fleet: SSHFleet, archive: ImageArchive) -> dict[str, ShipResult]:
    def ship(host: Host) -> ShipResult:
        return ship_image(paramiko_opener(fleet.transport(host)), host.name, archive)

    results = fleet.map(ship)
    assert results.ok, results.failed
    return results.succeeded


def _run_on_host(lab: Any, name: str, image: str, argv: list[str]) -> str:
    host_docker = docker.DockerClient(base_url=f"unix://{lab.host_socket(name)}")
    try:
        out = host_docker.containers.run(image, argv, remove=True, network_mode="none")
    finally:
        host_docker.close()
    return bytes(out).decode().strip()


def test_image_carries_the_controllers_versions(client: Any, built: BuiltImage) -> None:
    versions = controller_versions()
    image = client.images.get(built.tag)
    labels = image.attrs["Config"]["Labels"]
    assert labels["org.daskfleet.distributed"] == versions.distributed
    assert labels["org.daskfleet.python"] == versions.python
    assert built.architecture == image.attrs["Architecture"]
    code = (
        "import distributed, sys; print(distributed.__version__, sys.version_info[:2])"
    )
    out = client.containers.run(
        built.tag, ["python", "-c", code], remove=True, network_mode="none"
    )
    major, minor = versions.python.split(".")
    assert bytes(out).decode().strip() == f"{versions.distributed} ({major}, {minor})"


def test_unchanged_build_builds_nothing(
    client: Any, request_: BuildRequest, built: BuiltImage
) -> None:
    again = build_image(client, request_)
    assert (again.built, again.tag, again.id) == (False, built.tag, built.id)


def test_ship_full_then_nothing_then_delta(
    lab: Any,
    client: Any,
    request_: BuildRequest,
    built: BuiltImage,
    fleet: SSHFleet,
    cache: Path,
    tmp_path: Path,
) -> None:
    archive = ImageArchive(save_image(client, built, cache_dir=cache))
    first = _ship_all(fleet, archive)
    for result in first.values():
        assert result.image_id == built.id
    second = _ship_all(fleet, archive)
    assert {r.mode for r in second.values()} == {"none"}
    assert sum(r.bytes_sent for r in second.values()) == 0

    changed = _with_line(request_, tmp_path, f"RUN echo e2e > {CHANGE_FILE}")
    new = build_image(client, changed)
    new_archive = ImageArchive(save_image(client, new, cache_dir=cache))
    third = _ship_all(fleet, new_archive)
    full_size = new_archive.path.stat().st_size
    for name, result in third.items():
        assert result.mode == "delta", result
        assert result.layers_sent == 1
        assert result.bytes_sent <= full_size // 100, result
        assert _run_on_host(lab, name, new.tag, ["cat", CHANGE_FILE]) == "e2e"


def test_failed_delta_load_falls_back_to_the_full_image(
    client: Any,
    request_: BuildRequest,
    inventory: Inventory,
    fleet: SSHFleet,
    cache: Path,
    tmp_path: Path,
) -> None:
    changed = _with_line(request_, tmp_path, f"RUN echo fallback > {CHANGE_FILE}")
    image = build_image(client, changed)
    archive = ImageArchive(save_image(client, image, cache_dir=cache))
    host = inventory.workers[-1]
    opener = paramiko_opener(fleet.transport(host))
    present = probe_host_images(opener, host.name)
    # Claim the host holds the new layer: the delta then lacks it and fails.
    wrong = dataclasses.replace(present, chain_ids=frozenset(archive.index.chain_ids))
    result = ship_image(opener, host.name, archive, wrong)
    assert (result.mode, result.fell_back) == ("full", True)
    assert probe_host_images(opener, host.name).has_image(image.id)


def test_failed_build_raises_and_changes_no_host(
    client: Any,
    request_: BuildRequest,
    inventory: Inventory,
    fleet: SSHFleet,
    tmp_path: Path,
) -> None:
    def images(host: Host) -> frozenset[str]:
        opener = paramiko_opener(fleet.transport(host))
        return frozenset(probe_host_images(opener, host.name).images)

    before = fleet.map(images).succeeded
    broken = _with_line(request_, tmp_path, "RUN echo about to fail && exit 7")
    with pytest.raises(ImageError) as failure:
        build_image(client, broken)
    message = str(failure.value)
    assert "non-zero code: 7" in message
    assert "about to fail" in message
    assert fleet.map(images).succeeded == before

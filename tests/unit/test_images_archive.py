"""docker-save archives: index, chain IDs, shipment plans and deltas."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from daskfleet.errors import ImageError
from daskfleet.images.archive import (
    blank_paths,
    chain_ids,
    plan_shipment,
    read_index,
    write_delta,
)
from daskfleet.images.delivery import distribution_for, shared_choice
from daskfleet.images.hostimages import HostImages
from daskfleet.images.ship import ImageArchive

LAYER_DATA = [b"a" * 60000, b"b" * 700, b"c" * 50]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_archive(
    path: Path,
    layers: list[bytes] = LAYER_DATA,
    *,
    images: int = 1,
    oci: bool = False,
    link_last_to_first: bool = False,
) -> tuple[str, list[str]]:
    """A docker-save archive; returns its image ID and layer diff IDs."""
    diff_ids = [_digest(data) for data in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = f"{_digest(config)[7:]}.json"
    paths = [f"{i:064x}/layer.tar" for i in range(len(layers))]
    entry = {"Config": config_name, "RepoTags": ["daskfleet/t:1"], "Layers": paths}
    with tarfile.open(path, "w") as archive:
        for i, (name, data) in enumerate(zip(paths, layers, strict=True)):
            if link_last_to_first and i == len(layers) - 1:
                info = tarfile.TarInfo(name)
                info.type = tarfile.SYMTYPE
                info.linkname = f"../{paths[0]}"
                archive.addfile(info)
            else:
                _add(archive, name, data)
        _add(archive, config_name, config)
        _add(archive, "manifest.json", json.dumps([entry] * images).encode())
        if oci:
            _add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return _digest(config), diff_ids


def _members(path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            found[member.name] = (
                handle.read() if handle else b"<" + member.linkname.encode()
            )
    return found


def test_chain_ids_follow_docker_layer_store() -> None:
    chains = chain_ids(["sha256:a", "sha256:b", "sha256:c"])
    second = "sha256:" + hashlib.sha256(b"sha256:a sha256:b").hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} sha256:c".encode()).hexdigest()
    assert chains == ("sha256:a", second, third)
    assert chain_ids([]) == ()


def test_read_index(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    image_id, diff_ids = make_archive(path)
    index = read_index(path)
    assert index.image_id == image_id
    assert index.repo_tags == ("daskfleet/t:1",)
    assert [layer.diff_id for layer in index.layers] == diff_ids
    assert [layer.size for layer in index.layers] == [len(d) for d in LAYER_DATA]
    assert index.chain_ids == chain_ids(diff_ids)
    assert index.layout == "docker"


def test_read_index_detects_oci_layout(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    make_archive(path, oci=True)
    assert read_index(path).layout == "oci"


@pytest.mark.parametrize("images", [0, 2])
def test_read_index_wants_one_image(tmp_path: Path, images: int) -> None:
    path = tmp_path / "image.tar"
    make_archive(path, images=images)
    with pytest.raises(ImageError, match="expected one image"):
        read_index(path)


def test_read_index_rejects_non_archive(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    path.write_bytes(b"not a tar at all")
    with pytest.raises(ImageError, match="not a readable docker save archive"):
        read_index(path)


def test_plan_for_host_without_layers_sends_all(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    make_archive(path)
    index = read_index(path)
    plan = plan_shipment(index.layers, set())
    assert plan.mode == "full"
    assert len(plan.send) == 3
    assert plan.bytes_estimate >= sum(len(d) for d in LAYER_DATA)


def test_plan_for_host_with_lower_layers_sends_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    make_archive(path)
    index = read_index(path)
    plan = plan_shipment(index.layers, set(index.chain_ids[:2]))
    assert plan.mode == "delta"
    assert [layer.size for layer in plan.send] == [50]
    assert len(plan.skip) == 2
    assert plan.bytes_estimate < 60000


def test_plan_matches_chains_not_bare_layers(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    _, diff_ids = make_archive(path)
    index = read_index(path)
    # The host has layer 2's content but on another parent: not reusable.
    plan = plan_shipment(index.layers, {diff_ids[1]})
    assert plan.mode == "full"


def test_plan_for_host_with_image_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    make_archive(path)
    index = read_index(path)
    plan = plan_shipment(index.layers, set(), image_present=True)
    assert (plan.mode, plan.send, plan.bytes_estimate) == ("none", (), 0)


def test_delta_empties_skipped_layers_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    make_archive(path)
    index = read_index(path)
    plan = plan_shipment(index.layers, set(index.chain_ids[:2]))
    delta = tmp_path / "delta.tar"
    with delta.open("wb") as out:
        write_delta(path, out, blank_paths(plan))

    before, after = _members(path), _members(delta)
    assert list(after) == list(before)
    for layer in plan.skip:
        assert after[layer.path] == b""
    for name in set(before) - {layer.path for layer in plan.skip}:
        assert after[name] == before[name]
    assert read_index(delta).image_id == index.image_id
    assert delta.stat().st_size < path.stat().st_size


def test_delta_keeps_a_layer_that_a_sent_layer_links_to(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    make_archive(path, [b"x" * 100, b"y" * 10, b"x" * 100], link_last_to_first=True)
    index = read_index(path)
    assert index.layers[2].link_target == index.layers[0].path
    plan = plan_shipment(index.layers, set(index.chain_ids[:2]))
    assert [layer.path for layer in plan.send] == [index.layers[2].path]
    assert blank_paths(plan) == {index.layers[1].path}


# Payloads made from a saved archive: deltas and zstd copies, made once.


@pytest.fixture
def archive(tmp_path: Path) -> ImageArchive:
    path = tmp_path / "image.tar"
    make_archive(path)
    return ImageArchive(path)


def test_full_plain_payload_is_the_archive_itself(archive: ImageArchive) -> None:
    assert archive.payload(frozenset(), compress=False) == archive.path


def test_delta_payload_is_written_once_and_reused(archive: ImageArchive) -> None:
    host = HostImages("h1", "20.10", chain_ids=frozenset(archive.index.chain_ids[:2]))
    plan = archive.plan_for(host)
    blank = blank_paths(plan)
    first = archive.payload(blank, compress=False)
    assert first.parent == archive.workdir
    assert read_index(first).image_id == archive.index.image_id
    mtime = first.stat().st_mtime_ns
    assert archive.payload(blank, compress=False).stat().st_mtime_ns == mtime
    archive.remove_payloads()
    assert not archive.workdir.exists()
    assert archive.path.exists()


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd binary")
def test_compressed_payload_decompresses_to_the_delta(archive: ImageArchive) -> None:
    blank = frozenset({archive.index.layers[0].path})
    packed = archive.payload(blank, compress=True)
    plain = archive.payload(blank, compress=False)
    unpacked = subprocess.run(
        ["zstd", "-dc", str(packed)], capture_output=True, check=True
    )
    assert unpacked.stdout == plain.read_bytes()


def test_host_with_the_image_plans_nothing(archive: ImageArchive) -> None:
    host = HostImages("h1", "20.10", images={archive.index.image_id: ()})
    assert archive.plan_for(host).mode == "none"


def test_hosts_holding_different_layers_share_one_relay_payload(
    archive: ImageArchive,
) -> None:
    chains = archive.index.chain_ids
    present = {
        "bare": HostImages("bare", python3=True),
        "lower": HostImages("lower", python3=True, chain_ids=frozenset(chains[:1])),
        "most": HostImages("most", python3=True, chain_ids=frozenset(chains[:2])),
    }
    addresses = dict.fromkeys(present, "10.0.0.1")
    plan = distribution_for(archive, present, addresses, list(present))
    # One chain, one payload: all layers, as the bare host needs them all.
    assert [c.hosts for c in plan.chains] == [("bare", "lower", "most")]
    assert plan.direct == {}
    assert plan.controller_bytes == archive.choose(present["bare"]).plan.bytes_estimate
    direct = distribution_for(archive, present, addresses, list(present), "direct")
    assert len({archive.choose(h).key for h in present.values()}) == 3
    assert direct.controller_bytes > plan.controller_bytes


def test_the_shared_payload_blanks_only_layers_every_host_holds(
    archive: ImageArchive,
) -> None:
    chains = archive.index.chain_ids
    hosts = [
        HostImages("a", chain_ids=frozenset(chains[:1])),
        HostImages("b", chain_ids=frozenset(chains[:2])),
    ]
    choice = shared_choice(archive, hosts)
    assert [layer.size for layer in choice.plan.send] == [700, 50]
    assert choice.blank == {archive.index.layers[0].path}
    assert not choice.zstd

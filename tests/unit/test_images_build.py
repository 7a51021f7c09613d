"""The pure parts of building: requirements, tags, build args, context."""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
from pathlib import Path

import pytest

from daskfleet.images.build import (
    DEFAULT_DOCKERFILE,
    DEFAULT_GPU_BASE,
    GPU_DOCKERFILE,
    BuildRequest,
    _build_args,
    _write_context,
    default_base,
    evict_archives,
    image_repository,
    image_tag,
    wheel_version,
)
from daskfleet.images.versions import Versions
from daskfleet.images.wheelhouse import wheelhouse_key
from daskfleet.inventory.model import Host, ImageSettings, Inventory

VERSIONS = Versions("3.11", "2024.8.0", "2024.8.0", "3.0.0", "1.0.8")


def _request(tmp_path: Path, **changes: object) -> BuildRequest:
    dockerfile = tmp_path / "Dockerfile"
    if not dockerfile.exists():
        dockerfile.write_text(DEFAULT_DOCKERFILE.read_text())
    request = BuildRequest("Prod Cluster", "base:1", ("pandas",), VERSIONS, dockerfile)
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def test_requirements_pin_versions_then_dashboard_then_extras(tmp_path: Path) -> None:
    request = _request(tmp_path, packages=("pyarrow >= 15",))
    requirements = request.requirements()
    assert requirements[:4] == VERSIONS.pins()
    assert any(r.startswith("bokeh>=") for r in requirements)
    assert requirements[-1] == "pyarrow>=15"


def test_tag_is_stable_and_names_the_cluster(tmp_path: Path) -> None:
    request = _request(tmp_path)
    tag = image_tag(request, "sha256:b", ("a.whl",))
    assert tag == image_tag(request, "sha256:b", ("a.whl",))
    repo, _, digest = tag.partition(":")
    assert repo == "daskfleet/prod-cluster"
    assert len(digest) == 16


def test_tag_changes_with_every_input(tmp_path: Path) -> None:
    request = _request(tmp_path)
    tag = image_tag(request, "sha256:b", ("a.whl",))
    other_file = tmp_path / "Other"
    other_file.write_text(request.dockerfile.read_text() + "ENV X=1\n")
    changed = [
        image_tag(request, "sha256:other", ("a.whl",)),
        image_tag(request, "sha256:b", ("a.whl", "b.whl")),
        image_tag(_request(tmp_path, packages=("polars",)), "sha256:b", ("a.whl",)),
        image_tag(
            _request(tmp_path, versions=dataclasses.replace(VERSIONS, dask="2024.9.0")),
            "sha256:b",
            ("a.whl",),
        ),
        image_tag(_request(tmp_path, dockerfile=other_file), "sha256:b", ("a.whl",)),
    ]
    assert tag not in changed
    assert len(set(changed)) == len(changed)


def test_build_args_carry_versions_and_extras(tmp_path: Path) -> None:
    args = _build_args(_request(tmp_path), tmp_path)
    assert args["DASK"] == "2024.8.0"
    assert args["PYTHON"] == "3.11"
    assert args["BASE"] == "base:1"
    assert "pandas" in args["PACKAGES"].split()
    assert "dask" not in args["PACKAGES"]


@pytest.mark.parametrize("dockerfile", [DEFAULT_DOCKERFILE, GPU_DOCKERFILE])
def test_every_build_arg_is_declared_in_the_dockerfile(
    tmp_path: Path, dockerfile: Path
) -> None:
    text = dockerfile.read_text()
    for name in _build_args(_request(tmp_path, dockerfile=dockerfile), tmp_path):
        assert f"ARG {name}" in text


def test_gpu_image_records_the_dask_cuda_wheel(tmp_path: Path) -> None:
    (tmp_path / "dask_cuda-26.10.0-py3-none-any.whl").write_bytes(b"wheel")
    args = _build_args(_request(tmp_path, dockerfile=GPU_DOCKERFILE), tmp_path)
    assert args["DASK_CUDA"] == "26.10.0"
    assert "DASK_CUDA" not in _build_args(_request(tmp_path), tmp_path)
    assert wheel_version(("dask-1.whl",), "dask_cuda") == ""


def test_gpu_hosts_make_a_gpu_image_unless_told_otherwise() -> None:
    gpu = Host("h2", "10.0.0.2", gpus="all")
    hosts = {"h1": Host("h1", "10.0.0.1", roles=("scheduler",)), "h2": gpu}
    request = BuildRequest.from_inventory(Inventory("inv.yml", "lab", hosts))
    assert (request.dockerfile, request.base) == (GPU_DOCKERFILE, DEFAULT_GPU_BASE)
    cpu = ImageSettings(kind="cpu")
    request = BuildRequest.from_inventory(Inventory("i", "lab", hosts, image=cpu))
    assert request.dockerfile == DEFAULT_DOCKERFILE


def test_context_is_byte_identical_across_writes(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "a-1-py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "notes.txt").write_text("not a wheel")
    first, second = io.BytesIO(), io.BytesIO()
    _write_context(first, DEFAULT_DOCKERFILE, wheels)
    _write_context(second, DEFAULT_DOCKERFILE, wheels)
    assert first.getvalue() == second.getvalue()
    first.seek(0)
    with tarfile.open(fileobj=first) as context:
        names = context.getnames()
    assert names == ["Dockerfile", "wheelhouse", "wheelhouse/a-1-py3-none-any.whl"]


def test_request_from_inventory_uses_image_settings() -> None:
    host = Host("h1", "10.0.0.1", roles=("scheduler", "worker"))
    inventory = Inventory(
        "inv.yml", "lab", {"h1": host}, image=ImageSettings(("pandas",), None)
    )
    request = BuildRequest.from_inventory(inventory)
    assert request.cluster == "lab"
    assert request.packages == ("pandas",)
    assert request.base == default_base(request.versions)


def test_wheelhouse_key_ignores_requirement_order() -> None:
    first = wheelhouse_key(["a==1", "b==2"], "3.11", "linux-x86_64")
    assert first == wheelhouse_key(["b==2", "a==1"], "3.11", "linux-x86_64")
    assert first != wheelhouse_key(["a==1"], "3.11", "linux-x86_64")
    assert first != wheelhouse_key(["a==1", "b==2"], "3.12", "linux-x86_64")


def test_repository_is_a_valid_docker_name() -> None:
    assert image_repository("Prod Cluster!") == "daskfleet/prod-cluster"
    assert image_repository("...") == "daskfleet/cluster"


def test_evict_archives_keeps_the_newest(tmp_path: Path) -> None:
    for age, name in enumerate(["c", "b", "a"]):
        archive = tmp_path / f"{name}.tar"
        archive.write_bytes(b"x")
        (tmp_path / f"{name}.payloads").mkdir()
        os.utime(archive, (1000 - age, 1000 - age))
    gone = evict_archives(tmp_path, keep=2)
    assert [p.name for p in gone] == ["a.tar"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "b.payloads",
        "b.tar",
        "c.payloads",
        "c.tar",
    ]

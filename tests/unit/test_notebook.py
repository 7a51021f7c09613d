"""The notebook: inventory section, container spec, plan and token file."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from daskfleet.errors import InventoryError
from daskfleet.facts import Facts
from daskfleet.images import BuiltImage, Versions
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Inventory
from daskfleet.notebook import (
    NotebookImage,
    ensure_token,
    notebook_access,
    notebook_spec,
    read_token,
)
from daskfleet.plan import Observed, ObservedContainer, plan_deploy
from daskfleet.specs import ImageRef
from daskfleet.tls import CLIENT_ENVIRONMENT

INVENTORY = """\
cluster: nb
hosts:
  n1: {address: 10.0.0.1, roles: [scheduler]}
  n2: {address: 10.0.0.2}
"""
TOKEN = "f" * 48
CLIENT_CERT = "c" * 16
VERSIONS = Versions("3.11", "2026.8.0", "2026.8.0", "3.1.1", "1.1.0")
IMAGE = ImageRef("sha256:cluster", "daskfleet/nb:1", "amd64")
NOTEBOOK = NotebookImage(
    BuiltImage(
        "sha256:nb", "daskfleet/nb-notebook:1", "amd64", "linux", 1, VERSIONS, True, 0.0
    ),
    TOKEN,
    CLIENT_CERT,
)


NOTEBOOK_ON_N1 = "notebook: {host: n1}\n"


def inventory(tmp_path: Path, notebook: str = NOTEBOOK_ON_N1) -> Inventory:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY + notebook)
    return load_inventory(path)


def facts() -> dict[str, Facts]:
    disk = (2**40,)
    docker = ("20.10", "overlay2", "/var/lib/docker")
    return {
        n: Facts(n, 4, 8 * 2**30, "x86_64", "6.1", *docker, *disk) for n in ("n1", "n2")
    }


def test_section_defaults(tmp_path: Path) -> None:
    settings = inventory(tmp_path).notebook
    assert settings is not None
    assert (settings.host, settings.port, settings.packages) == ("n1", 8888, ())


def test_section_with_port_and_packages(tmp_path: Path) -> None:
    text = "notebook:\n  host: n2\n  port: 9999\n  packages: [matplotlib]\n"
    settings = inventory(tmp_path, text).notebook
    assert settings is not None
    assert (settings.host, settings.port, settings.packages) == (
        "n2",
        9999,
        ("matplotlib",),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notebook: {host: n9}\n", "notebook.host to name a host of the inventory"),
        ("notebook: {port: 9000}\n", "expected a mapping with host"),
        ("notebook: {host: n1, prot: 1}\n", "unknown key 'prot'"),
        ("notebook: {host: n1, port: 0}\n", "a port number"),
    ],
)
def test_section_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        inventory(tmp_path, text)


def test_spec_keeps_the_token_out_of_dockers_view(tmp_path: Path) -> None:
    spec = notebook_spec(
        inventory(tmp_path, "security: none\n" + NOTEBOOK_ON_N1), NOTEBOOK
    )
    assert spec.role == "notebook"
    assert spec.host == "n1"
    assert spec.environment == {"DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.1:8786"}
    assert spec.env_file is not None
    assert spec.env_file.values == {"JUPYTER_TOKEN": TOKEN}
    assert "--ip=10.0.0.1" in spec.command
    assert "--port=8888" in spec.command
    docker = json.dumps(spec.to_docker_kwargs())
    assert TOKEN not in docker + str(spec.summary)
    assert [v.container_path for v in spec.volumes] == ["/root/work"]


def test_spec_with_tls_connects_with_the_client_bundle(tmp_path: Path) -> None:
    spec = notebook_spec(inventory(tmp_path), NOTEBOOK)
    assert spec.environment == {"DASK_SCHEDULER_ADDRESS": "tls://10.0.0.1:8786"}
    assert spec.env_file is not None
    assert spec.env_file.values == {"JUPYTER_TOKEN": TOKEN, **CLIENT_ENVIRONMENT}
    bundle = spec.volumes[1]
    assert bundle.host_path.endswith(f"/nb/tls/n1/client-{CLIENT_CERT}")
    assert (bundle.container_path, bundle.read_only) == ("/etc/daskfleet/tls", True)
    # Paths only: the key itself never reaches Docker's configuration.
    assert "BEGIN" not in json.dumps(spec.to_docker_kwargs())


def test_a_new_client_certificate_replaces_the_notebook(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    rotated = dataclasses.replace(NOTEBOOK, client_certificate="0" * 16)
    for image, kind in ((NOTEBOOK, "unchanged"), (rotated, "replace")):
        plan = plan_deploy(inv, facts(), notebook_there(inv), IMAGE, notebook=image)
        notebook = [a for a in plan.actions["n1"] if a.role == "notebook"]
        assert [a.kind for a in notebook] == [kind]


def test_plan_creates_the_notebook_on_its_host(tmp_path: Path) -> None:
    plan = plan_deploy(inventory(tmp_path), facts(), {}, IMAGE, notebook=NOTEBOOK)
    kinds = [(a.kind, a.role) for a in plan.actions["n1"]]
    assert kinds == [("create", "scheduler"), ("create", "notebook")]


def notebook_there(inv: Inventory) -> dict[str, Observed]:
    spec = notebook_spec(inv, NOTEBOOK)
    labels = spec.to_docker_kwargs()["labels"]
    found = ObservedContainer(spec.name, spec.image, "running", labels)
    return {"n1": Observed("n1", (found,), frozenset({"sha256:nb"}))}


def test_plan_without_the_notebook_image_leaves_it_alone(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    plan = plan_deploy(inv, facts(), notebook_there(inv), IMAGE)
    assert [a.role for a in plan.actions["n1"]] == ["scheduler"]


def test_notebook_removed_when_the_section_goes(tmp_path: Path) -> None:
    observed = notebook_there(inventory(tmp_path))
    plan = plan_deploy(inventory(tmp_path, ""), facts(), observed, IMAGE)
    removed = [a for a in plan.actions["n1"] if a.kind == "remove"]
    assert [(a.role, a.retire_first) for a in removed] == [("notebook", False)]


def test_token_is_made_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASKFLEET_STATE_DIR", str(tmp_path / "state"))
    assert read_token("nb") is None
    token = ensure_token("nb")
    assert ensure_token("nb") == token == read_token("nb")
    path = tmp_path / "state" / "clusters" / "nb.notebook-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_access_shows_the_token_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASKFLEET_STATE_DIR", str(tmp_path / "state"))
    inv = inventory(tmp_path)
    token = ensure_token("nb")
    assert notebook_access(inv, with_token=False) == {
        "host": "n1",
        "url": "http://10.0.0.1:8888/lab",
    }
    assert notebook_access(inv, with_token=True) == {
        "host": "n1",
        "url": "http://10.0.0.1:8888/lab",
        "token": token,
    }
    assert notebook_access(inventory(tmp_path, ""), with_token=True) is None

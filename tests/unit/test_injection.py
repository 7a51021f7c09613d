"""No inventory value reaches a shell unquoted: properties over arbitrary input.

Every inventory field gets arbitrary text and arbitrary YAML values. Loading
either succeeds or raises InventoryError; when it succeeds, every container
command is an argv list (Docker runs it without a shell) whose only shell
text is the constant env-file entrypoint, every env value reads back
exactly from its env file, and the commands daskfleet sends over SSH carry
values only as quoted arguments.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskfleet.envfiles import ENTRYPOINT_SCRIPT, EnvFile, parse_env_file
from daskfleet.errors import InventoryError, PlanError
from daskfleet.facts import Facts
from daskfleet.hostfiles import script
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Inventory
from daskfleet.inventory.validate import CLUSTER_SETTINGS, HOST_VARIABLES
from daskfleet.specs import ImageRef, build_specs

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FIELDS = sorted(HOST_VARIABLES) + sorted(CLUSTER_SETTINGS)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=10,
)


def base_document() -> dict[str, Any]:
    return {
        "cluster": "c",
        "hosts": {
            "s": {"address": "10.0.0.1", "roles": ["scheduler"]},
            "w": {"address": "10.0.0.2"},
        },
    }


def load_text(text: str) -> Inventory | None:
    """The inventory, or None when it was refused with InventoryError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inv.yml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_inventory(path)
        except InventoryError:
            return None


def load_document(document: dict[str, Any]) -> Inventory | None:
    return load_text(yaml.safe_dump(document, allow_unicode=True))


def with_field(field: str, value: Any) -> dict[str, Any]:
    document = base_document()
    if field in HOST_VARIABLES:
        document["hosts"]["w"][field] = value
    else:
        document[field] = value
    return document


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=values)
def test_any_value_of_any_field_loads_or_is_refused(field: str, value: Any) -> None:
    inventory = load_document(with_field(field, value))
    if inventory is not None:
        check_commands(inventory)


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=values)
def test_any_value_in_an_ansible_inventory_loads_or_is_refused(
    field: str, value: Any
) -> None:
    variables = {f"daskfleet_{field}": value}
    document = {
        "all": {
            "vars": {"daskfleet_cluster": "c", **variables},
            "children": {
                "scheduler": {"hosts": {"s": {"ansible_host": "10.0.0.1"}}},
                "workers": {"hosts": {"w": {"ansible_host": "10.0.0.2"}}},
            },
        }
    }
    inventory = load_document(document)
    if inventory is not None:
        check_commands(inventory)


@SETTINGS
@given(name=st.text(max_size=30), where=st.sampled_from(["cluster", "host", "group"]))
def test_any_name_loads_or_is_refused(name: str, where: str) -> None:
    document = base_document()
    if where == "cluster":
        document["cluster"] = name
    elif where == "host":
        document["hosts"][name] = {"address": "10.0.0.3"}
    else:
        document["groups"] = {name: {"hosts": ["w"]}}
    inventory = load_document(document)
    if inventory is not None:
        check_commands(inventory)


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_as_a_whole_file_loads_or_is_refused(text: str) -> None:
    load_text(text)


def facts(name: str) -> Facts:
    return Facts(name, 8, 32 << 30, "x86_64", "6.1", "20.10", "overlay2", "/d", 1 << 40)


def check_commands(inventory: Inventory) -> None:
    image = ImageRef("sha256:abc", "daskfleet/c:1", "amd64")
    try:
        specs = build_specs(inventory, {n: facts(n) for n in inventory.hosts}, image)
    except PlanError:
        return
    for spec in (s for host_specs in specs.values() for s in host_specs):
        command = spec.to_docker_kwargs()["command"]
        assert all(isinstance(word, str) and "\0" not in word for word in command)
        assert shlex.split(shlex.join(command)) == command
        if spec.env_file is not None:
            assert command[:4] == ["sh", "-c", ENTRYPOINT_SCRIPT, "sh"]
            assert (
                parse_env_file(spec.env_file.render().decode()) == spec.env_file.values
            )
        else:
            assert command[0] == "dask"


env_values = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"),
    max_size=40,
)


@SETTINGS
@given(value=env_values)
def test_env_file_values_read_back_exactly_in_sh(value: str) -> None:
    env_file = EnvFile("/unused", {"VALUE": value, "OTHER": "x"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "env"
        path.write_bytes(env_file.render())
        shown = subprocess.run(
            ["sh", "-c", 'set -a; . "$1"; set +a; printf %s "$VALUE"', "sh", path],
            capture_output=True,
            check=True,
            cwd=tmp,
        )
        assert shown.stdout.decode(errors="surrogateescape") == value
        assert os.listdir(tmp) == ["env"]


file_names = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/\0"),
    min_size=1,
    max_size=30,
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)


@SETTINGS
@given(name=file_names, data=st.binary(max_size=100))
def test_ssh_file_commands_quote_every_path(name: str, data: bytes) -> None:
    from daskfleet.hostfiles import _APPEND, _WRITE

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "dir" / name
        for body in (_WRITE, _APPEND):
            line = shlex.join(script(body, str(target)))  # as SSHFleet.run sends it
            subprocess.run(["sh", "-c", line], input=data, check=True, cwd=tmp)
        assert target.read_bytes() == data + data
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert sorted(os.listdir(Path(tmp) / "dir")) == [name]

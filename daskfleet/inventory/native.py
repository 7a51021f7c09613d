"""The native inventory format: ``cluster``, ``defaults``, ``groups``, ``hosts``.

Precedence, lowest first: built-in defaults, ``defaults``, each group the
host belongs to in the order the groups are written (a later group wins),
the host's own entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daskfleet.errors import InventoryError, Location
from daskfleet.inventory.model import Inventory
from daskfleet.inventory.resolve import (
    FleetContext,
    HostEntry,
    Settings,
    build_inventory,
    merge,
    parse_setting,
)
from daskfleet.inventory.validate import (
    CLUSTER_SETTINGS,
    HOST_VARIABLES,
    PER_HOST_VARIABLES,
    Context,
    check_keys,
    check_name,
    did_you_mean,
    expect_mapping,
    fail,
    unknown_name_error,
)
from daskfleet.inventory.yamlpos import Node

_SECTIONS = ("defaults", "groups", "hosts")
TOP_LEVEL_KEYS = (*CLUSTER_SETTINGS, *_SECTIONS)

_SCHEDULER_HINT = "add roles: [scheduler] to the host that should run the scheduler"


@dataclass(frozen=True)
class _Group:
    name: str
    members: tuple[str, ...]
    settings: Settings


def load_native(root: Node, path: Path) -> Inventory:
    """Check a native inventory document and resolve every host."""
    expected = "a mapping with cluster, hosts and optionally defaults and groups"
    top = expect_mapping(root, "", expected)
    _check_top_level(root)
    for required in ("cluster", "hosts"):
        if required not in top:
            _missing(required, root.location)
    ctx = Context(path.parent)

    cluster_settings = {
        key: parse_setting(key, node, key, "inventory", ctx, CLUSTER_SETTINGS)
        for key, node in top.items()
        if key in CLUSTER_SETTINGS
    }
    defaults: Settings = {}
    if "defaults" in top:
        defaults = _variables(top["defaults"], "defaults", "defaults", ctx)
    hosts = _hosts(top["hosts"], ctx)
    groups = _groups(top["groups"], hosts, ctx) if "groups" in top else []

    entries = [_entry(host, defaults, groups) for host in hosts]
    fleet = FleetContext(top["hosts"].location, "hosts", _SCHEDULER_HINT)
    members = {group.name: group.members for group in groups}
    return build_inventory(path, cluster_settings, entries, members, fleet)


def _check_top_level(root: Node) -> None:
    for key, location, _ in root.entries():
        if key in TOP_LEVEL_KEYS:
            continue
        if key in HOST_VARIABLES:
            raise InventoryError(
                f"unknown key {key!r} at the top level; {key} is a host variable",
                location=location,
                key_path=key,
                hint=f"set it for every host under defaults: ({key}: ...)",
            )
        raise unknown_name_error(key, location, key, TOP_LEVEL_KEYS)


def _missing(key: str, location: Location) -> None:
    hints = {
        "cluster": "add a line such as `cluster: prod`; it names the containers",
        "hosts": "add hosts: with one entry per machine, e.g. node1: {address: …}",
    }
    raise InventoryError(
        f"expected the key {key!r} at the top level, found none",
        location=location,
        hint=hints[key],
    )


def _variables(
    node: Node, key_path: str, source: str, ctx: Context, per_host: bool = False
) -> Settings:
    if node.value is None:
        return {}
    expect_mapping(node, key_path, "a mapping of variable names to values")
    settings: Settings = {}
    for key, location, value in node.entries():
        path = f"{key_path}.{key}"
        _check_variable_name(key, location, path, per_host)
        settings[key] = parse_setting(key, value, path, source, ctx)
    return settings


def _check_variable_name(
    key: str, location: Location, key_path: str, per_host: bool
) -> None:
    if key in PER_HOST_VARIABLES and not per_host:
        raise InventoryError(
            f"expected {key!r} only on a host, found it shared by several hosts",
            location=location,
            key_path=key_path,
            hint=f"set {key} in each host's own entry under hosts:",
        )
    if key in HOST_VARIABLES:
        return
    if key in CLUSTER_SETTINGS:
        raise InventoryError(
            f"expected {key!r} at the top level: it is a cluster setting",
            location=location,
            key_path=key_path,
            hint=f"move {key} to the top of the file, next to cluster:",
        )
    raise unknown_name_error(key, location, key_path, HOST_VARIABLES, "variable")


def _hosts(node: Node, ctx: Context) -> list[HostEntry]:
    hint = "write each host as `node1: {address: 10.0.0.11}`, or `node1:` alone"
    if node.mapping() is None:
        fail(node, "hosts", "a mapping of host names to their variables", hint)
    entries: list[HostEntry] = []
    for name, location, value in node.entries():
        path = f"hosts.{name}"
        check_name(name, location, path, "host name")
        if value.value is not None and value.mapping() is None:
            fail(value, path, "a mapping of variables, or nothing", hint)
        settings = _variables(value, path, "host", ctx, per_host=True)
        entries.append(HostEntry(name, location, path, settings))
    return entries


def _groups(node: Node, hosts: list[HostEntry], ctx: Context) -> list[_Group]:
    expect_mapping(node, "groups", "a mapping of group names to groups")
    groups: list[_Group] = []
    for name, location, value in node.entries():
        path = f"groups.{name}"
        check_name(name, location, path, "group name")
        if name == "all":
            raise InventoryError(
                "expected a group name other than 'all', which means every host",
                location=location,
                key_path=path,
                hint="put variables for every host under defaults:",
            )
        groups.append(_group(name, value, path, hosts, ctx))
    return groups


def _group(
    name: str, node: Node, key_path: str, hosts: list[HostEntry], ctx: Context
) -> _Group:
    entries = expect_mapping(node, key_path, "a group: {hosts: [...], vars: {...}}")
    check_keys(node, key_path, ("hosts", "vars"))
    members: list[str] = []
    if "hosts" in entries:
        members = _members(entries["hosts"], f"{key_path}.hosts", hosts)
    settings: Settings = {}
    if "vars" in entries:
        source = f"group {name}"
        settings = _variables(entries["vars"], f"{key_path}.vars", source, ctx)
    return _Group(name, tuple(members), settings)


def _members(node: Node, key_path: str, hosts: list[HostEntry]) -> list[str]:
    items = node.sequence()
    if items is None:
        fail(node, key_path, "a list of host names", "example: hosts: [gpu1, gpu2]")
    known = [host.name for host in hosts]
    members: list[str] = []
    for index, item in enumerate(items):
        path = f"{key_path}[{index}]"
        name = item.text if isinstance(item.value, (str, int, float)) else None
        if name is None:
            fail(item, path, "a host name")
        if name not in known:
            raise InventoryError(
                f"expected a host defined under hosts:, found {name!r}",
                location=item.location,
                key_path=path,
                hint=did_you_mean(name, known) or f"add {name} under hosts:",
            )
        if name not in members:
            members.append(name)
    return members


def _entry(host: HostEntry, defaults: Settings, groups: list[_Group]) -> HostEntry:
    mine = [group for group in groups if host.name in group.members]
    settings = merge([defaults, *(g.settings for g in mine), host.settings])
    names = tuple(group.name for group in mine)
    return HostEntry(host.name, host.location, host.key_path, settings, names)

"""Ansible YAML inventories (``all:`` / ``children:`` / ``hosts:`` / ``vars:``).

Users point daskfleet at the inventory they already have, so variables it
does not know are ignored, except ``daskfleet_``-prefixed ones, which must
be spelt right. Precedence follows Ansible: ``all`` vars, then every other
group by depth (parents before children, same depth by name), then the
host's own vars. A group named ``scheduler`` gives its hosts that role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daskfleet.errors import InventoryError, Location
from daskfleet.inventory.model import Inventory
from daskfleet.inventory.resolve import (
    FleetContext,
    HostEntry,
    Setting,
    Settings,
    build_inventory,
    merge,
    parse_setting,
)
from daskfleet.inventory.validate import (
    CLUSTER_SETTINGS,
    HOST_VARIABLES,
    SAFE_NAME,
    Context,
    check_keys,
    check_name,
    expect_mapping,
    fail,
    unknown_name_error,
)
from daskfleet.inventory.yamlpos import Node

PREFIX = "daskfleet_"

#: Ansible connection variables and the daskfleet variable each one sets.
ANSIBLE_ALIASES = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_ssh_private_key_file": "identity_file",
    "ansible_private_key_file": "identity_file",
}

_GROUP_KEYS = ("hosts", "children", "vars")
_SCHEDULER_HINT = (
    "put one host in a group named scheduler, or set daskfleet_roles: [scheduler]"
)


def looks_like_ansible(root: Node) -> bool:
    """Whether ``root`` is an Ansible inventory rather than a native one."""
    top = root.mapping()
    if not top or "cluster" in top or "hosts" in top:
        return False
    if "all" in top:
        return True
    return all(
        bool(group.mapping()) and set(group.mapping() or {}) <= set(_GROUP_KEYS)
        for group in top.values()
    )


def load_ansible(root: Node, path: Path) -> Inventory:
    """Check an Ansible inventory and resolve every host."""
    reader = _Reader(Context(path.parent))
    reader.read_top(root)
    reader.add_scheduler_role()
    depths = reader.depths()
    groups = {name: reader.members(name) for name in reader.groups if name != "all"}
    entries = [reader.entry(name, depths, groups) for name in reader.host_places]
    settings = dict(reader.cluster)
    if "cluster" not in settings:
        settings["cluster"] = _cluster_from_file_name(path)
    fleet = FleetContext(root.location, "all", _SCHEDULER_HINT)
    return build_inventory(path, settings, entries, groups, fleet)


def _cluster_from_file_name(path: Path) -> Setting:
    location = Location(str(path))
    if not SAFE_NAME.match(path.stem):
        found = f"found none, and the file name {path.stem!r} is not one"
        raise InventoryError(
            f"expected a cluster name (daskfleet_cluster), {found}",
            location=location,
            hint="set daskfleet_cluster: NAME under all: vars:",
        )
    return Setting(path.stem, "file name", location, "all.vars.daskfleet_cluster")


@dataclass
class _Group:
    location: Location
    key_path: str
    settings: Settings = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


class _Reader:
    """Walks the group tree once, collecting groups, hosts and variables."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.groups: dict[str, _Group] = {}
        self.host_vars: dict[str, Settings] = {}
        self.host_places: dict[str, tuple[Location, str]] = {}
        self.cluster: Settings = {}

    def read_top(self, root: Node) -> None:
        expect_mapping(root, "", "a mapping of groups, starting with all:")
        top = root.mapping() or {}
        if "all" not in top:
            self.groups["all"] = _Group(root.location, "all")
        for name, location, node in root.entries():
            self.read_group(name, node, name, location)
            if name != "all":
                self.groups["all"].children.append(name)

    def read_group(
        self, name: str, node: Node, key_path: str, location: Location
    ) -> None:
        check_name(name, location, key_path, "group name")
        group = self.groups.setdefault(name, _Group(location, key_path))
        if node.value is None:
            return
        expected = "a group: a mapping with hosts, children and vars"
        entries = expect_mapping(node, key_path, expected)
        check_keys(node, key_path, _GROUP_KEYS)
        if "vars" in entries:
            source = f"group {name}"
            path = f"{key_path}.vars"
            group.settings.update(
                self.read_vars(entries["vars"], path, source, name == "all")
            )
        if "hosts" in entries:
            self.read_hosts(group, entries["hosts"], f"{key_path}.hosts")
        if "children" in entries:
            self.read_children(group, entries["children"], f"{key_path}.children")

    def read_hosts(self, group: _Group, node: Node, key_path: str) -> None:
        if node.value is None:
            return
        if node.mapping() is None:
            hint = "write hosts as a mapping: `hosts: {node1: , node2: }`"
            fail(node, key_path, "a mapping of host names to their variables", hint)
        for name, location, value in node.entries():
            path = f"{key_path}.{name}"
            check_name(name, location, path, "host name")
            self.host_places.setdefault(name, (location, path))
            settings = self.read_vars(value, path, "host", at_all=False)
            self.host_vars.setdefault(name, {}).update(settings)
            if name not in group.hosts:
                group.hosts.append(name)

    def read_children(self, group: _Group, node: Node, key_path: str) -> None:
        if node.value is None:
            return
        expect_mapping(node, key_path, "a mapping of child group names")
        for name, location, value in node.entries():
            path = f"{key_path}.{name}"
            if name == "all":
                raise InventoryError(
                    "expected a child group other than 'all' (the root)",
                    location=location,
                    key_path=path,
                )
            self.read_group(name, value, path, location)
            if name not in group.children:
                group.children.append(name)

    def read_vars(
        self, node: Node, key_path: str, source: str, at_all: bool
    ) -> Settings:
        if node.value is None:
            return {}
        expect_mapping(node, key_path, "a mapping of variable names to values")
        settings: Settings = {}
        spelt: dict[str, str] = {}
        for key, location, value in node.entries():
            path = f"{key_path}.{key}"
            name = _daskfleet_name(key, location, path, at_all)
            if name is None:
                continue
            if name in spelt:
                both = f"{spelt[name]!r} and {key!r}"
                raise InventoryError(
                    f"expected one value for {name}, found both {both}",
                    location=location,
                    key_path=path,
                    hint="keep only one of the two spellings",
                )
            spelt[name] = key
            if name in CLUSTER_SETTINGS:
                self.cluster[name] = parse_setting(
                    name, value, path, "all vars", self.ctx, CLUSTER_SETTINGS
                )
            else:
                settings[name] = parse_setting(name, value, path, source, self.ctx)
        return settings

    def add_scheduler_role(self) -> None:
        """A group named ``scheduler`` gives its hosts the scheduler role."""
        group = self.groups.get("scheduler")
        if group is not None and "roles" not in group.settings:
            role = Setting(
                ("scheduler",), "group scheduler", group.location, group.key_path
            )
            group.settings["roles"] = role

    def depths(self) -> dict[str, int]:
        """Each group's longest distance from ``all``; refuses cycles."""
        depth: dict[str, int] = {}
        self._visit("all", 0, (), depth)
        return depth

    def _visit(
        self, name: str, level: int, stack: tuple[str, ...], depth: dict[str, int]
    ) -> None:
        if name in stack:
            group = self.groups[name]
            cycle = " -> ".join((*stack[stack.index(name) :], name))
            raise InventoryError(
                f"expected groups without cycles, found {cycle}",
                location=group.location,
                key_path=group.key_path,
            )
        if depth.get(name, -1) >= level:
            return
        depth[name] = level
        for child in self.groups[name].children:
            self._visit(child, level + 1, (*stack, name), depth)

    def members(self, name: str) -> tuple[str, ...]:
        """Hosts of group ``name`` and of all its descendants, in file order."""
        found: set[str] = set()
        pending = [name]
        seen: set[str] = set()
        while pending:
            group = pending.pop()
            if group in seen:
                continue
            seen.add(group)
            found.update(self.groups[group].hosts)
            pending.extend(self.groups[group].children)
        return tuple(host for host in self.host_places if host in found)

    def entry(
        self, host: str, depths: dict[str, int], groups: dict[str, tuple[str, ...]]
    ) -> HostEntry:
        mine = [name for name, members in groups.items() if host in members]
        ordered = sorted(mine, key=lambda name: (depths[name], name))
        layers = [self.groups["all"].settings]
        layers += [self.groups[name].settings for name in ordered]
        layers.append(self.host_vars.get(host, {}))
        location, key_path = self.host_places[host]
        return HostEntry(host, location, key_path, merge(layers), tuple(mine))


def _daskfleet_name(
    key: str, location: Location, key_path: str, at_all: bool
) -> str | None:
    """The daskfleet variable ``key`` sets, or None for a foreign variable."""
    if key in ANSIBLE_ALIASES:
        return ANSIBLE_ALIASES[key]
    if not key.startswith(PREFIX):
        return key if key in HOST_VARIABLES else None
    name = key[len(PREFIX) :]
    if name in HOST_VARIABLES:
        return name
    if name in CLUSTER_SETTINGS:
        if at_all:
            return name
        raise InventoryError(
            f"expected {key!r} under all: vars:, as it is a cluster setting",
            location=location,
            key_path=key_path,
            hint="move it to all: vars:",
        )
    choices = [PREFIX + known for known in (*HOST_VARIABLES, *CLUSTER_SETTINGS)]
    raise unknown_name_error(key, location, key_path, choices, "daskfleet variable")

"""From checked variables to hosts: precedence, defaults and fleet checks.

Both inventory formats reduce each host to layers of :class:`Setting`
objects, lowest precedence first; this module merges them, fills the
built-in defaults, records where each value came from and checks the fleet
as a whole (one scheduler, at least one worker, distinct addresses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daskfleet.errors import InventoryError, Location
from daskfleet.inventory.model import (
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_SCHEDULER_PORT,
    Host,
    Inventory,
    NotebookSettings,
)
from daskfleet.inventory.validate import HOST_VARIABLES, Context, Parser
from daskfleet.inventory.yamlpos import Node

_MAPPING_FIELDS = ("resources", "env", "labels")


@dataclass(frozen=True)
class Setting:
    """One checked value, where it was written and what it counts as."""

    value: object
    source: str
    location: Location
    key_path: str


Settings = dict[str, Setting]


def parse_setting(
    name: str,
    node: Node,
    key_path: str,
    source: str,
    ctx: Context,
    schema: Mapping[str, Parser] = HOST_VARIABLES,
) -> Setting:
    """Check ``node`` as variable ``name`` and remember where it came from."""
    value = schema[name](node, key_path, ctx)
    return Setting(value, source, node.location, key_path)


def merge(layers: Iterable[Settings]) -> Settings:
    """Later layers win, variable by variable."""
    merged: Settings = {}
    for layer in layers:
        merged.update(layer)
    return merged


@dataclass(frozen=True)
class HostEntry:
    """A host as the file wrote it: name, place and merged settings."""

    name: str
    location: Location
    key_path: str
    settings: Settings
    groups: tuple[str, ...] = ()


def build_host(entry: HostEntry) -> Host:
    """The :class:`Host` for ``entry``, with built-in defaults filled in."""
    fields: dict[str, Any] = {k: s.value for k, s in entry.settings.items()}
    sources = {k: s.source for k, s in entry.settings.items()}
    if "address" not in fields:
        fields["address"], sources["address"] = entry.name, "host name"
    for name in ("port", "roles"):
        sources.setdefault(name, "default")
    for name in _MAPPING_FIELDS:
        if name in fields:
            fields[name] = MappingProxyType(fields[name])
    return Host(
        name=entry.name,
        groups=entry.groups,
        sources=MappingProxyType(sources),
        **fields,
    )


@dataclass(frozen=True)
class FleetContext:
    """Where to point and what to suggest when the fleet as a whole is wrong."""

    location: Location
    key_path: str
    scheduler_hint: str


def build_inventory(
    path: Path,
    cluster_settings: Settings,
    entries: list[HostEntry],
    groups: Mapping[str, tuple[str, ...]],
    fleet: FleetContext,
) -> Inventory:
    """Check the fleet and cluster settings and assemble the inventory."""
    if not entries:
        raise InventoryError(
            "expected at least one host, found none",
            location=fleet.location,
            key_path=fleet.key_path,
        )
    hosts = {entry.name: build_host(entry) for entry in entries}
    _check_roles(entries, hosts, fleet)
    _check_addresses(entries, hosts)
    _check_ports(cluster_settings)
    _check_notebook_host(cluster_settings, hosts)
    settings: dict[str, Any] = {k: s.value for k, s in cluster_settings.items()}
    return Inventory(
        path=str(path),
        hosts=MappingProxyType(hosts),
        groups=MappingProxyType(dict(groups)),
        **settings,
    )


def _check_roles(
    entries: list[HostEntry], hosts: dict[str, Host], fleet: FleetContext
) -> None:
    schedulers = [e for e in entries if hosts[e.name].is_scheduler]
    if not schedulers:
        raise InventoryError(
            "expected exactly one host with the scheduler role, found none",
            location=fleet.location,
            key_path=fleet.key_path,
            hint=fleet.scheduler_hint,
        )
    if len(schedulers) > 1:
        names = ", ".join(e.name for e in schedulers)
        second = schedulers[1].settings["roles"]
        raise InventoryError(
            f"expected exactly one host with the scheduler role, found {names}",
            location=second.location,
            key_path=second.key_path,
            hint="keep the scheduler role on one host, give the others [worker]",
        )
    if not any(h.is_worker for h in hosts.values()):
        roles = schedulers[0].settings["roles"]
        raise InventoryError(
            "expected at least one host with the worker role, found none",
            location=roles.location,
            key_path=roles.key_path,
            hint="add a worker, or give the scheduler roles: [scheduler, worker]",
        )


def _check_addresses(entries: list[HostEntry], hosts: dict[str, Host]) -> None:
    seen: dict[str, str] = {}
    for entry in entries:
        address = hosts[entry.name].address.lower()
        first = seen.setdefault(address, entry.name)
        if first == entry.name:
            continue
        setting = entry.settings.get("address")
        both = f"{address!r} for both {first} and {entry.name}"
        raise InventoryError(
            f"expected a different address for each host, found {both}",
            location=setting.location if setting else entry.location,
            key_path=setting.key_path if setting else entry.key_path,
            hint="each host is one machine; remove the duplicate or fix its address",
        )


def _check_ports(settings: Settings) -> None:
    scheduler = settings.get("scheduler_port")
    dashboard = settings.get("dashboard_port")
    scheduler_port = scheduler.value if scheduler else DEFAULT_SCHEDULER_PORT
    dashboard_port = dashboard.value if dashboard else DEFAULT_DASHBOARD_PORT
    if scheduler_port != dashboard_port:
        return
    culprit = dashboard or scheduler
    assert culprit is not None  # the built-in defaults differ
    found = f"found {scheduler_port} for both"
    raise InventoryError(
        f"expected scheduler_port and dashboard_port to differ, {found}",
        location=culprit.location,
        key_path=culprit.key_path,
        hint="both listen on the scheduler host; pick another dashboard_port",
    )


def _check_notebook_host(settings: Settings, hosts: Mapping[str, Host]) -> None:
    notebook = settings.get("notebook")
    if notebook is None or not isinstance(notebook.value, NotebookSettings):
        return
    name = notebook.value.host
    if name in hosts:
        return
    raise InventoryError(
        f"expected notebook.host to name a host of the inventory, found {name!r}",
        location=notebook.location,
        key_path=f"{notebook.key_path}.host",
        hint=f"one of: {', '.join(hosts)}",
    )

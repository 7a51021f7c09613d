"""The variables a task sees on one host, and a play's host-variable overrides.

Lowest to highest: the inventory's host variables and names such as
``inventory_hostname``; the play's ``vars:``; facts; registered results;
``--extra-vars``. A play variable (or extra variable) named like a
daskfleet host variable (``volumes``, ``env``, ``cpus``, ...) also changes
that variable for the play's hosts, so the plan uses it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daskfleet.deploy.run import dashboard_url
from daskfleet.errors import InventoryError, Location, PlaybookError
from daskfleet.inventory.model import Host, Inventory, Volume
from daskfleet.inventory.validate import HOST_VARIABLES, Context
from daskfleet.inventory.yamlpos import Node
from daskfleet.playbook import templating
from daskfleet.playbook.model import Play
from daskfleet.specs import scheduler_address

#: Host variables a play may set for its hosts: what placement reads.
OVERRIDABLE = (
    "cpus",
    "memory",
    "gpus",
    "gpu_worker",
    "rmm_pool_size",
    "device_memory_limit",
    "nworkers",
    "nthreads",
    "resources",
    "volumes",
    "env",
    "labels",
)
#: Names every task can read besides the host variables.
MAGIC_NAMES = frozenset(
    {
        "inventory_hostname",
        "group_names",
        "groups",
        "cluster",
        "scheduler_address",
        "dashboard_url",
        "facts",
    }
)
KNOWN_NAMES = MAGIC_NAMES | frozenset(HOST_VARIABLES) | templating.BUILTIN_NAMES
_EXTRA = Location("--extra-vars")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Volume):
        return str(value)
    return value


def inventory_variables(inventory: Inventory, host: Host) -> dict[str, Any]:
    """What the inventory says about ``host``, as template variables."""
    groups = {
        "all": list(inventory.hosts),
        "scheduler": [inventory.scheduler.name],
        "workers": [h.name for h in inventory.workers],
        **_plain(inventory.groups),
    }
    return {
        **{name: _plain(getattr(host, name)) for name in HOST_VARIABLES},
        "inventory_hostname": host.name,
        "group_names": list(host.groups),
        "groups": groups,
        "cluster": inventory.cluster,
        "scheduler_address": scheduler_address(inventory),
        "dashboard_url": dashboard_url(inventory),
    }


def render_play_vars(play: Play, base: Mapping[str, Any]) -> dict[str, Any]:
    """The play's ``vars:`` rendered in order; each may use those before it."""
    seen = dict(base)
    own: dict[str, Any] = {}
    for name, value in play.vars.items():
        own[name] = templating.render(value, seen, play.var_locations[name])
        seen[name] = own[name]
    return own


@dataclasses.dataclass
class Variables:
    """Every source of variables for one run, combined per host on demand."""

    inventory: Inventory
    extra: Mapping[str, Any]
    #: Host name to registered result name to value.
    registered: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: Host name to its facts, once gathered.
    facts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def for_host(self, play: Play, host: Host) -> dict[str, Any]:
        base = {**inventory_variables(self.inventory, host), **self.extra}
        own = render_play_vars(play, base)
        return {
            **base,
            **own,
            "facts": self.facts.get(host.name, {}),
            **self.registered.get(host.name, {}),
            **self.extra,
        }

    def register(self, host: str, name: str, value: Any) -> None:
        self.registered.setdefault(host, {})[name] = value


def play_inventory(
    inventory: Inventory, play: Play, hosts: tuple[Host, ...], extra: Mapping[str, Any]
) -> Inventory:
    """The inventory with the play's host-variable overrides on ``hosts``."""
    wanted = {n: (v, play.var_locations[n]) for n, v in play.vars.items()}
    wanted.update({n: (v, _EXTRA) for n, v in extra.items()})
    wanted = {n: vl for n, vl in wanted.items() if n in OVERRIDABLE}
    if not wanted:
        return inventory
    changed = dict(inventory.hosts)
    for host in hosts:
        changed[host.name] = _override(inventory, play, host, wanted, extra)
    return dataclasses.replace(inventory, hosts=MappingProxyType(changed))


def _override(
    inventory: Inventory,
    play: Play,
    host: Host,
    wanted: Mapping[str, tuple[Any, Location]],
    extra: Mapping[str, Any],
) -> Host:
    base = {**inventory_variables(inventory, host), **extra}
    own = render_play_vars(play, base)
    context = Context(Path(inventory.path).parent)
    fields: dict[str, Any] = {}
    for name, (_, location) in wanted.items():
        rendered = extra[name] if name in extra else own[name]
        try:
            parsed = HOST_VARIABLES[name](_node(rendered, location), name, context)
        except InventoryError as exc:
            raise PlaybookError(
                f"{exc.detail} (for host {host.name})",
                location=location,
                key_path=f"vars.{name}",
                hint=exc.hint,
            ) from None
        if isinstance(parsed, dict):
            parsed = MappingProxyType(parsed)
        fields[name] = parsed
    sources = {**host.sources, **dict.fromkeys(fields, "play vars")}
    return dataclasses.replace(host, **fields, sources=MappingProxyType(sources))


def _node(value: Any, location: Location) -> Node:
    """A value as the inventory's parsers take it, placed at ``location``."""
    if isinstance(value, Mapping):
        return Node({str(k): _node(v, location) for k, v in value.items()}, location)
    if isinstance(value, list | tuple):
        return Node([_node(v, location) for v in value], location)
    text = (
        ""
        if value is None
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )
    return Node(value, location, text=text)

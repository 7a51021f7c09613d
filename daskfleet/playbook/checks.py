"""Checks that need the inventory: host patterns and the names templates use.

They run after loading and before any task, so a pattern that matches no
host or a template that reads a variable nothing defines stops the run with
the file and line, as loading errors do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from daskfleet.errors import Location, PlaybookError
from daskfleet.inventory.model import Host, Inventory
from daskfleet.inventory.validate import did_you_mean
from daskfleet.playbook import templating
from daskfleet.playbook.model import Play, Playbook, Task
from daskfleet.playbook.module import registered_modules
from daskfleet.playbook.variables import KNOWN_NAMES, play_inventory

_SEPARATORS = re.compile(r"[,:]")


def select_hosts(inventory: Inventory, pattern: str) -> tuple[Host, ...]:
    """Hosts of an Ansible-style pattern: ``a:b`` or ``a,b``, ``!x``, ``&y``.

    Terms are names, groups, roles or globs as ``--limit`` takes them; a
    ``&`` term keeps only hosts it also matches.
    """
    terms = [t.strip() for t in _SEPARATORS.split(pattern) if t.strip()]
    union = [t for t in terms if not t.startswith("&")]
    hosts = inventory.select(",".join(union) or "all")
    for term in terms:
        if term.startswith("&"):
            keep = {h.name for h in inventory.select(term[1:])}
            hosts = tuple(h for h in hosts if h.name in keep)
    return hosts


def check_playbook(
    playbook: Playbook, inventory: Inventory, extra_vars: Mapping[str, Any]
) -> list[Inventory]:
    """Raise :class:`PlaybookError` for the first problem the inventory shows.

    Returns each play's inventory: with its host-variable overrides applied.
    """
    registered: set[str] = set()
    inventories = []
    for play in playbook.plays:
        _check_pattern(play, inventory)
        known = KNOWN_NAMES | set(extra_vars) | set(play.vars) | registered
        for name, value in play.vars.items():
            _check_names(templating.names_used(value), known, play.var_locations[name])
        for task in play.tasks:
            _check_task(task, known | registered)
            if task.register:
                registered.add(task.register)
        hosts = select_hosts(inventory, play.hosts)
        inventories.append(play_inventory(inventory, play, hosts, extra_vars))
    return inventories


def _check_pattern(play: Play, inventory: Inventory) -> None:
    if select_hosts(inventory, play.hosts):
        return
    terms = [t.strip().lstrip("!&") for t in _SEPARATORS.split(play.hosts)]
    empty = [t for t in terms if t and not inventory.select(t)]
    choices = [*inventory.hosts, *inventory.groups, "all", "workers", "scheduler"]
    hint = next(filter(None, (did_you_mean(t, choices) for t in empty)), None)
    why = f": {empty[0]!r} is no host, group or role" if empty else ""
    raise PlaybookError(
        f"the host pattern {play.hosts!r} matches no host of {inventory.path}{why}",
        location=play.hosts_location,
        key_path="hosts",
        hint=hint
        or f"hosts: {', '.join(inventory.hosts)}; groups: {', '.join(inventory.groups) or 'none'}",
    )


def _check_task(task: Task, known: Iterable[str]) -> None:
    known = set(known)
    expressions = registered_modules()[task.module].expressions
    for name, value in task.args.items():
        where = task.arg_locations.get(name, task.location)
        if name in expressions:
            for item in value:
                used = templating.names_used(item, expression=True)
                _check_names(used, known, where)
        else:
            _check_names(templating.names_used(value), known, where)
    for condition in task.when:
        used = templating.names_used(condition, expression=True)
        _check_names(used, known, task.location)
    own = {task.register} if task.register else set()
    for condition in (*(task.changed_when or ()), *(task.failed_when or ())):
        used = templating.names_used(condition, expression=True)
        _check_names(used, known | own, task.location)


def _check_names(used: set[str], known: AbstractSet[str], location: Location) -> None:
    unknown = sorted(used - known)
    if not unknown:
        return
    name = unknown[0]
    raise PlaybookError(
        f"undefined variable {name!r}: no inventory variable, vars:, --extra-vars or earlier register: defines it",
        location=location,
        hint=did_you_mean(name, known)
        or "define it under the play's vars:, or pass --extra-vars NAME=VALUE",
    )

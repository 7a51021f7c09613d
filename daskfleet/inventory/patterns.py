"""Host patterns as users write them after ``--limit``."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daskfleet.inventory.model import Host, Inventory


def match_hosts(inventory: Inventory, pattern: str | None) -> tuple[Host, ...]:
    """Hosts selected by a comma-separated list of names, groups or globs.

    A term starting with ``!`` removes what it matches. ``all`` (or no
    pattern) is every host. Order follows the inventory.
    """
    if pattern is None or pattern.strip() in ("", "all"):
        return tuple(inventory.hosts.values())
    chosen: set[str] = set()
    terms = [t.strip() for t in pattern.split(",") if t.strip()]
    positive = [t for t in terms if not t.startswith("!")]
    if not positive:
        chosen = set(inventory.hosts)
    for term in positive:
        chosen |= _names_for(inventory, term)
    for term in terms:
        if term.startswith("!"):
            chosen -= _names_for(inventory, term[1:])
    return tuple(h for name, h in inventory.hosts.items() if name in chosen)


def _names_for(inventory: Inventory, term: str) -> set[str]:
    if term == "all":
        return set(inventory.hosts)
    names = {n for n in inventory.hosts if fnmatchcase(n, term)}
    for group, members in inventory.groups.items():
        if fnmatchcase(group, term):
            names |= set(members)
    for role in ("scheduler", "worker"):
        if term in (role, role + "s"):
            names |= {n for n, h in inventory.hosts.items() if role in h.roles}
    return names

"""A playbook as loaded and checked: plays of tasks, each naming one module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daskfleet.errors import Location

#: A ``serial`` step: a number of hosts, or a percentage such as ``"25%"``.
SerialStep = int | str


@dataclass(frozen=True)
class Task:
    """One module call with its arguments and the keywords that steer it."""

    name: str
    module: str
    args: Mapping[str, Any]
    location: Location
    #: Where each argument was written, for errors found while running.
    arg_locations: Mapping[str, Location] = field(default_factory=dict)
    when: tuple[str, ...] = ()
    #: Conditions on the result (under its ``register`` name) that decide
    #: changed / failed instead of the module; host modules only.
    changed_when: tuple[str, ...] | None = None
    failed_when: tuple[str, ...] | None = None
    register: str | None = None
    tags: frozenset[str] = frozenset()
    ignore_errors: bool = False
    run_once: bool = False

    def selected(self, tags: frozenset[str]) -> bool:
        """Whether ``--tags`` lets this task run (``always`` always runs)."""
        return not tags or bool(self.tags & (tags | {"always"}))


@dataclass(frozen=True)
class Play:
    """Tasks run in order on the hosts a pattern selects."""

    name: str
    hosts: str
    tasks: tuple[Task, ...]
    location: Location
    hosts_location: Location
    serial: tuple[SerialStep, ...] = ()
    max_fail_percentage: float | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    var_locations: Mapping[str, Location] = field(default_factory=dict)
    gather_facts: bool = False


@dataclass(frozen=True)
class Playbook:
    """The plays of one file, in order."""

    path: Path
    plays: tuple[Play, ...]

"""What a playbook module is: a name, a typed argument spec and a run method.

Host modules (``command``, ``copy``, ...) run on every host of a task in
parallel, over the fleet's SSH connections. Cluster modules (``image``,
``workers``, ``health``, ...) run once per play on all of its hosts, on one
deploy context that the play's cluster tasks share, so facts, observation
and plan are computed once. Adding a module is one file in
``daskfleet/playbook/modules/`` with a class decorated by :func:`register`;
the package's files are imported when :func:`registered_modules` is first called.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from daskfleet.errors import Location

if TYPE_CHECKING:
    from daskfleet.deploy.context import DeployContext
    from daskfleet.inventory.model import Host
    from daskfleet.playbook.session import ClusterSession
    from daskfleet.remote_docker import FleetDocker
    from daskfleet.ssh import SSHFleet

ArgKind = Literal[
    "str", "int", "number", "bool", "list", "dict", "mode", "argv", "strings", "any"
]
_EXPECTED = {
    "str": "text",
    "int": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a mapping",
    "mode": "an octal mode such as '0644' (quoted)",
    "argv": "a command as a list of words, or a line split like a shell does",
    "strings": "text or a list of texts",
    "any": "a value",
}
_BOOLS = {"true": True, "yes": True, "false": False, "no": False}
_MODE = re.compile(r"^[0-7]{3,4}$")


@dataclass(frozen=True)
class Arg:
    """One argument of a module: its kind, whether it is needed, a default."""

    name: str
    kind: ArgKind = "str"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()

    def coerce(self, value: Any) -> Any:
        """``value`` as this argument's kind; ValueError says what was expected."""
        converted = _convert(self.kind, value)
        if self.choices and converted not in self.choices:
            raise ValueError(f"one of {', '.join(self.choices)}")
        return converted


def _convert(kind: ArgKind, value: Any) -> Any:
    if kind == "any":
        return value
    if (
        kind == "str"
        and isinstance(value, str | int | float)
        and not isinstance(value, bool)
    ):
        return str(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, str) and value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    if kind in ("int", "number") and not isinstance(value, bool):
        return _number(kind, value)
    if kind == "list" and isinstance(value, list):
        return value
    if kind == "dict" and isinstance(value, Mapping):
        return dict(value)
    if kind == "argv" and isinstance(value, str | list):
        words = shlex.split(value) if isinstance(value, str) else value
        if words and all(isinstance(w, str | int | float) for w in words):
            return [str(w) for w in words]
    if kind == "strings" and isinstance(value, str | list):
        items = [value] if isinstance(value, str) else value
        if items and all(isinstance(i, str | bool) for i in items):
            return [str(i) for i in items]
    if kind == "mode" and isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if _MODE.match(text):
            return text.rjust(4, "0")
    raise ValueError(_EXPECTED[kind])


def _number(kind: ArgKind, value: Any) -> int | float:
    try:
        number = float(value) if kind == "number" else int(value)
    except (TypeError, ValueError):
        raise ValueError(_EXPECTED[kind]) from None
    if kind == "int" and isinstance(value, float) and value != int(value):
        raise ValueError(_EXPECTED[kind])
    return number


@dataclass
class ModuleResult:
    """What a module did: changed or not, failed or not, and what it found."""

    changed: bool = False
    failed: bool = False
    skipped: bool = False
    msg: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    #: Cluster modules in check mode: the hosts that would change.
    changed_hosts: frozenset[str] | None = None

    def as_vars(self) -> dict[str, Any]:
        """The result as ``register:`` stores it."""
        return {
            "changed": self.changed,
            "failed": self.failed,
            "skipped": self.skipped,
            "msg": self.msg,
            **self.data,
        }


@dataclass(frozen=True)
class HostCall:
    """Everything a host module may use for one host."""

    host: Host
    args: Mapping[str, Any]
    check: bool
    fleet: SSHFleet
    docker: FleetDocker
    variables: Mapping[str, Any]
    base_dir: Path
    #: Where the task is written, for errors in expressions.
    location: Location


@dataclass(frozen=True)
class ClusterCall:
    """Everything a cluster module may use: the play's shared deploy context."""

    ctx: DeployContext
    session: ClusterSession
    args: Mapping[str, Any]

    @property
    def check(self) -> bool:
        return self.ctx.options.check


class Module:
    """The common part of host and cluster modules."""

    name: ClassVar[str]
    scope: ClassVar[Literal["host", "cluster"]]
    args: ClassVar[tuple[Arg, ...]] = ()
    #: The argument a value that is not a mapping fills (``command: [ls]``).
    free_form: ClassVar[str | None] = None
    #: False: in check mode the task is skipped (it cannot predict itself).
    runs_in_check: ClassVar[bool] = True
    #: Workers: also reach hosts that left the inventory since the last deploy.
    handles_departed: ClassVar[bool] = False
    #: Arguments that are expressions (``assert``'s ``that``), not templates.
    expressions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        """Raise ValueError for arguments that do not fit together."""

    @classmethod
    def arg_named(cls, name: str) -> Arg | None:
        return next((a for a in cls.args if a.name == name), None)


class HostModule(Module, ABC):
    scope = "host"

    @abstractmethod
    def run(self, call: HostCall) -> ModuleResult: ...


class ClusterModule(Module, ABC):
    scope = "cluster"

    @abstractmethod
    def run(self, call: ClusterCall) -> ModuleResult: ...


_REGISTRY: dict[str, type[Module]] = {}
_LOADED = False


M = TypeVar("M", bound=type[Module])


def register(cls: M) -> M:
    """Make ``cls`` usable in playbooks under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two playbook modules are called {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_modules() -> Mapping[str, type[Module]]:
    """Every registered module by name (the built-in ones loaded first)."""
    global _LOADED
    if not _LOADED:
        package = importlib.import_module("daskfleet.playbook.modules")
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
        _LOADED = True
    return _REGISTRY

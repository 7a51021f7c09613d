"""The deploy plan: what to do on each host to go from observed to wanted.

:func:`plan_deploy` compares the containers :func:`~daskfleet.specs.build_specs`
wants with the containers of the cluster found on each host (by the
``daskfleet.cluster`` label) and gives one :class:`Action` per container:

- ``create``: wanted, not there.
- ``unchanged``: there, running, with the wanted spec hash and image.
- ``start``: there with the wanted hash but not running.
- ``replace``: there with another hash or image; the reasons name the
  settings that differ, read from the ``daskfleet.spec`` label.
- ``remove``: a container of this cluster that no spec wants, such as a
  worker left over after a host lost its worker role.

Workers are retired through the scheduler before their container stops, so
their ``replace`` and ``remove`` actions carry ``retire_first``.

Only reachable hosts can be observed. A host taken out of the inventory is
not contacted, so its containers stay until it is torn down by hand; if the
caller passes observed state for such a host anyway, its containers are
planned for removal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from daskfleet.budget import HostFacts, format_number
from daskfleet.images.distribution import Distribution
from daskfleet.inventory.model import Inventory
from daskfleet.notebook import (
    NOTEBOOK_ROLE,
    NotebookImage,
    add_notebook_spec,
    leaves_notebook_alone,
)
from daskfleet.sizes import format_size
from daskfleet.specs import (
    LABEL_CLUSTER,
    LABEL_ROLE,
    LABEL_SPEC,
    LABEL_SPEC_HASH,
    ContainerSpec,
    ImageRef,
    build_specs,
)
from daskfleet.tls import secure_specs

ActionKind = Literal["create", "replace", "start", "remove", "unchanged"]

#: Docker states in which a container counts as up.
RUNNING_STATES = frozenset({"running", "restarting"})
#: Summary fields shown as sizes in reasons.
_SIZE_FIELDS = frozenset({"memory", "memory_limit"})
_SHORT_ID = 19  # "sha256:" and 12 hex digits, as `docker images` shows them


@dataclass(frozen=True)
class ObservedContainer:
    """A container of the cluster as Docker reports it."""

    name: str
    image_id: str
    #: Docker's state: running, exited, created, restarting, paused, dead.
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def role(self) -> str | None:
        return self.labels.get(LABEL_ROLE)

    @property
    def spec_hash(self) -> str | None:
        return self.labels.get(LABEL_SPEC_HASH)

    @property
    def summary(self) -> dict[str, Any] | None:
        """The ``daskfleet.spec`` label, or None when missing or unreadable."""
        try:
            value = json.loads(self.labels[LABEL_SPEC])
        except (KeyError, ValueError):
            return None
        return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Observed:
    """What one host has: the cluster's containers and the image IDs present."""

    host: str
    containers: tuple[ObservedContainer, ...] = ()
    image_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Action:
    """One step on one host's container."""

    kind: ActionKind
    host: str
    name: str
    role: str | None
    spec: ContainerSpec | None = None
    observed: ObservedContainer | None = None
    reasons: tuple[str, ...] = ()
    retire_first: bool = False

    @property
    def changes(self) -> bool:
        return self.kind != "unchanged"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; environment values never appear, only their names."""
        return {
            "kind": self.kind,
            "host": self.host,
            "name": self.name,
            "role": self.role,
            "reasons": list(self.reasons),
            "retire_first": self.retire_first,
            "spec_hash": self.spec.spec_hash if self.spec else None,
            "spec": self.spec.summary if self.spec else None,
        }


@dataclass(frozen=True)
class Plan:
    """Actions per host, in inventory order, and the hosts lacking the image."""

    cluster: str
    image: ImageRef
    actions: Mapping[str, tuple[Action, ...]]
    #: Hosts with a container to run whose Docker lacks the image.
    needs_image: tuple[str, ...] = ()
    #: Bytes each host needs; filled in by the image layer.
    transfer_bytes: Mapping[str, int] = field(default_factory=dict)
    #: Who sends the image to whom; filled in by the image layer.
    distribution: Distribution | None = None
    #: Inventory hosts without facts (unreachable): nothing is planned there.
    unplanned: tuple[str, ...] = ()

    @property
    def all_actions(self) -> tuple[Action, ...]:
        return tuple(a for host in self.actions.values() for a in host)

    @property
    def changes(self) -> int:
        """How many actions change something."""
        return sum(a.changes for a in self.all_actions)

    @property
    def changed_hosts(self) -> tuple[str, ...]:
        return tuple(
            h for h, acts in self.actions.items() if any(a.changes for a in acts)
        )

    @property
    def specs(self) -> tuple[ContainerSpec, ...]:
        """Every wanted container."""
        return tuple(a.spec for a in self.all_actions if a.spec is not None)

    def of_kind(self, kind: ActionKind) -> tuple[Action, ...]:
        return tuple(a for a in self.all_actions if a.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "image": {"id": self.image.id, "name": self.image.name},
            "changes": self.changes,
            "needs_image": list(self.needs_image),
            "transfer_bytes": dict(self.transfer_bytes),
            "distribution": (
                self.distribution.to_dict() if self.distribution else None
            ),
            "unplanned": list(self.unplanned),
            "hosts": {
                host: [a.to_dict() for a in acts] for host, acts in self.actions.items()
            },
        }


def plan_deploy(
    inventory: Inventory,
    facts: Mapping[str, HostFacts],
    observed: Mapping[str, Observed],
    image: ImageRef,
    notebook: NotebookImage | None = None,
    certificates: Mapping[str, str] | None = None,
) -> Plan:
    """Actions that bring every host with facts to the wanted containers.

    A host missing from ``observed`` counts as having nothing. Without a
    ``notebook`` image the inventory's notebook container is left as it
    is; with one it is planned like the others. With ``security: tls``,
    ``certificates`` gives each host's certificate fingerprint. Raises
    :class:`~daskfleet.errors.PlanError` when the cluster does not fit.
    """
    wanted = build_specs(inventory, facts, image)
    if inventory.security == "tls":
        wanted = secure_specs(wanted, inventory.cluster, certificates or {})
    add_notebook_spec(wanted, inventory, notebook)
    skipped = (NOTEBOOK_ROLE,) if leaves_notebook_alone(inventory, notebook) else ()
    hosts = [*wanted, *(h for h in observed if h not in wanted)]
    actions = {
        host: plan_host(
            host,
            wanted.get(host, []),
            _cluster_containers(observed.get(host), inventory.cluster, skipped),
        )
        for host in hosts
    }
    needs_image = tuple(
        host
        for host, specs in wanted.items()
        if specs and image.id not in _image_ids(observed.get(host))
    )
    unplanned = tuple(h for h in inventory.hosts if h not in facts)
    return Plan(inventory.cluster, image, actions, needs_image, unplanned=unplanned)


def plan_host(
    host: str, specs: Sequence[ContainerSpec], found: Sequence[ObservedContainer]
) -> tuple[Action, ...]:
    """Actions for one host: the wanted containers in order, then removals."""
    by_name = {c.name: c for c in found}
    actions = [_action_for(host, spec, by_name.get(spec.name)) for spec in specs]
    wanted = {spec.name for spec in specs}
    actions += [
        Action(
            "remove",
            host,
            c.name,
            c.role,
            observed=c,
            reasons=("not in the plan",),
            retire_first=c.role == "worker",
        )
        for c in sorted(found, key=lambda c: c.name)
        if c.name not in wanted
    ]
    return tuple(actions)


def describe_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> tuple[str, ...]:
    """Why a container is replaced, one line per differing setting."""
    if old is None:
        return ("the running container has no readable daskfleet.spec label",)
    reasons = tuple(
        _describe(key, old.get(key), new.get(key))
        for key in sorted({*old, *new})
        if old.get(key) != new.get(key)
    )
    return reasons or ("settings outside the summary changed (environment values)",)


def _action_for(
    host: str, spec: ContainerSpec, found: ObservedContainer | None
) -> Action:
    if found is None:
        return Action("create", host, spec.name, spec.role, spec)
    if found.spec_hash != spec.spec_hash:
        return _replace(
            host, spec, found, describe_changes(found.summary, spec.summary)
        )
    if found.image_id != spec.image and spec.image_key is None:
        # Same labels on another image: the container was made outside daskfleet.
        reason = f"image {_short(found.image_id)} -> {_short(spec.image)}"
        return _replace(host, spec, found, (reason,))
    kind: ActionKind = "unchanged" if found.running else "start"
    reasons = () if found.running else (f"container is {found.state}",)
    return Action(kind, host, spec.name, spec.role, spec, found, reasons)


def _replace(
    host: str, spec: ContainerSpec, found: ObservedContainer, reasons: tuple[str, ...]
) -> Action:
    retire = spec.role == "worker"
    return Action("replace", host, spec.name, spec.role, spec, found, reasons, retire)


def _describe(key: str, old: Any, new: Any) -> str:
    if key == "image":
        return f"image {_short(old)} -> {_short(new)}"
    if key in _SIZE_FIELDS and isinstance(old, int) and isinstance(new, int):
        return f"{key} {format_size(old)} -> {format_size(new)}"
    return f"{key} {_plain(old)} -> {_plain(new)}"


def _plain(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "(none)"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format_number(value)
    return json.dumps(value, sort_keys=True)


def _short(image: Any) -> str:
    """An image ID as `docker images` shows it; a versions key as it is."""
    if not image:
        return "(none)"
    text = str(image)
    return text[:_SHORT_ID] if text.startswith("sha256:") else f"({text})"


def _cluster_containers(
    observed: Observed | None, cluster: str, skipped_roles: tuple[str, ...] = ()
) -> tuple[ObservedContainer, ...]:
    if observed is None:
        return ()
    return tuple(
        c
        for c in observed.containers
        if c.labels.get(LABEL_CLUSTER) == cluster and c.role not in skipped_roles
    )


def _image_ids(observed: Observed | None) -> frozenset[str]:
    return observed.image_ids if observed else frozenset()

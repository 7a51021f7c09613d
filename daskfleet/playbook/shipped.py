"""The playbooks that come with daskfleet (package data in daskfleet/playbooks)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from daskfleet.deploy.context import DeployEvents
from daskfleet.deploy.recap import Recap
from daskfleet.errors import DaskfleetError
from daskfleet.inventory.model import Inventory
from daskfleet.playbook.loader import load_playbook
from daskfleet.playbook.runner import PlayOptions, run_playbook

#: The shipped playbooks by name; ``daskfleet play deploy`` finds them too.
SHIPPED = ("deploy", "upgrade", "teardown")


def shipped_playbook(name: str) -> Path:
    """The path of the shipped playbook ``name`` (``deploy`` or ``deploy.yml``)."""
    stem = name.removesuffix(".yml")
    if stem not in SHIPPED:
        raise KeyError(name)
    return Path(str(resources.files("daskfleet") / "playbooks" / f"{stem}.yml"))


def run_shipped(
    name: str,
    inventory: Inventory,
    options: PlayOptions,
    events: DeployEvents | None = None,
) -> Recap:
    """Run a shipped playbook; return the deploy recap of its one play.

    This is how ``daskfleet deploy``, ``upgrade`` and ``down`` run. An error
    about the whole cluster (image build, capacity) is raised, as the
    commands always did.
    """
    recap = run_playbook(
        load_playbook(shipped_playbook(name)), inventory, options, events=events
    )
    if recap.error is not None:
        raise recap.error
    clusters = [c for play in recap.plays for c in play.clusters]
    if not clusters:
        raise DaskfleetError(f"the {name} playbook ran no cluster task")
    return clusters[0]

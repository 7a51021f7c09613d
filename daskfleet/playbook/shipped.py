"""The playbooks that come with daskfleet (package data in daskfleet/playbooks)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The shipped playbooks by name; ``daskfleet play deploy`` finds them too.
SHIPPED = ("deploy", "upgrade", "teardown")


def shipped_playbook(name: str) -> Path:
    """The path of the shipped playbook ``name`` (``deploy`` or ``deploy.yml``)."""
    stem = name.removesuffix(".yml")
    if stem not in SHIPPED:
        raise KeyError(name)
    return Path(str(resources.files("daskfleet") / "playbooks" / f"{stem}.yml"))

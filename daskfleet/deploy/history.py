"""Which hosts a cluster was last deployed to, kept on the controller.

A host deleted from the inventory is no longer visited, yet its worker
container still runs and still joins the scheduler. The controller keeps
the connection details of every host of the last deploy, so the next one
can reach a departed host, retire its workers and remove its containers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from daskfleet.inventory.model import Host
from daskfleet.paths import state_dir as state_dir  # re-exported for callers

logger = logging.getLogger(__name__)

_FIELDS = ("address", "user", "port", "identity_file", "known_hosts")


def _path(cluster: str) -> Path:
    return state_dir() / "clusters" / f"{cluster}.json"


def previous_hosts(cluster: str) -> dict[str, Host]:
    """Hosts recorded by the last deploy of ``cluster`` (none if unknown)."""
    path = _path(cluster)
    try:
        data = json.loads(path.read_text())
        return {
            name: Host(name=name, **fields) for name, fields in data["hosts"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable deploy history %s: %s", path, exc)
        return {}


def record_hosts(cluster: str, hosts: Iterable[Host]) -> None:
    """Remember ``hosts`` as the cluster's hosts (written atomically)."""
    path = _path(cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "cluster": cluster,
        "hosts": {h.name: {f: getattr(h, f) for f in _FIELDS} for h in hosts},
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)

"""The audit log: one JSON line per run that changed (or tried to change) a cluster.

Each line says who (user and controller host), when, what command, what
changed on each host, and the outcome. It is appended on the controller
(``<state dir>/audit.log``) and on every host the run reached
(``/var/lib/daskfleet/clusters/<cluster>/audit.log``), never rewritten.
Secrets are masked before the line is written.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daskfleet.envfiles import cluster_dir
from daskfleet.hostfiles import append_private_file
from daskfleet.inventory.model import Host
from daskfleet.locking import LockHolder
from daskfleet.masking import mask_data
from daskfleet.ssh import SSHFleet

if TYPE_CHECKING:  # the deploy package imports this module
    from daskfleet.deploy.recap import Recap

logger = logging.getLogger(__name__)


def local_audit_path() -> Path:
    from daskfleet.deploy.history import state_dir

    return state_dir() / "audit.log"


def remote_audit_path(cluster: str) -> str:
    return f"{cluster_dir(cluster)}/audit.log"


def audit_entry(
    holder: LockHolder,
    recap: Recap,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """The audit line of one run, secrets masked."""
    if error is not None:
        outcome = f"error: {type(error).__name__}: {error}"
    else:
        outcome = "ok" if recap.ok else "failed"
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "user": holder.user,
        "controller": holder.controller,
        "pid": holder.pid,
        "command": holder.command,
        "argv": shlex.join(sys.argv),
        "cluster": recap.cluster,
        "started": holder.since,
        "outcome": outcome,
        "changed": recap.changed,
        "hosts": {
            name: {"status": h.status, "changed": h.changed, "actions": h.actions}
            for name, h in recap.hosts.items()
        },
        "errors": list(recap.errors),
    }
    masked: dict[str, Any] = mask_data(entry)
    return masked


def append_audit(fleet: SSHFleet, hosts: Iterable[Host], entry: dict[str, Any]) -> None:
    """Append ``entry`` locally and on ``hosts``; a failure is only logged."""
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    _append_local(line)
    path = remote_audit_path(str(entry["cluster"]))

    def append(host: Host) -> None:
        append_private_file(fleet, host, path, line)

    for name, result in fleet.map(append, hosts).items():
        if result.error is not None:
            logger.warning("%s: audit log not written: %s", name, result.error)


def _append_local(line: bytes) -> None:
    path = local_audit_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as out:
            out.write(line)
    except OSError as exc:
        logger.warning("audit log %s not written: %s", path, exc)

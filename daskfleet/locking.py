"""The deploy lock: one run at a time may change a cluster.

The lock is a directory on the scheduler's host,
``/var/lib/daskfleet/clusters/<cluster>/lock``: ``mkdir`` either creates it
or fails, atomically, whoever races. Inside, ``holder`` says who holds it
(user, controller host, pid, time, command) and carries a random token, so
a run only ever removes its own lock. ``deploy``, ``upgrade`` and ``down``
take it; a second run waits up to ``wait`` seconds, then fails naming the
holder. A run that crashed leaves its lock behind; :func:`break_lock`
removes it on request.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from daskfleet.envfiles import cluster_dir
from daskfleet.errors import LockError
from daskfleet.hostfiles import drop_lock_dir, make_lock_dir, read_lock_dir
from daskfleet.inventory.model import Inventory
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)

#: Seconds between two attempts while waiting for a lock.
POLL_SECONDS = 1.0


def lock_path(cluster: str) -> str:
    return f"{cluster_dir(cluster)}/lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock; ``token`` tells this run's lock from another's."""

    user: str
    controller: str
    pid: int
    since: str
    command: str
    token: str = ""

    @classmethod
    def current(cls, command: str) -> LockHolder:
        """This process, about to run ``command``."""
        return cls(
            user=_user(),
            controller=socket.gethostname(),
            pid=os.getpid(),
            since=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=command,
            token=secrets.token_hex(16),
        )

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        """The holder a lock file names; None while it is still being written."""
        try:
            data = json.loads(text)
            return cls(
                **{k: data[k] for k in _FIELDS}, token=str(data.get("token", ""))
            )
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    def describe(self) -> str:
        return f"{self.user}@{self.controller} (pid {self.pid}, since {self.since}, {self.command})"

    def is_stale(self) -> bool:
        """True when it ran on this controller and its process is gone."""
        if self.controller != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


_FIELDS = ("user", "controller", "pid", "since", "command")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class LockState:
    """What the scheduler's host says: free, or held by someone."""

    host: str
    path: str
    held: bool
    holder: LockHolder | None = None

    def describe(self) -> str:
        if not self.held:
            return f"free ({self.host}:{self.path})"
        who = self.holder.describe() if self.holder else "a run still writing its name"
        return f"held by {who} ({self.host}:{self.path})"


def read_lock(fleet: SSHFleet, inventory: Inventory) -> LockState:
    """The cluster's lock as the scheduler's host has it now."""
    host, path = inventory.scheduler, lock_path(inventory.cluster)
    text = read_lock_dir(fleet, host, path)
    if text is None:
        return LockState(host.name, path, held=False)
    return LockState(host.name, path, held=True, holder=LockHolder.parse(text))


def break_lock(fleet: SSHFleet, inventory: Inventory) -> None:
    """Remove the cluster's lock, whoever holds it."""
    drop_lock_dir(fleet, inventory.scheduler, lock_path(inventory.cluster))
    logger.warning("broke the deploy lock of cluster %s", inventory.cluster)


@contextlib.contextmanager
def deploy_lock(
    fleet: SSHFleet, inventory: Inventory, command: str, *, wait: float = 0.0
) -> Iterator[LockHolder]:
    """Hold the cluster's lock for the ``with`` block; see the module."""
    holder = LockHolder.current(command)
    acquire(fleet, inventory, holder, wait)
    try:
        yield holder
    finally:
        release(fleet, inventory, holder)


def acquire(
    fleet: SSHFleet, inventory: Inventory, holder: LockHolder, wait: float
) -> None:
    """Take the lock, trying until ``wait`` seconds have passed."""
    host, path = inventory.scheduler, lock_path(inventory.cluster)
    deadline = time.monotonic() + wait
    while not make_lock_dir(fleet, host, path, holder.to_json()):
        if _took_over_stale(fleet, inventory):
            continue
        if time.monotonic() >= deadline:
            raise _held_error(inventory, read_lock(fleet, inventory), wait)
        logger.info("cluster %s is locked; waiting", inventory.cluster)
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
    logger.debug("took the deploy lock %s:%s", host.name, path)


def _took_over_stale(fleet: SSHFleet, inventory: Inventory) -> bool:
    """Break a lock left by a run of this controller whose process is gone.

    Only a lock still naming that dead run is removed (its token), so two
    runs that find the same stale lock cannot break each other's new one.
    """
    state = read_lock(fleet, inventory)
    stale = state.holder
    if stale is None or not stale.token or not stale.is_stale():
        return False
    logger.warning(
        "breaking the deploy lock of cluster %s left by %s, which is no longer running",
        inventory.cluster,
        stale.describe(),
    )
    path = lock_path(inventory.cluster)
    return drop_lock_dir(fleet, inventory.scheduler, path, stale.token)


def release(fleet: SSHFleet, inventory: Inventory, holder: LockHolder) -> None:
    """Give the lock back, if it is still ours; never raises."""
    path = lock_path(inventory.cluster)
    try:
        mine = drop_lock_dir(fleet, inventory.scheduler, path, holder.token)
    except Exception as exc:  # the run's own outcome matters more
        logger.warning("could not release the deploy lock %s: %s", path, exc)
        return
    if not mine:
        logger.warning("the deploy lock %s was broken by someone else", path)


def _held_error(inventory: Inventory, state: LockState, wait: float) -> LockError:
    waited = f" after waiting {wait:g} s" if wait else ""
    return LockError(
        f"cluster {inventory.cluster} is locked{waited}: {state.describe()}",
        hint=f"wait for that run to finish, or pass --lock-wait SECONDS; if it crashed, break the lock: daskfleet lock release {inventory.path}",
    )

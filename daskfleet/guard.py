"""What wraps every run that changes a cluster: the lock, then the audit line.

``deploy``, ``upgrade`` and ``down`` run their steps inside
:func:`guarded_run`: it takes the deploy lock on the scheduler's host
(waiting up to ``lock_wait`` seconds), and on the way out appends the run's
audit line, then releases the lock, whether the run succeeded, failed or
raised.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from daskfleet.audit import append_audit, audit_entry
from daskfleet.deploy.recap import Recap
from daskfleet.errors import HostError, LockError
from daskfleet.inventory.model import Host, Inventory
from daskfleet.locking import LockHolder, acquire, lock_path, release
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def guarded_run(
    fleet: SSHFleet,
    inventory: Inventory,
    command: str,
    recap: Recap,
    *,
    lock_wait: float = 0.0,
    lock_optional: bool = False,
    enabled: bool = True,
) -> Iterator[None]:
    """Lock the cluster and audit the run; see the module.

    With ``lock_optional`` (``down``), a scheduler host that cannot be
    reached only means running without the lock, with a warning; otherwise
    it raises :class:`LockError`. Not ``enabled`` (check mode): neither.
    """
    if not enabled:
        yield
        return
    holder = LockHolder.current(f"{command} {inventory.path}")
    locked = _acquire(fleet, inventory, holder, lock_wait, lock_optional)
    try:
        yield
    except BaseException as exc:
        _audit(fleet, inventory, holder, recap, exc)
        raise
    else:
        _audit(fleet, inventory, holder, recap, None)
    finally:
        if locked:
            release(fleet, inventory, holder)


def _acquire(
    fleet: SSHFleet,
    inventory: Inventory,
    holder: LockHolder,
    wait: float,
    optional: bool,
) -> bool:
    try:
        acquire(fleet, inventory, holder, wait)
    except HostError as exc:
        if not optional:
            raise LockError(
                f"cannot take the deploy lock on the scheduler's host: {exc}",
                hint=f"the SSH user needs to reach {inventory.scheduler.name} and write {lock_path(inventory.cluster)}",
            ) from exc
        logger.warning("running without the deploy lock: %s", exc)
        return False
    return True


def _audit(
    fleet: SSHFleet,
    inventory: Inventory,
    holder: LockHolder,
    recap: Recap,
    error: BaseException | None,
) -> None:
    entry = audit_entry(holder, recap, error)
    append_audit(fleet, _reached(inventory, recap), entry)


def _reached(inventory: Inventory, recap: Recap) -> list[Host]:
    """The run's hosts that SSH reached: the audit line goes to each."""
    return [
        inventory.hosts[name]
        for name, host in recap.hosts.items()
        if name in inventory.hosts and not host.unreachable
    ]

"""Ad-hoc commands: one argv run on many hosts at once, results per host.

The argv is quoted word by word, so the remote shell sees exactly the words
given; shell syntax (pipes, ``$(...)``, globs) needs an explicit
``sh -c '...'``. A command that exits non-zero is a result, not an error;
only a host that cannot run it at all (unreachable, channel refused) is.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daskfleet.inventory.model import Host
from daskfleet.results import HostResult, Results
from daskfleet.ssh import CommandResult, SSHFleet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdhocRun:
    """Every selected host's outcome of one ad-hoc command."""

    command: str
    results: Results[CommandResult]

    @property
    def failed_hosts(self) -> tuple[str, ...]:
        """Hosts that were unreachable or whose command exited non-zero."""
        return tuple(
            name
            for name, result in self.results.items()
            if result.value is None or not result.value.ok
        )

    @property
    def ok(self) -> bool:
        return not self.failed_hosts

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "ok": self.ok,
            "hosts": {
                name: _host_dict(result) for name, result in self.results.items()
            },
        }


def host_state(result: HostResult[CommandResult]) -> str:
    """``ok``, ``failed`` (non-zero exit or error) or ``unreachable``."""
    if result.unreachable:
        return "unreachable"
    if result.value is None or not result.value.ok:
        return "failed"
    return "ok"


def _host_dict(result: HostResult[CommandResult]) -> dict[str, Any]:
    value = result.value
    return {
        "status": host_state(result),
        "exit_code": None if value is None else value.exit_code,
        "stdout": "" if value is None else value.stdout,
        "stderr": "" if value is None else value.stderr,
        "seconds": round(result.seconds, 3),
        "error": None if result.error is None else result.error.message,
    }


def run_adhoc(
    fleet: SSHFleet,
    hosts: Sequence[Host],
    argv: Sequence[str],
    *,
    timeout: float | None = None,
) -> AdhocRun:
    """Run ``argv`` on every host in parallel; never raises for one host."""
    if not argv:
        raise ValueError("an ad-hoc command needs at least one word")
    line = shlex.join(argv)
    logger.info("running on %d hosts: %s", len(hosts), line)
    results = fleet.map(
        lambda host: fleet.run(host, line, check=False, timeout=timeout), hosts
    )
    return AdhocRun(line, results)

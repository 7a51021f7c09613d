"""The deploy lock's holder record and the sh scripts that make and drop it.

The scripts run here in a real local ``sh``, exactly as SSHFleet.run sends
them (one shlex-joined line), without SSH.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path

from daskfleet.hostfiles import _DROP_LOCK, _MAKE_LOCK, _READ_LOCK, LOCK_TAKEN, script
from daskfleet.locking import LockHolder


def run(argv: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    line = shlex.join(argv)
    return subprocess.run(["sh", "-c", line], input=stdin, capture_output=True)


def test_holder_round_trips_and_never_shows_its_token() -> None:
    holder = LockHolder.current("deploy inv.yml")
    parsed = LockHolder.parse(holder.to_json().decode())
    assert parsed is not None
    assert parsed.pid == os.getpid() and parsed.command == "deploy inv.yml"
    # The token lets the next run break this lock only if it is stale.
    assert parsed.token == holder.token
    assert f"(pid {os.getpid()}, since " in parsed.describe()
    assert holder.token not in parsed.describe()
    assert LockHolder.parse("") is None
    assert LockHolder.parse('{"user": "x"}') is None


def test_a_holder_is_stale_only_when_its_process_is_gone_here() -> None:
    alive = LockHolder.current("deploy")
    assert not alive.is_stale()
    dead = LockHolder("u", socket.gethostname(), 2**22 + 12345, "t", "deploy")
    assert dead.is_stale()
    elsewhere = LockHolder("u", "another-controller", 2**22 + 12345, "t", "deploy")
    assert not elsewhere.is_stale()


def test_the_lock_is_taken_once_and_dropped_only_by_its_holder(tmp_path: Path) -> None:
    lock = str(tmp_path / "clusters" / "c" / "lock")
    holder = LockHolder.current("deploy")

    assert run(script(_READ_LOCK, lock)).returncode == LOCK_TAKEN  # free
    assert run(script(_MAKE_LOCK, lock), holder.to_json()).returncode == 0
    assert run(script(_MAKE_LOCK, lock), b"{}").returncode == LOCK_TAKEN
    shown = run(script(_READ_LOCK, lock))
    assert LockHolder.parse(shown.stdout.decode()) is not None

    assert run(script(_DROP_LOCK, lock, "not-the-token")).returncode == LOCK_TAKEN
    assert Path(lock).is_dir()
    assert run(script(_DROP_LOCK, lock, holder.token)).returncode == 0
    assert not Path(lock).exists()
    assert oct(Path(lock).parent.stat().st_mode & 0o777) == "0o700"

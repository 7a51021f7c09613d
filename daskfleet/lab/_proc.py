"""The one way the lab runs a command: failures become :class:`LabError`."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from daskfleet.errors import LabError

logger = logging.getLogger(__name__)

TAIL_LINES = 15


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``, stripped."""
    return "\n".join(text.strip().splitlines()[-lines:])


def file_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log file, or a note that it cannot be read."""
    try:
        return tail(path.read_text(errors="replace"), lines)
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    stdout: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise LabError naming it, its exit code and output tail."""
    shown = shlex.join(cmd)
    logger.debug("run: %s", shown)
    try:
        result = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {cmd[0]} (running: {shown})") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout:.0f} s: {shown}") from exc
    if check and result.returncode != 0:
        output = (result.stdout or "") + (result.stderr or "")
        message = f"command failed with exit code {result.returncode}: {shown}"
        if output.strip():
            message += "\n  output (last lines):\n    " + tail(output).replace(
                "\n", "\n    "
            )
        raise LabError(message)
    return result


def run_shell(script: str, *, timeout: float = 600.0) -> None:
    """Run a short bash pipeline with ``pipefail``; same errors as :func:`run`."""
    run(["bash", "-o", "pipefail", "-c", script], timeout=timeout)


@contextlib.contextmanager
def file_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def read_pid(pid_file: Path, *, expect: str | None = None) -> int | None:
    """The live pid recorded in ``pid_file`` or None (missing, stale, reused).

    With ``expect``, the process's command name must contain it, so a pid
    reused by an unrelated process after a crash is not mistaken for ours.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if expect is not None:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None
        if expect not in comm:
            return None
    return pid


def signal_pid(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_pids(pids: Sequence[int], *, grace: float = 10.0) -> None:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, then SIGKILL the rest."""
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            logger.debug("pid %s ignored SIGTERM, sending SIGKILL", pid)
            signal_pid(pid, signal.SIGKILL)
    wait_gone(pids, timeout=5.0)


def kill_pids(pids: Sequence[int]) -> None:
    """SIGKILL ``pids`` and wait until they are gone."""
    for pid in pids:
        signal_pid(pid, signal.SIGKILL)
    wait_gone(pids, timeout=5.0)


def wait_gone(pids: Sequence[int], *, timeout: float) -> None:
    """Wait until none of ``pids`` is alive, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)

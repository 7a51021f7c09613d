"""Running one command on an open SSH transport.

Each command gets its own channel, so several threads can run commands on
the same connection at once. Output is read from both streams while stdin
is written, in one loop, so neither side can block the other.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass

import paramiko

from daskfleet.errors import HostError

_CHUNK = 64 * 1024
_POLL = 0.05


@dataclass(frozen=True)
class CommandResult:
    """What one remote command did."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def output(self) -> str:
        """stdout then stderr, for error messages."""
        return "\n".join(part for part in (self.stdout, self.stderr) if part)


class CommandTimeoutError(HostError):
    """A remote command ran past its time limit and was abandoned."""


class _Streams:
    def __init__(self, channel: paramiko.Channel, stdin: bytes | None) -> None:
        self.channel = channel
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.pending = memoryview(stdin or b"")
        if stdin is None:
            channel.shutdown_write()

    def pump(self) -> bool:
        """Move whatever can move now; False when nothing could."""
        moved = False
        if self.channel.recv_ready():
            self.stdout += self.channel.recv(_CHUNK)
            moved = True
        if self.channel.recv_stderr_ready():
            self.stderr += self.channel.recv_stderr(_CHUNK)
            moved = True
        if self.pending and self.channel.send_ready():
            sent = self.channel.send(bytes(self.pending[:_CHUNK]))
            self.pending = self.pending[sent:]
            if not self.pending:
                self.channel.shutdown_write()
            moved = moved or sent > 0
        return moved

    def finished(self) -> bool:
        return (
            self.channel.exit_status_ready()
            and not self.channel.recv_ready()
            and not self.channel.recv_stderr_ready()
        )


def execute(
    transport: paramiko.Transport,
    host: str,
    command: str,
    *,
    timeout: float | None = None,
    stdin: bytes | None = None,
    open_timeout: float = 10.0,
) -> CommandResult:
    """Run ``command`` through the remote user's shell and collect its output."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    channel = transport.open_session(timeout=open_timeout)
    try:
        channel.exec_command(command)
        streams = _Streams(channel, stdin)
        while not streams.finished():
            if streams.pump():
                continue
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise CommandTimeoutError(
                    host, f"command did not finish within {timeout:g}s: {command}"
                )
            select.select([channel], [], [], min(remaining or _POLL, _POLL))
        exit_code = channel.recv_exit_status()
    finally:
        channel.close()
    return CommandResult(
        host=host,
        command=command,
        exit_code=exit_code,
        stdout=streams.stdout.decode(errors="replace"),
        stderr=streams.stderr.decode(errors="replace"),
        seconds=time.monotonic() - started,
    )


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()

"""Run one command on a host with a byte stream on its standard input.

Shipping needs only a little of an SSH session channel: start a command,
send bytes, close stdin, read stdout/stderr and the exit status. The
:class:`Channel` protocol names exactly that; a paramiko channel fits it,
and :class:`LocalChannel` gives the controller itself the same shape.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Protocol

import paramiko

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
POLL_SECONDS = 0.01

Progress = Callable[[int], None]


class Channel(Protocol):
    """The part of ``paramiko.Channel`` that shipping uses."""

    def exec_command(self, command: str, /) -> None: ...
    def sendall(self, data: bytes, /) -> None: ...
    def shutdown_write(self) -> None: ...
    def recv(self, nbytes: int, /) -> bytes: ...
    def recv_stderr(self, nbytes: int, /) -> bytes: ...
    def recv_ready(self) -> bool: ...
    def recv_stderr_ready(self) -> bool: ...
    def exit_status_ready(self) -> bool: ...
    def recv_exit_status(self) -> int: ...
    def close(self) -> None: ...


ChannelOpener = Callable[[], Channel]


@dataclass(frozen=True)
class CommandOutput:
    """Exit status and output of one command, and the bytes fed to it."""

    exit_status: int
    stdout: str
    stderr: str
    bytes_sent: int
    seconds: float

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


def paramiko_opener(transport: paramiko.Transport) -> ChannelOpener:
    """Open a new session channel on ``transport`` per command."""

    def open_channel() -> Channel:
        return transport.open_session()

    return open_channel


def run_with_input(
    open_channel: ChannelOpener,
    command: str,
    source: IO[bytes] | None = None,
    *,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> CommandOutput:
    """Run ``command``, stream ``source`` into it, and wait for it to end.

    Output is drained while sending, so a chatty command cannot stall the
    stream. If the command exits early, sending stops and its status and
    output are returned as they are.
    """
    started = time.monotonic()
    channel = open_channel()
    stdout, stderr = bytearray(), bytearray()
    try:
        logger.debug("exec %s", command)
        channel.exec_command(command)
        sent = _send(channel, source, progress, chunk_size, stdout, stderr)
        _wait(channel, stdout, stderr)
        status = channel.recv_exit_status()
    finally:
        channel.close()
    seconds = time.monotonic() - started
    logger.debug("exit %d after %.2f s, %d bytes sent", status, seconds, sent)
    return CommandOutput(
        status,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
        sent,
        seconds,
    )


def _send(
    channel: Channel,
    source: IO[bytes] | None,
    progress: Progress | None,
    chunk_size: int,
    stdout: bytearray,
    stderr: bytearray,
) -> int:
    sent = 0
    try:
        while source is not None and (chunk := source.read(chunk_size)):
            channel.sendall(chunk)
            sent += len(chunk)
            if progress is not None:
                progress(len(chunk))
            _drain(channel, stdout, stderr)
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException) as exc:
        # The command stopped reading; its exit status tells why.
        logger.debug("stream stopped after %d bytes: %s", sent, exc)
    return sent


def _drain(channel: Channel, stdout: bytearray, stderr: bytearray) -> bool:
    """Read whatever output is ready; True if anything was."""
    got = False
    while channel.recv_ready():
        data = channel.recv(CHUNK_SIZE)
        if not data:
            break
        stdout += data
        got = True
    while channel.recv_stderr_ready():
        data = channel.recv_stderr(CHUNK_SIZE)
        if not data:
            break
        stderr += data
        got = True
    return got


def _wait(channel: Channel, stdout: bytearray, stderr: bytearray) -> None:
    # The exit status arrives after all output, so once it is there one
    # last drain collects everything.
    while not channel.exit_status_ready():
        if not _drain(channel, stdout, stderr):
            time.sleep(POLL_SECONDS)
    _drain(channel, stdout, stderr)


class LocalChannel:
    """A :class:`Channel` that runs the command with ``sh -c`` right here.

    For the controller as a host and for tests without SSH. Readers run in
    threads so ``recv_ready`` never blocks, as with a network channel.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = {**os.environ, **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffers = {"out": bytearray(), "err": bytearray()}
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    def exec_command(self, command: str, /) -> None:
        self._proc = subprocess.Popen(
            ["sh", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
        )
        for key, stream in (("out", self._proc.stdout), ("err", self._proc.stderr)):
            reader = threading.Thread(
                target=self._read, args=(key, stream), daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def _read(self, key: str, stream: IO[bytes] | None) -> None:
        assert stream is not None
        while data := stream.read1(CHUNK_SIZE):  # type: ignore[attr-defined]
            with self._lock:
                self._buffers[key] += data

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise OSError("no command was started on this channel")
        return self._proc

    def sendall(self, data: bytes, /) -> None:
        stdin = self._process().stdin
        assert stdin is not None
        stdin.write(data)
        stdin.flush()  # a network channel sends at once, too

    def shutdown_write(self) -> None:
        stdin = self._process().stdin
        assert stdin is not None
        stdin.close()

    def _take(self, key: str, nbytes: int) -> bytes:
        with self._lock:
            data = bytes(self._buffers[key][:nbytes])
            del self._buffers[key][:nbytes]
        return data

    def recv(self, nbytes: int, /) -> bytes:
        return self._take("out", nbytes)

    def recv_stderr(self, nbytes: int, /) -> bytes:
        return self._take("err", nbytes)

    def recv_ready(self) -> bool:
        with self._lock:
            return bool(self._buffers["out"])

    def recv_stderr_ready(self) -> bool:
        with self._lock:
            return bool(self._buffers["err"])

    def exit_status_ready(self) -> bool:
        done = self._process().poll() is not None
        return done and not any(r.is_alive() for r in self._readers)

    def recv_exit_status(self) -> int:
        status = self._process().wait()
        for reader in self._readers:
            reader.join()
        return status

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for reader in self._readers:
            reader.join()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            # Closing unread input of a command that already ended may fail.
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def local_opener(env: Mapping[str, str] | None = None) -> ChannelOpener:
    """Run each command on the controller, with ``env`` added."""
    return lambda: LocalChannel(env)

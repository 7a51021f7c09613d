"""The fleet's SSH connections: one per host, opened lazily, reused by all.

Handshakes are bounded twice: at most ``max_parallel`` at once towards one
SSH server (sshd's default ``MaxStartups 10:30:100`` starts dropping
connections beyond ten unauthenticated ones; hosts behind one jump host
share its sshd), and at most ``max_handshakes`` in all, for this machine's
CPU. Commands on established connections run from a thread pool, each on
its own channel, with at most ``max_sessions`` at once per host (sshd's
``MaxSessions`` is 10).
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import fabric
import paramiko

from daskfleet.errors import CommandError, DaskfleetError, HostError
from daskfleet.inventory.model import Host, Inventory
from daskfleet.results import HostResult, Results
from daskfleet.ssh.connect import (
    ConnectOptions,
    close_connection,
    open_connection,
    server_key,
)
from daskfleet.ssh.execute import CommandResult, execute

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Handshakes at once towards one SSH server, and in all.
DEFAULT_MAX_PARALLEL = 8
DEFAULT_MAX_HANDSHAKES = 32
DEFAULT_WORKERS = 32
DEFAULT_MAX_SESSIONS = 8


class SSHFleet:
    """SSH access to an inventory's hosts; use as a context manager."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
        accept_new_host_keys: bool = False,
        connect_timeout: float = 10.0,
        connect_attempts: int = 3,
        workers: int = DEFAULT_WORKERS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        ssh_config_path: str | Path | None = None,
    ) -> None:
        self.inventory = inventory
        self.workers = workers
        self.max_sessions = max_sessions
        self._options = ConnectOptions(
            config=_fabric_config(ssh_config_path),
            connect_timeout=connect_timeout,
            attempts=connect_attempts,
            accept_new_host_keys=accept_new_host_keys,
        )
        self.max_parallel = max_parallel
        self._handshakes = threading.BoundedSemaphore(max_handshakes)
        self._servers: dict[str, threading.BoundedSemaphore] = {}
        #: Connections opened so far (reconnects included), for logs and tests.
        self.handshakes = 0
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._sessions: dict[str, threading.BoundedSemaphore] = {}
        self._connections: dict[str, fabric.Connection] = {}

    def __enter__(self) -> SSHFleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connection(self, host: Host) -> fabric.Connection:
        """The host's connection, opened on first use and kept open."""
        with self._host_lock(host.name):
            conn = self._connections.get(host.name)
            if conn is not None and conn.is_connected:
                return conn
            if conn is not None:
                log.debug("%s: connection lost, reconnecting", host.name)
                close_connection(conn)
            with self._server_slot(host), self._handshakes:
                conn = open_connection(host, self._options)
            with self._lock:
                self.handshakes += 1
            self._connections[host.name] = conn
            return conn

    def transport(self, host: Host) -> paramiko.Transport:
        """The host's paramiko Transport, for streams and extra channels."""
        transport: paramiko.Transport = self.connection(host).transport
        return transport

    def run(
        self,
        host: Host,
        command: str | Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run a command; a sequence is quoted word by word, a string is shell."""
        line = command if isinstance(command, str) else shlex.join(command)
        transport = self.transport(host)
        log.debug("%s: run %s", host.name, line)
        with self._session_slot(host.name):
            result = execute(
                transport,
                host.name,
                line,
                timeout=timeout,
                stdin=stdin,
                open_timeout=self._options.connect_timeout,
            )
        log.debug(
            "%s: exit %d after %.3fs: %s",
            host.name,
            result.exit_code,
            result.seconds,
            line,
        )
        if check and not result.ok:
            raise CommandError(host.name, line, result.exit_code, result.output)
        return result

    def map(
        self, fn: Callable[[Host], T], hosts: Iterable[Host] | None = None
    ) -> Results[T]:
        """``fn`` on every host in parallel; each host's outcome kept apart."""
        selected = list(self.inventory.hosts.values() if hosts is None else hosts)
        if not selected:
            return Results({})
        workers = min(self.workers, len(selected))
        with ThreadPoolExecutor(workers, thread_name_prefix="daskfleet-ssh") as pool:
            futures = [pool.submit(_call, fn, host) for host in selected]
            return Results({f.result().host: f.result() for f in futures})

    def close(self) -> None:
        """Close every connection; the fleet can be used again afterwards."""
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for conn in connections:
            close_connection(conn)

    def _host_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(name, threading.Lock())

    def _server_slot(self, host: Host) -> threading.BoundedSemaphore:
        key = server_key(host, self._options.config)
        with self._lock:
            slot = self._servers.get(key)
            if slot is None:
                slot = threading.BoundedSemaphore(self.max_parallel)
                self._servers[key] = slot
            return slot

    def _session_slot(self, name: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._sessions.get(name)
            if slot is None:
                slot = threading.BoundedSemaphore(self.max_sessions)
                self._sessions[name] = slot
            return slot


def _fabric_config(ssh_config_path: str | Path | None) -> fabric.Config:
    if ssh_config_path is None:
        return fabric.Config()
    return fabric.Config(runtime_ssh_path=str(ssh_config_path))


def _call(fn: Callable[[Host], T], host: Host) -> HostResult[T]:
    started = time.monotonic()
    try:
        value = fn(host)
    except DaskfleetError as exc:
        return HostResult(host.name, error=exc, seconds=time.monotonic() - started)
    except Exception as exc:
        log.debug("%s: unexpected error", host.name, exc_info=True)
        error = HostError(host.name, f"unexpected {type(exc).__name__}: {exc}")
        return HostResult(host.name, error=error, seconds=time.monotonic() - started)
    return HostResult(host.name, value=value, seconds=time.monotonic() - started)

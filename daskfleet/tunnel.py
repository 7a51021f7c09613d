"""Local ports forwarded over SSH to the cluster's scheduler and dashboard.

For fleets where only SSH is open: each :class:`Forward` is a listener on
the controller's loopback; every connection to it becomes a
``direct-tcpip`` channel on the SSH connection to the scheduler host, which
opens the TCP connection from there. One thread per listener accepts, one
thread per connection pumps bytes both ways.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import paramiko

from daskfleet.errors import DaskfleetError
from daskfleet.inventory.model import Host, Inventory
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_CHUNK = 64 * 1024
_POLL = 0.2
_OPEN_TIMEOUT = 10.0


class TunnelError(DaskfleetError):
    """A local port could not be opened for forwarding."""


@dataclass(frozen=True)
class Forward:
    """One forwarded port: local port (0: any free one) to a remote address."""

    name: str
    remote_host: str
    remote_port: int
    local_port: int = 0


def cluster_forwards(
    inventory: Inventory,
    *,
    scheduler_port: int | None = None,
    dashboard_port: int | None = None,
) -> tuple[Forward, Forward]:
    """The scheduler's and the dashboard's ports; local ports default to theirs."""
    address = inventory.scheduler.address
    return (
        Forward(
            "scheduler",
            address,
            inventory.scheduler_port,
            inventory.scheduler_port if scheduler_port is None else scheduler_port,
        ),
        Forward(
            "dashboard",
            address,
            inventory.dashboard_port,
            inventory.dashboard_port if dashboard_port is None else dashboard_port,
        ),
    )


class Tunnel:
    """Listeners on the loopback forwarding to ``host``'s side over SSH."""

    def __init__(self, fleet: SSHFleet, host: Host, forwards: Sequence[Forward]):
        self.fleet = fleet
        self.host = host
        self.forwards = tuple(forwards)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listeners: dict[str, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._pipes: set[tuple[socket.socket, paramiko.Channel]] = set()

    def __enter__(self) -> Tunnel:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> dict[str, int]:
        """Connect to the host and listen; the local port of each forward."""
        self.fleet.transport(self.host)  # fail early when the host is down
        try:
            for forward in self.forwards:
                self._listeners[forward.name] = _listen(forward)
        except TunnelError:
            self.close()
            raise
        for forward in self.forwards:
            self._spawn(self._accept_loop, forward, name=f"tunnel-{forward.name}")
        return self.local_ports

    @property
    def local_ports(self) -> dict[str, int]:
        return {
            name: int(sock.getsockname()[1]) for name, sock in self._listeners.items()
        }

    def close(self) -> None:
        """Stop listening, close every open connection, wait for the threads."""
        self._stop.set()
        for sock in self._listeners.values():
            sock.close()
        with self._lock:
            pipes = list(self._pipes)
        for client, channel in pipes:
            _close_pipe(client, channel)
        for thread in self._threads:
            thread.join(timeout=2 * _POLL + 1)
        self._threads.clear()

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, forward: Forward) -> None:
        listener = self._listeners[forward.name]
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], _POLL)
                if not ready:
                    continue
                client, origin = listener.accept()
            except (OSError, ValueError):
                return  # the listener was closed
            self._spawn(self._serve, forward, client, origin, name="tunnel-pipe")

    def _serve(
        self, forward: Forward, client: socket.socket, origin: tuple[str, int]
    ) -> None:
        channel = self._open_channel(forward, origin)
        if channel is None:
            client.close()
            return
        pipe = (client, channel)
        with self._lock:
            self._pipes.add(pipe)
        try:
            _pump(client, channel, self._stop)
        finally:
            with self._lock:
                self._pipes.discard(pipe)
            _close_pipe(client, channel)

    def _open_channel(
        self, forward: Forward, origin: tuple[str, int]
    ) -> paramiko.Channel | None:
        destination = (forward.remote_host, forward.remote_port)
        try:
            transport = self.fleet.transport(self.host)
            return transport.open_channel(
                "direct-tcpip", destination, origin, timeout=_OPEN_TIMEOUT
            )
        except (DaskfleetError, paramiko.SSHException, OSError) as exc:
            logger.warning(
                "%s: cannot reach %s:%d over SSH: %s",
                self.host.name,
                *destination,
                exc,
            )
            return None


def _listen(forward: Forward) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, forward.local_port))
    except OSError as exc:
        sock.close()
        why = "it is in use" if exc.errno == errno.EADDRINUSE else str(exc)
        raise TunnelError(
            f"cannot listen on {LOOPBACK}:{forward.local_port} for the {forward.name}: {why}",
            hint=f"pick another local port for the {forward.name} (0 takes any free port)",
        ) from exc
    sock.listen(16)
    return sock


def _pump(
    client: socket.socket, channel: paramiko.Channel, stop: threading.Event
) -> None:
    """Copy bytes both ways until either side closes or the tunnel stops."""
    # close() shuts the sockets under a running pump: that ends it too.
    with contextlib.suppress(OSError, ValueError, EOFError):
        _copy_both_ways(client, channel, stop)


def _copy_both_ways(
    client: socket.socket, channel: paramiko.Channel, stop: threading.Event
) -> None:
    client_fd, channel_fd = client.fileno(), channel.fileno()
    while not stop.is_set():
        ready, _, _ = select.select([client_fd, channel_fd], [], [], _POLL)
        if client_fd in ready:
            data = client.recv(_CHUNK)
            if not data:
                return
            channel.sendall(data)
        if channel_fd in ready:
            data = channel.recv(_CHUNK)
            if not data:
                return
            client.sendall(data)


def _close_pipe(client: socket.socket, channel: paramiko.Channel) -> None:
    channel.close()
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_RDWR)
    client.close()

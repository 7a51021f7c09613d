"""The tunnel's listeners and pumps, with plain sockets standing in for SSH."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from daskfleet.inventory.model import Host, Inventory
from daskfleet.tunnel import Forward, Tunnel, TunnelError, cluster_forwards

HOST = Host(name="s", address="10.0.0.1", roles=("scheduler",))


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data.upper())


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class FakeTransport:
    """``direct-tcpip`` as a plain TCP connection to the destination."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int]] = []

    def open_channel(
        self, kind: str, dest: tuple[str, int], origin: Any, timeout: float
    ) -> socket.socket:
        assert kind == "direct-tcpip"
        self.opened.append(dest)
        return socket.create_connection(dest, timeout=timeout)


class FakeFleet:
    def __init__(self) -> None:
        self.transport_ = FakeTransport()

    def transport(self, host: Host) -> FakeTransport:
        return self.transport_


def roundtrip(port: int, message: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(message)
        return client.recv(1024)


def test_connections_reach_the_remote_side(echo: int) -> None:
    fleet = FakeFleet()
    forward = Forward("scheduler", "127.0.0.1", echo)
    with Tunnel(fleet, HOST, [forward]) as tunnel:  # type: ignore[arg-type]
        port = tunnel.local_ports["scheduler"]
        assert port != 0
        assert roundtrip(port, b"hello") == b"HELLO"
        assert roundtrip(port, b"again") == b"AGAIN"
    assert fleet.transport_.opened == [("127.0.0.1", echo)] * 2


def test_close_stops_listening_and_open_connections(echo: int) -> None:
    tunnel = Tunnel(FakeFleet(), HOST, [Forward("s", "127.0.0.1", echo)])  # type: ignore[arg-type]
    port = tunnel.start()["s"]
    open_client = socket.create_connection(("127.0.0.1", port), timeout=5)
    open_client.sendall(b"x")
    assert open_client.recv(10) == b"X"
    tunnel.close()
    assert open_client.recv(10) == b""
    open_client.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_a_port_in_use_is_an_error_with_a_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tunnel = Tunnel(FakeFleet(), HOST, [Forward("dashboard", "x", 1, port)])  # type: ignore[arg-type]
        with pytest.raises(TunnelError, match="in use") as info:
            tunnel.start()
    assert info.value.hint is not None and "0 takes any free port" in info.value.hint


def test_cluster_forwards_default_to_the_cluster_ports() -> None:
    inventory = Inventory(path="i.yml", cluster="c", hosts={"s": HOST})
    scheduler, dashboard = cluster_forwards(inventory, dashboard_port=0)
    assert scheduler == Forward("scheduler", "10.0.0.1", 8786, 8786)
    assert dashboard == Forward("dashboard", "10.0.0.1", 8787, 0)

"""Which failures are retried, how they are named, ssh_config precedence."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from types import MappingProxyType

import fabric
import paramiko
import pytest

from daskfleet.errors import (
    AuthenticationError,
    HostKeyError,
    UnreachableError,
)
from daskfleet.inventory.model import Host
from daskfleet.ssh import is_transient
from daskfleet.ssh.connect import (
    ConnectOptions,
    build_connection,
    describe_failure,
    server_key,
)
from daskfleet.ssh.hostkeys import HostKeyPolicy

KEY = paramiko.ECDSAKey.generate()

TRANSIENT = [
    paramiko.ssh_exception.NoValidConnectionsError(
        {("10.0.0.1", 22): OSError(errno.ECONNREFUSED, "refused")}
    ),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    TimeoutError("timed out"),
    EOFError(),
    OSError(errno.EHOSTUNREACH, "No route to host"),
    paramiko.SSHException("Error reading SSH protocol banner"),
    paramiko.SSHException("No existing session"),
]

PERMANENT = [
    paramiko.AuthenticationException("Authentication failed."),
    paramiko.ssh_exception.PasswordRequiredException("private key is encrypted"),
    paramiko.BadHostKeyException("10.0.0.1", KEY, paramiko.ECDSAKey.generate()),
    HostKeyError("lab1", "unknown SSH host key"),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    paramiko.SSHException("Incompatible ssh peer (no acceptable kex algorithm)"),
    ValueError("bug"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_transient_failures_are_retried(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=repr)
def test_permanent_failures_are_not_retried(exc: BaseException) -> None:
    assert not is_transient(exc)


def options(tmp_path: Path, ssh_config: str = "") -> ConnectOptions:
    path = tmp_path / "ssh_config"
    path.write_text(ssh_config)
    return ConnectOptions(config=fabric.Config(runtime_ssh_path=str(path)))


def host(**changes: object) -> Host:
    fields: dict[str, object] = {
        "name": "lab1",
        "address": "10.0.0.1",
        "sources": MappingProxyType({"port": "default"}),
    }
    fields.update(changes)
    return Host(**fields)  # type: ignore[arg-type]


def test_authentication_failure_names_user_and_key(tmp_path: Path) -> None:
    error = describe_failure(
        host(user="root", identity_file="/keys/id"),
        options(tmp_path),
        paramiko.AuthenticationException("Authentication failed."),
    )
    assert isinstance(error, AuthenticationError)
    assert "root@10.0.0.1:22" in error.message
    assert error.hint is not None
    assert "/keys/id" in error.hint


def test_refused_connection_is_unreachable(tmp_path: Path) -> None:
    exc = paramiko.ssh_exception.NoValidConnectionsError(
        {("10.0.0.1", 22): OSError(errno.ECONNREFUSED, "refused")}
    )
    error = describe_failure(host(), options(tmp_path), exc)
    assert isinstance(error, UnreachableError)
    assert "connection refused" in error.message
    assert error.message.startswith("lab1: ")


def test_timeout_names_the_limit(tmp_path: Path) -> None:
    error = describe_failure(host(), options(tmp_path), TimeoutError())
    assert isinstance(error, UnreachableError)
    assert "within 10s" in error.message


def test_unresolvable_address(tmp_path: Path) -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    error = describe_failure(host(address="nope.invalid"), options(tmp_path), exc)
    assert isinstance(error, UnreachableError)
    assert "cannot resolve" in error.message


SSH_CONFIG = """\
Host 10.0.0.1
  HostName 10.0.0.99
  User alice
  Port 2200
  IdentityFile /keys/from_config
  UserKnownHostsFile {known}
"""


def test_ssh_config_fills_what_the_inventory_leaves_open(tmp_path: Path) -> None:
    known = tmp_path / "kh"
    conn = build_connection(host(), options(tmp_path, SSH_CONFIG.format(known=known)))
    assert (conn.host, conn.user, conn.port) == ("10.0.0.99", "alice", 2200)
    assert conn.connect_kwargs["key_filename"] == ["/keys/from_config"]
    policy = conn.client._policy
    assert isinstance(policy, HostKeyPolicy)
    assert policy.known.path == known


def test_inventory_values_win_over_ssh_config(tmp_path: Path) -> None:
    inv_host = host(
        user="root",
        port=22,
        identity_file="/keys/inventory",
        known_hosts=str(tmp_path / "inventory_kh"),
        sources=MappingProxyType({"port": "host lab1"}),
    )
    conn = build_connection(inv_host, options(tmp_path, SSH_CONFIG.format(known="x")))
    assert (conn.user, conn.port) == ("root", 22)
    assert conn.connect_kwargs["key_filename"][0] == "/keys/inventory"
    assert conn.client._policy.known.read_paths == (tmp_path / "inventory_kh",)


def test_proxyjump_hops_check_host_keys_too(tmp_path: Path) -> None:
    config = "Host 10.0.0.1\n  ProxyJump jump@10.0.0.254:2022\n"
    conn = build_connection(host(), options(tmp_path, config))
    hop = conn.gateway
    assert isinstance(hop, fabric.Connection)
    assert (hop.host, hop.user, hop.port) == ("10.0.0.254", "jump", 2022)
    assert isinstance(hop.client._policy, HostKeyPolicy)
    assert "jump host 10.0.0.254" in hop.client._policy.host


def test_known_hosts_are_loaded_into_the_client(tmp_path: Path) -> None:
    known = tmp_path / "kh"
    known.write_text(f"[10.0.0.1]:2222 {KEY.get_name()} {KEY.get_base64()}\n")
    conn = build_connection(host(port=2222, known_hosts=str(known)), options(tmp_path))
    assert conn.client.get_host_keys().lookup("[10.0.0.1]:2222") is not None


def test_server_key_is_the_host_or_its_first_hop(tmp_path: Path) -> None:
    config = options(
        tmp_path,
        SSH_CONFIG.format(known="x")
        + "Host 10.0.0.2 10.0.0.3\n  ProxyJump bastion,inner\n"
        + "Host 10.0.0.4\n  ProxyCommand nc %h %p\n",
    ).config
    assert server_key(host(), config) == "10.0.0.99:2200"
    written = host(port=22, sources=MappingProxyType({"port": "host lab1"}))
    assert server_key(written, config) == "10.0.0.99:22"
    behind = [host(name=f"h{i}", address=f"10.0.0.{i}") for i in (2, 3)]
    assert {server_key(h, config) for h in behind} == {"jump bastion"}
    assert server_key(host(address="10.0.0.4"), config) == "proxycommand"
    assert server_key(host(address="10.0.0.5"), config) == "10.0.0.5:22"

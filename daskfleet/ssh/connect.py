"""Opening one SSH connection: ssh_config, host keys, retries, error names.

fabric resolves ~/.ssh/config (HostName, User, Port, IdentityFile,
ProxyJump, ProxyCommand); the inventory's own variables win over it.
Only failures that can pass by themselves are retried: refused or reset
connections, timeouts, a server that drops us before its banner (sshd's
MaxStartups). Authentication and host key failures never are.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from dataclasses import dataclass

import fabric
import paramiko
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from daskfleet.errors import (
    AuthenticationError,
    DaskfleetError,
    HostError,
    HostKeyError,
    UnreachableError,
)
from daskfleet.inventory.model import DEFAULT_SSH_PORT, Host
from daskfleet.ssh.hostkeys import (
    HostKeyPolicy,
    KnownHosts,
    changed_key_error,
    known_hosts_name,
)

log = logging.getLogger(__name__)

#: Seconds between SSH keepalives, so a quiet connection still has data in flight.
KEEPALIVE_SECONDS = 15
#: Seconds data may stay unacknowledged before the connection counts as dead.
DEAD_LINK_SECONDS = 45

_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EPIPE,
    }
)
_TRANSIENT_SSH_MESSAGES = (
    "Error reading SSH protocol banner",
    "EOF during negotiation",
    "No existing session",
    "Connection reset",
)


@dataclass(frozen=True)
class ConnectOptions:
    """How a fleet connects; the same for every host."""

    config: fabric.Config
    connect_timeout: float = 10.0
    attempts: int = 3
    accept_new_host_keys: bool = False


def is_transient(exc: BaseException) -> bool:
    """Whether a failed connection attempt may succeed if simply repeated."""
    if isinstance(
        exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)
    ):
        return False
    if isinstance(exc, DaskfleetError):
        return False
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return True
    if isinstance(exc, (TimeoutError, EOFError, ConnectionError)):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    if isinstance(exc, paramiko.SSHException):
        return any(text in str(exc) for text in _TRANSIENT_SSH_MESSAGES)
    return False


def open_connection(host: Host, options: ConnectOptions) -> fabric.Connection:
    """An open, authenticated connection to ``host``, or a HostError."""
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(options.attempts)
        | stop_after_delay(options.connect_timeout),
        wait=wait_exponential(multiplier=0.25, max=2.0),
        before_sleep=lambda state: log.debug(
            "%s: connection attempt %d failed (%s), retrying",
            host.name,
            state.attempt_number,
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=True,
    )
    started = time.monotonic()
    try:
        conn: fabric.Connection = retrying(_open_once, host, options)
    except DaskfleetError:
        raise
    except Exception as exc:
        raise describe_failure(host, options, exc) from exc
    log.debug(
        "%s: connected to %s@%s:%s in %.2fs",
        host.name,
        conn.user,
        conn.host,
        conn.port,
        time.monotonic() - started,
    )
    return conn


def _open_once(host: Host, options: ConnectOptions) -> fabric.Connection:
    conn = build_connection(host, options)
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        close_connection(conn)
        raise _changed_key(host, conn, exc) from exc
    except BaseException:
        close_connection(conn)
        raise
    conn.transport.set_keepalive(KEEPALIVE_SECONDS)
    _drop_dead_links(conn.transport.sock)
    return conn


def _drop_dead_links(sock: object) -> None:
    """Let the kernel close the connection once the peer stops acknowledging.

    Without this, a command running when the link is cut waits out TCP's own
    retries (a quarter of an hour). With keepalives always in flight, a cut
    link now fails its commands after about KEEPALIVE + DEAD_LINK seconds.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if isinstance(sock, socket.socket) and option is not None:
        sock.setsockopt(socket.IPPROTO_TCP, option, DEAD_LINK_SECONDS * 1000)


def _changed_key(
    host: Host, conn: fabric.Connection, exc: paramiko.BadHostKeyException
) -> HostKeyError:
    """The changed-key error for the target or for the ProxyJump hop at fault."""
    culprit, label, explicit = conn, host.name, host.known_hosts
    hop = conn.gateway
    while isinstance(hop, fabric.Connection) and culprit.host != exc.hostname:
        culprit, label, explicit = hop, f"{host.name} (jump host {hop.host})", None
        hop = hop.gateway
    name = known_hosts_name(culprit.host, culprit.port)
    path = _known_hosts(explicit, culprit).file_with(name)
    return changed_key_error(label, name, exc.key, exc.expected_key, path)


def build_connection(host: Host, options: ConnectOptions) -> fabric.Connection:
    """A fabric Connection (not yet open) with host keys checked strictly."""
    keys = [host.identity_file] if host.identity_file else []
    conn = fabric.Connection(
        host.address,
        user=host.user,
        port=host.port if _port_is_set(host) else None,
        config=options.config.clone(),
        connect_timeout=int(max(1, options.connect_timeout)),
        connect_kwargs={
            "key_filename": [os.path.expanduser(k) for k in keys],
            "banner_timeout": options.connect_timeout,
            "auth_timeout": options.connect_timeout,
        },
    )
    _check_host_keys(conn, host.name, host.known_hosts, options)
    gateway = conn.gateway
    while isinstance(gateway, fabric.Connection):
        hop = f"{host.name} (jump host {gateway.original_host})"
        _check_host_keys(gateway, hop, None, options)
        gateway = gateway.gateway
    return conn


def _check_host_keys(
    conn: fabric.Connection, name: str, explicit: str | None, options: ConnectOptions
) -> None:
    known = _known_hosts(explicit, conn)
    keys = conn.client.get_host_keys()
    keys.clear()
    known.load_into(keys)
    conn.client.set_missing_host_key_policy(
        HostKeyPolicy(name, known, accept_new=options.accept_new_host_keys)
    )


def _known_hosts(explicit: str | None, conn: fabric.Connection) -> KnownHosts:
    user_file = conn.ssh_config.get("userknownhostsfile")
    if isinstance(user_file, list):
        user_file = user_file[0] if user_file else None
    hashed = str(conn.ssh_config.get("hashknownhosts", "no")).lower() == "yes"
    return KnownHosts.resolve(explicit, user_file=user_file, hash_new=hashed)


def _port_is_set(host: Host) -> bool:
    # Host.port always holds a number; the default 22 only wins over
    # ~/.ssh/config when the inventory wrote it.
    written = host.sources.get("port", "default") != "default"
    return written or host.port != DEFAULT_SSH_PORT


def server_key(host: Host, config: fabric.Config) -> str:
    """The SSH server this machine talks to first when it connects to ``host``.

    That is the host itself, or its first ProxyJump hop (every host behind
    one jump host shares that hop's sshd and its MaxStartups). Where a
    ProxyCommand leads cannot be known: all such hosts count as one server.
    Read from ~/.ssh/config without opening anything.
    """
    entry = config.base_ssh_config.lookup(host.address)
    jump = entry.get("proxyjump")
    if jump and jump.lower() != "none":
        return f"jump {jump.split(',')[0].strip()}"
    command = entry.get("proxycommand")
    if command and command.lower() != "none":
        return "proxycommand"
    port = host.port if _port_is_set(host) else entry.get("port", host.port)
    return f"{entry.get('hostname', host.address)}:{port}"


def close_connection(conn: fabric.Connection) -> None:
    """Close a connection and every ProxyJump hop below it."""
    current: object = conn
    while isinstance(current, fabric.Connection):
        current.client.close()
        current = current.gateway


def describe_failure(host: Host, options: ConnectOptions, exc: Exception) -> HostError:
    """Turn a low-level connection failure into one of daskfleet's errors."""
    where = f"{host.user + '@' if host.user else ''}{host.address}:{host.port}"
    if isinstance(exc, paramiko.AuthenticationException):
        key = host.identity_file or "your default keys / ssh-agent"
        return AuthenticationError(
            host.name,
            f"SSH authentication to {where} failed: {exc}",
            hint=f"check the inventory's user and identity_file ({key}); try `ssh -i KEY -p {host.port} USER@{host.address}`",
        )
    if isinstance(exc, socket.gaierror):
        return UnreachableError(
            host.name,
            f"cannot resolve the address {host.address!r}: {exc.strerror}",
            hint="fix the host's address in the inventory (or its HostName in ~/.ssh/config)",
        )
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        reason = "connection refused"
    elif "SSH protocol banner" in str(exc):
        reason = "the server closed the connection before sending its SSH banner (not an SSH server, or sshd's MaxStartups limit was hit)"
    elif isinstance(exc, TimeoutError):
        reason = f"no answer within {options.connect_timeout:g}s"
    else:
        reason = str(exc) or type(exc).__name__
    return UnreachableError(
        host.name,
        f"cannot connect over SSH to {where}: {reason}",
        hint=f"check that sshd runs on {host.address} port {host.port} and that the inventory's address and port are right",
    )

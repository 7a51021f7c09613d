"""SSH host keys checked against known_hosts files, the way OpenSSH does.

A key that no file knows is refused with the exact command that records it,
unless the fleet accepts new keys (OpenSSH's ``StrictHostKeyChecking
accept-new``); then it is appended to the file in use. A key that differs
from the recorded one is always refused.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import paramiko

from daskfleet.errors import HostKeyError

log = logging.getLogger(__name__)

DEFAULT_SSH_PORT = 22
USER_KNOWN_HOSTS = "~/.ssh/known_hosts"
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"

#: paramiko key names to the ``-t`` argument of ssh-keyscan.
_KEYSCAN_TYPES = {
    "ssh-ed25519": "ed25519",
    "ssh-rsa": "rsa",
    "ssh-dss": "dsa",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
}

# Hosts connect in parallel threads; appends must not interleave.
_append_lock = threading.Lock()


def known_hosts_name(address: str, port: int) -> str:
    """The name a host has in known_hosts: ``addr`` or ``[addr]:port``."""
    if port == DEFAULT_SSH_PORT:
        return address
    return f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def keyscan_type(key: paramiko.PKey) -> str:
    return _KEYSCAN_TYPES.get(key.get_name(), key.get_name())


@dataclass(frozen=True)
class KnownHosts:
    """Which known_hosts files are read, and which one new keys go to."""

    path: Path
    extra_paths: tuple[Path, ...] = ()
    hash_new: bool = False

    @classmethod
    def resolve(
        cls,
        explicit: str | None,
        *,
        user_file: str | None = None,
        hash_new: bool = False,
    ) -> KnownHosts:
        """The host's own file if set; otherwise the user's and the system's."""
        if explicit:
            return cls(Path(explicit).expanduser(), hash_new=hash_new)
        path = Path(user_file or USER_KNOWN_HOSTS).expanduser()
        return cls(path, (Path(SYSTEM_KNOWN_HOSTS),), hash_new=hash_new)

    @property
    def read_paths(self) -> tuple[Path, ...]:
        return (self.path, *self.extra_paths)

    def load_into(self, keys: paramiko.HostKeys) -> None:
        for path in self.read_paths:
            if path.is_file():
                keys.load(str(path))

    def file_with(self, name: str) -> Path:
        """The file that records ``name`` (for the fix of a changed key)."""
        for path in self.read_paths:
            if path.is_file() and paramiko.HostKeys(str(path)).lookup(name):
                return path
        return self.path

    def append(self, host: str, name: str, key: paramiko.PKey) -> None:
        """Record a key never seen before; refuse if one appeared meanwhile."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _append_lock, open(self.path, "a+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.seek(0)
            existing = file.read()
            recorded = paramiko.HostKeys(str(self.path)).lookup(name)
            if recorded:
                _check_recorded(host, name, key, recorded, self.path)
                return
            name_field = paramiko.HostKeys.hash_host(name) if self.hash_new else name
            line = f"{name_field} {key.get_name()} {key.get_base64()}\n"
            if existing and not existing.endswith(b"\n"):
                line = "\n" + line
            file.write(line.encode())
            file.flush()
            os.fsync(file.fileno())
        log.info(
            "%s: recorded new host key %s in %s", host, fingerprint(key), self.path
        )


def _check_recorded(
    host: str,
    name: str,
    key: paramiko.PKey,
    recorded: Mapping[str, paramiko.PKey],
    path: Path,
) -> None:
    known = recorded.get(key.get_name())
    if known is None or known != key:
        expected = known or next(iter(recorded.values()))
        raise changed_key_error(host, name, key, expected, path)


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Decides about a key that no known_hosts file records."""

    def __init__(self, host: str, known: KnownHosts, *, accept_new: bool) -> None:
        self.host = host
        self.known = known
        self.accept_new = accept_new

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if not self.accept_new:
            raise unknown_key_error(self.host, hostname, key, self.known.path)
        self.known.append(self.host, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def _split_name(name: str) -> tuple[str, int]:
    if name.startswith("[") and "]:" in name:
        address, port = name[1:].split("]:", 1)
        return address, int(port)
    return name, DEFAULT_SSH_PORT


def unknown_key_error(
    host: str, name: str, key: paramiko.PKey, path: Path
) -> HostKeyError:
    address, port = _split_name(name)
    scan = (
        f"ssh-keyscan -p {port} -t {keyscan_type(key)} {shlex.quote(address)}"
        f" >> {shlex.quote(str(path))}"
    )
    return HostKeyError(
        host,
        f"unknown SSH host key for {name}: {key.get_name()} {fingerprint(key)} is not in {path}",
        hint=(
            f"check that {fingerprint(key)} is the host's real key (on the host: "
            "ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then record it with "
            f"`{scan}`, or rerun with --accept-new-host-keys"
        ),
    )


def changed_key_error(
    host: str, name: str, key: paramiko.PKey, expected: paramiko.PKey, path: Path
) -> HostKeyError:
    remove = f"ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(path))}"
    return HostKeyError(
        host,
        f"SSH HOST KEY CHANGED for {name}: {path} records {expected.get_name()} {fingerprint(expected)}, the host presented {key.get_name()} {fingerprint(key)}. Someone may be intercepting this connection (man-in-the-middle), or the host was reinstalled; daskfleet will not connect.",
        hint=(
            f"ask the host's administrator whether {fingerprint(key)} is its new key; "
            f"only then remove the old one with `{remove}` and rerun with "
            "--accept-new-host-keys"
        ),
    )

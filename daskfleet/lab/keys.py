"""The lab's SSH client key pair and its known_hosts file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from daskfleet.lab._proc import run
from daskfleet.lab.config import HostConfig, LabConfig


def ensure_client_key(config: LabConfig) -> str:
    """Create the lab's ed25519 key pair if missing; return the public key."""
    key = config.key_path
    if not (key.exists() and key.with_suffix(".pub").exists()):
        key.unlink(missing_ok=True)
        key.with_suffix(".pub").unlink(missing_ok=True)
        generate_key(key, f"daskfleet-lab-{config.name}")
    key.chmod(0o600)
    return key.with_suffix(".pub").read_text().strip()


def generate_key(path: Path, comment: str) -> None:
    """Write an ed25519 key pair without passphrase to ``path`` and ``.pub``."""
    cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment]
    run([*cmd, "-f", str(path)])


def host_public_key(host: HostConfig) -> str:
    """``type base64`` of the host's key, without its comment."""
    text = (host.host_dir / "hostkey.pub").read_text().split()
    return f"{text[0]} {text[1]}"


def render_known_hosts(entries: Sequence[tuple[str, str]]) -> str:
    """known_hosts text from ``(address, "type base64")`` pairs."""
    return "".join(f"{address} {key}\n" for address, key in entries)


def write_known_hosts(path: Path, hosts: Sequence[HostConfig]) -> None:
    """Write every host's key, keyed by its address."""
    entries = [(host.address, host_public_key(host)) for host in hosts]
    path.write_text(render_known_hosts(entries))

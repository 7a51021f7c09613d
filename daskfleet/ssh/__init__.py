"""The one SSH layer every remote action of daskfleet goes through.

``SSHFleet`` opens one connection per host (bounded handshakes, retries of
transient failures only, strict host keys, ~/.ssh/config honoured) and runs
commands or functions over the fleet with per-host results.
"""

from daskfleet.ssh.connect import is_transient
from daskfleet.ssh.execute import CommandResult, CommandTimeoutError
from daskfleet.ssh.fleet import SSHFleet
from daskfleet.ssh.hostkeys import KnownHosts, fingerprint, known_hosts_name

__all__ = [
    "CommandResult",
    "CommandTimeoutError",
    "KnownHosts",
    "SSHFleet",
    "fingerprint",
    "is_transient",
    "known_hosts_name",
]

"""The SSH layer against a real OpenSSH server started on loopback.

The server listens on 127.0.0.1 and 127.0.0.2 (the second one serves as a
ProxyJump hop). Nothing is mocked: real sshd, real paramiko and fabric.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko
import pytest

from daskfleet.errors import (
    AuthenticationError,
    CommandError,
    HostKeyError,
)
from daskfleet.inventory.model import Host, Inventory
from daskfleet.ssh import CommandTimeoutError, SSHFleet

pytestmark = pytest.mark.e2e

SSHD = Path("/usr/sbin/sshd")

SSHD_CONFIG = """\
ListenAddress 127.0.0.1:{port}
ListenAddress 127.0.0.2:{port}
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
MaxSessions 50
SetEnv DASKFLEET_TEST=loopback
"""


@dataclass(frozen=True)
class Sshd:
    dir: Path
    port: int
    host_key: paramiko.PKey
    client_key: Path

    def host(self, **changes: object) -> Host:
        base = Host(
            name="lo",
            address="127.0.0.1",
            port=self.port,
            user="root",
            identity_file=str(self.client_key),
            known_hosts=str(self.dir / "known_hosts"),
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def known_hosts_line(self, address: str = "127.0.0.1") -> str:
        key = self.host_key
        return f"[{address}]:{self.port} {key.get_name()} {key.get_base64()}\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True
    )


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not start listening")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed")
    directory = tmp_path_factory.mktemp("sshd")
    _keygen(directory / "host_key")
    _keygen(directory / "client_key")
    shutil.copy(directory / "client_key.pub", directory / "authorized_keys")
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, dir=directory))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [str(SSHD), "-D", "-f", str(config), "-E", str(directory / "sshd.log")]
    )
    try:
        _wait_listening(port)
        host_key = paramiko.Ed25519Key.from_private_key_file(
            str(directory / "host_key")
        )
        server = Sshd(directory, port, host_key, directory / "client_key")
        (directory / "known_hosts").write_text(server.known_hosts_line())
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def fleet_for(*hosts: Host, **options: object) -> SSHFleet:
    inventory = Inventory(
        path="inv.yml", cluster="loopback", hosts={h.name: h for h in hosts}
    )
    return SSHFleet(inventory, **options)  # type: ignore[arg-type]


def test_run_collects_output_exit_code_and_environment(sshd: Sshd) -> None:
    host = sshd.host()
    with fleet_for(host) as fleet:
        result = fleet.run(
            host, "echo $DASKFLEET_TEST; echo oops >&2; exit 3", check=False
        )
    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "loopback\n",
        "oops\n",
    )
    assert result.seconds > 0


def test_failed_command_raises_with_output_tail(sshd: Sshd) -> None:
    host = sshd.host()
    with fleet_for(host) as fleet, pytest.raises(CommandError) as info:
        fleet.run(host, "echo first; echo last >&2; exit 7")
    assert info.value.exit_code_remote == 7
    assert "last" in str(info.value)


def test_sequence_commands_are_quoted_word_by_word(sshd: Sshd) -> None:
    host = sshd.host()
    tricky = "a b; echo injected $(id -u) 'q' \"d\""
    with fleet_for(host) as fleet:
        result = fleet.run(host, ["printf", "%s", tricky])
    assert result.stdout == tricky


def test_binary_stdin_round_trip(sshd: Sshd) -> None:
    host = sshd.host()
    data = bytes(range(256)) * 40_000  # 10 MB, every byte value
    with fleet_for(host) as fleet:
        result = fleet.run(host, "sha256sum", stdin=data)
    assert result.stdout.split()[0] == hashlib.sha256(data).hexdigest()


def test_timeout_abandons_the_command(sshd: Sshd) -> None:
    host = sshd.host()
    with fleet_for(host) as fleet:
        started = time.monotonic()
        with pytest.raises(CommandTimeoutError, match=r"within 0\.5s"):
            fleet.run(host, "sleep 30", timeout=0.5)
        assert time.monotonic() - started < 5
        assert fleet.run(host, "echo still usable").stdout == "still usable\n"


def test_one_connection_serves_parallel_commands(sshd: Sshd) -> None:
    host = sshd.host()
    outputs: dict[int, str] = {}

    with fleet_for(host) as fleet:

        def work(i: int) -> None:
            outputs[i] = fleet.run(host, f"sleep 0.2; echo {i}").stdout.strip()

        transport = fleet.transport(host)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fleet.transport(host) is transport
        assert fleet.handshakes == 1
    assert outputs == {i: str(i) for i in range(24)}


def test_closed_connection_is_reopened(sshd: Sshd) -> None:
    host = sshd.host()
    with fleet_for(host) as fleet:
        fleet.transport(host).close()
        assert fleet.run(host, "echo again").stdout == "again\n"
        assert fleet.handshakes == 2


def test_unknown_host_key_is_refused_then_accepted(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.touch()
    host = sshd.host(known_hosts=str(known))
    with fleet_for(host) as fleet, pytest.raises(HostKeyError) as info:
        fleet.connection(host)
    assert "unknown SSH host key" in info.value.message
    assert info.value.hint is not None
    assert f"ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1" in info.value.hint
    assert known.read_text() == ""

    with fleet_for(host, accept_new_host_keys=True) as fleet:
        assert fleet.run(host, "true").ok
    assert paramiko.HostKeys(str(known)).check(
        f"[127.0.0.1]:{sshd.port}", sshd.host_key
    )
    with fleet_for(host) as fleet:
        assert fleet.run(host, "true").ok


def test_changed_host_key_is_refused_even_when_accepting_new(
    sshd: Sshd, tmp_path: Path
) -> None:
    impostor = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))
    known = tmp_path / "known_hosts"
    known.write_text(
        f"[127.0.0.1]:{sshd.port} {impostor.get_name()} {impostor.get_base64()}\n"
    )
    host = sshd.host(known_hosts=str(known))
    with (
        fleet_for(host, accept_new_host_keys=True) as fleet,
        pytest.raises(HostKeyError) as info,
    ):
        fleet.connection(host)
    assert "HOST KEY CHANGED" in info.value.message
    assert info.value.hint is not None
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in info.value.hint
    assert len(known.read_text().splitlines()) == 1


def test_closed_port_is_unreachable_after_quick_retries(sshd: Sshd) -> None:
    host = sshd.host(port=_free_port())
    started = time.monotonic()
    with fleet_for(host) as fleet:
        results = fleet.map(lambda h: fleet.run(h, "true"))
    assert results["lo"].unreachable
    assert "connection refused" in str(results["lo"].error)
    assert time.monotonic() - started < 5


def test_wrong_key_is_an_authentication_error_without_retries(
    sshd: Sshd, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    _keygen(stranger)
    host = sshd.host(identity_file=str(stranger))
    with fleet_for(host) as fleet, pytest.raises(AuthenticationError) as info:
        fleet.connection(host)
    assert "authentication" in info.value.message.lower()


def test_unreachable_host_does_not_hide_the_others(sshd: Sshd) -> None:
    good = sshd.host(name="good")
    bad = sshd.host(name="bad", port=_free_port())
    with fleet_for(good, bad) as fleet:
        results = fleet.map(lambda h: fleet.run(h, "hostname").stdout.strip())
    assert results["good"].ok
    assert results["bad"].unreachable


def test_ssh_config_and_proxyjump(sshd: Sshd, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host target\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
        f"  ProxyJump root@127.0.0.2:{sshd.port}\n"
        f"Host *\n  User root\n  IdentityFile {sshd.client_key}\n"
        f"  UserKnownHostsFile {tmp_path / 'user_known_hosts'}\n"
    )
    (tmp_path / "user_known_hosts").write_text(
        sshd.known_hosts_line("127.0.0.1") + sshd.known_hosts_line("127.0.0.2")
    )
    host = Host(name="target", address="target")
    with fleet_for(host, ssh_config_path=config) as fleet:
        conn = fleet.connection(host)
        assert conn.gateway is not None
        assert conn.gateway.host == "127.0.0.2"
        assert fleet.run(host, "echo via jump").stdout == "via jump\n"


def test_proxyjump_hop_with_unknown_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host target\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
        f"  ProxyJump root@127.0.0.2:{sshd.port}\n"
        f"Host *\n  User root\n  IdentityFile {sshd.client_key}\n"
        f"  UserKnownHostsFile {tmp_path / 'user_known_hosts'}\n"
    )
    (tmp_path / "user_known_hosts").write_text(sshd.known_hosts_line("127.0.0.1"))
    host = Host(name="target", address="target")
    with (
        fleet_for(host, ssh_config_path=config) as fleet,
        pytest.raises(HostKeyError, match=r"jump host 127\.0\.0\.2"),
    ):
        fleet.connection(host)


def test_proxyjump_hop_with_changed_key_names_the_hop(
    sshd: Sshd, tmp_path: Path
) -> None:
    impostor = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host target\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
        f"  ProxyJump root@127.0.0.2:{sshd.port}\n"
        f"Host *\n  User root\n  IdentityFile {sshd.client_key}\n"
        f"  UserKnownHostsFile {tmp_path / 'user_known_hosts'}\n"
    )
    (tmp_path / "user_known_hosts").write_text(
        sshd.known_hosts_line("127.0.0.1")
        + f"[127.0.0.2]:{sshd.port} {impostor.get_name()} {impostor.get_base64()}\n"
    )
    host = Host(name="target", address="target")
    with (
        fleet_for(host, ssh_config_path=config, accept_new_host_keys=True) as fleet,
        pytest.raises(HostKeyError) as info,
    ):
        fleet.connection(host)
    assert info.value.host == "target (jump host 127.0.0.2)"
    assert f"[127.0.0.2]:{sshd.port}" in info.value.message
    assert "HOST KEY CHANGED" in info.value.message

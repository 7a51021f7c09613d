"""known_hosts handling: names, fingerprints, the policy, appends."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import paramiko
import pytest

from daskfleet.errors import HostKeyError
from daskfleet.ssh.hostkeys import (
    HostKeyPolicy,
    KnownHosts,
    changed_key_error,
    fingerprint,
    known_hosts_name,
    unknown_key_error,
)


@pytest.fixture(scope="module")
def key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


@pytest.fixture(scope="module")
def other_key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


def test_known_hosts_name_brackets_non_default_ports() -> None:
    assert known_hosts_name("10.0.0.1", 22) == "10.0.0.1"
    assert known_hosts_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"


def test_fingerprint_is_openssh_sha256(key: paramiko.PKey) -> None:
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode()
    assert fingerprint(key) == "SHA256:" + digest.rstrip("=")
    assert "=" not in fingerprint(key)


def test_resolve_explicit_file_is_the_only_one(tmp_path: Path) -> None:
    known = KnownHosts.resolve(str(tmp_path / "kh"))
    assert known.read_paths == (tmp_path / "kh",)


def test_resolve_default_reads_user_and_system_files() -> None:
    known = KnownHosts.resolve(None)
    assert known.path == Path("~/.ssh/known_hosts").expanduser()
    assert Path("/etc/ssh/ssh_known_hosts") in known.read_paths


def test_append_writes_a_plain_line(tmp_path: Path, key: paramiko.PKey) -> None:
    known = KnownHosts(tmp_path / "sub" / "known_hosts")
    known.append("lab1", "[10.0.0.1]:2222", key)
    line = known.path.read_text()
    assert line == f"[10.0.0.1]:2222 {key.get_name()} {key.get_base64()}\n"
    keys = paramiko.HostKeys(str(known.path))
    assert keys.lookup("[10.0.0.1]:2222")[key.get_name()] == key


def test_append_hashed_line_is_found_by_lookup(
    tmp_path: Path, key: paramiko.PKey
) -> None:
    known = KnownHosts(tmp_path / "known_hosts", hash_new=True)
    known.append("lab1", "10.0.0.1", key)
    text = known.path.read_text()
    assert text.startswith("|1|")
    assert "10.0.0.1" not in text
    assert paramiko.HostKeys(str(known.path)).lookup("10.0.0.1") is not None


def test_append_adds_a_missing_final_newline(
    tmp_path: Path, key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"10.9.9.9 {other_key.get_name()} {other_key.get_base64()}")
    KnownHosts(path).append("lab1", "10.0.0.1", key)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("10.0.0.1 ")


def test_append_of_a_recorded_key_writes_nothing(
    tmp_path: Path, key: paramiko.PKey
) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    known.append("lab1", "10.0.0.1", key)
    known.append("lab1", "10.0.0.1", key)
    assert len(known.path.read_text().splitlines()) == 1


def test_append_refuses_a_key_recorded_meanwhile_that_differs(
    tmp_path: Path, key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    known.append("lab1", "10.0.0.1", other_key)
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
        known.append("lab1", "10.0.0.1", key)


def test_parallel_appends_keep_every_line_whole(
    tmp_path: Path, key: paramiko.PKey
) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    names = [f"[10.0.0.{i}]:2222" for i in range(40)]
    threads = [
        threading.Thread(target=known.append, args=("h", name, key)) for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = paramiko.HostKeys(str(known.path))
    assert all(keys.lookup(name) is not None for name in names)
    assert len(known.path.read_text().splitlines()) == len(names)


def test_policy_refuses_unknown_keys_by_default(
    tmp_path: Path, key: paramiko.PKey
) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    policy = HostKeyPolicy("lab1", known, accept_new=False)
    with pytest.raises(HostKeyError, match="unknown SSH host key"):
        policy.missing_host_key(paramiko.SSHClient(), "[10.0.0.1]:2222", key)
    assert not known.path.exists()


def test_policy_accepting_new_keys_records_them(
    tmp_path: Path, key: paramiko.PKey
) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    client = paramiko.SSHClient()
    HostKeyPolicy("lab1", known, accept_new=True).missing_host_key(
        client, "[10.0.0.1]:2222", key
    )
    assert client.get_host_keys().lookup("[10.0.0.1]:2222") is not None
    assert "[10.0.0.1]:2222" in known.path.read_text()


def test_unknown_key_error_names_host_key_and_fix(key: paramiko.PKey) -> None:
    error = unknown_key_error("lab1", "[10.0.0.1]:2222", key, Path("/tmp/kh"))
    assert error.host == "lab1"
    assert fingerprint(key) in error.message
    assert key.get_name() in error.message
    assert error.hint is not None
    assert "ssh-keyscan -p 2222 -t " in error.hint
    assert "10.0.0.1 >> /tmp/kh" in error.hint
    assert "--accept-new-host-keys" in error.hint


def test_unknown_key_fix_uses_port_22_for_plain_names(key: paramiko.PKey) -> None:
    error = unknown_key_error("lab1", "10.0.0.1", key, Path("/tmp/kh"))
    assert error.hint is not None
    assert "ssh-keyscan -p 22 " in error.hint


def test_changed_key_error_is_alarming_with_removal_fix(
    key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    error = changed_key_error(
        "lab1", "[10.0.0.1]:2222", key, other_key, Path("/tmp/kh")
    )
    assert "HOST KEY CHANGED" in error.message
    assert "man-in-the-middle" in error.message
    assert fingerprint(key) in error.message
    assert fingerprint(other_key) in error.message
    assert error.hint is not None
    assert "ssh-keygen -R '[10.0.0.1]:2222' -f /tmp/kh" in error.hint


def test_paramiko_refuses_a_changed_key_it_loaded(
    tmp_path: Path, key: paramiko.PKey, other_key: paramiko.PKey
) -> None:
    # The behaviour connect() relies on: a loaded entry that differs from
    # the presented key never reaches the missing-key policy.
    known = KnownHosts(tmp_path / "known_hosts")
    known.append("lab1", "10.0.0.1", other_key)
    keys = paramiko.HostKeys()
    known.load_into(keys)
    assert not keys.check("10.0.0.1", key)
    assert keys.check("10.0.0.1", other_key)


def test_file_with_finds_the_recording_file(tmp_path: Path, key: paramiko.PKey) -> None:
    system = tmp_path / "system"
    KnownHosts(system).append("lab1", "10.0.0.1", key)
    known = KnownHosts(tmp_path / "user", extra_paths=(system,))
    assert known.file_with("10.0.0.1") == system
    assert known.file_with("10.0.0.2") == tmp_path / "user"

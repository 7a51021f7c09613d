"""The relay agent and chain, run on this machine over local channels.

Each "host" is the relay agent started with ``sh -c`` here, listening on
127.0.0.1; its load command writes what it gets to a file, so the test sees
exactly what each host would have fed to ``docker load``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import pytest

from daskfleet.images.channel import LocalChannel, local_opener, run_with_input
from daskfleet.images.distribution import Chain
from daskfleet.images.relay import (
    RELAY_CHUNK,
    RelayJob,
    RelayOutcome,
    agent_command,
    payload_digests,
    relay_chain,
)

IMAGE_ID = "sha256:" + "ab" * 32
HOSTS = ("h1", "h2", "h3")


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.tar"
    path.write_bytes(os.urandom(3 * RELAY_CHUNK + 12345))
    return path


def job(
    payload: Path, out: Path, hosts: tuple[str, ...] = HOSTS, **load: str
) -> RelayJob:
    """Each host writes its stream to ``out/<host>``; ``load`` overrides that."""
    command = load.get("command", f"cat > {out}/$RELAY_HOST")
    return RelayJob(
        Chain(hosts, "full", payload.stat().st_size),
        payload,
        command,
        f"echo {IMAGE_ID}",
        IMAGE_ID,
        idle=5.0,
    )


def run(job: RelayJob) -> dict[str, RelayOutcome]:
    openers = {h: local_opener({"RELAY_HOST": h}) for h in job.chain.hosts}
    addresses = dict.fromkeys(job.chain.hosts, "127.0.0.1")
    return relay_chain(job, openers, addresses)


def test_every_host_gets_the_payload_and_the_controller_sends_it_once(
    payload: Path, tmp_path: Path
) -> None:
    outcomes = run(job(payload, tmp_path))
    size = payload.stat().st_size
    assert [o.error for o in outcomes.values()] == [None, None, None]
    for host in HOSTS:
        assert (tmp_path / host).read_bytes() == payload.read_bytes()
        assert outcomes[host].received == size
    assert [outcomes[h].controller_bytes for h in HOSTS] == [size, 0, 0]
    assert [outcomes[h].source for h in HOSTS] == ["controller", "h1", "h2"]
    assert all(o.forward_error is None for o in outcomes.values())


def test_a_relay_host_dying_mid_stream_fails_it_and_those_after_it(
    payload: Path, tmp_path: Path
) -> None:
    # h2's load kills h2's agent after taking one chunk: it dies mid-stream.
    kill_h2 = (
        f'if [ "$RELAY_HOST" = h2 ]; then head -c {RELAY_CHUNK} > /dev/null;'
        f" kill -9 $PPID; else cat > {tmp_path}/$RELAY_HOST; fi"
    )
    outcomes = run(job(payload, tmp_path, command=kill_h2))
    assert outcomes["h1"].ok
    assert (tmp_path / "h1").read_bytes() == payload.read_bytes()
    assert not outcomes["h2"].ok
    assert not outcomes["h3"].ok
    assert "stream ended" in str(outcomes["h3"].error) or "receiving" in str(
        outcomes["h3"].error
    )


def test_a_host_whose_agent_cannot_start_is_left_out_of_the_chain(
    payload: Path, tmp_path: Path
) -> None:
    the_job = job(payload, tmp_path)
    openers = {h: local_opener({"RELAY_HOST": h}) for h in HOSTS}
    openers["h2"] = local_opener({"RELAY_HOST": "h2", "PATH": "/nonexistent"})
    outcomes = relay_chain(the_job, openers, dict.fromkeys(HOSTS, "127.0.0.1"))
    assert "relay agent did not start" in str(outcomes["h2"].error)
    assert outcomes["h1"].ok and outcomes["h3"].ok
    assert outcomes["h3"].source == "h1"
    assert (tmp_path / "h3").read_bytes() == payload.read_bytes()


def test_the_agent_loads_nothing_that_fails_its_digest(
    payload: Path, tmp_path: Path
) -> None:
    out = tmp_path / "loaded"
    config = agent_config(payload, out, "00" * 16)
    route = {"upstream": None, "downstream": None}
    tampered = bytearray(payload.read_bytes())
    tampered[RELAY_CHUNK + 7] ^= 0xFF
    stdin = (json.dumps(config) + "\n" + json.dumps(route) + "\n").encode()
    source = tmp_path / "stdin"
    source.write_bytes(stdin + bytes(tampered))
    with source.open("rb") as feed:
        result = run_with_input(lambda: LocalChannel(), agent_command(), feed)
    report = json.loads(result.stdout.splitlines()[-1])["report"]
    assert result.exit_status == 1
    assert report["error"] == "chunk 1 does not match its digest"
    # Only the chunk before the bad one may have reached the load.
    loaded = out.read_bytes() if out.exists() else b""
    assert hashlib.sha256(loaded).digest() in {
        hashlib.sha256(b"").digest(),
        hashlib.sha256(payload.read_bytes()[:RELAY_CHUNK]).digest(),
    }


def test_the_agent_drops_a_connection_without_the_token(
    payload: Path, tmp_path: Path
) -> None:
    out = tmp_path / "loaded"
    token = "5a" * 16
    channel = LocalChannel()
    channel.exec_command(agent_command())
    channel.sendall(json.dumps(agent_config(payload, out, token)).encode() + b"\n")
    port = json.loads(_line(channel))["port"]
    route = {"upstream": "127.0.0.1", "downstream": None}
    channel.sendall(json.dumps(route).encode() + b"\n")
    channel.shutdown_write()

    with socket.create_connection(("127.0.0.1", port)) as stranger:
        stranger.sendall(b"\x00" * 16 + b"not the image")
        assert _dropped(stranger)
    with socket.create_connection(("127.0.0.1", port)) as upstream:
        upstream.sendall(bytes.fromhex(token) + payload.read_bytes())
        upstream.shutdown(socket.SHUT_WR)
        while channel.exit_status_ready() is False:
            time.sleep(0.05)
    assert channel.recv_exit_status() == 0
    assert out.read_bytes() == payload.read_bytes()
    channel.close()


def _dropped(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def agent_config(payload: Path, out: Path, token: str) -> dict[str, object]:
    return {
        "chunk": RELAY_CHUNK,
        "digests": payload_digests(payload),
        "size": payload.stat().st_size,
        "load": f"cat > {out}",
        "verify": f"echo {IMAGE_ID}",
        "image_id": IMAGE_ID,
        "token": token,
        "idle": 5.0,
        "listen": "127.0.0.1",
    }


def _line(channel: LocalChannel) -> str:
    data = b""
    deadline = time.monotonic() + 10
    while not data.endswith(b"\n") and time.monotonic() < deadline:
        data += channel.recv(1) if channel.recv_ready() else b""
        time.sleep(0 if data else 0.01)
    return data.decode()

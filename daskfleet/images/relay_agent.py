"""The relay agent: one image payload through one host, then it exits.

This file is sent as the program of ``python3 -c`` to every host of a relay
chain; it needs Python 3.8 and its standard library only, and imports
nothing of daskfleet. The controller talks to it over the agent's SSH
channel, which is the only trusted path:

1. stdin line 1, JSON: chunk size, the sha256 of every chunk, the load
   command and the command that prints the loaded image's ID, the image ID
   expected, the chain's one-time token, the address to listen on and the
   idle limit in seconds. The agent answers ``{"port": N}`` on stdout.
2. stdin line 2, JSON: the upstream address whose connection it must
   accept (none for the chain's head: the payload follows on stdin) and
   the downstream ``[address, port]`` to pass the payload on to (or none).

Every chunk is checked against its digest before it reaches ``docker
load`` or the next host, so a peer cannot inject bytes. Progress lines
and one final report, all JSON, go to stdout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any

HEARTBEAT_SECONDS = 2.0
#: Chunks buffered for ``docker load`` and for the next host.
QUEUE_CHUNKS = 8


class RelayFailure(Exception):
    """The payload could not be received whole and verified."""


def say(message: dict[str, Any]) -> None:
    """One JSON line to the controller; stdout is shared by threads."""
    with _stdout_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


_stdout_lock = threading.Lock()


class Forwarder:
    """Sends verified chunks to the next host; a failure only stops that."""

    def __init__(self, target: list[Any] | None, token: bytes, idle: float) -> None:
        self.error: str | None = None
        self.sent = 0
        self._idle = idle
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_CHUNKS)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        if target is not None:
            self._thread = threading.Thread(
                target=self._run, args=(target, token), daemon=True
            )
            self._thread.start()

    def offer(self, chunk: bytes | None) -> None:
        if self._thread is None or self.error is not None:
            return
        try:
            self._queue.put(chunk, timeout=self._idle)
        except queue.Full:
            self.error = f"the next host took nothing for {self._idle:.0f} s"

    def _run(self, target: list[Any], token: bytes) -> None:
        try:
            self._sock = socket.create_connection(
                (target[0], int(target[1])), timeout=self._idle
            )
            self._sock.sendall(token)
            while (chunk := self._queue.get()) is not None:
                self._sock.sendall(chunk)
                self.sent += len(chunk)
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.error = f"sending to {target[0]} failed: {exc}"
            self.abort()
            self._drain()

    def _drain(self) -> None:
        """Unblock a reader waiting to queue; nothing more is queued after."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def abort(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def finish(self) -> str | None:
        self.offer(None)
        if self._thread is not None:
            self._thread.join(self._idle)
            if self._thread.is_alive() and self.error is None:
                self.error = "the next host stopped reading"
                self.abort()
        return self.error


class Loader:
    """``docker load`` fed through a queue, its output kept for the report."""

    def __init__(self, command: str) -> None:
        self.proc = subprocess.Popen(
            ["sh", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = b""
        self.error: str | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_CHUNKS)
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._writer.start()
        self._reader.start()

    def put(self, chunk: bytes | None) -> None:
        self._queue.put(chunk)

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while (chunk := self._queue.get()) is not None:
                if self.error is None:
                    stdin.write(chunk)
            stdin.close()
        except OSError as exc:
            self.error = f"docker load stopped reading: {exc}"
            while self._queue.get() is not None:
                pass

    def _read(self) -> None:
        assert self.proc.stdout is not None
        self.output = self.proc.stdout.read()

    def finish(self) -> int:
        self.put(None)
        self._writer.join()
        status = self.proc.wait()
        self._reader.join()
        return status

    def kill(self) -> None:
        self.proc.kill()


def read_exact(source: IO[bytes] | socket.socket, size: int) -> bytes:
    parts = []
    left = size
    while left:
        if isinstance(source, socket.socket):
            part = source.recv(min(left, 1 << 20))
        else:
            part = source.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def accept_upstream(
    listener: socket.socket, upstream: str, token: bytes, idle: float
) -> socket.socket:
    """The one connection from ``upstream`` that presents the token."""
    deadline = time.monotonic() + idle
    allowed = {info[4][0] for info in socket.getaddrinfo(upstream, None)}
    while True:
        listener.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            conn, peer = listener.accept()
        except OSError as exc:  # socket.timeout is no TimeoutError before 3.10
            raise RelayFailure(
                f"{upstream} did not connect within {idle:.0f} s"
            ) from exc
        conn.settimeout(idle)
        offered = read_exact(conn, len(token)) if peer[0] in allowed else b""
        if hmac.compare_digest(offered, token):
            return conn
        conn.close()


def relay(
    config: dict[str, Any],
    route: dict[str, Any],
    listener: socket.socket,
    report: dict[str, Any],
) -> int:
    idle = float(config["idle"])
    token = bytes.fromhex(config["token"])
    source: IO[bytes] | socket.socket = sys.stdin.buffer
    if route["upstream"] is not None:
        source = accept_upstream(listener, route["upstream"], token, idle)
    listener.close()
    forwarder = Forwarder(route["downstream"], token, idle)
    loader = Loader(config["load"])
    report["forward_error"] = None
    try:
        receive(config, source, loader, forwarder, report)
    except RelayFailure:
        loader.kill()
        forwarder.abort()
        raise
    report["forward_error"] = forwarder.finish()
    status = loader.finish()
    report["load_output"] = loader.output.decode(errors="replace")[-2000:]
    if status != 0 or loader.error:
        raise RelayFailure(loader.error or f"docker load failed (exit {status})")
    return verify_image(config["verify"], config["image_id"])


def receive(
    config: dict[str, Any],
    source: IO[bytes] | socket.socket,
    loader: Loader,
    forwarder: Forwarder,
    report: dict[str, Any],
) -> None:
    chunk_size = int(config["chunk"])
    total = int(config["size"])
    received = 0
    for index, digest in enumerate(config["digests"]):
        want = min(chunk_size, total - received)
        try:
            chunk = read_exact(source, want)
        except OSError as exc:
            raise RelayFailure(f"receiving failed at byte {received}: {exc}") from exc
        if len(chunk) != want:
            raise RelayFailure(f"the stream ended at byte {received} of {total}")
        if hashlib.sha256(chunk).hexdigest() != digest:
            raise RelayFailure(f"chunk {index} does not match its digest")
        loader.put(chunk)
        forwarder.offer(chunk)
        received += want
        report["received"] = received


def verify_image(command: str, image_id: str) -> int:
    """``command`` prints the ID the loaded tag names; it must be ``image_id``."""
    found = subprocess.run(
        ["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    loaded = found.stdout.decode(errors="replace").strip()
    if found.returncode != 0 or loaded != image_id:
        raise RelayFailure(f"after loading, the image is {loaded!r}, not {image_id}")
    return 0


def heartbeat(report: dict[str, Any], done: threading.Event) -> None:
    while not done.wait(HEARTBEAT_SECONDS):
        say({"received": report.get("received", 0)})


def listen(address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.create_server((address, 0), family=family)
    say({"port": listener.getsockname()[1]})
    return listener


def main() -> int:
    config = json.loads(sys.stdin.buffer.readline())
    listener = listen(config["listen"])
    route = json.loads(sys.stdin.buffer.readline())
    report: dict[str, Any] = {"received": 0}
    done = threading.Event()
    threading.Thread(target=heartbeat, args=(report, done), daemon=True).start()
    try:
        status = relay(config, route, listener, report)
        report["error"] = None
    except RelayFailure as exc:
        status = 1
        report["error"] = str(exc)
    except Exception as exc:  # any failure at all goes into the report
        status = 1
        report["error"] = f"{type(exc).__name__}: {exc}"
    done.set()
    say({"report": report})
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Send one payload down a relay chain; the controller's link carries it once.

Every host of the chain runs the relay agent (``relay_agent.py``, sent as
the program of ``python3 -c``) on its own SSH channel. Each agent listens
on the host's inventory address; the controller hands every agent its
upstream and downstream, a one-time token and the digest of every chunk,
all over SSH, then streams the payload into the head's channel. Agents
load what they verified and pass it on. Nothing outlives the run: no key,
no listener, no file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import paramiko

from daskfleet.errors import DaskfleetError
from daskfleet.images.channel import CHUNK_SIZE, Channel, ChannelOpener
from daskfleet.images.distribution import Chain

logger = logging.getLogger(__name__)

#: Bytes per verified chunk: large enough that hashing costs little, small
#: enough that a host loads and forwards while the next one arrives.
RELAY_CHUNK = 4 << 20
#: An agent or a peer silent this long is given up on.
IDLE_SECONDS = 20.0
POLL_SECONDS = 0.05

RelayProgress = Callable[[str, int], None]


@dataclass(frozen=True)
class RelayOutcome:
    """What one chain host got; ``error`` None means it loaded the image."""

    host: str
    error: str | None
    received: int = 0
    #: Bytes the controller itself sent this host (the head's payload).
    controller_bytes: int = 0
    #: Passing the payload on to the next host failed (the host itself is fine).
    forward_error: str | None = None
    seconds: float = 0.0
    #: Where the host's stream came from: the upstream host, or the controller.
    source: str = "controller"

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RelayJob:
    """One payload for one chain, with what each agent must check."""

    chain: Chain
    payload: Path
    load_command: str
    #: Prints the ID of the image the load should have tagged.
    verify_command: str
    image_id: str
    idle: float = IDLE_SECONDS


def agent_command() -> str:
    """The shell command that runs the relay agent on a host."""
    source = resources.files("daskfleet.images").joinpath("relay_agent.py")
    return f"python3 -I -c {shlex.quote(source.read_text())}"


def payload_digests(path: Path, chunk: int = RELAY_CHUNK) -> list[str]:
    """The sha256 of every ``chunk`` bytes of ``path``, in order."""
    digests = []
    with path.open("rb") as source:
        while data := source.read(chunk):
            digests.append(hashlib.sha256(data).hexdigest())
    return digests


def relay_chain(
    job: RelayJob,
    openers: Mapping[str, ChannelOpener],
    addresses: Mapping[str, str],
    progress: RelayProgress | None = None,
) -> dict[str, RelayOutcome]:
    """Run the chain; every host of it gets an outcome, failed or not."""
    started = time.monotonic()
    config = _agent_config(job)
    agents, failed = _start_agents(job, openers, addresses, config)
    live = [h for h in job.chain.hosts if h in agents]
    for index, host in enumerate(live):
        agents[host].send_route(_route(live, index, agents, addresses))
    streamer = _Streamer(agents[live[0]], job.payload) if live else None
    outcomes = _watch(agents, job.idle, progress)
    if streamer is not None:
        streamer.join()
        outcomes[live[0]] = _with_stream(outcomes[live[0]], streamer)
    elapsed = time.monotonic() - started
    sources = dict(zip(live[1:], live, strict=False))
    return {
        host: dataclasses.replace(
            outcomes.get(host) or failed[host],
            seconds=elapsed,
            source=sources.get(host, "controller"),
        )
        for host in job.chain.hosts
    }


def _agent_config(job: RelayJob) -> dict[str, Any]:
    return {
        "chunk": RELAY_CHUNK,
        "digests": payload_digests(job.payload),
        "size": job.payload.stat().st_size,
        "load": job.load_command,
        "verify": job.verify_command,
        "image_id": job.image_id,
        "token": secrets.token_hex(16),
        "idle": job.idle,
    }


def _route(
    live: list[str],
    index: int,
    agents: Mapping[str, _Agent],
    addresses: Mapping[str, str],
) -> dict[str, Any]:
    upstream = addresses[live[index - 1]] if index else None
    downstream = None
    if index + 1 < len(live):
        following = live[index + 1]
        downstream = [addresses[following], agents[following].port]
    return {"upstream": upstream, "downstream": downstream}


def _start_agents(
    job: RelayJob,
    openers: Mapping[str, ChannelOpener],
    addresses: Mapping[str, str],
    config: dict[str, Any],
) -> tuple[dict[str, _Agent], dict[str, RelayOutcome]]:
    """An agent listening on each host's address; failures per host."""
    command = agent_command()

    def start(host: str) -> _Agent:
        agent = _Agent(host, openers[host](), job.idle)
        agent.start(command, {**config, "listen": addresses[host]})
        return agent

    agents: dict[str, _Agent] = {}
    failed: dict[str, RelayOutcome] = {}
    with ThreadPoolExecutor(max_workers=min(len(job.chain.hosts), 16)) as pool:
        futures = {h: pool.submit(start, h) for h in job.chain.hosts}
    for host, future in futures.items():
        try:
            agents[host] = future.result()
        except (
            _AgentError,
            DaskfleetError,
            OSError,
            EOFError,
            paramiko.SSHException,
        ) as exc:
            logger.warning("%s: relay agent did not start: %s", host, exc)
            failed[host] = RelayOutcome(host, f"relay agent did not start: {exc}")
    return agents, failed


def _watch(
    agents: Mapping[str, _Agent], idle: float, progress: RelayProgress | None
) -> dict[str, RelayOutcome]:
    """Poll every agent until each reports, ends or falls silent."""
    outcomes: dict[str, RelayOutcome] = {}
    while len(outcomes) < len(agents):
        for host, agent in agents.items():
            if host in outcomes:
                continue
            try:
                for delta in agent.poll():
                    if progress is not None:
                        progress(host, delta)
                outcome = agent.outcome()
            except (OSError, EOFError, paramiko.SSHException) as exc:
                agent.channel.close()
                outcome = RelayOutcome(host, f"the SSH channel failed: {exc}")
            if outcome is not None:
                outcomes[host] = outcome
        time.sleep(POLL_SECONDS)
    return outcomes


def _with_stream(outcome: RelayOutcome, streamer: _Streamer) -> RelayOutcome:
    error = outcome.error
    if error is not None and streamer.error is not None:
        error = f"{error} (the controller's stream: {streamer.error})"
    return dataclasses.replace(outcome, error=error, controller_bytes=streamer.sent)


class _AgentError(Exception):
    pass


class _Agent:
    """The controller's end of one agent's SSH channel."""

    def __init__(self, host: str, channel: Channel, idle: float) -> None:
        self.host = host
        self.channel = channel
        # A peer cut off must not block the controller's sends for ever.
        settimeout = getattr(channel, "settimeout", None)
        if settimeout is not None:
            settimeout(idle)
        self.port = 0
        self._idle = idle
        self._buffer = b""
        self._heard = time.monotonic()
        self._received = 0
        self._report: dict[str, Any] | None = None

    def start(self, command: str, config: dict[str, Any]) -> None:
        self.channel.exec_command(command)
        self._send_json(config)
        deadline = time.monotonic() + self._idle
        while not self.port:
            self._read_lines()
            if self.channel.exit_status_ready() or time.monotonic() > deadline:
                raise _AgentError(self._gone_why())
            time.sleep(POLL_SECONDS)

    def send_route(self, route: dict[str, Any]) -> None:
        self._send_json(route)
        if route["upstream"] is not None:
            self.channel.shutdown_write()

    def _send_json(self, message: dict[str, Any]) -> None:
        self.channel.sendall(json.dumps(message).encode() + b"\n")

    def poll(self) -> list[int]:
        """Read what the agent said; the new bytes it reported received."""
        before = self._received
        self._read_lines()
        return [self._received - before] if self._received > before else []

    def outcome(self) -> RelayOutcome | None:
        """The agent's outcome once it ended or fell silent, else None."""
        if self.channel.exit_status_ready():
            self._read_lines()
            self.channel.close()
            return self._ended()
        if time.monotonic() - self._heard > self._idle:
            self.channel.close()
            why = f"no word from the relay agent for {self._idle:.0f} s"
            return RelayOutcome(self.host, why, self._received)
        return None

    def _ended(self) -> RelayOutcome:
        report = self._report
        if report is None:
            return RelayOutcome(self.host, self._gone_why(), self._received)
        return RelayOutcome(
            self.host,
            report.get("error"),
            int(report.get("received", self._received)),
            forward_error=report.get("forward_error"),
        )

    def _gone_why(self) -> str:
        if not self.channel.exit_status_ready():
            return f"the relay agent did not answer within {self._idle:.0f} s"
        status = self.channel.recv_exit_status()
        errors = b""
        while self.channel.recv_stderr_ready():
            errors += self.channel.recv_stderr(CHUNK_SIZE)
        text = errors.decode(errors="replace").strip()[-500:]
        return f"the relay agent ended (exit {status}): {text or 'no output'}"

    def _read_lines(self) -> None:
        while self.channel.recv_ready():
            data = self.channel.recv(CHUNK_SIZE)
            if not data:
                break
            self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._heard = time.monotonic()
            try:
                self._take(json.loads(line))
            except (ValueError, TypeError, AttributeError):
                logger.debug("%s: relay agent said %r", self.host, line[:200])

    def _take(self, message: dict[str, Any]) -> None:
        if "port" in message:
            self.port = int(message["port"])
        if "received" in message:
            self._received = max(self._received, int(message["received"]))
        if "report" in message:
            self._report = message["report"]
            self._received = int(self._report.get("received", self._received))


class _Streamer(threading.Thread):
    """Sends the payload into the head agent's stdin, then closes it."""

    def __init__(self, agent: _Agent, payload: Path) -> None:
        super().__init__(name=f"relay-stream-{agent.host}", daemon=True)
        self.agent = agent
        self.payload = payload
        self.sent = 0
        self.error: str | None = None
        self.start()

    def run(self) -> None:
        channel = self.agent.channel
        try:
            with self.payload.open("rb") as source:
                while data := source.read(CHUNK_SIZE):
                    channel.sendall(data)
                    self.sent += len(data)
            channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.error = str(exc) or type(exc).__name__

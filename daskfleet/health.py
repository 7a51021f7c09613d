"""Prove a deployed cluster healthy through a real ``distributed.Client``.

The checks: every planned worker is registered under its name with the
planned threads, memory limit and resources; no unexpected worker is there;
client, scheduler and workers agree on the versions that matter; a probe
task runs on each worker, and a GPU worker sees its own GPU and no other;
the scheduler's HTTP ``/health`` answers.
"""

from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import tenacity
from distributed import Client

from daskfleet.client import open_client
from daskfleet.probe import make_probe
from daskfleet.retire import workers_of_hosts

logger = logging.getLogger(__name__)

#: Packages whose versions must match exactly between client and cluster.
STRICT_PACKAGES = ("dask", "distributed", "cloudpickle", "msgpack")
PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class ExpectedWorker:
    """A worker the plan asked for, as the scheduler should report it."""

    name: str
    host: str
    nthreads: int
    memory_limit: int
    resources: Mapping[str, float] = field(default_factory=dict)
    #: UUID of the one GPU the worker must see; None for a CPU worker.
    gpu: str | None = None


@dataclass(frozen=True)
class WorkerCheck:
    """The outcome for one planned worker."""

    name: str
    host: str
    address: str | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class HealthReport:
    """Everything the health step saw, good and bad."""

    scheduler: str
    workers: tuple[WorkerCheck, ...]
    unexpected: tuple[str, ...] = ()
    cluster_problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            all(w.ok for w in self.workers)
            and not self.unexpected
            and not self.cluster_problems
        )

    def problems(self) -> list[str]:
        """Every problem as one line naming the worker or the check."""
        lines = list(self.cluster_problems)
        for check in self.workers:
            lines += [
                f"worker {check.name} on {check.host}: {p}" for p in check.problems
            ]
        lines += [f"unexpected worker {name} is connected" for name in self.unexpected]
        return lines

    def failing_hosts(self) -> set[str]:
        return {w.host for w in self.workers if not w.ok}


def check_health(
    scheduler_address: str,
    expected: Sequence[ExpectedWorker],
    *,
    dashboard_url: str | None = None,
    timeout: float = 120.0,
    security: Any = None,
    tolerated_hosts: Collection[str] = (),
) -> HealthReport:
    """Connect to the scheduler, wait for the planned workers and check them.

    Waits up to ``timeout`` seconds for every planned worker to register,
    then reports what it found. It raises only when the scheduler cannot
    be reached, never for an unhealthy cluster.
    Workers of ``tolerated_hosts`` (outside this run) are not unexpected.
    """
    client = open_client(scheduler_address, timeout=timeout, security=security)
    with client:
        workers = _wait_for_workers(client, expected, timeout)
        checks = [_check_worker(w, workers) for w in expected]
        checks = _probe(client, checks, {w.name: w.gpu for w in expected})
        known = {w.name for w in expected}
        known |= set(workers_of_hosts(workers, tolerated_hosts).values())
        unexpected = sorted(
            str(info.get("name", addr))
            for addr, info in workers.items()
            if str(info.get("name", addr)) not in known
        )
        cluster_problems = _check_versions(client)
    if dashboard_url is not None:
        ca_file = getattr(security, "tls_ca_file", None)
        cluster_problems += _check_http(dashboard_url, ca_file)
    return HealthReport(
        scheduler_address, tuple(checks), tuple(unexpected), cluster_problems
    )


def _wait_for_workers(
    client: Client, expected: Sequence[ExpectedWorker], timeout: float
) -> dict[str, dict[str, Any]]:
    wanted = {w.name for w in expected}

    def registered() -> dict[str, dict[str, Any]]:
        info: dict[str, dict[str, Any]] = client.scheduler_info(n_workers=-1)["workers"]
        return info

    def missing(info: dict[str, dict[str, Any]]) -> bool:
        names = {str(w.get("name")) for w in info.values()}
        return not wanted <= names

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(0.5),
        retry=tenacity.retry_if_result(missing),
        retry_error_callback=lambda state: (
            state.outcome.result() if state.outcome else {}
        ),
    )
    result: dict[str, dict[str, Any]] = retrying(registered)
    return result


def _check_worker(
    want: ExpectedWorker, workers: Mapping[str, Mapping[str, Any]]
) -> WorkerCheck:
    found = [(a, i) for a, i in workers.items() if str(i.get("name")) == want.name]
    if not found:
        return WorkerCheck(
            want.name, want.host, None, ("not registered with the scheduler",)
        )
    address, info = found[0]
    problems = []
    if info.get("nthreads") != want.nthreads:
        problems.append(f"{info.get('nthreads')} threads, planned {want.nthreads}")
    memory = info.get("memory_limit")
    if memory != want.memory_limit:
        problems.append(f"memory limit {memory} bytes, planned {want.memory_limit}")
    resources = {k: float(v) for k, v in (info.get("resources") or {}).items()}
    if resources != {k: float(v) for k, v in want.resources.items()}:
        problems.append(f"resources {resources}, planned {dict(want.resources)}")
    return WorkerCheck(want.name, want.host, address, tuple(problems))


def _probe(
    client: Client, checks: list[WorkerCheck], gpus: Mapping[str, str | None]
) -> list[WorkerCheck]:
    futures = {
        c.name: client.submit(
            make_probe(),
            workers=[c.address],
            allow_other_workers=False,
            pure=False,
            key=f"daskfleet-probe-{c.name}",
        )
        for c in checks
        if c.address is not None
    }
    result = []
    for check in checks:
        future = futures.get(check.name)
        if future is None:
            result.append(check)
            continue
        try:
            answer = future.result(timeout=PROBE_TIMEOUT)
        except Exception as exc:  # any task failure is a finding, not a crash
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            problem = f"probe task failed: {type(exc).__name__}: {first_line}"
        else:
            problem = probe_problem(check.name, gpus.get(check.name), answer)
        if problem:
            check = WorkerCheck(
                check.name, check.host, check.address, (*check.problems, problem)
            )
        result.append(check)
    return result


def probe_problem(name: str, gpu: str | None, answer: Mapping[str, str]) -> str:
    """What is wrong with a probe's answer; empty when nothing."""
    if answer.get("name") != name:
        return f"probe ran on {answer.get('name')}"
    if gpu is None:
        return ""
    text = answer.get("gpus", "")
    seen = [g.strip() for g in text.split(",") if g.strip() not in ("", "void")]
    if not seen:
        return f"sees no GPU, planned {gpu}"
    if seen != [gpu]:
        return f"sees GPU {', '.join(seen)}, planned only {gpu}"
    return ""


def _check_versions(client: Client) -> tuple[str, ...]:
    versions: Any = client.get_versions(check=False)
    mine = versions["client"]["packages"]
    nodes = {"scheduler": versions["scheduler"]["packages"]}
    for address, info in versions["workers"].items():
        nodes[f"worker {address}"] = info["packages"]
    problems = []
    for node, packages in nodes.items():
        problems += _version_mismatches(node, mine, packages)
    return tuple(problems)


def _version_mismatches(
    node: str, client: Mapping[str, Any], other: Mapping[str, Any]
) -> list[str]:
    problems = []
    theirs, ours = other.get("python"), client.get("python")
    if _minor(theirs) != _minor(ours):
        problems.append(f"{node} runs python {theirs}, the client {ours}")
    for name in STRICT_PACKAGES:
        if client.get(name) != other.get(name):
            problems.append(
                f"{node} has {name} {other.get(name)}, the client {client.get(name)}"
            )
    return problems


def _minor(version: object) -> str:
    return ".".join(str(version).split(".")[:2])


def _check_http(dashboard_url: str, ca_file: str | None = None) -> tuple[str, ...]:
    url = dashboard_url.rstrip("/") + "/health"
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            body = response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError) as exc:
        return (f"scheduler HTTP {url} did not answer: {exc}",)
    if body != "ok":
        return (f"scheduler HTTP {url} answered {body!r}, expected 'ok'",)
    return ()

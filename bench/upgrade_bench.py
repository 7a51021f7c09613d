"""Rolling-upgrade benchmark: time per batch for several batch sizes.

    .venv/bin/python bench/upgrade_bench.py [--workers 4] [--batches 1,2,4]
        [--repeat 2] [--json OUT]

Needs root. Brings up its own lab ``ubench`` (10.213.8.0/24): one scheduler
host and W worker hosts, deploys, then for each batch size rolls a
code-only image change (one ``RUN`` line on top of the running image) out
with ``daskfleet upgrade --image``, with ``--min-healthy-time 0`` so the
figure is the batch's own cost: room check, retire, swap, registration and
health checks. Prints a Markdown table; docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker

from daskfleet.lab import LabConfig, LabState, lab_down, lab_up

LAB = LabConfig("ubench", subnet=ipaddress.IPv4Network("10.213.8.0/24"))
DASKFLEET = [sys.executable, "-m", "daskfleet"]


@contextmanager
def upgrade_lab(workers: int, workdir: Path) -> Iterator[LabState]:
    try:
        yield lab_up(LAB, hosts=workers + 1, inventory_path=workdir / "ubench.yml")
    finally:
        lab_down(LAB, purge=True)


def cli(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [*DASKFLEET, *args, "--json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{args[0]} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def new_image(state: LabState, tag: str) -> str:
    """A code-only change on top of the image the workers run now."""
    host = docker.DockerClient(f"unix://{state.hosts[1].docker_socket}")
    (worker,) = host.containers.list(filters={"label": "daskfleet.role=worker"})
    base = worker.image.id
    dockerfile = f"FROM {base}\nRUN echo {time.time_ns()} > /etc/bench-version\n"
    builder = docker.DockerClient(f"unix://{state.build_socket}")
    builder.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


def measure(state: LabState, batch: int, run: int) -> dict[str, Any]:
    tag = new_image(state, f"daskfleet/ubench:b{batch}-r{run}")
    started = time.monotonic()
    recap = cli(
        "upgrade",
        str(state.inventory_path),
        "--image",
        tag,
        "--batch",
        str(batch),
        "--min-healthy-time",
        "0",
    )
    wall = time.monotonic() - started
    batches = recap["upgrade"]["batches"]
    return {
        "batch": batch,
        "wall": wall,
        "batches": len(batches),
        "per_batch": [b["seconds"] for b in batches],
        "staged_bytes": max(h["bytes_sent"] for h in recap["hosts"].values()),
    }


def report(results: list[dict[str, Any]], workers: int) -> str:
    lines = [
        f"| batch size | batches | upgrade of {workers} workers (median) | per batch (median) | staged per host |",
        "| --- | --- | --- | --- | --- |",
    ]
    for size in sorted({r["batch"] for r in results}):
        runs = [r for r in results if r["batch"] == size]
        walls = [r["wall"] for r in runs]
        per = [s for r in runs for s in r["per_batch"]]
        staged = max(r["staged_bytes"] for r in runs)
        lines.append(
            f"| {size} | {runs[0]['batches']} | {statistics.median(walls):.1f} s "
            f"({min(walls):.1f}-{max(walls):.1f}) | {statistics.median(per):.1f} s "
            f"({min(per):.1f}-{max(per):.1f}) | {staged:,} B |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batches", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(s) for s in args.batches.split(",")]
    results = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        upgrade_lab(args.workers, Path(tmp)) as state,
    ):
        cli("deploy", str(state.inventory_path))
        for run in range(args.repeat):
            for size in sizes:
                results.append(measure(state, size, run))
                print(json.dumps(results[-1]), flush=True)
    print(report(results, args.workers))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

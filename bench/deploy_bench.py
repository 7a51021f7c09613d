"""Deploy benchmarks on a fresh 3-host lab, each against its baseline.

    .venv/bin/python bench/deploy_bench.py [--repeat N] [--json OUT]
        [--skip-packages]
    .venv/bin/python bench/deploy_bench.py --report OUT   # print a saved run

Needs root (it builds a lab). Brings up the lab ``bench`` (10.213.6.0/24),
measures, purges the lab and prints two Markdown tables. Figures: image build (cold and cached), cold
deploy against a serial ``docker save | ssh docker load`` + ``docker run``
script, warm start, no-op re-deploy, re-deploy after a one-line change to
the image, and the sizes involved. docs/performance.md explains them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _baseline import run_baseline
from _lab import (
    BENCH_DIR,
    DeployRun,
    bench_lab,
    build_client,
    changed_dockerfile,
    forget_archives,
    remove_containers,
    reset_cold,
    run_deploy,
    with_packages,
)
from _report import figures, stage_table, table

from daskfleet.deploy import DeployOptions, deploy
from daskfleet.images import BuildRequest, ImageArchive, build_image, docker_client
from daskfleet.images.wheelhouse import cache_root
from daskfleet.inventory import load_inventory
from daskfleet.lab import BASE_IMAGE, LabState

#: What the one-line-change run adds to ``image.packages``: a small wheel.
EXTRA_PACKAGE = "tabulate"
CHANGE_LINE = "RUN echo {} > /etc/daskfleet-bench-change"


def bench_build(state: LabState, repeat: int) -> dict[str, list[float]]:
    """Build on the lab's empty build daemon, then again with nothing changed."""
    request = BuildRequest.from_inventory(load_inventory(state.inventory_path))
    client = docker_client(request.builder)
    cold, noop = [], []
    for i in range(repeat):
        built = build_image(client, request)
        cold.append(built.seconds)
        noop.append(build_image(client, request).seconds)
        if i < repeat - 1:  # drop the image and its tagged install stage
            client.images.remove(built.tag)
            client.images.remove(built.tag.replace(":", "-install:", 1))
    return {"cold": cold, "noop": noop}


def bench_cold(state: LabState, repeat: int, seen: set[str]) -> dict[str, Any]:
    """Cold deploy and the baseline script, alternating which runs first."""
    # The baseline script starts plain Dask (no TLS), as one written by hand.
    plain = dataclasses.replace(load_inventory(state.inventory_path), security="none")
    recap = deploy(plain, DeployOptions(check=True))
    plan = recap.plan
    assert plan is not None and recap.scheduler_address is not None
    seen.add(plan.image.id)
    ours: list[DeployRun] = []
    theirs = []
    for i in range(repeat):
        for who in ("baseline", "daskfleet")[:: 1 if i % 2 == 0 else -1]:
            reset_cold(state)
            if who == "baseline":
                args = (plan.image.name, plan.specs, recap.scheduler_address)
                theirs.append(run_baseline(state, *args))
            else:
                forget_archives(plan.image.id)
                ours.append(run_deploy(state.inventory_path))
    saved = cache_root() / "archives" / f"{plan.image.id.removeprefix('sha256:')}.tar"
    compressed = ImageArchive(saved).payload(frozenset(), compress=True)
    image = build_client(state).images.get(plan.image.name)
    return {
        "daskfleet": [_run_dict(r) for r in ours],
        "baseline": [vars(r) for r in theirs],
        "archive_bytes": saved.stat().st_size,
        "compressed_bytes": compressed.stat().st_size,
        "image_bytes": image.attrs["Size"],
        "base_bytes": build_client(state).images.get(BASE_IMAGE).attrs["Size"],
    }


def bench_warm(state: LabState, repeat: int) -> list[dict[str, Any]]:
    runs = []
    for _ in range(repeat):
        remove_containers(state)
        runs.append(_run_dict(run_deploy(state.inventory_path)))
    return runs


def bench_noop(state: LabState, repeat: int) -> list[dict[str, Any]]:
    return [_run_dict(run_deploy(state.inventory_path)) for _ in range(repeat)]


def bench_change(
    state: LabState, repeat: int, workdir: Path, seen: set[str]
) -> list[dict[str, Any]]:
    """Each run adds a new last line to the Dockerfile and re-deploys."""
    runs = []
    for i in range(repeat):
        line = CHANGE_LINE.format(f"{i}-{time.time_ns()}")
        prefix = [sys.executable, str(BENCH_DIR / "_changed_deploy.py")]
        prefix.append(str(changed_dockerfile(workdir, line)))
        runs.append(_run_dict(run_deploy(state.inventory_path, prefix)))
        seen.add(runs[-1]["recap"]["plan"]["image"]["id"])
    return runs


def bench_packages(state: LabState, seen: set[str]) -> dict[str, Any]:
    """Once: one more entry in ``image.packages`` (reinstalls the venv)."""
    run = _run_dict(run_deploy(with_packages(state.inventory_path, [EXTRA_PACKAGE])))
    seen.add(run["recap"]["plan"]["image"]["id"])
    return {**run, "package": EXTRA_PACKAGE}


def _run_dict(run: DeployRun) -> dict[str, Any]:
    return {"wall": run.wall, "stages": run.stage_seconds(), "recap": run.recap}


def run_all(
    state: LabState, workdir: Path, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    """Fill ``results`` scenario by scenario (a failure keeps what was done)."""
    seen: set[str] = set()
    repeat = results["repeat"] = args.repeat
    try:
        results["build"] = bench_build(state, repeat)
        results["cold"] = bench_cold(state, repeat, seen)
        results["warm"] = bench_warm(state, repeat)
        results["noop"] = bench_noop(state, repeat)
        results["change"] = bench_change(state, repeat, workdir, seen)
        if not args.skip_packages:
            results["packages"] = bench_packages(state, seen)
    finally:
        for image_id in seen:
            forget_archives(image_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure")
    parser.add_argument("--json", type=Path, help="write raw samples here")
    parser.add_argument(
        "--skip-packages", action="store_true", help="skip the image.packages run"
    )
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="only print a saved run's tables"
    )
    args = parser.parse_args()
    if args.report:
        print_tables(json.loads(args.report.read_text()))
        return
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="daskfleet-bench-") as tmp,
            bench_lab(Path(tmp)) as state,
        ):
            run_all(state, Path(tmp), args, results)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


def print_tables(results: dict[str, Any]) -> None:
    print(table(figures(results)))
    print()
    print(stage_table(results))


if __name__ == "__main__":
    main()

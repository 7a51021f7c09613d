"""The figures of a run as Markdown tables: median of N, ratio, target, result.

Works on the JSON-ready results dict ``deploy_bench.py`` fills (and writes
with ``--json``), so a saved run can be printed again with ``--report``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daskfleet.sizes import format_size


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    passed: bool | None = None

    @property
    def result(self) -> str:
        return {None: "-", True: "pass", False: "FAIL"}[self.passed]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def spread(samples: Sequence[float]) -> str:
    """``12.3 s (11.0-14.1, n=3)``: median, then range and count."""
    if len(samples) == 1:
        return f"{samples[0]:.1f} s (n=1)"
    low, high = min(samples), max(samples)
    return f"{median(samples):.1f} s ({low:.1f}-{high:.1f}, n={len(samples)})"


def seconds_row(
    figure: str, samples: Sequence[float], limit: float | None = None
) -> Row:
    if limit is None:
        return Row(figure, spread(samples))
    ok = median(samples) <= limit
    return Row(figure, spread(samples), target=f"<= {limit:g} s", passed=ok)


def ratio_row(
    figure: str,
    samples: Sequence[float],
    base: Sequence[float],
    limit: float | None = None,
) -> Row:
    ratio = median(samples) / median(base)
    return Row(
        figure,
        spread(samples),
        baseline=spread(base),
        ratio=f"{ratio:.2f}",
        target=f"<= {limit:g} x baseline" if limit is not None else "-",
        passed=ratio <= limit if limit is not None else None,
    )


def bytes_row(
    figure: str, nbytes: float, whole: float | None = None, limit: float | None = None
) -> Row:
    value = f"{format_size(int(nbytes))} ({int(nbytes):,} B)"
    if whole is None:
        return Row(figure, value)
    share = nbytes / whole
    target = f"<= {limit:.0%} of archive" if limit is not None else "-"
    passed = share <= limit if limit is not None else None
    return Row(
        figure, value, ratio=f"{share:.4%} of archive", target=target, passed=passed
    )


def table(rows: Sequence[Row]) -> str:
    header = ("figure", "daskfleet", "baseline", "ratio", "target", "result")
    lines = [header, tuple("---" for _ in header)]
    lines += [
        (r.figure, r.value, r.baseline, r.ratio, r.target, r.result) for r in rows
    ]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def figures(results: dict[str, Any]) -> list[Row]:
    build, cold = results["build"], results["cold"]
    archive = cold["archive_bytes"]
    ours = [r["wall"] for r in cold["daskfleet"]]
    loads = [t for r in cold["baseline"] for t in r["loads"].values()]
    rows = [
        seconds_row("image build, cold (wheels cached)", build["cold"]),
        seconds_row("image build, nothing changed", build["noop"]),
        ratio_row(
            "cold deploy, 3 hosts",
            ours,
            [r["wall"] for r in cold["baseline"]],
            0.8,
        ),
        seconds_row("baseline: one host's save, piped to ssh load", loads),
        ratio_row(
            "cold: ship stage (3 hosts at once) vs sum of 3 serial loads",
            _stage(cold["daskfleet"], "ship"),
            [sum(r["loads"].values()) for r in cold["baseline"]],
        ),
        seconds_row("warm start (images present)", _walls(results["warm"]), 5),
        seconds_row(
            "baseline: ssh docker run x3 + wait for workers",
            [r["start_and_wait"] for r in cold["baseline"]],
        ),
        seconds_row("no-op re-deploy (CLI wall)", _walls(results["noop"]), 2),
        seconds_row("no-op re-deploy (recap seconds)", _recap_s(results["noop"])),
        Row(
            "no-op re-deploy: changed",
            str(_changed(results["noop"])),
            target="0",
            passed=_changed(results["noop"]) == 0,
        ),
        bytes_row(
            "one-line Dockerfile change: bytes/host",
            median([_max_sent(r) for r in results["change"]]),
            archive,
            0.01,
        ),
        seconds_row("one-line Dockerfile change: re-deploy", _walls(results["change"])),
    ]
    if "packages" in results:
        run = results["packages"]
        figure = f"+{run.get('package', 'one package')} in image.packages: bytes/host"
        rows.append(bytes_row(figure, _max_sent(run), archive))
    rows += [
        bytes_row("full archive (docker save)", archive),
        bytes_row("full archive, zstd -3", cold["compressed_bytes"]),
        bytes_row(
            "cold deploy: bytes/host", median([_max_sent(r) for r in cold["daskfleet"]])
        ),
        bytes_row("image size on disk", cold["image_bytes"]),
        bytes_row("lab base image size", cold["base_bytes"]),
    ]
    return rows


def stage_table(results: dict[str, Any]) -> str:
    """Median seconds per deploy stage, per scenario."""
    scenarios = {
        "cold": results["cold"]["daskfleet"],
        "warm": results["warm"],
        "no-op": results["noop"],
        "one-line change": results["change"],
    }
    stages = list(
        dict.fromkeys(
            s for runs in scenarios.values() for r in runs for s in r["stages"]
        )
    )
    lines = [
        "| stage | " + " | ".join(scenarios) + " |",
        "|---" * (len(scenarios) + 1) + "|",
    ]
    for stage in stages:
        cells = [
            f"{median(_stage(runs, stage)):.2f}" if _stage(runs, stage) else "-"
            for runs in scenarios.values()
        ]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _walls(runs: list[dict[str, Any]]) -> list[float]:
    return [r["wall"] for r in runs]


def _recap_s(runs: list[dict[str, Any]]) -> list[float]:
    return [r["recap"]["seconds"] for r in runs]


def _stage(runs: list[dict[str, Any]], name: str) -> list[float]:
    return [r["stages"][name] for r in runs if name in r["stages"]]


def _changed(runs: list[dict[str, Any]]) -> int:
    return max(int(r["recap"]["changed"]) for r in runs)


def _max_sent(run: dict[str, Any]) -> int:
    return max(int(h["bytes_sent"]) for h in run["recap"]["hosts"].values())

"""``daskfleet facts`` on 50 sshd-only lab hosts, against its baselines.

    sudo .venv/bin/python bench/facts_bench.py [--hosts 50] [--repeat 5]
        [--json OUT]
    .venv/bin/python bench/facts_bench.py --report OUT   # print a saved run

Brings up its own lab ``factsb`` (sshd only, no dockerd), measures, purges
the lab and prints a Markdown table. Each repetition runs, in alternating
order: the real command line ``daskfleet facts INVENTORY --json``; the
same facts script sent by OpenSSH to every host at once (32 ``ssh``
processes at a time, as pssh or ``xargs -P`` would); and, in this process,
``gather_facts`` with the default handshake bounds and with one handshake
at a time. Each host's sshd log says how many connections a CLI run made.
docs/performance.md ("SSH at scale") explains the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _lab import DASKFLEET, bench_lab
from _report import Row, median, ratio_row, seconds_row, table

from daskfleet.facts import FACTS_SCRIPT, gather_facts
from daskfleet.inventory import load_inventory
from daskfleet.lab import LabState
from daskfleet.ssh import SSHFleet

LAB_NAME = "factsb"
TARGET_SECONDS = 3.0
#: ``ssh`` processes at once in the OpenSSH baseline (daskfleet's pool size).
FANOUT = 32


def cli_facts(state: LabState) -> float:
    """Wall time of the real command line; every host must answer."""
    started = time.monotonic()
    result = subprocess.run(
        [*DASKFLEET, "facts", str(state.inventory_path), "--json"],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"daskfleet facts exit {result.returncode}:\n{result.stderr}"
        )
    data = json.loads(result.stdout)
    assert len(data) == len(state.hosts), data.keys()
    return wall


def openssh_facts(state: LabState) -> float:
    """The same script through OpenSSH, one ``ssh`` per host, FANOUT at once."""

    def one(address: str) -> None:
        subprocess.run(
            [
                *("ssh", "-F", "/dev/null", "-i", str(state.key_path)),
                *("-o", f"UserKnownHostsFile={state.known_hosts}"),
                *("-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"),
                *(f"root@{address}", "sh -s"),
            ],
            input=FACTS_SCRIPT,
            capture_output=True,
            text=True,
            check=True,
        )

    started = time.monotonic()
    with ThreadPoolExecutor(FANOUT) as pool:
        list(pool.map(one, [h.address for h in state.hosts]))
    return time.monotonic() - started


def library_facts(state: LabState, max_handshakes: int | None) -> float:
    """``gather_facts`` in this process (no interpreter start, no output)."""
    inventory = load_inventory(state.inventory_path)
    bounds = {} if max_handshakes is None else {"max_handshakes": max_handshakes}
    started = time.monotonic()
    with SSHFleet(inventory, **bounds) as fleet:  # type: ignore[arg-type]
        results = gather_facts(fleet)
    wall = time.monotonic() - started
    assert results.ok, results.failed
    return wall


def logins(state: LabState) -> dict[str, int]:
    return {
        h.name: (h.host_dir / "sshd.log").read_text().count("Accepted publickey")
        for h in state.hosts
    }


def cli_startup() -> float:
    """Interpreter start and the imports ``facts`` needs."""
    started = time.monotonic()
    subprocess.run([*DASKFLEET, "facts", "--help"], capture_output=True, check=True)
    return time.monotonic() - started


def run_all(state: LabState, repeat: int, results: dict[str, Any]) -> None:
    for key in ("cli", "openssh", "library", "library_serial", "startup"):
        results[key] = []
    results["logins_per_run"] = []
    results["load_before"] = os.getloadavg()
    cli_facts(state)  # warm the page cache; not counted
    for i in range(repeat):
        order = ("daskfleet", "openssh")[:: 1 if i % 2 == 0 else -1]
        for who in order:
            if who == "openssh":
                results["openssh"].append(openssh_facts(state))
                continue
            before = logins(state)
            results["cli"].append(cli_facts(state))
            after = logins(state)
            results["logins_per_run"].append(
                sorted({after[n] - before[n] for n in after})
            )
        results["library"].append(library_facts(state, None))
        results["library_serial"].append(library_facts(state, 1))
        results["startup"].append(cli_startup())
    results["load_after"] = os.getloadavg()


def figures(results: dict[str, Any]) -> list[Row]:
    hosts = results["hosts"]
    logins_seen = sorted({n for run in results["logins_per_run"] for n in run})
    return [
        seconds_row(
            f"`daskfleet facts`, {hosts} hosts (CLI wall)",
            results["cli"],
            TARGET_SECONDS,
        ),
        ratio_row(
            f"same, against OpenSSH fan-out ({FANOUT} `ssh` at once)",
            results["cli"],
            results["openssh"],
        ),
        ratio_row(
            "library: handshakes bounded per server vs one at a time",
            results["library"],
            results["library_serial"],
        ),
        seconds_row("CLI start-up (`daskfleet facts --help`)", results["startup"]),
        Row(
            "SSH connections per host per CLI run (sshd logs)",
            ", ".join(map(str, logins_seen)),
            target="1",
            passed=logins_seen == [1],
        ),
    ]


def precise(results: dict[str, Any]) -> str:
    """Medians to the hundredth, which the table rounds to a tenth."""
    keys = ("cli", "openssh", "library", "library_serial", "startup")
    return ", ".join(f"{k} {median(results[k]):.2f} s" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure")
    parser.add_argument("--json", type=Path, help="write raw samples here")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="only print a saved run's table"
    )
    args = parser.parse_args()
    if args.report:
        print_tables(json.loads(args.report.read_text()))
        return
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {"hosts": args.hosts, "repeat": args.repeat}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="daskfleet-bench-") as tmp,
            bench_lab(
                Path(tmp), name=LAB_NAME, subnet=None, hosts=args.hosts, docker=False
            ) as state,
        ):
            run_all(state, args.repeat, results)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


def print_tables(results: dict[str, Any]) -> None:
    print(table(figures(results)))
    print()
    print(f"medians: {precise(results)}")
    load = [round(x, 1) for x in (*results["load_before"], *results["load_after"])]
    print(f"load average (1, 5, 15 min) before: {load[:3]}, after: {load[3:]}")


if __name__ == "__main__":
    sys.exit(main())

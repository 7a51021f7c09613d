"""Image distribution benchmark: the relay chain against the direct push.

    .venv/bin/python bench/relay_bench.py [--hosts 2,4,8] [--repeat 3]
        [--rate 100mbit] [--image blob|dask] [--json OUT]

Needs root. Brings up its own lab ``rbench`` (10.213.10.0/24) of as many
hosts as the largest size, with the controller's link to the hosts limited
by ``tc`` (the lab's uplink option: host-to-host traffic keeps the
machine's full speed, as on one switch). The image distributed:

- ``blob`` (default): the lab's base, loaded on every host beforehand, and
  a 64 MiB layer of random bytes. Loading one large file costs a host
  little, so the uplink and not this machine's two cores and one disk
  bounds the time, as on a real fleet.
- ``dask``: the cluster's Dask image with every layer missing. Here eight
  hosts' ``docker load`` share two cores and one disk, which bounds the
  time before the uplink does.

For every size N and repeat it makes the first N hosts lack the image and
times getting it onto all N both ways, alternating which goes first:

- direct: the controller sends each host its payload, all in parallel
  (what ``deploy`` does with ``image.distribution: direct``);
- relay: one chain, controller -> host 1 -> ... -> host N.

Both end with every host's ``docker load`` done and its tag checked.
Prints a Markdown table of medians and ratios; docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
from _lab import bench_lab

from daskfleet.images import (
    BuildRequest,
    HostImages,
    ImageArchive,
    build_image,
    docker_client,
    paramiko_opener,
    probe_host_images,
    save_image,
    ship_image,
)
from daskfleet.images.delivery import distribution_for, relay_chains
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Host, Inventory
from daskfleet.lab import LabState
from daskfleet.lab.uplink import bits_per_second, parse_rate
from daskfleet.sizes import format_size
from daskfleet.ssh import SSHFleet

BLOB_MIB = 64
BLOB_TAG = "daskfleet/relay-bench:blob"
LAB_NAME = "rbench"
LAB_SUBNET = ipaddress.IPv4Network("10.213.10.0/24")
MODES = ("direct", "relay")


class Subject:
    """The image distributed, and how a host is made to lack it again."""

    def __init__(self, archive: ImageArchive, keep: str | None) -> None:
        self.archive = archive
        #: An image every host keeps (its layers are never sent), or None.
        self.keep = keep

    def forget(self, state: LabState, count: int) -> None:
        """The first ``count`` hosts hold no container and no image but ``keep``."""
        for host in state.hosts[:count]:
            socket = f"unix://{host.docker_socket}"
            with closing(docker.DockerClient(socket)) as client:
                for container in client.containers.list(all=True):
                    container.remove(force=True)
                for image in client.images.list(all=True):
                    if self.keep is None or self.keep not in image.tags:
                        client.images.remove(image.id, force=True)


def dask_image(inventory: Inventory) -> Subject:
    """The cluster's Dask image, every layer of it missing on every host."""
    with closing(docker_client(inventory.image.builder)) as client:
        built = build_image(client, BuildRequest.from_inventory(inventory))
        return Subject(ImageArchive(save_image(client, built)), keep=None)


def blob_image(
    inventory: Inventory, fleet: SSHFleet, hosts: list[Host], workdir: Path
) -> Subject:
    """The lab's base, already on every host, and a layer of random bytes.

    Writing one large file costs a host's ``docker load`` little, so the
    controller's link, not this machine's two cores, bounds the time.
    """
    base = inventory.image.base or "daskfleet/base:bookworm"
    with closing(docker_client(inventory.image.builder)) as client:
        base_archive = ImageArchive(_save(client, base, workdir / "base.tar"))
        dockerfile = f"FROM {base}\nRUN head -c {BLOB_MIB}M /dev/urandom > /blob\n"
        client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=BLOB_TAG, rm=True
        )
        archive = ImageArchive(_save(client, BLOB_TAG, workdir / "blob.tar"))
    present = probe(fleet, hosts)
    for host in hosts:
        opener = paramiko_opener(fleet.transport(host))
        ship_image(opener, host.name, base_archive, present[host.name])
    return Subject(archive, keep=base)


def _save(client: Any, tag: str, path: Path) -> Path:
    with path.open("wb") as out:
        for chunk in client.api.get_image(tag, chunk_size=1 << 20):
            out.write(chunk)
    return path


def probe(fleet: SSHFleet, hosts: list[Host]) -> dict[str, HostImages]:
    results = fleet.map(
        lambda h: probe_host_images(paramiko_opener(fleet.transport(h)), h.name),
        hosts,
    )
    return {name: result.value for name, result in results.items() if result.ok}  # type: ignore[misc]


def direct(
    fleet: SSHFleet,
    archive: ImageArchive,
    hosts: list[Host],
    present: dict[str, HostImages],
) -> None:
    results = fleet.map(
        lambda h: ship_image(
            paramiko_opener(fleet.transport(h)), h.name, archive, present[h.name]
        ),
        hosts,
    )
    failed = {n: r.error for n, r in results.items() if not r.ok}
    if failed:
        raise RuntimeError(f"direct push failed: {failed}")


def relay(
    fleet: SSHFleet,
    archive: ImageArchive,
    hosts: list[Host],
    present: dict[str, HostImages],
) -> None:
    addresses = {h.name: h.address for h in hosts}
    plan = distribution_for(archive, present, addresses, addresses, "relay")
    openers = {h.name: paramiko_opener(fleet.transport(h)) for h in hosts}
    outcomes = relay_chains(archive, plan.chains, present, openers, addresses)
    failed = {n: o.error for n, o in outcomes.items() if not o.ok}
    if failed or len(outcomes) != len(hosts):
        raise RuntimeError(f"relay failed: {failed}")


def run(
    sizes: list[int], repeat: int, rate: str, image: str, workdir: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "rate": rate,
        "sizes": sizes,
        "image": image,
        "samples": {},
    }
    lab = bench_lab(
        workdir, name=LAB_NAME, subnet=LAB_SUBNET, hosts=max(sizes), uplink_rate=rate
    )
    with lab as state:
        inventory = load_inventory(state.inventory_path)
        hosts = list(inventory.hosts.values())
        with SSHFleet(inventory) as fleet:
            if image == "dask":
                subject = dask_image(inventory)
            else:
                subject = blob_image(inventory, fleet, hosts, workdir)
            # Made once before timing: the payload both ways send.
            results["payload_bytes"] = payload_bytes(subject, fleet, hosts[:1], state)
            for round_ in range(repeat):
                for size in sizes:
                    order = MODES if round_ % 2 == 0 else MODES[::-1]
                    for mode in order:
                        seconds = timed(state, fleet, subject, hosts[:size], mode)
                        key = f"{mode}-{size}"
                        results["samples"].setdefault(key, []).append(seconds)
                        print(f"{key}: {seconds:.1f} s", file=sys.stderr)
    return results


def timed(
    state: LabState,
    fleet: SSHFleet,
    subject: Subject,
    hosts: list[Host],
    mode: str,
) -> float:
    subject.forget(state, len(hosts))
    present = probe(fleet, hosts)
    started = time.monotonic()
    (direct if mode == "direct" else relay)(fleet, subject.archive, hosts, present)
    return time.monotonic() - started


def payload_bytes(
    subject: Subject, fleet: SSHFleet, hosts: list[Host], state: LabState
) -> int:
    """Bytes of the payload a host lacking the image gets (zstd'ed when on)."""
    subject.forget(state, 1)
    choice = subject.archive.choose(probe(fleet, hosts)[hosts[0].name])
    return subject.archive.payload(choice.blank, choice.zstd).stat().st_size


def report(results: dict[str, Any]) -> str:
    samples = results["samples"]
    med = {key: statistics.median(values) for key, values in samples.items()}
    sizes = results["sizes"]
    one_copy = results["payload_bytes"] * 8 / bits_per_second(results["rate"])
    lines = [
        f"Image {results['image']}; controller uplink {results['rate']}; payload "
        f"{format_size(results['payload_bytes'])} (one copy through the uplink:"
        f" {one_copy:.1f} s). Median of {len(samples[f'direct-{sizes[0]}'])} runs.",
        "",
        "| hosts | direct push | relay chain | relay / direct |",
        "|---|---|---|---|",
    ]
    for size in sizes:
        d, r = med[f"direct-{size}"], med[f"relay-{size}"]
        lines.append(f"| {size} | {d:.1f} s | {r:.1f} s | {r / d:.0%} |")
    low, high = sizes[0], sizes[-1]
    lines += [
        "",
        f"Growth from {low} to {high} hosts: direct x"
        f"{med[f'direct-{high}'] / med[f'direct-{low}']:.2f}, relay x"
        f"{med[f'relay-{high}'] / med[f'relay-{low}']:.2f}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="2,4,8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", default="100mbit")
    parser.add_argument(
        "--image",
        choices=("blob", "dask"),
        default="blob",
        help="blob: a random layer on the hosts' base (network-bound); "
        "dask: the cluster's image, every layer missing",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.hosts.split(","))
    rate = parse_rate(args.rate)
    if rate is None:
        parser.error("--rate must be a rate: the benchmark needs a limited uplink")
    with tempfile.TemporaryDirectory() as workdir:
        results = run(sizes, args.repeat, rate, args.image, Path(workdir))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()

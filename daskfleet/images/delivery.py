"""From saved archive to every host: plan the routes, run the relay chains.

:func:`distribution_for` decides, from what each host holds, who relays
and who gets the direct push (pure but for making no payload). The deploy
step runs :func:`relay_chains` beside the direct pushes, then pushes
directly to every host whose relay failed.

Hosts of a fleet rarely hold the same layers: one was added last week,
another ran an older image. Hosts that may relay therefore share one
payload, the layers that any of them lacks (:func:`shared_choice`): each
loads a few layers it may hold already, which ``docker load`` skips, and
the controller sends one payload instead of one per distinct need.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from daskfleet.images.channel import ChannelOpener
from daskfleet.images.distribution import (
    Chain,
    Distribution,
    HostNeed,
    Mode,
    plan_distribution,
    relay_address_problem,
    smallest_chain,
)
from daskfleet.images.hostimages import HostImages
from daskfleet.images.relay import RelayJob, RelayOutcome, RelayProgress, relay_chain
from daskfleet.images.ship import ImageArchive, PayloadChoice

logger = logging.getLogger(__name__)


def distribution_for(
    archive: ImageArchive,
    present: Mapping[str, HostImages],
    addresses: Mapping[str, str],
    hosts: Iterable[str],
    mode: Mode = "auto",
) -> Distribution:
    """Who sends the archive's image to each of ``hosts``."""
    needs = [_need(archive, present[h], addresses[h]) for h in hosts]
    if mode != "direct":
        needs = _share_payloads(archive, present, needs, smallest_chain(mode))
    return plan_distribution(needs, mode)


def shared_choice(archive: ImageArchive, hosts: Sequence[HostImages]) -> PayloadChoice:
    """One payload for all of ``hosts``: every layer that any of them lacks,
    compressed when all of them can decompress it."""
    common = HostImages(
        host=", ".join(h.host for h in hosts),
        zstd=all(h.zstd for h in hosts),
        chain_ids=frozenset.intersection(*(h.chain_ids for h in hosts)),
    )
    return archive.choose(common)


def _share_payloads(
    archive: ImageArchive,
    present: Mapping[str, HostImages],
    needs: list[HostNeed],
    smallest: int,
) -> list[HostNeed]:
    """Relaying hosts that decompress alike need the shared payload."""
    groups: dict[bool, list[HostNeed]] = {}
    for need in needs:
        if need.can_relay:
            groups.setdefault(present[need.host].zstd, []).append(need)
    shared: dict[str, HostNeed] = {}
    for group in groups.values():
        if len(group) < smallest:
            continue
        choice = shared_choice(archive, [present[n.host] for n in group])
        for need in group:
            shared[need.host] = dataclasses.replace(
                need, payload_key=choice.key, bytes=choice.plan.bytes_estimate
            )
    return [shared.get(need.host, need) for need in needs]


def _need(archive: ImageArchive, present: HostImages, address: str) -> HostNeed:
    choice = archive.choose(present)
    why_not = relay_address_problem(address)
    if not present.python3:
        why_not = why_not or "no python3 (3.8 or newer) to run the relay agent"
    return HostNeed(
        present.host,
        choice.key,
        choice.plan.bytes_estimate,
        can_relay=not why_not,
        why_not=why_not,
    )


def relay_chains(
    archive: ImageArchive,
    chains: Iterable[Chain],
    present: Mapping[str, HostImages],
    openers: Mapping[str, ChannelOpener],
    addresses: Mapping[str, str],
    progress: RelayProgress | None = None,
) -> dict[str, RelayOutcome]:
    """Run every chain at once; an outcome for each chain host."""
    jobs = [_job(archive, chain, present) for chain in chains]
    if not jobs:
        return {}
    outcomes: dict[str, RelayOutcome] = {}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for result in pool.map(
            lambda job: relay_chain(job, openers, addresses, progress), jobs
        ):
            outcomes.update(result)
    return outcomes


def _job(
    archive: ImageArchive, chain: Chain, present: Mapping[str, HostImages]
) -> RelayJob:
    choice = shared_choice(archive, [present[h] for h in chain.hosts])
    return RelayJob(
        chain,
        archive.payload(choice.blank, choice.zstd),
        choice.load_command,
        archive.verify_command(),
        archive.index.image_id,
    )

"""From saved archive to every host: plan the routes, run the relay chains.

:func:`distribution_for` decides, from what each host holds, who relays
and who gets the direct push (pure but for making no payload). The deploy
step runs :func:`relay_chains` beside the direct pushes, then pushes
directly to every host whose relay failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from daskfleet.images.channel import ChannelOpener
from daskfleet.images.distribution import (
    Chain,
    Distribution,
    HostNeed,
    Mode,
    plan_distribution,
    relay_address_problem,
)
from daskfleet.images.hostimages import HostImages
from daskfleet.images.relay import RelayJob, RelayOutcome, RelayProgress, relay_chain
from daskfleet.images.ship import ImageArchive

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
    return plan_distribution(needs, mode)


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
    # Every host of a chain needs the same payload: the head's stands for all.
    choice = archive.choose(present[chain.hosts[0]])
    return RelayJob(
        chain,
        archive.payload(choice.blank, choice.zstd),
        choice.load_command,
        archive.verify_command(),
        archive.index.image_id,
    )

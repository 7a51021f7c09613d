"""The steps of a deploy, in order; each records per-host outcomes.

gather -> observe -> build -> plan -> (check mode stops here) -> ship ->
scheduler -> workers -> health. A step that fails for one host marks that
host failed and the others go on; a failure that concerns the whole
cluster (image build, capacity) raises before any host changes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from daskfleet import notebook
from daskfleet.containers import apply_action, stop_restarting
from daskfleet.deploy.certs import install_certificates, prune_certificates
from daskfleet.deploy.context import DeployContext
from daskfleet.deploy.envstage import stage_env_files
from daskfleet.errors import DockerError
from daskfleet.facts import Facts, gather_facts
from daskfleet.health import ExpectedWorker, check_health
from daskfleet.images import (
    BuildRequest,
    BuiltImage,
    ChannelOpener,
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
from daskfleet.images.distribution import Chain, Distribution
from daskfleet.images.relay import RelayOutcome
from daskfleet.inventory.model import Host, Inventory
from daskfleet.plan import Action, Observed, ObservedContainer, plan_deploy
from daskfleet.retire import retire_hosts
from daskfleet.specs import LABEL_CLUSTER, ContainerSpec, ImageRef, scheduler_address
from daskfleet.tls import client_security, ensure_host_pair

logger = logging.getLogger(__name__)


def gather(ctx: DeployContext) -> None:
    """Facts from every selected host; a host without Docker fails here."""
    ctx.events.stage("facts")
    results = gather_facts(ctx.fleet, ctx.hosts)
    for name, result in results.items():
        ctx.recap.hosts[name].seconds += result.seconds
        if result.error is not None:
            ctx.recap.hosts[name].fail(result.error)
        elif result.value is not None:
            _accept_facts(ctx, name, result.value)


def _accept_facts(ctx: DeployContext, name: str, facts: Facts) -> None:
    if not facts.has_docker:
        why = "; ".join(facts.notes) or "docker does not answer"
        ctx.recap.hosts[name].fail(
            DockerError(
                name,
                f"no usable Docker daemon: {why}",
                hint="install docker.io and start dockerd",
            )
        )
        return
    ctx.facts[name] = facts


def observe(ctx: DeployContext) -> None:
    """The cluster's containers and the image layers on every host.

    One SSH command per host answers both (no Docker API connection).
    """
    ctx.events.stage("observe")

    def look(host: Host) -> HostImages:
        return probe_host_images(paramiko_opener(ctx.fleet.transport(host)), host.name)

    for name, images in ctx.on_hosts(ctx.healthy_hosts(), look).items():
        containers = tuple(
            ObservedContainer(c.name, c.image_id, c.state, c.labels)
            for c in images.containers
            if c.labels.get(LABEL_CLUSTER) == ctx.inventory.cluster
        )
        ctx.observed[name] = Observed(name, containers, frozenset(images.images))
        ctx.host_images[name] = images
    for name in list(ctx.facts):
        if name not in ctx.observed:
            del ctx.facts[name]


def build(ctx: DeployContext) -> None:
    """Build the image on the controller (once; unchanged inputs reuse it)."""
    ctx.events.stage("image")
    with closing(docker_client(ctx.inventory.image.builder)) as client:
        ctx.image = build_image(client, BuildRequest.from_inventory(ctx.inventory))


def plan(ctx: DeployContext) -> None:
    """Decide every action; save the archive if some host lacks the image."""
    ctx.events.stage("plan")
    assert ctx.image is not None
    image = image_ref(ctx.image)
    ctx.notebook = notebook.prepare_notebook(ctx.inventory, ctx.image)
    planned = plan_deploy(
        ctx.inventory,
        ctx.facts,
        ctx.observed,
        image,
        notebook=ctx.notebook,
        certificates=certificate_fingerprints(ctx.inventory, ctx.facts),
    )
    if planned.needs_image:
        with closing(docker_client(ctx.inventory.image.builder)) as client:
            ctx.archive = ImageArchive(save_image(client, ctx.image))
        sizes = {
            h: ctx.archive.plan_for(ctx.host_images[h]).bytes_estimate
            for h in planned.needs_image
        }
        distribution = distribution_for(
            ctx.archive,
            ctx.host_images,
            {h: ctx.inventory.hosts[h].address for h in planned.needs_image},
            planned.needs_image,
            ctx.inventory.image.distribution,
        )
        planned = dataclasses.replace(
            planned, transfer_bytes=sizes, distribution=distribution
        )
    ctx.plan = ctx.recap.plan = planned


def certificate_fingerprints(
    inventory: Inventory, hosts: Iterable[str]
) -> dict[str, str]:
    """Each host's certificate fingerprint (issued on first use), with TLS on."""
    if inventory.security != "tls":
        return {}
    return {
        name: ensure_host_pair(
            inventory.cluster, name, inventory.hosts[name].address
        ).fingerprint
        for name in hosts
        if name in inventory.hosts
    }


def image_ref(image: BuiltImage) -> ImageRef:
    """What the planner needs to know of a built image."""
    labels = {**image.labels, **image.versions.labels()}
    return ImageRef(image.id, image.tag, image.architecture, labels)


def ship(ctx: DeployContext) -> None:
    """Write env files; send each host that lacks the image only what it lacks.

    Relay chains run beside the direct pushes. Hosts whose relay failed get
    one more round (a chain again where enough of a chain failed, as when
    a relay host dies and takes the rest of its chain with it), then the
    direct push; the recap lists every relay failure as a warning.
    """
    assert ctx.plan is not None
    stage_env_files(ctx)
    install_certificates(ctx)
    notebook.ship_notebook(ctx)
    distribution = ctx.plan.distribution
    if not ctx.plan.needs_image or distribution is None:
        return
    ctx.events.stage("ship")
    failed = _deliver(ctx, distribution)
    if failed:
        failed = _deliver(ctx, distribution.retry(failed))
    _push(ctx, failed)


def _deliver(ctx: DeployContext, distribution: Distribution) -> list[str]:
    """Chains and direct pushes at once; the chain hosts that got nothing."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        relayed = pool.submit(_relay, ctx, distribution.chains)
        _push(ctx, distribution.direct)
        outcomes = relayed.result()
    return [h for h, outcome in outcomes.items() if not outcome.ok]


def _relay(ctx: DeployContext, chains: Sequence[Chain]) -> dict[str, RelayOutcome]:
    """Run the relay chains on hosts still healthy; record what went wrong."""
    hosts = [h for chain in chains for h in chain.hosts]
    live = {h.name for h in ctx.healthy_hosts(hosts)}
    chains = [
        dataclasses.replace(c, hosts=tuple(h for h in c.hosts if h in live))
        for c in chains
    ]
    for chain in chains:
        for host in chain.hosts:
            ctx.events.ship_start(host, chain.bytes)
    assert ctx.archive is not None
    outcomes = relay_chains(
        ctx.archive,
        [c for c in chains if c.hosts],
        ctx.host_images,
        {h: _opener(ctx, h) for h in live},
        {h: ctx.inventory.hosts[h].address for h in live},
        progress=ctx.events.ship_advance,
    )
    for name, outcome in outcomes.items():
        ctx.events.ship_end(name)
        _record_relay(ctx, outcome)
    return outcomes


def _opener(ctx: DeployContext, host: str) -> ChannelOpener:
    """Channels on the host's connection, opened (and failing) only when used."""
    return lambda: ctx.fleet.transport(ctx.inventory.hosts[host]).open_session()


def _record_relay(ctx: DeployContext, outcome: RelayOutcome) -> None:
    recap = ctx.recap.hosts[outcome.host]
    recap.seconds += outcome.seconds
    recap.bytes_sent += outcome.controller_bytes
    if outcome.ok:
        recap.actions.append(f"image relayed from {outcome.source}")
    if outcome.forward_error:
        ctx.recap.warnings.append(
            f"{outcome.host}: passing the image on failed: {outcome.forward_error}"
        )
    if outcome.error:
        ctx.recap.warnings.append(
            f"{outcome.host}: image relay failed: {outcome.error}"
        )


def _push(ctx: DeployContext, hosts: Iterable[str]) -> None:
    """The direct push: the controller sends each host what it lacks."""
    archive = ctx.archive
    assert archive is not None

    def send(host: Host) -> int:
        ctx.events.ship_start(host.name, ctx.plan.transfer_bytes.get(host.name, 0))  # type: ignore[union-attr]
        try:
            result = ship_image(
                paramiko_opener(ctx.fleet.transport(host)),
                host.name,
                archive,
                ctx.host_images[host.name],
                progress=lambda n: ctx.events.ship_advance(host.name, n),
            )
        finally:
            ctx.events.ship_end(host.name)
        return result.bytes_sent

    for name, sent in ctx.on_hosts(ctx.healthy_hosts(hosts), send).items():
        ctx.recap.hosts[name].bytes_sent += sent


def scheduler(ctx: DeployContext) -> None:
    """Create, replace or start the scheduler container."""
    ctx.events.stage("scheduler")
    apply_actions(ctx, lambda a: a.role == "scheduler" and a.kind != "remove")


def workers(ctx: DeployContext) -> None:
    """Retire workers about to stop, then change worker containers."""
    ctx.events.stage("workers")
    assert ctx.plan is not None
    leaving = {a.host for a in ctx.plan.all_actions if a.retire_first}
    leaving &= {h.name for h in ctx.healthy_hosts()}
    if leaving:
        retire_hosts(
            scheduler_address(ctx.inventory),
            sorted(leaving),
            timeout=ctx.timeout,
            security=client_security(ctx.inventory),
        )
    apply_actions(ctx, lambda a: a.role != "scheduler" or a.kind == "remove")


def hold_restarts(ctx: DeployContext, containers: dict[str, list[str]]) -> None:
    """Stop Docker restarting these containers once their workers retire."""

    def hold(host: Host) -> None:
        client = ctx.docker.client(host)
        for name in containers[host.name]:
            stop_restarting(client, name)

    ctx.on_hosts(ctx.healthy_hosts(containers), hold)


def apply_actions(ctx: DeployContext, chosen: Callable[[Action], bool]) -> None:
    """Carry out the plan's changing actions that ``chosen`` accepts, per host."""
    assert ctx.plan is not None
    todo = {
        host: [a for a in actions if chosen(a) and a.changes]
        for host, actions in ctx.plan.actions.items()
    }
    hosts = ctx.healthy_hosts(h for h, acts in todo.items() if acts)

    def run(host: Host) -> list[Action]:
        client = ctx.docker.client(host)
        return [a for a in todo[host.name] if apply_action(client, a)]

    for name, done in ctx.on_hosts(hosts, run).items():
        ctx.recap.hosts[name].changed += len(done)
        ctx.recap.hosts[name].actions += [_describe(a) for a in done]


def _describe(action: Action) -> str:
    reasons = f" ({'; '.join(action.reasons)})" if action.reasons else ""
    return f"{action.kind} {action.name}{reasons}"


def expected_workers(specs: Iterable[ContainerSpec]) -> list[ExpectedWorker]:
    """The Dask workers these containers should register, as health sees them."""
    return [
        ExpectedWorker(
            name,
            spec.host,
            spec.workers.nthreads,
            spec.workers.memory_limit,
            spec.workers.resources,
            spec.gpus[0] if spec.gpus else None,
        )
        for spec in specs
        if spec.workers is not None
        for name in spec.worker_names
    ]


def health(ctx: DeployContext) -> None:
    """Prove the cluster healthy through a Client; mark hosts whose workers fail."""
    ctx.events.stage("health")
    assert ctx.plan is not None
    planned = {h.name for h in ctx.healthy_hosts()}
    expected = [
        ExpectedWorker(
            name,
            spec.host,
            spec.workers.nthreads,
            spec.workers.memory_limit,
            spec.workers.resources,
            spec.gpus[0] if spec.gpus else None,
        )
        for spec in ctx.plan.specs
        if spec.workers is not None and spec.host in planned
        for name in spec.worker_names
    ]
    others = [h for h in ctx.inventory.hosts if h not in planned]
    report = check_health(
        ctx.recap.scheduler_address or scheduler_address(ctx.inventory),
        expected,
        dashboard_url=ctx.recap.dashboard_url,
        timeout=ctx.timeout,
        tolerated_hosts=others,
        security=client_security(ctx.inventory),
    )
    ctx.recap.health = report
    for check in report.workers:
        for problem in check.problems:
            ctx.recap.hosts[check.host].fail(f"worker {check.name}: {problem}")
    ctx.recap.errors += list(report.cluster_problems)
    ctx.recap.errors += [
        f"unexpected worker {n} is connected" for n in report.unexpected
    ]
    if ctx.recap.ok:
        prune_certificates(ctx)

"""The deploy planner, driven by the data files in fixtures/plan/."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from daskfleet.budget import HostFacts
from daskfleet.errors import PlanError
from daskfleet.facts import Facts, Gpu
from daskfleet.gpufacts import parse_cpu_list
from daskfleet.inventory.model import Host, Inventory, Volume
from daskfleet.plan import Observed, ObservedContainer, Plan, plan_deploy
from daskfleet.sizes import parse_size
from daskfleet.specs import (
    LABEL_CLUSTER,
    LABEL_ROLE,
    LABEL_SPEC,
    LABEL_SPEC_HASH,
    ContainerSpec,
    ImageRef,
    build_specs,
)

FIXTURES = Path(__file__).parent / "fixtures" / "plan"


@dataclass(frozen=True)
class Fleet:
    inventory: Inventory
    facts: dict[str, HostFacts]
    image: ImageRef


def load(name: str) -> Any:
    return yaml.safe_load((FIXTURES / name).read_text())


def merged(base: Any, override: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base[key], value) if key in base else value
    return out


def volume(text: str) -> Volume:
    host_path, container_path, *mode = text.split(":")
    return Volume(host_path, container_path, read_only=mode == ["ro"])


def make_host(name: str, raw: Mapping[str, Any]) -> Host:
    fields = dict(raw)
    for size in ("memory", "rmm_pool_size", "device_memory_limit"):
        if size in fields:
            fields[size] = parse_size(fields[size])
    if isinstance(fields.get("gpus"), list):
        fields["gpus"] = tuple(fields["gpus"])
    fields["roles"] = tuple(fields.get("roles", ["worker"]))
    fields["volumes"] = tuple(volume(v) for v in fields.get("volumes", []))
    return Host(name=name, **fields)


def make_facts(name: str, raw: Mapping[str, Any]) -> Facts:
    gpus = tuple(
        Gpu(
            g["index"],
            g["uuid"],
            g["name"],
            parse_size(g["memory"]),
            local_cpus=parse_cpu_list(g.get("local_cpus", "")),
        )
        for g in raw.get("gpus", [])
    )
    return Facts(
        host=name,
        cpus=raw["cpus"],
        memory=parse_size(raw["memory"]),
        arch=raw["arch"],
        kernel="6.8.0",
        docker_version="27.1.1",
        storage_driver="overlay2",
        docker_root="/var/lib/docker",
        disk_free=100 * 1024**3,
        gpus=gpus,
    )


def make_fleet(raw: Mapping[str, Any]) -> Fleet:
    inv = raw["inventory"]
    hosts = {name: make_host(name, h) for name, h in inv["hosts"].items()}
    inventory = Inventory(
        path=inv["path"],
        cluster=inv["cluster"],
        hosts=hosts,
        security=inv.get("security", "tls"),
    )
    facts: dict[str, HostFacts] = {
        name: make_facts(name, f) for name, f in raw["facts"].items()
    }
    return Fleet(inventory, facts, ImageRef(**raw["image"]))


def fleet(name: str = "fleet.yml", change: Any = None) -> Fleet:
    return make_fleet(merged(load(name), change or {}))


def observed_from(specs: Mapping[str, list[ContainerSpec]]) -> dict[str, Observed]:
    """What Docker would report after ``specs`` were deployed."""
    return {
        host: Observed(
            host,
            tuple(
                ObservedContainer(s.name, s.image, "running", labels_of(s))
                for s in host_specs
            ),
            frozenset(s.image for s in host_specs),
        )
        for host, host_specs in specs.items()
    }


def labels_of(spec: ContainerSpec) -> dict[str, str]:
    labels: dict[str, str] = spec.to_docker_kwargs()["labels"]
    return labels


# Data-file cases


def spec_cases() -> list[str]:
    return ["fleet", "solo", "gpu"]


@pytest.mark.parametrize("name", spec_cases())
def test_specs_match_the_hand_worked_expectations(name: str) -> None:
    f = fleet(f"{name}.yml")
    expected = load(f"{name}.specs.yml")
    specs = build_specs(f.inventory, f.facts, f.image)

    assert list(specs) == list(expected)
    for host, want_list in expected.items():
        assert [s.name for s in specs[host]] == [w["name"] for w in want_list]
        for spec, want in zip(specs[host], want_list, strict=True):
            kwargs = spec.to_docker_kwargs()
            labels = kwargs.pop("labels")
            del labels[LABEL_SPEC], labels[LABEL_SPEC_HASH]
            assert labels == want.pop("labels")
            assert list(spec.worker_names) == want.pop("workers")
            assert {k: kwargs[k] for k in want} == want


SCENARIOS = load("scenarios.yml")


@pytest.mark.parametrize("case", SCENARIOS, ids=[c["name"] for c in SCENARIOS])
def test_deploy_scenarios(case: dict[str, Any]) -> None:
    plan = plan_scenario(case)

    got = {
        host: [f"{a.kind} {a.name}" for a in acts]
        for host, acts in plan.actions.items()
    }
    assert got == case["expect"]
    by_step = {f"{a.kind} {a.name}": a for a in plan.all_actions}
    for step, reasons in case.get("reasons", {}).items():
        assert list(by_step[step].reasons) == reasons
    if "retire_first" in case:
        retired = [a.name for a in plan.all_actions if a.retire_first]
        assert retired == case["retire_first"]
    for key in ("needs_image", "unplanned"):
        if key in case:
            assert list(getattr(plan, key)) == case[key]


def plan_scenario(case: Mapping[str, Any]) -> Plan:
    observed: dict[str, Observed] = {}
    if "deployed" in case:
        before = fleet(change=case["deployed"])
        observed = observed_from(
            build_specs(before.inventory, before.facts, before.image)
        )
    observed = stop(observed, case.get("stopped", []))
    for extra in case.get("extra", []):
        observed = add_container(observed, extra)

    now = fleet(change=case.get("change"))
    facts = {h: f for h, f in now.facts.items() if h not in case.get("unreachable", [])}
    return plan_deploy(now.inventory, facts, observed, now.image)


def stop(observed: dict[str, Observed], names: list[str]) -> dict[str, Observed]:
    return {
        host: replace(
            obs,
            containers=tuple(
                replace(c, state="exited") if c.name in names else c
                for c in obs.containers
            ),
        )
        for host, obs in observed.items()
    }


def add_container(
    observed: dict[str, Observed], extra: Mapping[str, str]
) -> dict[str, Observed]:
    labels = {LABEL_CLUSTER: extra.get("cluster", "lab"), LABEL_ROLE: extra["role"]}
    container = ObservedContainer(extra["name"], "sha256:0ld", "running", labels)
    obs = observed.get(extra["host"], Observed(extra["host"]))
    return {**observed, obs.host: replace(obs, containers=(*obs.containers, container))}


CAPACITY = load("capacity.yml")


@pytest.mark.parametrize("case", CAPACITY, ids=[c["name"] for c in CAPACITY])
def test_capacity_problems_name_hosts_and_numbers(case: dict[str, Any]) -> None:
    f = fleet(change=case["change"])
    with pytest.raises(PlanError) as caught:
        build_specs(f.inventory, f.facts, f.image)

    message = str(caught.value)
    for problem in case["problems"]:
        assert problem in message
    assert message.count("\n  - ") == len(case["problems"])


# Properties that need no data file


def test_spec_hash_is_stable_and_ignores_mapping_order() -> None:
    f = fleet()
    first = build_specs(f.inventory, f.facts, f.image)
    w1 = f.inventory.hosts["w1"]
    reordered = replace(
        w1,
        env=dict(reversed(list(w1.env.items()))),
        resources=dict(reversed(list(w1.resources.items()))),
    )
    hosts = {**f.inventory.hosts, "w1": reordered}
    again = build_specs(replace(f.inventory, hosts=hosts), f.facts, f.image)

    hashes = {h: [s.spec_hash for s in specs] for h, specs in first.items()}
    assert hashes == {h: [s.spec_hash for s in specs] for h, specs in again.items()}
    assert len({h for hs in hashes.values() for h in hs}) == 4


def test_docker_kwargs_carry_the_hash_and_the_restart_policy() -> None:
    f = fleet()
    spec = build_specs(f.inventory, f.facts, f.image)["w1"][0]
    kwargs = spec.to_docker_kwargs()

    assert kwargs["labels"][LABEL_SPEC_HASH] == spec.spec_hash
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"}
    assert kwargs["network_mode"] == "host"
    assert kwargs["image"] == f.image.id
    assert LABEL_SPEC_HASH not in spec.labels


def test_secret_values_stay_out_of_command_labels_and_json() -> None:
    f = fleet()
    observed = observed_from(build_specs(f.inventory, f.facts, f.image))
    plan = plan_deploy(f.inventory, f.facts, observed, f.image)
    spec = plan.actions["w1"][0].spec
    assert spec is not None

    assert "s3cret" not in " ".join(spec.command)
    assert "s3cret" not in spec.labels[LABEL_SPEC]
    assert "s3cret" not in json.dumps(plan.to_dict())
    assert spec.summary["env"] == ["MODE", "TOKEN"]


def test_plan_views_count_changes_per_host() -> None:
    case = next(c for c in SCENARIOS if c["name"].startswith("lower cpus"))
    plan = plan_scenario(case)

    assert plan.changes == 1
    assert plan.changed_hosts == ("w1",)
    assert [a.name for a in plan.of_kind("replace")] == ["daskfleet-lab-worker-w1"]
    assert len(plan.specs) == 4
    assert plan.to_dict()["hosts"]["w1"][0]["reasons"] == [
        "cpus 2 -> 1",
        "nthreads 2 -> 1",
    ]


def test_a_container_without_readable_summary_is_replaced_with_a_reason() -> None:
    f = fleet()
    specs = build_specs(f.inventory, f.facts, f.image)
    observed = observed_from(specs)
    old = observed["w2"].containers[0]
    labels = {**old.labels, LABEL_SPEC: "{broken", LABEL_SPEC_HASH: "0" * 64}
    observed["w2"] = replace(observed["w2"], containers=(replace(old, labels=labels),))

    plan = plan_deploy(f.inventory, f.facts, observed, f.image)
    action = plan.actions["w2"][0]
    assert action.kind == "replace"
    assert action.reasons == (
        "the running container has no readable daskfleet.spec label",
    )


def test_ipv6_addresses_are_bracketed_where_a_port_follows() -> None:
    f = fleet(change={"inventory": {"hosts": {"head": {"address": "fd00::1"}}}})
    specs = build_specs(f.inventory, f.facts, f.image)

    scheduler = specs["head"][0].command
    assert scheduler[3] == "fd00::1"
    assert scheduler[-1] == "[fd00::1]:8787"
    assert specs["w1"][0].command[2] == "tcp://[fd00::1]:8786"


def test_same_labels_on_another_image_is_replaced() -> None:
    f = fleet()
    observed = observed_from(build_specs(f.inventory, f.facts, f.image))
    old = observed["w1"].containers[0]
    observed["w1"] = replace(
        observed["w1"], containers=(replace(old, image_id="sha256:" + "9" * 64),)
    )

    action = plan_deploy(f.inventory, f.facts, observed, f.image).actions["w1"][0]
    assert action.kind == "replace"
    assert action.reasons == ("image sha256:999999999999 -> sha256:111111111111",)


def versioned(image: ImageRef, image_id: str, dask: str = "2026.8.0") -> ImageRef:
    labels = {
        "org.daskfleet.python": "3.11",
        "org.daskfleet.dask": dask,
        "org.daskfleet.distributed": dask,
        "org.daskfleet.cloudpickle": "3.1.3",
        "org.daskfleet.msgpack": "1.2.4",
    }
    return replace(image, id=image_id, labels=labels)


def test_new_image_with_same_dask_keeps_the_scheduler_and_replaces_workers() -> None:
    f = fleet()
    old = versioned(f.image, "sha256:" + "1" * 64)
    observed = observed_from(build_specs(f.inventory, f.facts, old))
    new = versioned(f.image, "sha256:" + "2" * 64)

    plan = plan_deploy(f.inventory, f.facts, observed, new)
    kinds = {a.role: a.kind for a in plan.all_actions}
    assert kinds == {"scheduler": "unchanged", "worker": "replace"}


def test_new_dask_version_replaces_the_scheduler() -> None:
    f = fleet()
    old = versioned(f.image, "sha256:" + "1" * 64)
    observed = observed_from(build_specs(f.inventory, f.facts, old))
    new = versioned(f.image, "sha256:" + "2" * 64, dask="2027.1.0")

    plan = plan_deploy(f.inventory, f.facts, observed, new)
    (scheduler,) = [a for a in plan.all_actions if a.role == "scheduler"]
    assert scheduler.kind == "replace"
    assert any("dask=2027.1.0" in reason for reason in scheduler.reasons)

"""Upgrade batches and the workers a rolled-back container should bring back."""

from __future__ import annotations

from daskfleet.plan import Action
from daskfleet.upgrade.batches import plan_batches
from daskfleet.upgrade.roll import expected_from_summary
from daskfleet.upgrade.settings import Amount, UpgradeSettings


def action(host: str, kind: str = "replace", role: str = "worker") -> Action:
    return Action(kind, host, f"c-{host}", role)  # type: ignore[arg-type]


HOSTS = ["w1", "w2", "w3", "w4", "w5"]


def test_one_host_per_batch_by_default() -> None:
    batches = plan_batches([action(h) for h in HOSTS], UpgradeSettings())
    assert [b.hosts for b in batches] == [(h,) for h in HOSTS]
    assert not any(b.canary for b in batches)


def test_canary_then_percentage_batches() -> None:
    settings = UpgradeSettings(batch=Amount(40, percent=True), canary=1)
    batches = plan_batches([action(h) for h in HOSTS], settings)
    assert [b.hosts for b in batches] == [("w1",), ("w2", "w3"), ("w4", "w5")]
    assert [b.canary for b in batches] == [True, False, False]


def test_scheduler_and_unchanged_hosts_are_not_batched() -> None:
    actions = [
        action("s", role="scheduler"),
        action("w1", kind="unchanged"),
        action("w2"),
        action("w3", kind="create"),
    ]
    batches = plan_batches(actions, UpgradeSettings(batch=Amount(5)))
    assert [b.hosts for b in batches] == [("w2", "w3")]


def test_no_change_means_no_batch() -> None:
    assert plan_batches([action("w1", kind="unchanged")], UpgradeSettings()) == []


def test_expected_workers_of_a_cpu_container() -> None:
    summary = {
        "nworkers": 2,
        "nthreads": 3,
        "memory_limit": 100,
        "resources": "A=1,B=2",
    }
    workers = expected_from_summary("w1", "daskfleet-c-worker-w1", summary)
    assert [w.name for w in workers] == ["w1-0", "w1-1"]
    assert workers[0].resources == {"A": 1.0, "B": 2.0}
    assert (workers[0].nthreads, workers[0].memory_limit) == (3, 100)


def test_expected_worker_of_a_gpu_container() -> None:
    summary = {"gpu": "GPU-1", "nthreads": 1, "memory_limit": 100, "resources": "GPU=1"}
    workers = expected_from_summary("g1", "daskfleet-c-worker-g1-gpu3", summary)
    assert [w.name for w in workers] == ["g1-gpu3"]


def test_unreadable_summary_expects_nothing() -> None:
    assert expected_from_summary("w1", "c", None) == []


def test_the_notebook_is_not_rolled_as_a_worker() -> None:
    actions = [action("w1"), action("n1", role="notebook")]
    batches = plan_batches(actions, UpgradeSettings(batch=Amount(5)))
    assert [b.hosts for b in batches] == [("w1",)]

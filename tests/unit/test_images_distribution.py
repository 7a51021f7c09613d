"""Who sends the image to whom: relay chains and direct pushes. Pure."""

from __future__ import annotations

from daskfleet.images.distribution import (
    RELAY_MIN_HOSTS,
    Chain,
    HostNeed,
    plan_distribution,
    relay_address_problem,
)


def needs(*hosts: str, key: str = "full.zst", size: int = 100) -> list[HostNeed]:
    return [HostNeed(h, key, size, can_relay=True) for h in hosts]


def test_auto_pushes_directly_to_a_group_too_small_to_relay() -> None:
    small = needs(*(f"h{i}" for i in range(RELAY_MIN_HOSTS - 1)))
    plan = plan_distribution(small)
    assert plan.chains == ()
    assert plan.direct == {n.host: 100 for n in small}
    assert plan.controller_bytes == 100 * len(small)


def test_auto_chains_a_large_group_in_the_given_order() -> None:
    plan = plan_distribution(needs("h3", "h1", "h2", "h4"))
    assert plan.chains == (Chain(("h3", "h1", "h2", "h4"), "full.zst", 100),)
    assert plan.direct == {}
    assert plan.controller_bytes == 100


def test_each_payload_gets_its_own_chain() -> None:
    plan = plan_distribution(
        needs("a1", "a2", "a3", key="full")
        + needs("b1", "b2", "b3", key="delta-1", size=7)
        + needs("c1", key="delta-2", size=5)
    )
    assert [c.hosts for c in plan.chains] == [("a1", "a2", "a3"), ("b1", "b2", "b3")]
    assert plan.direct == {"c1": 5}
    assert plan.controller_bytes == 100 + 7 + 5


def test_a_host_that_cannot_relay_is_pushed_directly_with_a_note() -> None:
    unable = HostNeed("h4", "full.zst", 100, can_relay=False, why_not="no python3")
    group = [*needs("h1", "h2", "h3"), unable]
    plan = plan_distribution(group)
    assert plan.chains[0].hosts == ("h1", "h2", "h3")
    assert plan.direct == {"h4": 100}
    assert plan.notes == ("h4: pushed directly: no python3",)


def test_direct_mode_never_relays_and_relay_mode_chains_two() -> None:
    assert plan_distribution(needs("h1", "h2", "h3"), "direct").chains == ()
    assert plan_distribution(needs("h1", "h2"), "relay").chains[0].hosts == ("h1", "h2")
    assert plan_distribution(needs("h1"), "relay").direct == {"h1": 100}


def test_lines_name_every_route() -> None:
    plan = plan_distribution(needs("h1", "h2", "h3") + needs("h4", key="other"))
    assert plan.lines() == [
        "controller -> h1 -> h2 -> h3  (relay: 100B, sent once)",
        "controller -> h4  (direct: 100B)",
    ]
    assert plan.to_dict()["chains"] == [
        {"hosts": ["h1", "h2", "h3"], "bytes": 100, "payload": "full.zst"}
    ]


def test_loopback_addresses_cannot_relay() -> None:
    assert "loopback" in relay_address_problem("127.0.0.1")
    assert "loopback" in relay_address_problem("::1")
    assert relay_address_problem("10.213.7.11") == ""
    assert relay_address_problem("node7.example") == ""


def test_a_retry_chains_what_is_left_of_a_chain_when_enough_is() -> None:
    plan = plan_distribution(
        needs("a1", "a2", "a3", "a4", "a5") + needs("b1", "b2", "b3", key="d", size=7)
    )
    again = plan.retry({"a2", "a3", "a4", "a5", "b3"})
    assert again.chains == (Chain(("a2", "a3", "a4", "a5"), "full.zst", 100),)
    assert again.direct == {"b3": 7}
    assert plan.retry(set()).chains == ()

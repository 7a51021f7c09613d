"""The controller's uplink limit: rates accepted, and the tc command."""

from __future__ import annotations

import pytest

from daskfleet.errors import LabError
from daskfleet.lab.uplink import bits_per_second, parse_rate, tbf_command


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("200mbit", "200mbit"),
        (" 1GBit ", "1gbit"),
        ("2.5mbit", "2.5mbit"),
        ("off", None),
    ],
)
def test_rates_accepted(text: str, rate: str | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["200", "200mb", "200mbps", "0mbit", "-1mbit", "fast"])
def test_other_rates_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(LabError, match=f"invalid uplink rate '{text}'") as caught:
        parse_rate(text)
    assert "--uplink-rate 200mbit" in str(caught.value)


def test_bits_per_second() -> None:
    assert bits_per_second("200mbit") == 200e6
    assert bits_per_second("500kbit") == 500e3
    assert bits_per_second("1gbit") == 1e9


def test_tbf_on_the_bridge_with_a_burst_of_ten_milliseconds() -> None:
    command = tbf_command("df-lab-br", "1gbit")
    assert command[:7] == ["tc", "qdisc", "replace", "dev", "df-lab-br", "root", "tbf"]
    assert command[command.index("rate") + 1] == "1gbit"
    assert command[command.index("burst") + 1] == str(1_250_000)
    # A slow rate still gets a bucket larger than a full-sized TSO packet.
    slow = tbf_command("df-lab-br", "1mbit")
    assert int(slow[slow.index("burst") + 1]) >= 64 * 1024

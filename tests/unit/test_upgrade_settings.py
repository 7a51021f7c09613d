"""Batch sizes and limits of a rolling upgrade."""

from __future__ import annotations

import pytest

from daskfleet.upgrade.settings import Amount


@pytest.mark.parametrize(
    ("text", "total", "count"),
    [
        ("1", 5, 1),
        ("2", 5, 2),
        ("9", 5, 5),
        ("25%", 8, 2),
        ("30%", 5, 2),
        ("100%", 3, 3),
    ],
)
def test_amount_of_total(text: str, total: int, count: int) -> None:
    assert Amount.parse(text).of(total) == count


def test_percentage_rounds_up_and_minimum_applies() -> None:
    assert Amount.parse("1%").of(10) == 1
    assert Amount.parse("0%").of(10) == 0
    assert Amount.parse("0%").of(10, minimum=1) == 1


@pytest.mark.parametrize("text", ["", "x", "-1", "2.5", "150%", "%"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a count"):
        Amount.parse(text)

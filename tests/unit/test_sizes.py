"""Byte sizes: parsing what people write and formatting it back."""

from __future__ import annotations

import re

import pytest

from daskfleet.sizes import format_size, parse_size, unit_names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MiB", 512 * 2**20),
        ("4GB", 4 * 10**9),
        ("3.5GiB", 3758096384),
        ("1024", 1024),
        (1024, 1024),
        ("64 GiB", 64 * 2**30),
        ("2gib", 2 * 2**30),
        ("1kB", 1000),
        ("1KiB", 1024),
        ("1.5TB", 1_500_000_000_000),
        (".5KiB", 512),
        ("0", 0),
    ],
)
def test_parse_size_accepts_common_spellings(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4 GX", "unknown unit 'GX'"),
        ("4G", "ambiguous unit 'G': write GiB (binary) or GB (decimal)"),
        ("-4GiB", "not a size"),
        ("four GiB", "not a size"),
        ("", "not a size"),
        ("1e9", "not a size"),
    ],
)
def test_parse_size_refuses_with_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_size(text)


@pytest.mark.parametrize("value", [True, -1, 1.5, None])
def test_parse_size_refuses_other_types(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (0, "0B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (3758096384, "3.5GiB"),
        (64 * 2**30, "64GiB"),
        (4 * 10**9, "3.73GiB"),
        (3 * 2**50, "3PiB"),
        (2**60, "1024PiB"),
    ],
)
def test_format_size(nbytes: int, text: str) -> None:
    assert format_size(nbytes) == text


def test_format_then_parse_round_trips_whole_units() -> None:
    for nbytes in (512 * 2**20, 64 * 2**30, 3758096384):
        assert parse_size(format_size(nbytes)) == nbytes


def test_unit_names_are_listed_once() -> None:
    names = unit_names()
    assert "GiB" in names and "GB" in names
    assert len(names) == len(set(names))

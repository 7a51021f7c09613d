"""Byte sizes as people write them: ``512MiB``, ``4GB``, ``3.5GiB``, ``1024``.

Decimal units (``kB``, ``MB``, ``GB``, ``TB``, ``PB``) are powers of 1000,
binary units (``KiB`` … ``PiB``) powers of 1024; case does not matter. A
bare number is bytes. One-letter units such as ``4G`` are refused because
tools disagree on whether they mean 10^9 or 2^30.
"""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}

_SPELLING = {u: u[0].upper() + u[1:-1] + "B" for u in _UNITS}
_SPELLING["kb"] = "kB"
_SPELLING["b"] = "B"

_BINARY_STEPS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")

_SIZE_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)$")


def parse_size(value: str | int) -> int:
    """Bytes in ``value``; raises ValueError saying what is wrong.

    >>> parse_size("3.5GiB")
    3758096384
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"a size must be text such as 4GiB, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        return value
    match = _SIZE_RE.match(value.strip())
    if match is None:
        raise ValueError(f"not a size: {value!r} (write a number and a unit: 4GiB)")
    number, unit = match.groups()
    return round(Decimal(number) * _unit_factor(unit))


def _unit_factor(unit: str) -> int:
    if not unit:
        return 1
    factor = _UNITS.get(unit.lower())
    if factor is not None:
        return factor
    if unit.lower() in ("k", "m", "g", "t", "p"):
        letter = unit.upper()
        raise ValueError(
            f"ambiguous unit {unit!r}: write {letter}iB (binary) or {letter}B (decimal)"
        )
    known = ", ".join(unit_names())
    raise ValueError(f"unknown unit {unit!r} (known units: {known})")


def format_size(nbytes: int) -> str:
    """``nbytes`` in the largest binary unit that keeps it at least 1.

    >>> format_size(3758096384)
    '3.5GiB'
    """
    value = float(nbytes)
    step = 0
    while abs(value) >= 1024 and step < len(_BINARY_STEPS) - 1:
        value /= 1024
        step += 1
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{_BINARY_STEPS[step]}"


def unit_names() -> tuple[str, ...]:
    """Every accepted unit, spelt the usual way (for messages and docs)."""
    return tuple(_SPELLING[u] for u in _UNITS)

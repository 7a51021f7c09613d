"""Mounts under a directory: find and remove them, deepest first."""

from __future__ import annotations

import logging
from pathlib import Path

from daskfleet.lab._proc import run

logger = logging.getLogger(__name__)


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n")):
        field = field.replace(code, char)
    return field.replace("\\134", "\\")


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest first."""
    prefix = str(directory.resolve()) if directory.exists() else str(directory)
    found: list[Path] = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_under(directory: Path) -> None:
    """Unmount everything mounted at or below ``directory`` (lazy if busy)."""
    for point in mounts_under(directory):
        logger.debug("unmounting %s", point)
        result = run(["umount", str(point)], check=False)
        if result.returncode != 0:
            run(["umount", "-l", str(point)], check=False)

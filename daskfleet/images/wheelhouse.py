"""Every wheel the image installs, fetched once on the controller.

The image build never reaches a package index: the controller downloads the
wheels into a cache keyed by the requirements, and the build context carries
them. A second build with the same requirements is offline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from daskfleet.errors import ImageError

logger = logging.getLogger(__name__)

COMPLETE_MARK = ".complete"
OUTPUT_TAIL_LINES = 15


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/daskfleet`` or ``~/.cache/daskfleet``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "daskfleet"


def wheelhouse_key(requirements: Sequence[str], python: str, platform: str) -> str:
    """Stable key of what a wheelhouse holds; order of requirements ignored."""
    text = json.dumps([sorted(requirements), python, platform])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_wheelhouse(
    requirements: Sequence[str],
    *,
    python: str,
    cache_dir: Path | None = None,
) -> Path:
    """A directory holding a wheel for every requirement and dependency.

    Reused when already complete; otherwise built with ``pip wheel`` (wheels
    downloaded, any source-only package built on the controller, whose
    Python and platform the image matches).
    """
    platform = sysconfig.get_platform()
    key = wheelhouse_key(requirements, python, platform)
    target = (cache_dir or cache_root() / "wheels") / key
    if (target / COMPLETE_MARK).exists():
        logger.debug("wheelhouse %s reused", target)
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        _fetch(requirements, staging)
        (staging / COMPLETE_MARK).write_text(json.dumps(sorted(requirements)))
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def wheel_names(wheelhouse: Path) -> tuple[str, ...]:
    """File names of the wheels in ``wheelhouse``, sorted."""
    return tuple(sorted(p.name for p in wheelhouse.glob("*.whl")))


def _fetch(requirements: Sequence[str], dest: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--wheel-dir",
        str(dest),
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        *requirements,
    ]
    logger.debug("running %s", argv)
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(
            (done.stdout + done.stderr).strip().splitlines()[-OUTPUT_TAIL_LINES:]
        )
        raise ImageError(
            f"downloading the image's wheels failed (pip exit {done.returncode}):\n"
            f"{tail}",
            hint="check the package names in the inventory's image.packages"
            " and that this machine reaches its package index once",
        )
    logger.debug(
        "wheelhouse of %d wheels in %.1f s",
        len(wheel_names(dest)),
        time.monotonic() - started,
    )


def _publish(staging: Path, target: Path) -> None:
    if target.exists() and not (target / COMPLETE_MARK).exists():
        shutil.rmtree(target)  # left behind by an interrupted run
    try:
        staging.rename(target)
    except OSError:
        # Another run published the same key first; its wheels are as good.
        if not (target / COMPLETE_MARK).exists():
            raise

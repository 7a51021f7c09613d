"""Where daskfleet keeps its state and the user's files on the controller."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """``$DASKFLEET_STATE_DIR``, else ``$XDG_STATE_HOME/daskfleet``."""
    explicit = os.environ.get("DASKFLEET_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "daskfleet"


def config_dir() -> Path:
    """``$DASKFLEET_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/daskfleet``.

    What a user points other programs at (a cluster's client certificate
    bundle); daskfleet's own records stay in :func:`state_dir`.
    """
    explicit = os.environ.get("DASKFLEET_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "daskfleet"

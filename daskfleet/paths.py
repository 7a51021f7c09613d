"""Where daskfleet keeps its state on the controller."""

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

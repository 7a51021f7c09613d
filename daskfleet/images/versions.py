"""The versions client and cluster must agree on, read from the controller.

The image pins exactly what the controller runs, so a client and a cluster
deployed by daskfleet can never disagree on dask, distributed, cloudpickle
or msgpack, nor on the Python minor version that pickles move between.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from dataclasses import dataclass

#: Packages pinned to the controller's exact version inside the image.
PINNED = ("dask", "distributed", "cloudpickle", "msgpack")
#: Label prefix on the image: ``org.daskfleet.dask=2024.8.0`` and so on.
LABEL_PREFIX = "org.daskfleet."
#: What the dashboard needs when dask's metadata does not say.
DASHBOARD_FALLBACK = ("bokeh>=3.1.0", "jinja2>=2.10.3")


@dataclass(frozen=True)
class Versions:
    """Python minor version and the pinned packages' versions."""

    python: str
    dask: str
    distributed: str
    cloudpickle: str
    msgpack: str

    def pins(self) -> tuple[str, ...]:
        """``name==version`` requirements for every pinned package."""
        return tuple(f"{name}=={getattr(self, name)}" for name in PINNED)

    def labels(self) -> dict[str, str]:
        """Image labels that record these versions."""
        names = ("python", *PINNED)
        return {f"{LABEL_PREFIX}{name}": getattr(self, name) for name in names}

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Versions | None:
        """Read versions back from an image's labels; ``None`` if any lacks."""
        names = ("python", *PINNED)
        found = {name: labels.get(f"{LABEL_PREFIX}{name}") for name in names}
        if any(value is None for value in found.values()):
            return None
        return cls(**{name: str(value) for name, value in found.items()})


def controller_versions() -> Versions:
    """The versions this Python process runs."""
    installed = {name: importlib.metadata.version(name) for name in PINNED}
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Versions(python=python, **installed)


def dashboard_requirements() -> tuple[str, ...]:
    """Requirements for the dashboard, as dask's own metadata states them.

    dask lists bokeh and jinja2 under its ``diagnostics`` extra; reading the
    bounds from there keeps them right across dask releases.
    """
    wanted = {"bokeh", "jinja2"}
    found: list[str] = []
    for requirement in importlib.metadata.requires("dask") or []:
        spec, _, marker = requirement.partition(";")
        name = re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower()
        if name in wanted and "diagnostics" in marker:
            found.append(spec.strip().replace(" ", ""))
            wanted.discard(name)
    fallback = [r for r in DASHBOARD_FALLBACK if r.split(">")[0] in wanted]
    return tuple(sorted(found + fallback))

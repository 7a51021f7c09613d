"""The controller's versions, pinned into the image and its labels."""

from __future__ import annotations

import importlib.metadata
import sys

from daskfleet.images.versions import (
    Versions,
    controller_versions,
    dashboard_requirements,
)


def test_controller_versions_are_the_installed_ones() -> None:
    versions = controller_versions()
    assert versions.dask == importlib.metadata.version("dask")
    assert versions.distributed == importlib.metadata.version("distributed")
    assert versions.python == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_pins_and_labels_round_trip() -> None:
    versions = Versions("3.11", "2024.8.0", "2024.8.0", "3.0.0", "1.0.8")
    assert versions.pins() == (
        "dask==2024.8.0",
        "distributed==2024.8.0",
        "cloudpickle==3.0.0",
        "msgpack==1.0.8",
    )
    labels = versions.labels()
    assert labels["org.daskfleet.python"] == "3.11"
    assert Versions.from_labels(labels) == versions
    del labels["org.daskfleet.msgpack"]
    assert Versions.from_labels(labels) is None


def test_dashboard_requirements_name_bokeh_and_jinja2() -> None:
    names = [r.split(">")[0].split("=")[0] for r in dashboard_requirements()]
    assert names == ["bokeh", "jinja2"]
    assert all(">=" in r for r in dashboard_requirements())

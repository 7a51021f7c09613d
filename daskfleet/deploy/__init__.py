"""Deploy: inventory in, a healthy Dask cluster and a per-host recap out.

The steps (facts, observe, image, plan, ship, scheduler, workers, health)
live in :mod:`daskfleet.deploy.steps`; :func:`deploy` runs them in order.
"""

from daskfleet.deploy.context import DeployEvents, DeployOptions, QuietEvents
from daskfleet.deploy.recap import HostRecap, Recap
from daskfleet.deploy.run import dashboard_url, deploy

__all__ = [
    "DeployEvents",
    "DeployOptions",
    "HostRecap",
    "QuietEvents",
    "Recap",
    "dashboard_url",
    "deploy",
]

"""Connecting a ``distributed.Client`` to the cluster's scheduler."""

from __future__ import annotations

import warnings
from typing import Any

from distributed import Client
from distributed.versions import VersionMismatchWarning

from daskfleet.errors import HealthError


def open_client(address: str, *, timeout: float, security: Any = None) -> Client:
    """A Client on ``address``; HealthError with a fix when it cannot connect.

    distributed's own version warning is silenced: daskfleet checks versions
    strictly itself and reports every mismatch by node.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VersionMismatchWarning)
            return Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout, security=security, set_as_default=False
            )
    except OSError as exc:
        raise HealthError(
            f"cannot reach the scheduler at {address}: {exc}",
            hint="check `daskfleet status` and `daskfleet logs --role scheduler`",
        ) from exc

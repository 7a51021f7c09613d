"""Connecting a ``distributed.Client`` to the cluster's scheduler."""

from __future__ import annotations

import socket
import time
import warnings
from typing import Any

from distributed import Client
from distributed.comm.addressing import get_address_host_port
from distributed.versions import VersionMismatchWarning

from daskfleet.errors import HealthError

POLL_SECONDS = 0.1


def open_client(address: str, *, timeout: float, security: Any = None) -> Client:
    """A Client on ``address``; HealthError with a fix when it cannot connect.

    distributed's own version warning is silenced: daskfleet checks versions
    strictly itself and reports every mismatch by node.
    """
    _wait_for_port(address, timeout)
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


def _wait_for_port(address: str, timeout: float) -> None:
    """Wait, polling briefly, until the scheduler's port accepts connections.

    A scheduler container that has just started needs a few seconds before
    it listens; distributed's own connect retries back off to seconds apart,
    so a short poll here lets the Client connect as soon as it can.
    """
    host, port = get_address_host_port(address)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(POLL_SECONDS)

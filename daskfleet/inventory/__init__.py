"""The inventory: which hosts make up the cluster and how each is used.

:func:`load_inventory` reads a native or an Ansible YAML inventory, checks
every value and returns an immutable :class:`Inventory`. Any problem raises
:class:`~daskfleet.errors.InventoryError` naming the file, line, column and
key path.
"""

from __future__ import annotations

import os
from pathlib import Path

from daskfleet.inventory.ansible import load_ansible, looks_like_ansible
from daskfleet.inventory.model import (
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_SCHEDULER_PORT,
    DEFAULT_SSH_PORT,
    DEFAULT_TIMEOUT,
    ROLES,
    GpuRequest,
    Host,
    ImageSettings,
    Inventory,
    Role,
    Volume,
)
from daskfleet.inventory.native import load_native
from daskfleet.inventory.yamlpos import load_yaml_file

__all__ = [
    "DEFAULT_DASHBOARD_PORT",
    "DEFAULT_SCHEDULER_PORT",
    "DEFAULT_SSH_PORT",
    "DEFAULT_TIMEOUT",
    "ROLES",
    "GpuRequest",
    "Host",
    "ImageSettings",
    "Inventory",
    "Role",
    "Volume",
    "load_inventory",
]


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read, check and resolve the inventory at ``path``.

    The format (native or Ansible YAML) is recognised from the content.
    """
    path = Path(path)
    root = load_yaml_file(path)
    if looks_like_ansible(root):
        return load_ansible(root, path)
    return load_native(root, path)

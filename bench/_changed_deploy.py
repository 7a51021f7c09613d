"""``daskfleet`` with the image built from another Dockerfile (bench only).

Usage: ``python bench/_changed_deploy.py DOCKERFILE [daskfleet args...]``.
The inventory has no Dockerfile setting, so the one-line-change benchmark
swaps the build request the deploy uses for one that names its copy.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from daskfleet.cli.main import main
from daskfleet.deploy import steps
from daskfleet.images import BuildRequest
from daskfleet.inventory.model import Inventory


def _request_from(dockerfile: Path) -> type[BuildRequest]:
    class ChangedRequest(BuildRequest):
        @classmethod
        def from_inventory(cls, inventory: Inventory) -> BuildRequest:
            request = BuildRequest.from_inventory(inventory)
            return dataclasses.replace(request, dockerfile=dockerfile)

    return ChangedRequest


if __name__ == "__main__":
    steps.BuildRequest = _request_from(Path(sys.argv.pop(1)))  # type: ignore[attr-defined]
    sys.argv[0] = "daskfleet"
    main()

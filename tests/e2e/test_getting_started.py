"""docs/getting-started.md works as written: its ``sh`` blocks, run in order.

The page's commands use the default lab (``lab``, ``inventories/lab.yml``).
To leave a lab the user brought up alone, the test gives ``lab up``,
``lab down`` and ``lab status`` its own lab name and points every
``inventories/lab.yml`` at that lab's inventory in a temporary directory;
nothing else is changed. The script ends with the page's own teardown; the
test tears the lab down again in case the script stopped half way.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from daskfleet.lab import LabConfig, lab_down

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "getting-started.md"
LAB_NAME = os.environ.get("DASKFLEET_E2E_LAB", "e2e") + "gs"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def page_commands(text: str) -> str:
    """The page's ``sh`` blocks, in order, as one script."""
    blocks = SH_BLOCK.findall(text)
    assert blocks, f"no sh blocks in {PAGE}"
    return "\n".join(blocks)


def for_test_lab(script: str, inventory: Path) -> str:
    """The same commands on the test's own lab and inventory."""
    script = re.sub(
        r"(daskfleet lab up)\b",
        rf"\1 --name {LAB_NAME} --inventory {inventory}",
        script,
    )
    script = re.sub(
        r"(daskfleet lab (?:down|status))\b", rf"\1 --name {LAB_NAME}", script
    )
    return script.replace("inventories/lab.yml", str(inventory))


def test_rewriting_touches_only_the_lab_name_and_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "lab.yml"
    script = for_test_lab(
        "daskfleet lab up --hosts 3\ndaskfleet deploy inventories/lab.yml\n"
        "daskfleet lab down\n",
        inventory,
    )
    assert script == (
        f"daskfleet lab up --name {LAB_NAME} --inventory {inventory} --hosts 3\n"
        f"daskfleet deploy {inventory}\n"
        f"daskfleet lab down --name {LAB_NAME}\n"
    )


def test_getting_started_commands_work(tmp_path: Path) -> None:
    inventory = tmp_path / "lab.yml"
    script = for_test_lab(page_commands(PAGE.read_text()), inventory)
    env = {
        **os.environ,
        "DASKFLEET_STATE_DIR": str(tmp_path / "state"),
        "DASKFLEET_CONFIG_DIR": str(tmp_path / "config"),
    }
    try:
        done = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{script}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    finally:
        lab_down(LabConfig(LAB_NAME), purge=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "is healthy" in output
    assert "workers registered" in output
    assert "\n6\n" in done.stdout

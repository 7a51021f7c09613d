"""Bad playbooks fail before any task, naming the file and line.

Each fixture under fixtures/playbooks/ starts with a comment
``# LINE: expected text | more expected text``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daskfleet.errors import PlaybookError
from daskfleet.inventory import load_inventory
from daskfleet.playbook import load_playbook, shipped_playbook
from daskfleet.playbook.checks import check_playbook

FIXTURES = Path(__file__).parent / "fixtures" / "playbooks"
BAD = sorted(p for p in FIXTURES.glob("*.yml") if p.name != "fleet.yml")


def load_and_check(path: Path) -> None:
    inventory = load_inventory(FIXTURES / "fleet.yml")
    check_playbook(load_playbook(path), inventory, {})


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_playbook_names_file_and_line(path: Path) -> None:
    header = path.read_text().splitlines()[0].removeprefix("# ")
    line, _, expected = header.partition(": ")
    with pytest.raises(PlaybookError) as caught:
        load_and_check(path)
    error = caught.value
    assert error.exit_code == 2
    assert error.location.path == str(path)
    assert error.location.line == int(line), str(error)
    for part in expected.split(" | "):
        assert part in str(error)


def test_missing_file_is_a_playbook_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="no such file"):
        load_playbook(tmp_path / "nope.yml")


@pytest.mark.parametrize("name", ["deploy", "upgrade", "teardown"])
def test_shipped_playbooks_load_and_check(name: str) -> None:
    load_and_check(shipped_playbook(name))


def test_task_keywords_and_free_form(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text(
        "- name: p\n"
        "  hosts: gpu:!gpu3\n"
        "  serial: [1, 50%]\n"
        "  max_fail_percentage: 25\n"
        "  tasks:\n"
        "    - command: ls -l /srv\n"
        "      register: listing\n"
        "      tags: [inspect]\n"
        "      ignore_errors: true\n"
        "      run_once: true\n"
        "    - directory: {path: /srv/data, mode: 0750}\n"
        "      when: listing.rc != 0\n"
    )
    (play,) = load_playbook(path).plays
    listing, directory = play.tasks
    assert play.serial == (1, "50%") and play.max_fail_percentage == 25
    assert listing.args == {"argv": ["ls", "-l", "/srv"]}
    assert listing.register == "listing" and listing.tags == {"inspect"}
    assert listing.ignore_errors and listing.run_once
    # YAML reads 0750 as a number; the mode keeps what was written.
    assert directory.args == {"path": "/srv/data", "mode": "0750"}
    assert directory.when == ("listing.rc != 0",)
    assert listing.selected(frozenset({"inspect"}))
    assert not directory.selected(frozenset({"inspect"}))

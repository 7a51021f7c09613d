"""Read a playbook file into :class:`Playbook`, checking everything it can.

Every problem found here (bad YAML, an unknown module or argument, a value
of the wrong type, a template that does not parse) raises a
:class:`PlaybookError` naming the file and line, before any host is reached.
"""

from __future__ import annotations

import re
from pathlib import Path

from daskfleet.errors import InventoryError, Location, PlaybookError
from daskfleet.inventory.yamlpos import Node, load_yaml_file
from daskfleet.playbook.model import Play, Playbook, SerialStep
from daskfleet.playbook.nodes import (
    VARIABLE_NAME,
    check_templates,
    expect_mapping,
    expect_text,
    fail,
    flag,
    kind_of,
    optional_text,
    plain,
    unknown_key,
)
from daskfleet.playbook.taskload import load_task

PLAY_KEYS = (
    "name",
    "hosts",
    "tasks",
    "serial",
    "max_fail_percentage",
    "vars",
    "gather_facts",
)
_PERCENT = re.compile(r"^\d+(\.\d+)?%$")
_EXAMPLE = "- name: deploy\n  hosts: all\n  tasks:\n    - health: {}"


def load_playbook(path: str | Path) -> Playbook:
    """Load and check the playbook at ``path``; raise :class:`PlaybookError`."""
    path = Path(path)
    root = _read(path)
    items = root.sequence()
    if items is None:
        fail(root.location, "", "expected a list of plays, found " + kind_of(root))
    if not items:
        fail(root.location, "", "expected at least one play, found an empty list")
    plays = tuple(_play(node, f"[{i}]") for i, node in enumerate(items))
    return Playbook(path, plays)


def _read(path: Path) -> Node:
    where = Location(str(path))
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        fail(where, "", f"expected a playbook file, found {what}")
    if not path.read_bytes().strip():
        fail(
            Location(str(path), 1, 1),
            "",
            "the playbook is empty: expected a list of plays",
            _EXAMPLE,
        )
    try:
        return load_yaml_file(path)
    except InventoryError as exc:
        raise PlaybookError(
            exc.detail, location=exc.location, key_path=exc.key_path, hint=exc.hint
        ) from None


def _play(node: Node, key_path: str) -> Play:
    entries = expect_mapping(node, key_path, "a play (a mapping with hosts and tasks)")
    for key, location, _ in node.entries():
        if key not in PLAY_KEYS:
            unknown_key(key, location, f"{key_path}.{key}", PLAY_KEYS)
    for required in ("hosts", "tasks"):
        if required not in entries:
            fail(node.location, key_path, f"a play needs {required}:", _EXAMPLE)
    hosts = expect_text(
        entries["hosts"], f"{key_path}.hosts", "a host pattern such as all or workers"
    )
    tasks = entries["tasks"].sequence()
    if tasks is None:
        fail(
            entries["tasks"].location,
            f"{key_path}.tasks",
            f"expected a list of tasks, found {kind_of(entries['tasks'])}",
        )
    variables = _vars(entries.get("vars"), f"{key_path}.vars")
    return Play(
        name=optional_text(entries.get("name"), f"{key_path}.name") or hosts,
        hosts=hosts,
        tasks=tuple(
            load_task(t, f"{key_path}.tasks[{i}]") for i, t in enumerate(tasks)
        ),
        location=node.location,
        hosts_location=entries["hosts"].location,
        serial=_serial(entries.get("serial"), f"{key_path}.serial"),
        max_fail_percentage=_percentage(
            entries.get("max_fail_percentage"), f"{key_path}.max_fail_percentage"
        ),
        vars={k: plain(v) for k, v in variables.items()},
        var_locations={k: v.location for k, v in variables.items()},
        gather_facts=flag(entries.get("gather_facts"), f"{key_path}.gather_facts"),
    )


def _vars(node: Node | None, key_path: str) -> dict[str, Node]:
    if node is None or node.value is None:
        return {}
    entries = expect_mapping(node, key_path, "a mapping of variable names to values")
    for key, location, value in node.entries():
        if not VARIABLE_NAME.match(key):
            fail(
                location,
                f"{key_path}.{key}",
                "expected a variable name: letters, digits and _, not starting with a digit",
            )
        check_templates(plain(value), value.location, f"{key_path}.{key}")
    return entries


def _serial(node: Node | None, key_path: str) -> tuple[SerialStep, ...]:
    if node is None or node.value is None:
        return ()
    items = node.sequence()
    steps = [node] if items is None else items
    if not steps:
        fail(
            node.location,
            key_path,
            "expected a number, a percentage or a list of them, found an empty list",
        )
    return tuple(_serial_step(step, key_path) for step in steps)


def _serial_step(node: Node, key_path: str) -> SerialStep:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if (
        isinstance(value, str)
        and _PERCENT.match(value.strip())
        and float(value.strip()[:-1]) > 0
    ):
        return value.strip()
    fail(
        node.location,
        key_path,
        f"expected a number of hosts (1 or more) or a percentage such as 25%, found {kind_of(node)}",
    )


def _percentage(node: Node | None, key_path: str) -> float | None:
    if node is None or node.value is None:
        return None
    value = node.value
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= 100
    ):
        return float(value)
    fail(
        node.location,
        key_path,
        f"expected a percentage from 0 to 100, found {kind_of(node)}",
    )

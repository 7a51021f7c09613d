"""Templating, conditions, serial batches, patterns, play variables and the
module registry: the playbook engine's pure parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daskfleet.errors import Location, PlaybookError
from daskfleet.inventory import load_inventory
from daskfleet.inventory.model import Volume
from daskfleet.playbook import (
    Arg,
    HostCall,
    HostModule,
    ModuleResult,
    load_playbook,
    register,
    registered_modules,
)
from daskfleet.playbook.checks import check_playbook, select_hosts
from daskfleet.playbook.serial import serial_batches
from daskfleet.playbook.templating import evaluate, render
from daskfleet.playbook.variables import Variables

FLEET = Path(__file__).parent / "fixtures" / "playbooks" / "fleet.yml"
HERE = Location("site.yml", 3)


def test_render_keeps_the_type_of_a_whole_expression() -> None:
    variables = {"n": 3, "name": "node1", "items": [1, 2]}
    assert render("{{ n }}", variables, HERE) == 3
    assert render("{{ items }}", variables, HERE) == [1, 2]
    assert render("host {{ name }}", variables, HERE) == "host node1"
    assert render({"a": ["{{ n + 1 }}"]}, variables, HERE) == {"a": [4]}
    assert render("{{ path | quote }}", {"path": "a b"}, HERE) == "'a b'"


def test_undefined_variable_is_an_error_with_the_place() -> None:
    with pytest.raises(PlaybookError) as caught:
        render("{{ missing }}", {}, HERE)
    assert "site.yml:3" in str(caught.value) and "missing" in str(caught.value)
    assert render("{{ missing | default('x') }}", {}, HERE) == "x"


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(PlaybookError):
        render("{{ ''.__class__.__mro__ }}", {}, HERE)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("n > 2", True),
        ("{{ n > 5 }}", False),
        ("'gpu' in group_names", True),
        ("result.rc == 0 and not result.failed", True),
        ("other is defined", False),
    ],
)
def test_conditions(condition: str, expected: bool) -> None:
    variables: dict[str, Any] = {
        "n": 3,
        "group_names": ["gpu"],
        "result": {"rc": 0, "failed": False},
    }
    assert evaluate(condition, variables, HERE) is expected


@pytest.mark.parametrize(
    ("serial", "sizes"),
    [
        ((), [10]),
        ((3,), [3, 3, 3, 1]),
        (("25%",), [2, 2, 2, 2, 2]),
        ((1, 2, "50%"), [1, 2, 5, 2]),
        (("1%",), [1] * 10),
    ],
)
def test_serial_batches(serial: tuple[Any, ...], sizes: list[int]) -> None:
    hosts = list(range(10))
    batches = serial_batches(hosts, serial)
    assert [len(b) for b in batches] == sizes
    assert [h for b in batches for h in b] == hosts


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("all", ["head", "gpu1", "gpu2", "gpu3", "cpu1"]),
        ("workers", ["gpu1", "gpu2", "gpu3", "cpu1"]),
        ("gpu:!gpu3", ["gpu1", "gpu2"]),
        ("gpu,!gpu3", ["gpu1", "gpu2"]),
        ("head:cpu1", ["head", "cpu1"]),
        ("workers:&gpu", ["gpu1", "gpu2", "gpu3"]),
        ("gpu*:!gpu1", ["gpu2", "gpu3"]),
    ],
)
def test_host_patterns(pattern: str, names: list[str]) -> None:
    inventory = load_inventory(FLEET)
    assert [h.name for h in select_hosts(inventory, pattern)] == names


def test_play_vars_override_host_variables_for_the_play(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text(
        "- hosts: gpu\n"
        "  vars:\n"
        "    data: /srv/{{ inventory_hostname }}\n"
        "    volumes: ['{{ data }}:/data:ro']\n"
        "    env: {OMP_NUM_THREADS: 1}\n"
        "  tasks: []\n"
    )
    inventory = load_inventory(FLEET)
    (changed,) = check_playbook(load_playbook(path), inventory, {})
    assert changed.hosts["gpu2"].volumes == (Volume("/srv/gpu2", "/data", True),)
    assert changed.hosts["gpu2"].env == {"OMP_NUM_THREADS": "1"}
    assert changed.hosts["gpu2"].sources["volumes"] == "play vars"
    assert changed.hosts["cpu1"].volumes == ()


def test_variables_precedence(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text("- hosts: all\n  vars: {a: play, b: play}\n  tasks: []\n")
    (play,) = load_playbook(path).plays
    inventory = load_inventory(FLEET)
    variables = Variables(inventory, {"b": "extra"})
    variables.register("gpu1", "a", "registered")
    seen = variables.for_host(play, inventory.hosts["gpu1"])
    assert (seen["a"], seen["b"]) == ("registered", "extra")
    assert seen["inventory_hostname"] == "gpu1" and seen["group_names"] == ["gpu"]
    assert seen["groups"]["gpu"] == ["gpu1", "gpu2", "gpu3"]
    assert seen["cluster"] == "unit"


def test_every_documented_module_is_registered() -> None:
    assert set(registered_modules()) >= {
        "image", "scheduler", "workers", "health", "retire", "upgrade",
        "teardown", "command", "shell", "copy", "directory", "docker_prune",
        "wait_for", "assert",
    }  # fmt: skip


def test_a_new_module_is_one_class(tmp_path: Path) -> None:
    @register
    class Greet(HostModule):
        name = "unit_greet"
        free_form = "who"
        args = (Arg("who", "str", required=True), Arg("times", "int", default=1))

        def run(self, call: HostCall) -> ModuleResult:
            return ModuleResult(msg=f"hello {call.args['who']}")

    path = tmp_path / "site.yml"
    path.write_text("- hosts: all\n  tasks:\n    - unit_greet: world\n")
    (task,) = load_playbook(path).plays[0].tasks
    assert (task.module, task.args) == ("unit_greet", {"who": "world"})
    path.write_text("- hosts: all\n  tasks:\n    - unit_greet: {who: x, times: many}\n")
    with pytest.raises(PlaybookError, match=r"site.yml:3.*expected a whole number"):
        load_playbook(path)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("bool", "yes", True),
        ("int", "3", 3),
        ("number", "2.5", 2.5),
        ("argv", "ls -l 'a b'", ["ls", "-l", "a b"]),
        ("argv", ["echo", 1], ["echo", "1"]),
        ("mode", "644", "0644"),
        ("strings", "x == 1", ["x == 1"]),
    ],
)
def test_argument_kinds(kind: Any, value: Any, expected: Any) -> None:
    assert Arg("a", kind).coerce(value) == expected


@pytest.mark.parametrize(
    ("kind", "value"), [("int", True), ("mode", "rwx"), ("list", "x"), ("bool", 2)]
)
def test_argument_kinds_refuse(kind: Any, value: Any) -> None:
    with pytest.raises(ValueError):
        Arg("a", kind).coerce(value)


def test_changed_when_and_failed_when_judge_the_result(tmp_path: Path) -> None:
    from daskfleet.playbook.tasks import TaskRun

    path = tmp_path / "site.yml"
    path.write_text(
        "- hosts: all\n  tasks:\n"
        "    - command: [cat, /etc/motd]\n"
        "      register: out\n"
        "      changed_when: false\n"
        "      failed_when: out.rc not in [0, 1]\n"
    )
    (play,) = load_playbook(path).plays
    (task,) = play.tasks
    inventory = load_inventory(FLEET)
    run = TaskRun(
        play,
        task,
        registered_modules()["command"],
        Variables(inventory, {}),
        False,
        {},
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        tmp_path,
    )
    judged = run.judge(ModuleResult(changed=True, failed=True, data={"rc": 1}), {})
    assert (judged.changed, judged.failed) == (False, False)
    judged = run.judge(ModuleResult(changed=True, failed=True, data={"rc": 2}), {})
    assert judged.failed


def test_play_recap_counts_like_ansible() -> None:
    from daskfleet.playbook.recap import PlaybookRecap, TaskOutcome, TaskRecord

    recap = PlaybookRecap("site.yml")
    task = TaskRecord("t", "command")
    for outcome in (
        TaskOutcome("a", "changed"),
        TaskOutcome("a", "ok"),
        TaskOutcome("a", "skipped"),
        TaskOutcome("b", "failed", "exit 1", ignored=True),
        TaskOutcome("c", "unreachable", "no route"),
    ):
        recap.record(task, outcome)
    counts = recap.to_dict()["recap"]
    assert counts["a"] == {
        "ok": 2, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 1, "ignored": 0
    }  # fmt: skip
    assert counts["b"]["ignored"] == 1 and counts["b"]["failed"] == 0
    assert counts["c"]["unreachable"] == 1
    assert recap.ok is False and recap.changed == 1

"""Read a playbook file into :class:`Playbook`, checking everything it can.

Every problem found here (bad YAML, an unknown module or argument, a value
of the wrong type, a template that does not parse) raises a
:class:`PlaybookError` naming the file and line, before any host is reached.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import jinja2

from daskfleet.errors import InventoryError, Location, PlaybookError
from daskfleet.inventory.validate import did_you_mean
from daskfleet.inventory.yamlpos import Node, Tagged, load_yaml_file
from daskfleet.playbook import templating
from daskfleet.playbook.model import Play, Playbook, SerialStep, Task
from daskfleet.playbook.module import Module, registered_modules

PLAY_KEYS = (
    "name",
    "hosts",
    "tasks",
    "serial",
    "max_fail_percentage",
    "vars",
    "gather_facts",
)
TASK_KEYS = (
    "name",
    "when",
    "changed_when",
    "failed_when",
    "register",
    "tags",
    "ignore_errors",
    "run_once",
)
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PERCENT = re.compile(r"^\d+(\.\d+)?%$")
_EXPRESSION_HINT = "conditions are expressions: write them without {{ }} inside"
_EXAMPLE = "- name: deploy\n  hosts: all\n  tasks:\n    - health: {}"


def load_playbook(path: str | Path) -> Playbook:
    """Load and check the playbook at ``path``; raise :class:`PlaybookError`."""
    path = Path(path)
    root = _read(path)
    items = root.sequence()
    if items is None:
        _fail(root.location, "", "expected a list of plays, found " + _kind(root))
    if not items:
        _fail(root.location, "", "expected at least one play, found an empty list")
    plays = tuple(_play(node, f"[{i}]") for i, node in enumerate(items))
    return Playbook(path, plays)


def _read(path: Path) -> Node:
    where = Location(str(path))
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        _fail(where, "", f"expected a playbook file, found {what}")
    if not path.read_bytes().strip():
        _fail(
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


def _fail(
    location: Location, key_path: str, message: str, hint: str | None = None
) -> NoReturn:
    raise PlaybookError(
        message, location=location, key_path=key_path or None, hint=hint
    )


def _kind(node: Node) -> str:
    value = node.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {node.text}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {node.text}"


def plain(node: Node) -> Any:
    """The Python value of ``node``: lists, dicts and scalars."""
    if isinstance(node.value, dict):
        return {k: plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [plain(v) for v in node.value]
    if isinstance(node.value, Tagged):
        _fail(
            node.location,
            "",
            f"YAML tags such as {node.value.tag} are not supported in playbooks",
        )
    return node.value


def _mapping(node: Node, key_path: str, what: str) -> dict[str, Node]:
    entries = node.mapping()
    if entries is None:
        _fail(node.location, key_path, f"expected {what}, found {_kind(node)}")
    return entries


def _unknown_key(
    key: str, location: Location, key_path: str, known: tuple[str, ...]
) -> NoReturn:
    _fail(
        location,
        key_path,
        f"unknown key {key!r}; expected one of: {', '.join(known)}",
        did_you_mean(key, known),
    )


def _play(node: Node, key_path: str) -> Play:
    entries = _mapping(node, key_path, "a play (a mapping with hosts and tasks)")
    for key, location, _ in node.entries():
        if key not in PLAY_KEYS:
            _unknown_key(key, location, f"{key_path}.{key}", PLAY_KEYS)
    for required in ("hosts", "tasks"):
        if required not in entries:
            _fail(node.location, key_path, f"a play needs {required}:", _EXAMPLE)
    hosts = _text(
        entries["hosts"], f"{key_path}.hosts", "a host pattern such as all or workers"
    )
    tasks = entries["tasks"].sequence()
    if tasks is None:
        _fail(
            entries["tasks"].location,
            f"{key_path}.tasks",
            f"expected a list of tasks, found {_kind(entries['tasks'])}",
        )
    variables = _vars(entries.get("vars"), f"{key_path}.vars")
    return Play(
        name=_optional_text(entries.get("name"), f"{key_path}.name") or hosts,
        hosts=hosts,
        tasks=tuple(_task(t, f"{key_path}.tasks[{i}]") for i, t in enumerate(tasks)),
        location=node.location,
        hosts_location=entries["hosts"].location,
        serial=_serial(entries.get("serial"), f"{key_path}.serial"),
        max_fail_percentage=_percentage(
            entries.get("max_fail_percentage"), f"{key_path}.max_fail_percentage"
        ),
        vars={k: plain(v) for k, v in variables.items()},
        var_locations={k: v.location for k, v in variables.items()},
        gather_facts=_flag(entries.get("gather_facts"), f"{key_path}.gather_facts"),
    )


def _text(node: Node, key_path: str, expected: str) -> str:
    if not isinstance(node.value, str) or not node.value.strip():
        _fail(node.location, key_path, f"expected {expected}, found {_kind(node)}")
    return node.value


def _optional_text(node: Node | None, key_path: str) -> str | None:
    if node is None or node.value is None:
        return None
    if isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return str(node.value)
    return _text(node, key_path, "text")


def _flag(node: Node | None, key_path: str) -> bool:
    if node is None or node.value is None:
        return False
    if not isinstance(node.value, bool):
        _fail(node.location, key_path, f"expected true or false, found {_kind(node)}")
    return node.value


def _vars(node: Node | None, key_path: str) -> dict[str, Node]:
    if node is None or node.value is None:
        return {}
    entries = _mapping(node, key_path, "a mapping of variable names to values")
    for key, location, value in node.entries():
        if not _VARIABLE.match(key):
            _fail(
                location,
                f"{key_path}.{key}",
                "expected a variable name: letters, digits and _, not starting with a digit",
            )
        _check_templates(plain(value), value.location, f"{key_path}.{key}")
    return entries


def _serial(node: Node | None, key_path: str) -> tuple[SerialStep, ...]:
    if node is None or node.value is None:
        return ()
    items = node.sequence()
    steps = [node] if items is None else items
    if not steps:
        _fail(
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
    _fail(
        node.location,
        key_path,
        f"expected a number of hosts (1 or more) or a percentage such as 25%, found {_kind(node)}",
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
    _fail(
        node.location,
        key_path,
        f"expected a percentage from 0 to 100, found {_kind(node)}",
    )


def _task(node: Node, key_path: str) -> Task:
    entries = _mapping(node, key_path, "a task (a mapping naming one module)")
    known = registered_modules()
    found = [(k, loc) for k, loc, _ in node.entries() if k not in TASK_KEYS]
    for key, location in found:
        if key not in known:
            _fail(
                location,
                f"{key_path}.{key}",
                f"unknown module {key!r}; expected one of: {', '.join(sorted(known))}",
                did_you_mean(key, [*known, *TASK_KEYS]),
            )
    if len(found) != 1:
        what = "none" if not found else ", ".join(k for k, _ in found)
        _fail(
            node.location,
            key_path,
            f"expected exactly one module per task, found {what}",
        )
    name, _ = found[0]
    module = known[name]
    args, locations = _module_args(module, entries[name], f"{key_path}.{name}")
    return Task(
        name=_optional_text(entries.get("name"), f"{key_path}.name") or name,
        module=name,
        args=args,
        location=node.location,
        arg_locations=locations,
        when=_when(entries.get("when"), f"{key_path}.when"),
        changed_when=_result_condition(entries, "changed_when", module, key_path),
        failed_when=_result_condition(entries, "failed_when", module, key_path),
        register=_register(entries.get("register"), f"{key_path}.register"),
        tags=_tags(entries.get("tags"), f"{key_path}.tags"),
        ignore_errors=_flag(entries.get("ignore_errors"), f"{key_path}.ignore_errors"),
        run_once=_flag(entries.get("run_once"), f"{key_path}.run_once"),
    )


def _module_args(
    module: type[Module], node: Node, key_path: str
) -> tuple[dict[str, Any], dict[str, Location]]:
    entries = node.mapping()
    if entries is None and node.value is not None:
        if module.free_form is None:
            _fail(
                node.location,
                key_path,
                f"expected the arguments of {module.name} as a mapping, found {_kind(node)}",
            )
        entries = {module.free_form: node}
    entries = entries or {}
    names = tuple(a.name for a in module.args)
    args: dict[str, Any] = {}
    for key, value in entries.items():
        where = node.key_locations.get(key, value.location)
        arg = module.arg_named(key)
        if arg is None:
            _fail(
                where,
                f"{key_path}.{key}",
                f"unknown argument {key!r} of {module.name}; expected one of: {', '.join(names) or 'none'}",
                did_you_mean(key, names),
            )
        if key in module.expressions:
            args[key] = _expressions(value, f"{key_path}.{key}", arg.coerce)
            continue
        args[key] = _arg_value(arg.kind, value, f"{key_path}.{key}", arg.coerce)
    for arg in module.args:
        if arg.required and arg.name not in args:
            _fail(
                node.location,
                key_path,
                f"{module.name} needs the argument {arg.name!r}",
            )
    if not templating.contains_template(args):
        try:
            module.check_args(args)
        except ValueError as exc:
            _fail(node.location, key_path, str(exc))
    locations = {k: v.location for k, v in entries.items()}
    return args, locations


def _arg_value(kind: str, node: Node, key_path: str, coerce: Any) -> Any:
    value = plain(node)
    if kind == "mode" and isinstance(value, int) and node.text:
        value = node.text  # YAML reads 0644 as the number 420
    _check_templates(value, node.location, key_path)
    if templating.contains_template(value):
        return value
    try:
        return coerce(value)
    except ValueError as exc:
        _fail(node.location, key_path, f"expected {exc}, found {_kind(node)}")


def _expressions(node: Node, key_path: str, coerce: Any) -> Any:
    try:
        conditions = coerce(plain(node))
    except ValueError as exc:
        _fail(node.location, key_path, f"expected {exc}, found {_kind(node)}")
    for condition in conditions:
        _check_templates(condition, node.location, key_path, expression=True)
    return conditions


def _check_templates(
    value: Any, location: Location, key_path: str, *, expression: bool = False
) -> None:
    try:
        templating.names_used(value, expression=expression)
    except jinja2.TemplateSyntaxError as exc:
        _fail(
            location,
            key_path,
            f"template error: {exc.message}",
            _EXPRESSION_HINT
            if expression and "{{" in str(value)
            else "check the {{ }} and {% %} pairs and the expression inside",
        )


def _when(node: Node | None, key_path: str) -> tuple[str, ...]:
    if node is None or node.value is None:
        return ()
    items = node.sequence()
    conditions = []
    for item in [node] if items is None else items:
        if isinstance(item.value, bool):
            conditions.append(str(item.value))
            continue
        text = _text(
            item, key_path, "a condition such as inventory_hostname != 'node1'"
        )
        _check_templates(text, item.location, key_path, expression=True)
        conditions.append(text)
    return tuple(conditions)


def _result_condition(
    entries: dict[str, Node], key: str, module: type[Module], key_path: str
) -> tuple[str, ...] | None:
    node = entries.get(key)
    if node is None:
        return None
    if module.scope != "host":
        _fail(
            node.location,
            f"{key_path}.{key}",
            f"{key} applies to host modules, not to {module.name}",
        )
    return _when(node, f"{key_path}.{key}")


def _register(node: Node | None, key_path: str) -> str | None:
    if node is None or node.value is None:
        return None
    name = _text(node, key_path, "a variable name")
    if not _VARIABLE.match(name):
        _fail(
            node.location,
            key_path,
            f"expected a variable name (letters, digits and _), found {name!r}",
        )
    return name


def _tags(node: Node | None, key_path: str) -> frozenset[str]:
    if node is None or node.value is None:
        return frozenset()
    items = node.sequence()
    return frozenset(
        _text(item, key_path, "a tag name")
        for item in ([node] if items is None else items)
    )

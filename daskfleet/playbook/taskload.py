"""Reading one task: its module, the module's arguments, and its keywords."""

from __future__ import annotations

from typing import Any

from daskfleet.errors import Location
from daskfleet.inventory.validate import did_you_mean
from daskfleet.inventory.yamlpos import Node
from daskfleet.playbook import templating
from daskfleet.playbook.model import Task
from daskfleet.playbook.module import Module, registered_modules
from daskfleet.playbook.nodes import (
    VARIABLE_NAME,
    check_templates,
    conditions,
    expect_mapping,
    expect_text,
    fail,
    flag,
    kind_of,
    optional_text,
    plain,
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


def load_task(node: Node, key_path: str) -> Task:
    entries = expect_mapping(node, key_path, "a task (a mapping naming one module)")
    known = registered_modules()
    found = [(k, loc) for k, loc, _ in node.entries() if k not in TASK_KEYS]
    for key, location in found:
        if key not in known:
            fail(
                location,
                f"{key_path}.{key}",
                f"unknown module {key!r}; expected one of: {', '.join(sorted(known))}",
                did_you_mean(key, [*known, *TASK_KEYS]),
            )
    if len(found) != 1:
        what = "none" if not found else ", ".join(k for k, _ in found)
        fail(
            node.location,
            key_path,
            f"expected exactly one module per task, found {what}",
        )
    name, _ = found[0]
    module = known[name]
    args, locations = _module_args(module, entries[name], f"{key_path}.{name}")
    return Task(
        name=optional_text(entries.get("name"), f"{key_path}.name") or name,
        module=name,
        args=args,
        location=node.location,
        arg_locations=locations,
        when=conditions(entries.get("when"), f"{key_path}.when"),
        changed_when=_result_condition(entries, "changed_when", module, key_path),
        failed_when=_result_condition(entries, "failed_when", module, key_path),
        register=_register(entries.get("register"), f"{key_path}.register"),
        tags=_tags(entries.get("tags"), f"{key_path}.tags"),
        ignore_errors=flag(entries.get("ignore_errors"), f"{key_path}.ignore_errors"),
        run_once=flag(entries.get("run_once"), f"{key_path}.run_once"),
    )


def _module_args(
    module: type[Module], node: Node, key_path: str
) -> tuple[dict[str, Any], dict[str, Location]]:
    entries = node.mapping()
    if entries is None and node.value is not None:
        if module.free_form is None:
            fail(
                node.location,
                key_path,
                f"expected the arguments of {module.name} as a mapping, found {kind_of(node)}",
            )
        entries = {module.free_form: node}
    entries = entries or {}
    names = tuple(a.name for a in module.args)
    args: dict[str, Any] = {}
    for key, value in entries.items():
        where = node.key_locations.get(key, value.location)
        arg = module.arg_named(key)
        if arg is None:
            fail(
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
            fail(
                node.location,
                key_path,
                f"{module.name} needs the argument {arg.name!r}",
            )
    if not templating.contains_template(args):
        try:
            module.check_args(args)
        except ValueError as exc:
            fail(node.location, key_path, str(exc))
    locations = {k: v.location for k, v in entries.items()}
    return args, locations


def _arg_value(kind: str, node: Node, key_path: str, coerce: Any) -> Any:
    value = plain(node)
    if kind == "mode" and isinstance(value, int) and node.text:
        value = node.text  # YAML reads 0644 as the number 420
    check_templates(value, node.location, key_path)
    if templating.contains_template(value):
        return value
    try:
        return coerce(value)
    except ValueError as exc:
        fail(node.location, key_path, f"expected {exc}, found {kind_of(node)}")


def _expressions(node: Node, key_path: str, coerce: Any) -> Any:
    try:
        conditions = coerce(plain(node))
    except ValueError as exc:
        fail(node.location, key_path, f"expected {exc}, found {kind_of(node)}")
    for condition in conditions:
        check_templates(condition, node.location, key_path, expression=True)
    return conditions


def _result_condition(
    entries: dict[str, Node], key: str, module: type[Module], key_path: str
) -> tuple[str, ...] | None:
    node = entries.get(key)
    if node is None:
        return None
    if module.scope != "host":
        fail(
            node.location,
            f"{key_path}.{key}",
            f"{key} applies to host modules, not to {module.name}",
        )
    return conditions(node, f"{key_path}.{key}")


def _register(node: Node | None, key_path: str) -> str | None:
    if node is None or node.value is None:
        return None
    name = expect_text(node, key_path, "a variable name")
    if not VARIABLE_NAME.match(name):
        fail(
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
        expect_text(item, key_path, "a tag name")
        for item in ([node] if items is None else items)
    )

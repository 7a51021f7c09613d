"""Reading a playbook's YAML nodes: values, their kinds, and errors that name
the file, line and key path."""

from __future__ import annotations

import re
from typing import Any, NoReturn

import jinja2

from daskfleet.errors import Location, PlaybookError
from daskfleet.inventory.validate import did_you_mean
from daskfleet.inventory.yamlpos import Node, Tagged
from daskfleet.playbook import templating

#: Variable names (``register:``, ``vars:``).
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPRESSION_HINT = "conditions are expressions: write them without {{ }} inside"


def fail(
    location: Location, key_path: str, message: str, hint: str | None = None
) -> NoReturn:
    raise PlaybookError(
        message, location=location, key_path=key_path or None, hint=hint
    )


def kind_of(node: Node) -> str:
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
        fail(
            node.location,
            "",
            f"YAML tags such as {node.value.tag} are not supported in playbooks",
        )
    return node.value


def expect_mapping(node: Node, key_path: str, what: str) -> dict[str, Node]:
    entries = node.mapping()
    if entries is None:
        fail(node.location, key_path, f"expected {what}, found {kind_of(node)}")
    return entries


def unknown_key(
    key: str, location: Location, key_path: str, known: tuple[str, ...]
) -> NoReturn:
    fail(
        location,
        key_path,
        f"unknown key {key!r}; expected one of: {', '.join(known)}",
        did_you_mean(key, known),
    )


def expect_text(node: Node, key_path: str, expected: str) -> str:
    if not isinstance(node.value, str) or not node.value.strip():
        fail(node.location, key_path, f"expected {expected}, found {kind_of(node)}")
    return node.value


def optional_text(node: Node | None, key_path: str) -> str | None:
    if node is None or node.value is None:
        return None
    if isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return str(node.value)
    return expect_text(node, key_path, "text")


def flag(node: Node | None, key_path: str) -> bool:
    if node is None or node.value is None:
        return False
    if not isinstance(node.value, bool):
        fail(node.location, key_path, f"expected true or false, found {kind_of(node)}")
    return node.value


def check_templates(
    value: Any, location: Location, key_path: str, *, expression: bool = False
) -> None:
    try:
        templating.names_used(value, expression=expression)
    except jinja2.TemplateSyntaxError as exc:
        fail(
            location,
            key_path,
            f"template error: {exc.message}",
            _EXPRESSION_HINT
            if expression and "{{" in str(value)
            else "check the {{ }} and {% %} pairs and the expression inside",
        )


def conditions(node: Node | None, key_path: str) -> tuple[str, ...]:
    if node is None or node.value is None:
        return ()
    items = node.sequence()
    conditions = []
    for item in [node] if items is None else items:
        if isinstance(item.value, bool):
            conditions.append(str(item.value))
            continue
        text = expect_text(
            item, key_path, "a condition such as inventory_hostname != 'node1'"
        )
        check_templates(text, item.location, key_path, expression=True)
        conditions.append(text)
    return tuple(conditions)

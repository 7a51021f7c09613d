"""``{{ }}`` templates in task arguments, ``when`` and ``assert``.

Jinja2's sandbox renders them (templates may come from anyone who can edit
a playbook) with strict undefined variables: a misspelt name is an error,
never an empty string. A string that is exactly one ``{{ expression }}``
keeps the expression's type, so ``"{{ workers_count }}"`` stays a number.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from daskfleet.errors import Location, PlaybookError

_ENV = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)
_ENV.filters["quote"] = shlex.quote
_WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)

#: Names Jinja2 itself provides in every template.
BUILTIN_NAMES = frozenset(_ENV.globals)


def is_template(value: object) -> bool:
    """Whether ``value`` is a string with ``{{ }}`` or ``{% %}`` in it."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def contains_template(value: object) -> bool:
    """Whether ``value`` or anything inside it is a template."""
    if isinstance(value, Mapping):
        return any(contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    return is_template(value)


def render(value: Any, variables: Mapping[str, Any], location: Location) -> Any:
    """``value`` with every template in it rendered, recursively."""
    if isinstance(value, Mapping):
        return {k: render(v, variables, location) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables, location) for v in value]
    if not is_template(value):
        return value
    whole = _WHOLE.match(value)
    try:
        if whole and "{{" not in whole["expr"]:
            return _expression(whole["expr"], variables)
        return _ENV.from_string(value).render(variables)
    except jinja2.TemplateError as exc:
        raise _error(exc, value, location) from None


def evaluate(expression: str, variables: Mapping[str, Any], location: Location) -> bool:
    """The truth of a ``when`` or ``assert`` expression (braces optional)."""
    whole = _WHOLE.match(expression)
    source = whole["expr"] if whole else expression
    try:
        return bool(_expression(source, variables))
    except jinja2.TemplateError as exc:
        raise _error(exc, expression, location) from None


def names_used(value: Any, *, expression: bool = False) -> set[str]:
    """Variable names ``value``'s templates read; a syntax error raises.

    Raises :class:`jinja2.TemplateSyntaxError`; the loader names the place.
    """
    if isinstance(value, Mapping):
        return set().union(*(names_used(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(names_used(v) for v in value))
    if expression and isinstance(value, str) and not _WHOLE.match(value):
        value = "{{ " + value + " }}"
    if not is_template(value):
        return set()
    return set(meta.find_undeclared_variables(_ENV.parse(value)))


def _expression(source: str, variables: Mapping[str, Any]) -> Any:
    result = _ENV.compile_expression(source.strip(), undefined_to_none=False)(
        **variables
    )
    if isinstance(result, jinja2.Undefined):
        str(result)  # raises UndefinedError with the missing name
    return result


def _error(exc: jinja2.TemplateError, source: str, location: Location) -> PlaybookError:
    kind = (
        "undefined variable"
        if isinstance(exc, jinja2.UndefinedError)
        else "template error"
    )
    return PlaybookError(
        f"{kind} in {source!r}: {exc.message or exc}",
        location=location,
        hint="define the variable (inventory, vars:, --extra-vars or register:) or use `| default(...)`",
    )

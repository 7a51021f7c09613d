"""Values of ``env`` that come from the controller's environment or files.

Three forms, each read when the inventory is loaded, on the controller:

- ``TOKEN: {from_env: NAME}``: the whole value of ``$NAME``;
- ``TOKEN: {from_file: path}``: a file's text, one trailing newline
  removed; a relative path is taken from the inventory's directory;
- ``URL: "https://${USER_NAME}:${PASSWORD}@host"``: ``${NAME}`` replaced
  inside text; ``$$`` writes a literal ``$``; a ``$`` not followed by ``{``
  or ``$`` stays as written.

Every value read this way is a secret: it is registered with
:mod:`daskfleet.masking` so no log line or ``--json`` output shows it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from daskfleet.errors import InventoryError
from daskfleet.inventory.yamlpos import Node
from daskfleet.masking import register_secret

_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SOURCES = ("from_env", "from_file")
_EXPECTED = "text or a number, or {from_env: NAME} or {from_file: path}"


def env_value(node: Node, key_path: str, base_dir: Path) -> str:
    """The value of one ``env`` entry, secrets read and registered."""
    entries = node.mapping()
    if entries is not None:
        return _from_source(node, entries, key_path, base_dir)
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        from daskfleet.inventory.validate import fail  # it imports this module

        fail(node, key_path, _EXPECTED, 'quote the value: "yes"')
    if not isinstance(value, str):
        return str(node.text)
    return _checked(node, key_path, _interpolate(node, key_path, value))


def _from_source(
    node: Node, entries: dict[str, Node], key_path: str, base_dir: Path
) -> str:
    if len(entries) != 1 or next(iter(entries)) not in SOURCES:
        found = ", ".join(sorted(entries)) or "an empty mapping"
        raise _error(
            node, key_path, f"{{from_env: NAME}} or {{from_file: path}}, found {found}"
        )
    source, inner = next(iter(entries.items()))
    path = f"{key_path}.{source}"
    reference = inner.value
    if not isinstance(reference, str) or not reference.strip():
        raise _error(
            inner, path, "a variable name" if source == "from_env" else "a file path"
        )
    if source == "from_env":
        value = _environ(inner, path, reference.strip())
    else:
        value = _read_file(inner, path, base_dir, reference.strip())
    register_secret(value)
    return _checked(inner, path, value)


def _interpolate(node: Node, key_path: str, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        value = _environ(node, key_path, match.group(1))
        register_secret(value)
        return value

    return _REFERENCE.sub(replace, text)


def _environ(node: Node, key_path: str, name: str) -> str:
    if not _ENV_NAME.match(name):
        raise _error(
            node,
            key_path,
            f"an environment variable name inside ${{}}, found {name!r}",
            "names are letters, digits and _; write $$ for a literal $",
        )
    value = os.environ.get(name)
    if value is None:
        raise _error(
            node,
            key_path,
            f"the environment variable {name} to be set on the controller, but it is not",
            f"export {name}=... before running daskfleet",
        )
    return value


def _read_file(node: Node, key_path: str, base_dir: Path, name: str) -> str:
    path = (base_dir / Path(name).expanduser()).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _error(
            node,
            key_path,
            f"a readable UTF-8 file, but {path} cannot be read: {reason}",
            "check the path (relative paths start at the inventory's directory)",
        ) from None
    return text.removesuffix("\n").removesuffix("\r")


def _checked(node: Node, key_path: str, value: str) -> str:
    if "\0" in value:
        raise _error(node, key_path, "a value without NUL characters")
    return value


def _error(
    node: Node, key_path: str, expected: str, hint: str | None = None
) -> InventoryError:
    return InventoryError(
        f"expected {expected}",
        location=node.location,
        key_path=key_path,
        hint=hint,
    )

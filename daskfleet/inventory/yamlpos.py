"""YAML that remembers where every value was written.

The inventory is read with ``yaml.compose`` and turned into :class:`Node`
objects, each holding its Python value and its place in the file, so that
every later error can name the file, line and column. Duplicate keys, which
plain PyYAML silently overwrites, are refused here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor

from daskfleet.errors import InventoryError, Location

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Tagged:
    """A scalar with a tag YAML does not define, such as Ansible's ``!vault``."""

    tag: str
    text: str


@dataclass(frozen=True, eq=False)
class Node:
    """One YAML value and where it starts.

    ``value`` is a plain scalar (str, int, float, bool, None, date, …), a
    :class:`Tagged`, a ``list[Node]`` or a ``dict[str, Node]``. Mapping keys
    are kept as written. ``text`` is the source text of a scalar.
    """

    value: object
    location: Location
    text: str | None = None
    key_locations: Mapping[str, Location] = field(default_factory=dict)

    def mapping(self) -> dict[str, Node] | None:
        """The entries if this is a mapping, else None."""
        return self.value if isinstance(self.value, dict) else None

    def sequence(self) -> list[Node] | None:
        """The items if this is a list, else None."""
        return self.value if isinstance(self.value, list) else None

    def entries(self) -> Iterator[tuple[str, Location, Node]]:
        """Key, key location and value of each mapping entry, in file order."""
        for key, value in (self.mapping() or {}).items():
            yield key, self.key_locations.get(key, value.location), value


def load_yaml_file(path: Path) -> Node:
    """Read and parse ``path``; every failure is an :class:`InventoryError`."""
    text = _read_text(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, str(path)) from None
    except yaml.YAMLError as exc:
        raise InventoryError(
            f"invalid YAML: {exc}", location=Location(str(path))
        ) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        raise InventoryError(
            "the file is empty: expected an inventory with a cluster and hosts",
            location=Location(str(path), 1, 1),
            hint="see docs/inventory.md or inventories/prod.yml for an example",
        )
    return _Converter(str(path)).convert(root, "")


def _read_text(path: Path) -> str:
    where = Location(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InventoryError(
            "no such file", location=where, hint="check the inventory path"
        ) from None
    except IsADirectoryError:
        raise InventoryError(
            "expected an inventory file, found a directory",
            location=where,
            hint="name the YAML file inside it, e.g. inventories/prod.yml",
        ) from None
    except PermissionError:
        raise InventoryError(
            "permission denied while reading the file",
            location=where,
            hint=f"make it readable for this user: chmod u+r {path}",
        ) from None
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
        raise InventoryError(message, location=where) from None
    return _decode(data, str(path))


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InventoryError(
            f"expected UTF-8 text, found the byte {data[exc.start]:#04x}",
            location=Location(path, line, column),
            hint="save the inventory as UTF-8",
        ) from None


def _syntax_error(exc: yaml.MarkedYAMLError, path: str) -> InventoryError:
    mark = exc.problem_mark or exc.context_mark
    location = _location(path, mark) if mark else Location(path)
    problem = exc.problem or "cannot parse"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.context_mark:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    hint = "check the indentation, colons and quotes on this line and the one above"
    if "'\\t'" in problem:
        hint = "YAML does not allow tabs for indentation; use spaces"
    return InventoryError(message, location=location, hint=hint)


def _location(path: str, mark: yaml.Mark) -> Location:
    return Location(path, mark.line + 1, mark.column + 1)


def _join(key_path: str, key: str) -> str:
    return f"{key_path}.{key}" if key_path else key


class _Converter:
    """Turns composed YAML nodes into :class:`Node` trees."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.constructor = SafeConstructor()
        # Aliases share one composed node; converting it once keeps
        # "billion laughs" documents cheap and catches recursive aliases.
        self.done: dict[int, Node] = {}
        self.active: set[int] = set()

    def convert(self, node: yaml.Node, key_path: str) -> Node:
        known = self.done.get(id(node))
        if known is not None:
            return known
        if id(node) in self.active:
            raise self._error(node, key_path, "an alias refers to its own parent")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                result = self._mapping(node, key_path)
            elif isinstance(node, yaml.SequenceNode):
                items = [
                    self.convert(item, f"{key_path}[{index}]")
                    for index, item in enumerate(node.value)
                ]
                result = Node(items, self._where(node))
            else:
                result = self._scalar(node, key_path)
        finally:
            self.active.discard(id(node))
        self.done[id(node)] = result
        return result

    def _mapping(self, node: yaml.MappingNode, key_path: str) -> Node:
        entries: dict[str, Node] = {}
        key_locations: dict[str, Location] = {}
        merged: list[tuple[str, Location, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_source(value_node, key_path))
                continue
            key = self._key(key_node, key_path)
            if key in entries:
                first = key_locations[key]
                raise self._error(
                    key_node,
                    _join(key_path, key),
                    f"duplicate key {key!r} (first written at line {first.line})",
                    hint="each key may appear once; merge the two entries",
                )
            key_locations[key] = self._where(key_node)
            entries[key] = self.convert(value_node, _join(key_path, key))
        for key, location, value in merged:
            if key not in entries:
                entries[key], key_locations[key] = value, location
        return Node(entries, self._where(node), key_locations=key_locations)

    def _merge_source(
        self, node: yaml.Node, key_path: str
    ) -> Iterator[tuple[str, Location, Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise self._error(
                    source, key_path, "`<<` must merge a mapping or a list of them"
                )
            yield from self.convert(source, key_path).entries()

    def _key(self, node: yaml.Node, key_path: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            raise self._error(
                node, key_path, f"expected a plain name as key, found a {kind}"
            )
        return str(node.value)

    def _scalar(self, node: yaml.Node, key_path: str) -> Node:
        text = str(node.value)
        if node.tag not in SafeConstructor.yaml_constructors:
            return Node(Tagged(node.tag, text), self._where(node), text=text)
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise self._error(node, key_path, f"invalid value: {problem}") from None
        return Node(value, self._where(node), text=text)

    def _where(self, node: yaml.Node) -> Location:
        return _location(self.path, node.start_mark)

    def _error(
        self, node: yaml.Node, key_path: str, message: str, hint: str | None = None
    ) -> InventoryError:
        return InventoryError(
            message,
            location=self._where(node),
            key_path=key_path or None,
            hint=hint,
        )

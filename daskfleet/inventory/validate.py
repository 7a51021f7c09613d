"""The variable schema: every inventory variable, its type and its checks.

:data:`HOST_VARIABLES` and :data:`CLUSTER_SETTINGS` map each name to the
function that checks and converts its value; adding a variable is one line
there (and a field on the model). A parser receives the YAML node, the key
path for messages and a :class:`Context`; it returns the converted value or
raises :class:`InventoryError` through :func:`fail`.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, cast

from daskfleet.errors import InventoryError, Location
from daskfleet.inventory.model import (
    DEFAULT_NOTEBOOK_PORT,
    GPU_WORKERS,
    IMAGE_DISTRIBUTIONS,
    IMAGE_KINDS,
    ROLES,
    SECURITY_MODES,
    ImageDistribution,
    ImageKind,
    ImageSettings,
    NotebookSettings,
    Volume,
)
from daskfleet.inventory.secretvalues import env_value
from daskfleet.inventory.yamlpos import Node, Tagged
from daskfleet.sizes import parse_size
from daskfleet.upgrade.settings import Amount, UpgradeSettings

#: Host, group and cluster names become parts of container names.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_RESOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_GPU_UUID = re.compile(r"^(GPU|MIG)-[A-Za-z0-9/-]+$")


@dataclass(frozen=True)
class Context:
    """What parsers need beyond the value: the inventory's directory."""

    base_dir: Path


Parser = Callable[[Node, str, Context], object]


def fail(node: Node, key_path: str, expected: str, hint: str | None = None) -> NoReturn:
    """Raise the error for ``node`` not being ``expected``."""
    raise InventoryError(
        f"expected {expected}, found {describe(node)}",
        location=node.location,
        key_path=key_path or None,
        hint=hint or _default_hint(node),
    )


def describe(node: Node) -> str:
    """A short phrase for what the user wrote, e.g. ``the string "abc"``."""
    value = node.value
    if value is None:
        return "nothing (an empty value)" if not node.text else f"null ({node.text})"
    if isinstance(value, bool):
        return f"the boolean {node.text}"
    if isinstance(value, (int, float)):
        return f"the number {node.text}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'the string "{shown}"'
    if isinstance(value, Tagged):
        return f"a value tagged {value.tag}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the {type(value).__name__} {node.text}"


def _default_hint(node: Node) -> str | None:
    value = node.value
    if isinstance(value, bool):
        return f"YAML reads {node.text} as true/false; write the value you mean"
    if value is None:
        return "write a value after the colon, or remove the key"
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return f"write the number without quotes: {value.strip()}"
    return None


def did_you_mean(word: str, choices: Collection[str]) -> str | None:
    """``did you mean 'cpus'?`` for the closest choice, or None."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def unknown_name_error(
    name: str,
    location: Location,
    key_path: str,
    choices: Collection[str],
    what: str = "key",
) -> InventoryError:
    """The error for a name that is not one of ``choices``."""
    known = ", ".join(sorted(choices))
    return InventoryError(
        f"unknown {what} {name!r}; expected one of: {known}",
        location=location,
        key_path=key_path,
        hint=did_you_mean(name, choices),
    )


def check_keys(
    node: Node, key_path: str, allowed: Collection[str], what: str = "key"
) -> None:
    """Refuse the first key of mapping ``node`` that is not ``allowed``."""
    for key, location, _ in node.entries():
        if key not in allowed:
            path = f"{key_path}.{key}" if key_path else key
            raise unknown_name_error(key, location, path, allowed, what)


def expect_mapping(node: Node, key_path: str, expected: str) -> dict[str, Node]:
    """The entries of ``node``, or the error that it is not a mapping."""
    entries = node.mapping()
    if entries is None:
        fail(node, key_path, expected)
    return entries


def check_name(name: str, location: Location, key_path: str, what: str) -> None:
    """Refuse a host, group or cluster name Docker cannot use."""
    if SAFE_NAME.match(name):
        return
    hint = "start with a letter or digit; the name becomes part of container names"
    if "[" in name:
        hint = "host ranges such as node[01:10] are not supported; list each host"
    raise InventoryError(
        f"expected a {what} of letters, digits, '.', '-', '_', found {name!r}",
        location=location,
        key_path=key_path,
        hint=hint,
    )


# Scalars ------------------------------------------------------------------


def _text(node: Node, key_path: str, expected: str) -> str:
    value = node.value
    if not isinstance(value, str) or not value.strip():
        fail(node, key_path, expected)
    return value.strip()


def _whole(
    node: Node, key_path: str, low: int, high: int | None = None, what: str = ""
) -> int:
    value = node.value
    expected = what or f"a whole number of at least {low}"
    if isinstance(value, bool) or not isinstance(value, int):
        fail(node, key_path, expected)
    if value < low or (high is not None and value > high):
        fail(node, key_path, expected)
    return value


def _positive_number(node: Node, key_path: str) -> float:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(node, key_path, "a number greater than 0")
    if not math.isfinite(value) or value <= 0:
        fail(node, key_path, "a number greater than 0")
    return value


def parse_port(node: Node, key_path: str, ctx: Context) -> int:
    return _whole(node, key_path, 1, 65535, "a port number from 1 to 65535")


def parse_count(node: Node, key_path: str, ctx: Context) -> int:
    return _whole(node, key_path, 1)


def parse_number(node: Node, key_path: str, ctx: Context) -> float:
    return _positive_number(node, key_path)


def parse_address(node: Node, key_path: str, ctx: Context) -> str:
    address = _text(node, key_path, "a host name or IP address")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not _HOSTNAME.match(address):
            fail(node, key_path, "a host name or IP address")
    return address


def parse_user(node: Node, key_path: str, ctx: Context) -> str:
    user = _text(node, key_path, "a user name")
    if any(c.isspace() or c in "@:/" for c in user):
        fail(node, key_path, "a user name without spaces, '@', ':' or '/'")
    return user


def parse_path(node: Node, key_path: str, ctx: Context) -> str:
    """A local file path; ``~`` expands, relative paths follow the inventory."""
    raw = os.path.expanduser(_text(node, key_path, "a file path"))
    return raw if os.path.isabs(raw) else str(ctx.base_dir / raw)


def parse_memory(node: Node, key_path: str, ctx: Context) -> int:
    expected = "a size with a unit such as 512MiB, 4GB or 3.5GiB"
    value = node.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        fail(node, key_path, expected, f"add a unit: {node.text}GiB or {node.text}GB")
    text = _text(node, key_path, expected)
    try:
        size = parse_size(text)
    except ValueError as exc:
        fail(node, key_path, expected, str(exc))
    if size <= 0:
        fail(node, key_path, "a size greater than 0")
    return size


def parse_cluster_name(node: Node, key_path: str, ctx: Context) -> str:
    name = _text(node, key_path, "a cluster name")
    check_name(name, node.location, key_path, "cluster name")
    return name


def parse_security(node: Node, key_path: str, ctx: Context) -> str:
    value = node.value
    if value not in SECURITY_MODES:
        fail(
            node,
            key_path,
            "tls or none",
            hint="leave it out for tls; none turns encryption and client certificates off",
        )
    return str(value)


# Collections --------------------------------------------------------------


def parse_roles(node: Node, key_path: str, ctx: Context) -> tuple[str, ...]:
    expected = "a list of roles such as [scheduler], [worker] or [scheduler, worker]"
    items = node.sequence()
    if items is None:
        hint = f"write a list: roles: [{node.text}]" if node.text else None
        fail(node, key_path, expected, hint)
    if not items:
        fail(node, key_path, expected, "a host needs at least one role")
    roles: list[str] = []
    for index, item in enumerate(items):
        path = f"{key_path}[{index}]"
        role = item.value
        if role not in ROLES or not isinstance(role, str):
            hint = did_you_mean(str(role), ROLES)
            fail(item, path, "a role: scheduler or worker", hint)
        if role in roles:
            fail(item, path, "each role once")
        roles.append(role)
    return tuple(roles)


def parse_gpus(node: Node, key_path: str, ctx: Context) -> object:
    expected = "all, a count of GPUs, or a list of GPU indices or UUIDs"
    value = node.value
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool):
        return _whole(node, key_path, 1)
    items = node.sequence()
    if items is None:
        hint = None
        if isinstance(value, str) and "," in value:
            hint = f"write a list: gpus: [{value}]"
        fail(node, key_path, expected, hint)
    if not items:
        fail(node, key_path, expected, "leave gpus out for a host without GPUs")
    return tuple(
        _gpu_item(item, f"{key_path}[{i}]", items[:i]) for i, item in enumerate(items)
    )


def _gpu_item(node: Node, key_path: str, before: list[Node]) -> int | str:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        gpu: int | str = _whole(node, key_path, 0)
    elif isinstance(value, str) and _GPU_UUID.match(value):
        gpu = value
    else:
        fail(node, key_path, "a GPU index (0, 1, …) or UUID (GPU-…, MIG-…)")
    if gpu in [b.value for b in before]:
        fail(node, key_path, "each GPU once")
    return gpu


def parse_gpu_worker(node: Node, key_path: str, ctx: Context) -> str:
    return _choice(node, key_path, GPU_WORKERS)


def _choice(node: Node, key_path: str, choices: tuple[str, ...]) -> str:
    value = node.value
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(str(value), choices)
        fail(node, key_path, f"one of: {', '.join(choices)}", hint)
    return value


def parse_volumes(node: Node, key_path: str, ctx: Context) -> tuple[Volume, ...]:
    items = node.sequence()
    if items is None:
        fail(node, key_path, "a list of host_path:container_path[:ro] entries")
    volumes: list[Volume] = []
    for index, item in enumerate(items):
        volume = _volume(item, f"{key_path}[{index}]")
        if any(v.container_path == volume.container_path for v in volumes):
            fail(item, f"{key_path}[{index}]", "each container path once")
        volumes.append(volume)
    return tuple(volumes)


def _volume(node: Node, key_path: str) -> Volume:
    expected = (
        "host_path:container_path or host_path:container_path:ro with absolute paths"
    )
    value = node.value
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) not in (2, 3) or not all(p.startswith("/") for p in parts[:2]):
        fail(node, key_path, expected, "example: /data:/data:ro")
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        fail(node, key_path, expected, "the mode after the second ':' is ro or rw")
    return Volume(parts[0], parts[1], read_only=parts[2:] == ["ro"])


def _string_map(
    node: Node, key_path: str, name_re: re.Pattern[str], what: str
) -> dict[str, str]:
    expect_mapping(node, key_path, f"a mapping of {what} names to values")
    result: dict[str, str] = {}
    for key, location, value in node.entries():
        path = f"{key_path}.{key}"
        if not name_re.match(key):
            raise InventoryError(
                f"expected a {what} name, found {key!r}",
                location=location,
                key_path=path,
            )
        ok = isinstance(value.value, (str, int, float)) and value.text is not None
        if isinstance(value.value, bool) or not ok:
            fail(value, path, "text or a number", 'quote the value: "yes"')
        result[key] = (
            str(value.value) if isinstance(value.value, str) else str(value.text)
        )
    return result


def parse_env(node: Node, key_path: str, ctx: Context) -> dict[str, str]:
    """Names to values; a value may come from the environment or a file."""
    expect_mapping(node, key_path, "a mapping of environment variable names to values")
    result: dict[str, str] = {}
    for key, location, value in node.entries():
        path = f"{key_path}.{key}"
        if not _ENV_NAME.match(key):
            raise InventoryError(
                f"expected an environment variable name, found {key!r}",
                location=location,
                key_path=path,
            )
        result[key] = env_value(value, path, ctx.base_dir)
    return result


def parse_labels(node: Node, key_path: str, ctx: Context) -> dict[str, str]:
    return _string_map(node, key_path, _LABEL_NAME, "label")


def parse_resources(node: Node, key_path: str, ctx: Context) -> dict[str, float]:
    expect_mapping(node, key_path, "a mapping of resource names to amounts")
    result: dict[str, float] = {}
    for key, location, value in node.entries():
        path = f"{key_path}.{key}"
        if not _RESOURCE_NAME.match(key):
            raise InventoryError(
                f"expected a resource name, found {key!r}",
                location=location,
                key_path=path,
            )
        result[key] = _positive_number(value, path)
    return result


def parse_image(node: Node, key_path: str, ctx: Context) -> ImageSettings:
    entries = expect_mapping(
        node, key_path, "a mapping with packages, base, builder, kind, distribution"
    )
    check_keys(node, key_path, ("packages", "base", "builder", "kind", "distribution"))
    packages: list[str] = []
    if "packages" in entries:
        path = f"{key_path}.packages"
        items = entries["packages"].sequence()
        if items is None:
            fail(entries["packages"], path, "a list of pip requirements")
        for index, item in enumerate(items):
            packages.append(_text(item, f"{path}[{index}]", "a pip requirement"))
    base = None
    if "base" in entries:
        base = _text(entries["base"], f"{key_path}.base", "a base image name")
    builder = None
    if "builder" in entries:
        builder = _text(
            entries["builder"], f"{key_path}.builder", "a Docker URL like unix:///path"
        )
    kind = None
    if "kind" in entries:
        kind = _choice(entries["kind"], f"{key_path}.kind", IMAGE_KINDS)
    distribution = "auto"
    if "distribution" in entries:
        distribution = _choice(
            entries["distribution"], f"{key_path}.distribution", IMAGE_DISTRIBUTIONS
        )
    return ImageSettings(
        tuple(packages),
        base,
        builder,
        cast(ImageKind | None, kind),
        cast(ImageDistribution, distribution),
    )


def parse_upgrade(node: Node, key_path: str, ctx: Context) -> UpgradeSettings:
    """The ``upgrade:`` section: defaults for ``daskfleet upgrade``."""
    entries = expect_mapping(node, key_path, "a mapping of upgrade settings")
    check_keys(node, key_path, _UPGRADE_KEYS)
    values: dict[str, object] = {}
    for key in ("batch", "max_failed"):
        if key in entries:
            values[key] = _amount(entries[key], f"{key_path}.{key}")
    if "canary" in entries:
        values["canary"] = _whole(entries["canary"], f"{key_path}.canary", 0)
    for key in ("healthy_deadline", "min_healthy_time"):
        if key in entries:
            values[key] = _positive_number(entries[key], f"{key_path}.{key}")
    if "rollback" in entries:
        if not isinstance(entries["rollback"].value, bool):
            fail(entries["rollback"], f"{key_path}.rollback", "true or false")
        values["rollback"] = entries["rollback"].value
    return UpgradeSettings(**values)  # type: ignore[arg-type]


_UPGRADE_KEYS = (
    "batch",
    "canary",
    "healthy_deadline",
    "min_healthy_time",
    "max_failed",
    "rollback",
)


def _amount(node: Node, key_path: str) -> Amount:
    if isinstance(node.value, bool) or not isinstance(node.value, (int, str)):
        fail(node, key_path, "a count like 2 or a percentage like 25%")
    try:
        return Amount.parse(node.value)
    except ValueError:
        fail(node, key_path, "a count like 2 or a percentage from 0% to 100%")


def parse_notebook(node: Node, key_path: str, ctx: Context) -> NotebookSettings:
    entries = expect_mapping(node, key_path, "a mapping with host, port, packages")
    check_keys(node, key_path, ("host", "port", "packages"))
    if "host" not in entries:
        fail(node, key_path, "a mapping with host", "name the host that runs it")
    host = _text(entries["host"], f"{key_path}.host", "a host name")
    port = DEFAULT_NOTEBOOK_PORT
    if "port" in entries:
        port = parse_port(entries["port"], f"{key_path}.port", ctx)
    packages: tuple[str, ...] = ()
    if "packages" in entries:
        packages = _requirements(entries["packages"], f"{key_path}.packages")
    return NotebookSettings(host=host, port=port, packages=packages)


def _requirements(node: Node, key_path: str) -> tuple[str, ...]:
    items = node.sequence()
    if items is None:
        fail(node, key_path, "a list of pip requirements")
    return tuple(
        _text(item, f"{key_path}[{i}]", "a pip requirement")
        for i, item in enumerate(items)
    )


#: Host variables: name to parser. Valid per host, per group and in defaults.
HOST_VARIABLES: Mapping[str, Parser] = {
    "address": parse_address,
    "user": parse_user,
    "port": parse_port,
    "identity_file": parse_path,
    "known_hosts": parse_path,
    "roles": parse_roles,
    "cpus": parse_number,
    "memory": parse_memory,
    "gpus": parse_gpus,
    "gpu_worker": parse_gpu_worker,
    "rmm_pool_size": parse_memory,
    "device_memory_limit": parse_memory,
    "nworkers": parse_count,
    "nthreads": parse_count,
    "resources": parse_resources,
    "volumes": parse_volumes,
    "env": parse_env,
    "labels": parse_labels,
}

#: Host variables that only make sense on one host.
PER_HOST_VARIABLES = frozenset({"address"})

#: Cluster-wide settings: name to parser (top level of a native inventory).
CLUSTER_SETTINGS: Mapping[str, Parser] = {
    "cluster": parse_cluster_name,
    "scheduler_port": parse_port,
    "dashboard_port": parse_port,
    "timeout": parse_number,
    "image": parse_image,
    "upgrade": parse_upgrade,
    "notebook": parse_notebook,
    "security": parse_security,
}

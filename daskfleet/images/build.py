"""Build the cluster's Dask image once, on the controller's Docker daemon.

The tag is a hash of everything that goes into the build (Dockerfile,
versions, requirements, base image ID, wheel file names), so an unchanged
build is recognised before anything runs and a changed one gets a new tag.
Nothing reaches a host before a build has succeeded.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import logging
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import docker
import docker.errors
import requests

from daskfleet.errors import ImageError
from daskfleet.images.versions import Versions, controller_versions
from daskfleet.images.versions import dashboard_requirements as _dashboard
from daskfleet.images.wheelhouse import cache_root, ensure_wheelhouse, wheel_names

if TYPE_CHECKING:
    from daskfleet.inventory.model import Inventory

logger = logging.getLogger(__name__)

DEFAULT_DOCKERFILE = Path(__file__).resolve().parents[2] / "images" / "Dockerfile"
#: The GPU image's recipe: the same venv on a CUDA base (``image.kind: gpu``).
GPU_DOCKERFILE = DEFAULT_DOCKERFILE.with_name("Dockerfile.gpu")
DEFAULT_GPU_BASE = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
BUILD_LOG_TAIL = 25
SAVE_CHUNK = 1 << 20
#: Saved archives (hundreds of MB each) kept on the controller; older ones
#: go when a new one is saved. Deltas are cut from the newest alone.
ARCHIVES_KEPT = 3
#: The Dockerfile stage that builds the venv; tagged so it stays cached.
INSTALL_STAGE = "install"


@dataclass(frozen=True)
class BuildRequest:
    """What to build: the inventory's choices and the controller's versions."""

    cluster: str
    base: str
    packages: tuple[str, ...] = ()
    versions: Versions = field(default_factory=controller_versions)
    dockerfile: Path = DEFAULT_DOCKERFILE
    #: Docker daemon that builds (``unix://...``); None: the controller's.
    builder: str | None = None

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> BuildRequest:
        settings = inventory.image
        versions = controller_versions()
        gpu = inventory.image_kind == "gpu"
        base = settings.base or (DEFAULT_GPU_BASE if gpu else default_base(versions))
        return cls(
            inventory.cluster,
            base,
            settings.packages,
            versions,
            dockerfile=GPU_DOCKERFILE if gpu else DEFAULT_DOCKERFILE,
            builder=settings.builder,
        )

    def requirements(self) -> tuple[str, ...]:
        """Everything pip installs: pins, dashboard, the inventory's extras."""
        extras = tuple("".join(p.split()) for p in self.packages)
        return (*self.versions.pins(), *_dashboard(), *extras)


@dataclass(frozen=True)
class BuiltImage:
    """An image in the controller's daemon, ready to save and ship."""

    id: str
    tag: str
    architecture: str
    os: str
    size: int
    versions: Versions
    #: False when an image with this tag existed and nothing was built.
    built: bool
    seconds: float
    #: The image's labels (versions, and dask-cuda's in a GPU image).
    labels: Mapping[str, str] = field(default_factory=dict)


def default_base(versions: Versions) -> str:
    """The public base image for users who can pull from Docker Hub."""
    return f"python:{versions.python}-slim-bookworm"


def docker_client(base_url: str | None = None) -> Any:
    """A Docker SDK client: ``base_url``, or DOCKER_HOST and friends."""
    try:
        if base_url is None:
            return docker.from_env(version="auto")
        return docker.DockerClient(base_url=base_url, version="auto")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        where = base_url or "DOCKER_HOST (or the default socket)"
        raise ImageError(
            f"cannot reach the Docker daemon that builds images at {where}: {exc}",
            hint="start dockerd on the controller or set DOCKER_HOST",
        ) from exc


def image_tag(request: BuildRequest, base_id: str, wheels: tuple[str, ...]) -> str:
    """``daskfleet/<cluster>:<hash of the build's inputs>``."""
    inputs = {
        "dockerfile": request.dockerfile.read_text(),
        "versions": request.versions.labels(),
        "requirements": sorted(request.requirements()),
        "base": base_id,
        "wheels": list(wheels),
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return f"{image_repository(request.cluster)}:{digest[:16]}"


def image_repository(cluster: str) -> str:
    """``daskfleet/<cluster>``, the cluster's name made a valid repository."""
    repo = re.sub(r"[^a-z0-9._-]+", "-", cluster.lower()).strip("._-")
    return f"daskfleet/{repo or 'cluster'}"


def build_image(
    client: Any,
    request: BuildRequest,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
) -> BuiltImage:
    """Build the image unless its tag already exists; raise ImageError if not.

    ``force`` builds even then (Docker's layer cache still applies), for
    changes the tag cannot see, such as a base image updated in place.
    """
    started = time.monotonic()
    base_id = _base_image_id(client, request.base)
    wheelhouse = ensure_wheelhouse(
        request.requirements(),
        python=request.versions.python,
        cache_dir=cache_dir / "wheels" if cache_dir else None,
    )
    tag = image_tag(request, base_id, wheel_names(wheelhouse))

    existing = None if force else _get_image(client, tag)
    if existing is not None:
        logger.info("image %s is up to date, nothing to build", tag)
        return _built(existing, tag, request, built=False, started=started)

    logger.info("building image %s on %s", tag, request.base)
    with tempfile.TemporaryFile() as context:
        _write_context(context, request.dockerfile, wheelhouse)
        if _has_install_stage(request.dockerfile):
            # A tagged install stage survives `docker image prune`, so the
            # next build reuses its venv and the venv layer stays the same.
            context.seek(0)
            stage_tag = tag.replace(":", f"-{INSTALL_STAGE}:", 1)
            args = _build_args(request, wheelhouse)
            _run_build(client, context, stage_tag, args, target=INSTALL_STAGE)
        context.seek(0)
        _run_build(client, context, tag, _build_args(request, wheelhouse))
    image = _get_image(client, tag)
    if image is None:
        raise ImageError(f"the build reported success but image {tag} is missing")
    result = _built(image, tag, request, built=True, started=started)
    logger.debug("built %s (%s) in %.1f s", tag, result.id, result.seconds)
    return result


def save_image(
    client: Any, image: BuiltImage, *, cache_dir: Path | None = None
) -> Path:
    """``docker save`` of ``image`` to a file on the controller, once per ID."""
    folder = (cache_dir or cache_root()) / "archives"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{image.id.removeprefix('sha256:')}.tar"
    if target.exists():
        return target
    started = time.monotonic()
    partial = target.with_suffix(".partial")
    try:
        with partial.open("wb") as out:
            for chunk in client.api.get_image(image.tag, chunk_size=SAVE_CHUNK):
                out.write(chunk)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        partial.unlink(missing_ok=True)
        raise ImageError(f"saving image {image.tag} failed: {exc}") from exc
    partial.rename(target)
    logger.debug(
        "saved %s: %d bytes in %.1f s",
        image.tag,
        target.stat().st_size,
        time.monotonic() - started,
    )
    evict_archives(folder, keep=ARCHIVES_KEPT)
    return target


def evict_archives(folder: Path, *, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest saved archives and their payloads."""
    archives = sorted(folder.glob("*.tar"), key=lambda p: p.stat().st_mtime)
    stale = archives[:-keep] if keep else archives
    for archive in stale:
        archive.unlink(missing_ok=True)
        shutil.rmtree(archive.with_name(archive.stem + ".payloads"), ignore_errors=True)
    if stale:
        logger.debug("evicted %d old image archives from %s", len(stale), folder)
    return stale


def _base_image_id(client: Any, base: str) -> str:
    image = _get_image(client, base)
    if image is None:
        try:
            logger.info("pulling base image %s", base)
            image = client.images.pull(base)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise ImageError(
                f"base image {base} is not on the build daemon and cannot be pulled: {exc}",
                hint=f"docker pull {base} (or docker load it), or set image.base in the inventory",
            ) from exc
    return str(image.id)


def _get_image(client: Any, reference: str) -> Any | None:
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ImageError(
            f"the build daemon failed to inspect {reference}: {exc}"
        ) from exc


def _build_args(request: BuildRequest, wheelhouse: Path) -> dict[str, str]:
    versions = request.versions
    extras = request.requirements()[len(versions.pins()) :]
    args = {
        "BASE": request.base,
        "PYTHON": versions.python,
        "DASK": versions.dask,
        "DISTRIBUTED": versions.distributed,
        "CLOUDPICKLE": versions.cloudpickle,
        "MSGPACK": versions.msgpack,
        "PACKAGES": " ".join(extras),
    }
    if "ARG DASK_CUDA" in request.dockerfile.read_text():  # the GPU image
        args["DASK_CUDA"] = wheel_version(wheel_names(wheelhouse), "dask_cuda")
    return args


def wheel_version(wheels: tuple[str, ...], project: str) -> str:
    """The version of ``project`` among wheel file names; empty if absent."""
    prefix = f"{project}-"
    found = [
        w.removeprefix(prefix).split("-")[0] for w in wheels if w.startswith(prefix)
    ]
    return found[0] if found else ""


def _write_context(out: IO[bytes], dockerfile: Path, wheelhouse: Path) -> None:
    """A build context tar with fixed owners and times, so it hashes stably."""
    with tarfile.open(fileobj=out, mode="w") as context:
        _add_bytes(context, "Dockerfile", dockerfile.read_bytes())
        _add_dir(context, "wheelhouse")
        for name in wheel_names(wheelhouse):
            info = tarfile.TarInfo(f"wheelhouse/{name}")
            info.size = (wheelhouse / name).stat().st_size
            info.mode = 0o644
            with (wheelhouse / name).open("rb") as data:
                context.addfile(info, data)


def _add_bytes(context: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    context.addfile(info, io.BytesIO(data))


def _add_dir(context: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    context.addfile(info)


def _has_install_stage(dockerfile: Path) -> bool:
    pattern = rf"^FROM\s+\S+\s+AS\s+{INSTALL_STAGE}\s*$"
    return re.search(pattern, dockerfile.read_text(), re.I | re.M) is not None


def _run_build(
    client: Any,
    context: IO[bytes],
    tag: str,
    args: dict[str, str],
    target: str | None = None,
) -> None:
    tail: collections.deque[str] = collections.deque(maxlen=BUILD_LOG_TAIL)
    try:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            target=target,
            buildargs=args,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        # Read to the end even after an error: a stream left unread keeps
        # its connection to the daemon open.
        errors = [error for event in stream if (error := _follow(event, tail, tag))]
    except (docker.errors.DockerException, requests.RequestException) as exc:
        _fail(tag, str(exc), tail)
    if errors:
        _fail(tag, errors[0], tail)


def _follow(event: dict[str, Any], tail: collections.deque[str], tag: str) -> str:
    """Log one build event; its error message, or an empty string."""
    for line in str(event.get("stream", "")).splitlines():
        if line.strip():
            tail.append(line)
            logger.debug("build %s: %s", tag, line)
    return str(event.get("error", "")).strip()


def _fail(tag: str, error: str, tail: collections.deque[str]) -> None:
    log = "\n    ".join(tail)
    raise ImageError(
        f"building image {tag} failed: {error}\n  build log (last lines):\n    {log}",
        hint="fix the cause above; no host was changed",
    )


def _built(
    image: Any, tag: str, request: BuildRequest, *, built: bool, started: float
) -> BuiltImage:
    attrs = image.attrs
    return BuiltImage(
        id=str(image.id),
        tag=tag,
        architecture=str(attrs.get("Architecture", "")),
        os=str(attrs.get("Os", "")),
        size=int(attrs.get("Size", 0)),
        versions=request.versions,
        built=built,
        seconds=time.monotonic() - started,
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
    )

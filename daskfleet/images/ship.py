"""Send a saved image into a host's ``docker load`` over one SSH channel.

The image is saved once on the controller. Each host gets what it lacks: a
host with the image gets nothing (at most a tag), a host with some of its
layers gets a delta archive with those layers written empty, and the rest
get the full archive. Payloads are compressed with ``zstd`` when both ends
have it. A failed delta load is retried once with the full archive.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import paramiko

from daskfleet.errors import DockerError, ImageError, UnreachableError
from daskfleet.images.archive import (
    ArchiveIndex,
    ShipmentPlan,
    blank_paths,
    plan_shipment,
    read_index,
    write_delta,
)
from daskfleet.images.channel import (
    ChannelOpener,
    CommandOutput,
    Progress,
    run_with_input,
)
from daskfleet.images.hostimages import HostImages, probe_host_images

logger = logging.getLogger(__name__)

#: Payloads smaller than this go uncompressed: zstd would save nothing.
COMPRESS_MIN_BYTES = 1 << 20
ZSTD_LEVEL = 3
LOAD = "docker load"
ZSTD_LOAD = "zstd -dc | docker load"

Mode = Literal["none", "delta", "full"]


@dataclass(frozen=True)
class ShipResult:
    """What shipping the image to one host did."""

    host: str
    image_id: str
    mode: Mode
    bytes_sent: int
    layers_sent: int
    layers_skipped: int
    seconds: float
    compressed: bool = False
    #: A delta load failed and the full archive was sent after it.
    fell_back: bool = False


@dataclass(frozen=True)
class PayloadChoice:
    """The payload one host needs: which layers go empty, compressed or not."""

    plan: ShipmentPlan
    blank: frozenset[str]
    zstd: bool

    @property
    def key(self) -> str:
        """Equal for hosts that need byte-identical payloads."""
        digest = hashlib.sha256("\n".join(sorted(self.blank)).encode()).hexdigest()
        return f"{'delta-' + digest[:16] if self.blank else 'full'}{'.zst' if self.zstd else ''}"

    @property
    def load_command(self) -> str:
        return ZSTD_LOAD if self.zstd else LOAD


class ImageArchive:
    """A saved image on the controller and the payloads made from it.

    Delta and compressed payloads are written next to the archive once and
    shared by every host that needs the same one; safe across threads.
    """

    def __init__(self, path: Path, workdir: Path | None = None) -> None:
        self.path = path
        self.index: ArchiveIndex = read_index(path)
        self.workdir = workdir or path.with_name(path.stem + ".payloads")
        self._locks: dict[tuple[frozenset[str], bool], threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def tag(self) -> str | None:
        return self.index.repo_tags[0] if self.index.repo_tags else None

    def plan_for(self, host: HostImages) -> ShipmentPlan:
        present = host.has_image(self.index.image_id)
        return plan_shipment(self.index.layers, host.chain_ids, image_present=present)

    def choose(self, host: HostImages, compress: bool | None = None) -> PayloadChoice:
        """What to send ``host``; ``compress`` None: zstd when it pays."""
        plan = self.plan_for(host)
        zstd = _use_zstd(compress, host, plan.bytes_estimate)
        return PayloadChoice(plan, blank_paths(plan), zstd)

    @property
    def reference(self) -> str:
        """The tag a load creates, or the image ID when there is none."""
        return self.tag or self.index.image_id

    def verify_command(self) -> str:
        """Prints the ID of the image :attr:`reference` names on a host."""
        quoted = shlex.quote(self.reference)
        return f"docker image inspect --format '{{{{.Id}}}}' {quoted}"

    def payload(self, blank: frozenset[str], compress: bool) -> Path:
        """The archive with ``blank`` members emptied, optionally zstd'ed."""
        if not blank and not compress:
            return self.path
        with self._guard:
            lock = self._locks.setdefault((blank, compress), threading.Lock())
        with lock:
            try:
                return self._make_payload(blank, compress)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise ImageError(f"preparing the image archive failed: {exc}") from exc

    def _make_payload(self, blank: frozenset[str], compress: bool) -> Path:
        key = hashlib.sha256("\n".join(sorted(blank)).encode()).hexdigest()[:16]
        plain = self.workdir / f"delta-{key}.tar" if blank else self.path
        target = self.workdir / f"{plain.name}.zst" if compress else plain
        if target.exists():
            return target
        self.workdir.mkdir(parents=True, exist_ok=True)
        if blank and not plain.exists():
            _atomic_delta(self.path, plain, blank)
        if compress:
            _atomic_zstd(plain, target)
        return target

    def remove_payloads(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def ship_image(
    open_channel: ChannelOpener,
    host: str,
    archive: ImageArchive,
    present: HostImages | None = None,
    *,
    progress: Progress | None = None,
    compress: bool | None = None,
) -> ShipResult:
    """Make ``host``'s Docker hold the archive's image, sending what it lacks.

    ``present`` is what the host holds (probed when not given). ``progress``
    is called with the byte count of every chunk sent. ``compress``: None
    compresses when it pays and both ends have zstd.
    """
    started = time.monotonic()
    try:
        if present is None:
            present = probe_host_images(open_channel, host)
        plan = archive.plan_for(present)
        if plan.image_present:
            _ensure_tag(open_channel, host, archive, present)
            return _result(host, archive, plan, 0, started)
        return _load(
            open_channel, host, archive, present, plan, progress, compress, started
        )
    except (paramiko.SSHException, EOFError, ConnectionError, TimeoutError) as exc:
        raise UnreachableError(
            host, f"SSH channel failed while shipping the image: {exc}"
        ) from exc


def _load(
    open_channel: ChannelOpener,
    host: str,
    archive: ImageArchive,
    present: HostImages,
    plan: ShipmentPlan,
    progress: Progress | None,
    compress: bool | None,
    started: float,
) -> ShipResult:
    choice = archive.choose(present, compress)
    blank, zstd = choice.blank, choice.zstd
    output = _send(open_channel, archive.payload(blank, zstd), zstd, progress)
    if _loaded(open_channel, output, archive):
        return _result(host, archive, plan, output.bytes_sent, started, zstd)
    if not blank:
        _fail(host, output, archive)

    logger.warning(
        "%s: loading the delta archive failed, sending the full image: %s",
        host,
        output.output[-500:],
    )
    full = plan_shipment(archive.index.layers, frozenset())
    zstd = _use_zstd(compress, present, full.bytes_estimate)
    retry = _send(open_channel, archive.payload(frozenset(), zstd), zstd, progress)
    if not _loaded(open_channel, retry, archive):
        _fail(host, retry, archive)
    sent = output.bytes_sent + retry.bytes_sent
    return _result(host, archive, full, sent, started, zstd, fell_back=True)


def _send(
    open_channel: ChannelOpener, payload: Path, zstd: bool, progress: Progress | None
) -> CommandOutput:
    command = ZSTD_LOAD if zstd else LOAD
    with payload.open("rb") as source:
        return run_with_input(open_channel, command, source, progress=progress)


def _loaded(
    open_channel: ChannelOpener, output: CommandOutput, archive: ImageArchive
) -> bool:
    """True when the load succeeded and the host's tag names the right image."""
    if output.exit_status != 0:
        return False
    found = run_with_input(open_channel, archive.verify_command())
    return found.exit_status == 0 and found.stdout.strip() == archive.index.image_id


def _fail(host: str, output: CommandOutput, archive: ImageArchive) -> NoReturn:
    raise DockerError(
        host,
        f"docker load of image {archive.tag or archive.index.image_id} failed"
        f" (exit {output.exit_status}):\n    {output.output[-2000:]}",
        hint="check free disk space and the Docker daemon's log on the host",
    )


def _ensure_tag(
    open_channel: ChannelOpener, host: str, archive: ImageArchive, present: HostImages
) -> None:
    tag = archive.tag
    if tag is None or present.has_tag(archive.index.image_id, tag):
        return
    command = f"docker tag {archive.index.image_id} {shlex.quote(tag)}"
    output = run_with_input(open_channel, command)
    if output.exit_status != 0:
        raise DockerError(host, f"tagging {tag} failed:\n    {output.output}")


def _use_zstd(compress: bool | None, present: HostImages, size: int) -> bool:
    if compress is False or not present.zstd or shutil.which("zstd") is None:
        return False
    return compress is True or size >= COMPRESS_MIN_BYTES


def _result(
    host: str,
    archive: ImageArchive,
    plan: ShipmentPlan,
    sent: int,
    started: float,
    compressed: bool = False,
    *,
    fell_back: bool = False,
) -> ShipResult:
    result = ShipResult(
        host=host,
        image_id=archive.index.image_id,
        mode=plan.mode,
        bytes_sent=sent,
        layers_sent=len(plan.send),
        layers_skipped=len(plan.skip),
        seconds=time.monotonic() - started,
        compressed=compressed,
        fell_back=fell_back,
    )
    logger.info(
        "%s: image %s, %s, %d bytes, %d layers sent, %d skipped, %.1f s",
        host,
        archive.tag or archive.index.image_id,
        result.mode,
        sent,
        result.layers_sent,
        result.layers_skipped,
        result.seconds,
    )
    return result


def _atomic_delta(source: Path, target: Path, blank: frozenset[str]) -> None:
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        write_delta(source, out, blank)
    partial.rename(target)


def _atomic_zstd(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    argv = [
        "zstd",
        f"-{ZSTD_LEVEL}",
        "-T0",
        "-q",
        "-f",
        "-o",
        str(partial),
        str(source),
    ]
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    partial.rename(target)
    logger.debug(
        "zstd %s: %d -> %d bytes in %.1f s",
        source.name,
        source.stat().st_size,
        target.stat().st_size,
        time.monotonic() - started,
    )

"""The lab's base image: a lean Debian bookworm with Python, no registry.

``debootstrap`` runs once per machine; its result is cached as a zstd
tarball in the cache dir shared by every lab, and imported into a lab's
build daemon with ``docker import``.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from daskfleet.errors import LabError
from daskfleet.lab._proc import file_lock, run, run_shell
from daskfleet.lab.mounts import unmount_under

logger = logging.getLogger(__name__)

#: The image every daskfleet image builds on, in the lab's build daemon.
BASE_IMAGE = "daskfleet/base:bookworm"
SUITE = "bookworm"
INCLUDE = ("python3", "python3-venv", "ca-certificates", "procps")
#: Bump when the recipe changes so an old cached tarball is not reused.
RECIPE_VERSION = 1
CACHE_NAME = f"base-{SUITE}-v{RECIPE_VERSION}.tar.zst"

#: Removed from the rootfs: documentation, manuals, locales, apt caches.
STRIP_PATHS = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "var/log",
)
#: Keeps later ``apt-get install`` in derived images just as lean.
DPKG_EXCLUDES = """\
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
SOURCES_FILES = ("/etc/apt/sources.list",)
SOURCES_DIRS = ("/etc/apt/sources.list.d",)


def cache_path(cache_dir: Path) -> Path:
    """Where the cached base tarball lives."""
    return cache_dir / CACHE_NAME


def find_mirror() -> str:
    """The Debian mirror this machine's apt sources use for the main suite."""
    for text in _apt_source_texts():
        mirror = parse_mirror(text)
        if mirror:
            return mirror
    raise LabError(
        "no Debian mirror found in /etc/apt/sources.list or "
        "/etc/apt/sources.list.d/*.sources",
        hint="add a 'deb <mirror> bookworm main' line to /etc/apt/sources.list",
    )


def parse_mirror(text: str) -> str | None:
    """The URI serving ``bookworm`` in a one-line or deb822 sources text."""
    for line in text.splitlines():
        match = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if match and match.group(2) == SUITE:
            return match.group(1)
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(
            (key.strip().lower(), value.strip())
            for key, _, value in (
                line.partition(":") for line in stanza.splitlines() if ":" in line
            )
            if not key.lstrip().startswith("#")
        )
        if SUITE in fields.get("suites", "").split() and fields.get("uris"):
            return str(fields["uris"].split()[0])
    return None


def _apt_source_texts() -> Iterator[str]:
    paths = [Path(p) for p in SOURCES_FILES]
    for directory in SOURCES_DIRS:
        paths += sorted(Path(directory).glob("*.sources"))
        paths += sorted(Path(directory).glob("*.list"))
    for path in paths:
        try:
            yield path.read_text()
        except OSError:
            continue


def ensure_base_tarball(cache_dir: Path) -> Path:
    """Build the base rootfs tarball unless it is already cached."""
    target = cache_path(cache_dir)
    with file_lock(cache_dir / ".base.lock"):
        if target.exists():
            logger.debug("base image cached at %s", target)
            return target
        _build_tarball(cache_dir, target)
    return target


def _build_tarball(cache_dir: Path, target: Path) -> None:
    mirror = find_mirror()
    logger.info("building base image with debootstrap from %s (about a minute)", mirror)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="base-build-", dir=cache_dir))
    rootfs = work / "rootfs"
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                SUITE,
                str(rootfs),
                mirror,
            ],
            timeout=900,
        )
        strip_rootfs(rootfs)
        partial = work / CACHE_NAME
        run_shell(
            f"tar -C {shlex.quote(str(rootfs))} --numeric-owner -c . "
            f"| zstd -q -T0 -3 -o {shlex.quote(str(partial))}"
        )
        partial.rename(target)
    finally:
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
    logger.info("base image built in %.0f s: %s", time.monotonic() - started, target)


def strip_rootfs(rootfs: Path) -> None:
    """Remove docs, manuals, locales and apt caches from ``rootfs``."""
    for relative in STRIP_PATHS:
        path = rootfs / relative
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for cache in rootfs.glob("usr/lib/python3*/**/__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    dpkg_conf = rootfs / "etc/dpkg/dpkg.cfg.d/01-daskfleet-lean"
    dpkg_conf.write_text(DPKG_EXCLUDES)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def import_base_image(tarball: Path, docker_socket: Path) -> None:
    """Import ``tarball`` as :data:`BASE_IMAGE` unless the daemon has it."""
    host = f"unix://{docker_socket}"
    found = run(["docker", "-H", host, "image", "inspect", BASE_IMAGE], check=False)
    if found.returncode == 0:
        return
    logger.info("importing %s into the build daemon", BASE_IMAGE)
    run_shell(
        f"zstd -q -dc {shlex.quote(str(tarball))} | docker -H {shlex.quote(host)} "
        "import --change 'ENV LANG=C.UTF-8' --change 'CMD [\"/bin/bash\"]' "
        f"- {BASE_IMAGE}"
    )
    check = run(["docker", "-H", host, "image", "inspect", BASE_IMAGE], check=False)
    if check.returncode != 0:
        raise LabError(f"{BASE_IMAGE} missing from the build daemon after import")

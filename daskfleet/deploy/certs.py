"""Put each host's TLS files in place before its containers change.

One SSH command per bundle carries a small tar of the files; the host
unpacks it into a root-only directory named after the certificate's
fingerprint, unless that directory already holds the same files, which it
knows from their digest. A new bundle (after a rotation) so lands beside
the one running containers use. Once a run has proven every container
healthy, :func:`prune_certificates` removes the directories none of them
uses any more.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from collections.abc import Mapping

from daskfleet.deploy.context import DeployContext
from daskfleet.hostfiles import script
from daskfleet.inventory.model import Host
from daskfleet.notebook import NOTEBOOK_ROLE
from daskfleet.tls import (
    client_bundle,
    client_tls_dir,
    ensure_client_pair,
    ensure_host_pair,
    host_bundle,
    host_tls_dir,
    host_tls_root,
)

UNCHANGED = 3
_INSTALL = (
    'd=$1; want=$2; umask 077; mkdir -p "$d"; '
    'if [ "$(cat "$d/.digest" 2>/dev/null)" = "$want" ]; then cat >/dev/null; exit 3; fi; '
    'tar -xf - -C "$d" && printf %s "$want" > "$d/.digest"'
)
# Everything in the host's TLS directory but the named entries goes (the
# files directly in it are those of daskfleet versions before fingerprints).
PRUNE_SCRIPT = (
    'root=$1; shift; cd "$root" 2>/dev/null || exit 0; '
    "for entry in * .digest; do "
    '[ -e "$entry" ] || continue; keep=; '
    'for name in "$@"; do [ "$entry" = "$name" ] && keep=1; done; '
    '[ -n "$keep" ] || rm -rf -- "$entry"; done'
)

#: A directory on a host to the files it must hold.
Bundles = dict[str, dict[str, bytes]]


def wanted_bundles(ctx: DeployContext, host: Host) -> Bundles:
    """The TLS directories ``host`` needs for its planned containers."""
    assert ctx.plan is not None
    cluster = ctx.inventory.cluster
    roles = {spec.role for spec in ctx.plan.specs if spec.host == host.name}
    bundles: Bundles = {}
    if roles - {NOTEBOOK_ROLE}:
        pair = ensure_host_pair(cluster, host.name, host.address)
        directory = host_tls_dir(cluster, host.name, pair.fingerprint)
        bundles[directory] = host_bundle(cluster, host.name, host.address)
    if NOTEBOOK_ROLE in roles:
        fingerprint = ensure_client_pair(cluster).fingerprint
        directory = client_tls_dir(cluster, host.name, fingerprint)
        bundles[directory] = client_bundle(cluster)
    return bundles


def install_certificates(ctx: DeployContext) -> None:
    """Send every host that runs a container its TLS files, if they changed."""
    assert ctx.plan is not None
    if ctx.inventory.security != "tls":
        return
    hosts = ctx.healthy_hosts({spec.host for spec in ctx.plan.specs})

    def install(host: Host) -> bool:
        changed = False
        for directory, files in wanted_bundles(ctx, host).items():
            changed |= _install(ctx, host, directory, files)
        return changed

    for name, changed in ctx.on_hosts(hosts, install).items():
        if changed:
            ctx.recap.hosts[name].changed += 1
            ctx.recap.hosts[name].actions.append("install TLS certificates")


def _install(
    ctx: DeployContext, host: Host, directory: str, files: Mapping[str, bytes]
) -> bool:
    digest = hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()
    command = script(_INSTALL, directory, digest)
    result = ctx.fleet.run(host, command, check=False, stdin=_tar(files))
    if result.exit_code == UNCHANGED:
        return False
    if result.exit_code != 0:
        ctx.fleet.run(host, command, stdin=_tar(files))  # raises with output
    return True


def prune_certificates(ctx: DeployContext) -> None:
    """Remove the TLS directories no planned container uses, on healthy hosts.

    Only after a run proved every container healthy: until then, a
    container on the old certificates may still need its directory.
    """
    assert ctx.plan is not None
    if ctx.inventory.security != "tls":
        return
    cluster = ctx.inventory.cluster

    def prune(host: Host) -> None:
        keep = [d.rsplit("/", 1)[1] for d in wanted_bundles(ctx, host)]
        root = host_tls_root(cluster, host.name)
        ctx.fleet.run(host, script(PRUNE_SCRIPT, root, *keep))

    ctx.on_hosts(ctx.healthy_hosts({spec.host for spec in ctx.plan.specs}), prune)


def _tar(files: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()

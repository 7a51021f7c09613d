"""Put each host's TLS files in place before its containers change.

One SSH command per host carries a small tar of the CA certificate and the
host's key pair; the host unpacks it into a root-only directory unless it
already holds the same files, which it knows from their digest.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time

from daskfleet.deploy.context import DeployContext
from daskfleet.hostfiles import script
from daskfleet.inventory.model import Host
from daskfleet.tls import host_bundle, host_tls_dir

UNCHANGED = 3
_INSTALL = (
    'd=$1; want=$2; umask 077; mkdir -p "$d"; '
    'if [ "$(cat "$d/.digest" 2>/dev/null)" = "$want" ]; then cat >/dev/null; exit 3; fi; '
    'tar -xf - -C "$d" && printf %s "$want" > "$d/.digest"'
)


def install_certificates(ctx: DeployContext) -> None:
    """Send every host that runs a container its TLS files, if they changed."""
    assert ctx.plan is not None
    if ctx.inventory.security != "tls":
        return
    hosts = ctx.healthy_hosts({spec.host for spec in ctx.plan.specs})

    def install(host: Host) -> bool:
        bundle = host_bundle(ctx.inventory.cluster, host.name, host.address)
        digest = hashlib.sha256(b"".join(bundle[n] for n in sorted(bundle))).hexdigest()
        command = script(
            _INSTALL, host_tls_dir(ctx.inventory.cluster, host.name), digest
        )
        result = ctx.fleet.run(host, command, check=False, stdin=_tar(bundle))
        if result.exit_code == UNCHANGED:
            return False
        if result.exit_code != 0:
            ctx.fleet.run(host, command, stdin=_tar(bundle))  # raises with output
        return True

    for name, changed in ctx.on_hosts(hosts, install).items():
        if changed:
            ctx.recap.hosts[name].changed += 1
            ctx.recap.hosts[name].actions.append("install TLS certificates")


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()

"""A certificate authority per cluster, and the certificates it signs.

With ``security: tls`` (the default) every Dask connection (client,
scheduler, workers) is TLS with certificates from the cluster's own CA, and
encryption is required. The CA and the client's bundle stay on the
controller; each host receives the CA certificate and its own key pair
only, readable by root. The notebook's host also receives the client's
bundle, for the notebook's kernels.

On a host, each bundle lives in a directory named after its certificate's
fingerprint, so new certificates (a rotation) are installed beside the ones
running containers use, and the old directories are removed only once no
container needs them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed.security import Security

from daskfleet.envfiles import cluster_dir
from daskfleet.inventory.model import Inventory, Volume
from daskfleet.paths import config_dir, state_dir
from daskfleet.specs import LABEL_SPEC, ContainerSpec

logger = logging.getLogger(__name__)

#: Where the certificates are mounted inside every Dask container.
CONTAINER_TLS_DIR = "/etc/daskfleet/tls"
#: A host's certificates (root only) sit in the cluster's directory there;
#: the host's name is part of the path so that hosts sharing a filesystem
#: (the lab) keep theirs apart.
HOST_TLS_SUBDIR = "tls/{host}"
#: Where the controller keeps the previous certificates during a rotation.
PREVIOUS_SUFFIX = ".previous"
CA_DAYS = 3650
CERT_DAYS = 825


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key."""

    cert: bytes
    key: bytes

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.cert).hexdigest()[:16]


def tls_dir(cluster: str) -> Path:
    """The controller's copy: CA, client bundle and each host's pair."""
    return state_dir() / "clusters" / cluster / "tls"


def host_tls_root(cluster: str, host: str) -> str:
    """The host's directory holding one directory per certificate bundle."""
    return f"{cluster_dir(cluster)}/{HOST_TLS_SUBDIR.format(host=host)}"


def host_tls_dir(cluster: str, host: str, fingerprint: str) -> str:
    """Where the host's own pair with this fingerprint is installed."""
    return f"{host_tls_root(cluster, host)}/{fingerprint}"


def client_tls_dir(cluster: str, host: str, fingerprint: str) -> str:
    """Where the client's bundle for the notebook on ``host`` is installed."""
    return f"{host_tls_root(cluster, host)}/client-{fingerprint}"


def ensure_ca(cluster: str) -> KeyPair:
    """The cluster's CA, created on first use."""
    return _stored(tls_dir(cluster) / "ca", lambda: _new_ca(cluster))


def ensure_host_pair(cluster: str, host: str, address: str) -> KeyPair:
    """The certificate a host's scheduler and workers present."""
    ca = ensure_ca(cluster)
    return _stored(
        tls_dir(cluster) / f"host-{host}",
        lambda: _issue(ca, f"{cluster} {host}", address, server=True),
    )


def ensure_client_pair(cluster: str) -> KeyPair:
    """The controller's (and users') client certificate."""
    ca = ensure_ca(cluster)
    return _stored(
        tls_dir(cluster) / "client",
        lambda: _issue(ca, f"{cluster} client", None, server=False),
    )


def client_files(cluster: str) -> tuple[Path, Path, Path]:
    """The CA, the client certificate and its key, in the user's config dir.

    ``<config dir>/clusters/<cluster>/``: a copy of the controller's current
    bundle, refreshed on every call, so it follows a rotation.
    """
    pair = ensure_client_pair(cluster)
    folder = config_dir() / "clusters" / cluster
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = folder / "ca.pem", folder / "client.pem", folder / "client-key.pem"
    ca, cert, key = files
    _refresh(ca, ensure_ca(cluster).cert)
    _refresh(cert, pair.cert)
    _refresh(key, pair.key)
    return files


def _refresh(path: Path, data: bytes) -> None:
    """Write ``data`` (mode 0600) unless it is there; readers never see half."""
    if path.exists() and path.read_bytes() == data:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    _write_private(partial, data)
    partial.replace(path)


def begin_rotation(cluster: str) -> Path:
    """Set the cluster's certificates aside; the next ``ensure_*`` issues new ones.

    Returns where the old ones are kept until :func:`finish_rotation` or
    :func:`undo_rotation`. An earlier backup is replaced.
    """
    current = tls_dir(cluster)
    previous = current.with_name(current.name + PREVIOUS_SUFFIX)
    shutil.rmtree(previous, ignore_errors=True)
    if current.exists():
        current.rename(previous)
    logger.info("certificates of %s set aside in %s", cluster, previous)
    return previous


def undo_rotation(cluster: str) -> None:
    """Put the certificates set aside back; the new ones are deleted."""
    current = tls_dir(cluster)
    previous = current.with_name(current.name + PREVIOUS_SUFFIX)
    if not previous.exists():
        return
    shutil.rmtree(current, ignore_errors=True)
    previous.rename(current)


def finish_rotation(cluster: str) -> None:
    """Delete the certificates set aside: the new ones are in use everywhere."""
    current = tls_dir(cluster)
    shutil.rmtree(current.with_name(current.name + PREVIOUS_SUFFIX), ignore_errors=True)


def _stored(stem: Path, make: Callable[[], KeyPair]) -> KeyPair:
    cert_path = stem.with_name(stem.name + ".pem")
    key_path = stem.with_name(stem.name + "-key.pem")
    if cert_path.exists() and key_path.exists():
        return KeyPair(cert_path.read_bytes(), key_path.read_bytes())
    pair: KeyPair = make()
    stem.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(key_path, pair.key)
    cert_path.write_bytes(pair.cert)
    return pair


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _new_ca(cluster: str) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"daskfleet {cluster} CA")]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def _issue(
    ca: KeyPair, common_name: str, address: str | None, *, server: bool
) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if address is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_alt_names(address)), critical=False
        )
    return KeyPair(_cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def _alt_names(address: str) -> list[x509.GeneralName]:
    # localhost too: the dashboard stays verifiable through `daskfleet tunnel`.
    local: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        return [x509.IPAddress(ipaddress.ip_address(address)), *local]
    except ValueError:
        return [x509.DNSName(address), *local]


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# Container specs ----------------------------------------------------------

CA_FILE = f"{CONTAINER_TLS_DIR}/ca.pem"
CERT_FILE = f"{CONTAINER_TLS_DIR}/node.pem"
KEY_FILE = f"{CONTAINER_TLS_DIR}/node-key.pem"

#: Dask settings every secured container gets: encryption is required, and
#: the dashboard is served over HTTPS with the host's certificate.
TLS_ENVIRONMENT = {
    "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
    "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT": CERT_FILE,
    "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY": KEY_FILE,
}
TLS_ARGUMENTS = (
    *("--protocol", "tls"),
    *("--tls-ca-file", CA_FILE, "--tls-cert", CERT_FILE, "--tls-key", KEY_FILE),
)

CLIENT_CERT_FILE = f"{CONTAINER_TLS_DIR}/client.pem"
CLIENT_KEY_FILE = f"{CONTAINER_TLS_DIR}/client-key.pem"
#: Dask settings for a client inside a container (the notebook's kernels):
#: with them, ``Client()`` connects over TLS with the client's bundle.
CLIENT_ENVIRONMENT = {
    "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
    "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": CA_FILE,
    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": CLIENT_CERT_FILE,
    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": CLIENT_KEY_FILE,
}


def secure_specs(
    specs: Mapping[str, list[ContainerSpec]],
    cluster: str,
    fingerprints: Mapping[str, str],
) -> dict[str, list[ContainerSpec]]:
    """The same containers, speaking TLS with the host's certificate.

    The certificate's fingerprint joins each spec's summary, so rotating
    certificates replaces the containers like any other change.
    """
    return {
        host: [
            _secure(spec, cluster, fingerprints.get(host, "")) for spec in host_specs
        ]
        for host, host_specs in specs.items()
    }


def _secure(spec: ContainerSpec, cluster: str, fingerprint: str) -> ContainerSpec:
    summary = {**json.loads(spec.labels[LABEL_SPEC]), "tls": fingerprint}
    labels = {
        **spec.labels,
        LABEL_SPEC: json.dumps(summary, sort_keys=True, separators=(",", ":")),
    }
    directory = host_tls_dir(cluster, spec.host, fingerprint)
    mount = Volume(directory, CONTAINER_TLS_DIR, read_only=True)
    return dataclasses.replace(
        spec,
        command=(*spec.command, *TLS_ARGUMENTS),
        environment={**spec.environment, **TLS_ENVIRONMENT},
        labels=labels,
        volumes=(*spec.volumes, mount),
    )


def host_bundle(cluster: str, host: str, address: str) -> dict[str, bytes]:
    """The files a host needs, by name in its TLS directory."""
    pair = ensure_host_pair(cluster, host, address)
    return {
        "ca.pem": ensure_ca(cluster).cert,
        "node.pem": pair.cert,
        "node-key.pem": pair.key,
    }


def client_bundle(cluster: str) -> dict[str, bytes]:
    """The client's files, by name, for a container that acts as a client."""
    pair = ensure_client_pair(cluster)
    return {
        "ca.pem": ensure_ca(cluster).cert,
        "client.pem": pair.cert,
        "client-key.pem": pair.key,
    }


def client_mount(cluster: str, host: str, fingerprint: str) -> Volume:
    """The client's bundle on ``host``, read-only where Dask clients expect it."""
    directory = client_tls_dir(cluster, host, fingerprint)
    return Volume(directory, CONTAINER_TLS_DIR, read_only=True)


def client_security(inventory: Inventory) -> Security | None:
    """The controller's client credentials for the cluster, with TLS on."""
    if inventory.security != "tls":
        return None
    ca, cert, key = client_files(inventory.cluster)
    return Security(  # type: ignore[no-untyped-call]
        tls_ca_file=str(ca),
        tls_client_cert=str(cert),
        tls_client_key=str(key),
        require_encryption=True,
    )

"""A throwaway PKI for TLS tests and benches: a CA, a server certificate for the loopback
address, and client certificates whose common name is a gateway's identity (Mosquitto's
``use_identity_as_username``). EC P-256 keys (cheap to make), PEM files, valid for two days.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The names a server certificate is valid for unless told otherwise.
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for h in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            entries.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(entries)


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )


def self_signed(directory: Path, name: str = "server", hosts: Iterable[str] = LOOPBACK) -> tuple[Path, Path]:
    """A self-signed server certificate for ``hosts`` (its own CA): (certfile, keyfile)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = tuple(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(hosts[0], hosts[0], key)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(directory, name, cert, key)
    return directory / f"{name}.crt", directory / f"{name}.key"


def make_pki(directory: Path, *, clients: Iterable[str] = (), hosts: Iterable[str] = LOOPBACK) -> Pki:
    """``ca``, a ``server`` certificate for ``hosts`` and one client certificate per name in
    ``clients`` (common name = the name), all signed by the CA, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = tuple(hosts)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("test-ca", "test-ca", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, "ca", ca, ca_key)
    for name, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        *((c, ExtendedKeyUsageOID.CLIENT_AUTH) for c in clients),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(hosts[0] if name == "server" else name, "test-ca", key)
        if name == "server":
            builder = builder.add_extension(_san(hosts), critical=False)
        cert = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(directory, name, cert, key)
    return Pki(directory)

"""The TV's self-signed TLS certificate: made on first run, reused after, identified by its sha256 fingerprint.

Phones cannot check a self-signed certificate against a CA, so the TV shows the fingerprint (in the QR code
and in GET /v1/tv) and the phone pins it.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "tv-cert.pem"
KEY_FILE = "tv-key.pem"
VALIDITY = datetime.timedelta(days=3650)


class Certificate(NamedTuple):
    """Where the TV's certificate and key are, and the certificate's fingerprint ("sha256:AB:CD:...")."""

    cert_path: Path
    key_path: Path
    fingerprint: str


def fingerprint(der: bytes) -> str:
    """Return the "sha256:AB:CD:..." fingerprint of a DER-encoded certificate."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def ensure_certificate(directory: Path, hostnames: list[str], addresses: list[str]) -> Certificate:
    """Return the certificate in `directory`, making a new one (EC P-256, 10 years) when there is none usable."""
    directory = Path(directory)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    existing = _load(cert_path, key_path)
    if existing is not None:
        return Certificate(cert_path, key_path, existing)
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, hostnames, addresses)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Certificate(cert_path, key_path, fingerprint(cert.public_bytes(serialization.Encoding.DER)))


def _load(cert_path: Path, key_path: Path) -> str | None:
    """Return the fingerprint of the certificate on disk if it and its key are readable and belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if key.public_key() != cert.public_key():
        return None
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


def _self_signed(key: ec.EllipticCurvePrivateKey, hostnames: list[str], addresses: list[str]) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(hostnames) if name]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in dict.fromkeys(addresses) if address]
    common_name = next((name for name in hostnames if name), "tvapp TV")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise

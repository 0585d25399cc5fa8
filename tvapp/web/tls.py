"""TLS for both servers: the one maker of self-signed certificates, and the check of a configured certificate.

The TV's endpoints (`[tv] tls`) and the core (`[server] tls`) use the same maker: a certificate made on first run
in the data directory (key mode 0600, folder 0700), reused after, identified by its sha256 fingerprint. Phones
cannot check a self-signed certificate against a CA, so the fingerprint is shown (the TV endpoints': in the
pairing QR code and GET /v1/tv; the core's: on the TV screen, in its "scan to join" QR code and printed at
start) and a phone or a person compares it. A configured certificate (`[server] tls_cert` / `tls_key`, one a
CA signed for a domain) is only checked here: readable, PEM, and the key belongs to it; a problem
is a TlsError whose message says which file and what is wrong (never the key's bytes).
"""

from __future__ import annotations

import base64
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

CERT_FILE = "tv-cert.pem"  # the TV endpoints' names (data/tv-tls/); the core's are core-cert.pem/core-key.pem
KEY_FILE = "tv-key.pem"
VALIDITY = datetime.timedelta(days=3650)


class TlsError(Exception):
    """A configured certificate or key cannot be used; the message names the file and the problem."""


class Certificate(NamedTuple):
    """Where a certificate and its key are, and the certificate's fingerprint ("sha256:AB:CD:...")."""

    cert_path: Path
    key_path: Path
    fingerprint: str
    self_signed: bool = True
    spki_sha256: str = ""  # base64 sha256 of the public key (Chromium's --ignore-certificate-errors-spki-list)


def fingerprint(der: bytes) -> str:
    """Return the "sha256:AB:CD:..." fingerprint of a DER-encoded certificate."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def spki_sha256(cert: x509.Certificate) -> str:
    """Return the base64 sha256 of a certificate's SubjectPublicKeyInfo (what HPKP and Chromium pin)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def ensure_certificate(directory: Path, hostnames: list[str], addresses: list[str], *,
                       cert_file: str = CERT_FILE, key_file: str = KEY_FILE) -> Certificate:
    """Return the certificate in `directory`, making a new one (EC P-256, 10 years) when there is none usable."""
    directory = Path(directory)
    cert_path, key_path = directory / cert_file, directory / key_file
    existing = _load(cert_path, key_path)
    if existing is not None:
        return Certificate(cert_path, key_path, fingerprint(existing.public_bytes(serialization.Encoding.DER)),
                           True, spki_sha256(existing))
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, hostnames, addresses)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Certificate(cert_path, key_path, fingerprint(cert.public_bytes(serialization.Encoding.DER)),
                       True, spki_sha256(cert))


def configured_certificate(cert_file: str | Path, key_file: str | Path) -> Certificate:
    """Check a configured certificate and key (PEM files); return it, or raise TlsError saying what is wrong."""
    cert_path, key_path = Path(cert_file).expanduser(), Path(key_file).expanduser()
    try:
        cert_pem = cert_path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS certificate {cert_path}: {exc.strerror or exc}") from None
    try:
        key_pem = key_path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS key {key_path}: {exc.strerror or exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)  # the first one: the server's own, the chain may follow
    except ValueError:
        raise TlsError(f"the TLS certificate {cert_path} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        # The exception's text may quote the file; say only what kind of problem it is.
        raise TlsError(f"the TLS key {key_path} is not an unencrypted PEM private key") from None
    if key.public_key() != cert.public_key():
        raise TlsError(f"the TLS key {key_path} does not belong to the certificate {cert_path}")
    return Certificate(cert_path, key_path, fingerprint(cert.public_bytes(serialization.Encoding.DER)),
                       cert.issuer == cert.subject, spki_sha256(cert))


def _load(cert_path: Path, key_path: Path) -> x509.Certificate | None:
    """Return the certificate on disk if it and its key are readable and belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if key.public_key() != cert.public_key():
        return None
    return cert


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

"""Which TLS checks the SDK makes for a core: normal CA verification, a trusted certificate file, or a pinned fingerprint.

- A core with a CA-signed certificate (``https://core.example``) is checked as a browser would: the system's CAs
  (or $SSL_CERT_FILE) and the host name.
- `trust_certificate(url, pem)`: that origin accepts exactly the chains anchored in that PEM file (a core's own
  certificate, or a private CA), host name not checked because the anchor is the trust. The TV uses it for its
  built-in core on loopback; the media decoder (FFmpeg) verifies against `ca_file(url)`.
- `pin(server, fingerprint)`: a self-signed core's sha256 fingerprint travels with the invite link
  (``#fp=sha256:AB:CD:…``, the format of tvapp.web.tls) and every https/wss connection to that origin accepts
  exactly the certificate with that fingerprint, checked in the handshake before any byte (and so any token) is
  sent; a different certificate fails with `PinMismatch` (an ssl.SSLCertVerificationError).

Verification is never switched off. Both are per process and per origin (scheme, host, port; ws/wss count as
http/https); a pin wins over a trusted file. REST (tvapp.client.rest) and the signaling websocket
(tvapp.client.signaling) take their context from `ssl_context(url)`.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tvapp.web.tls import fingerprint as fingerprint_of

_lock = threading.Lock()
_pins: dict[str, str] = {}
_anchors: dict[str, tuple[ssl.SSLContext, str]] = {}  # origin -> (context, PEM file)


class PinMismatch(ssl.SSLCertVerificationError):
    """The server's certificate is not the one pinned for it (someone else answers, or the core got a new one)."""


def origin(url: str) -> str:
    """Return the "scheme://host:port" a URL's connections go to (ws/wss count as http/https)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def pin(server: str, fingerprint: str) -> None:
    """Accept only the certificate with `fingerprint` ("sha256:AB:..") for https connections to `server`."""
    with _lock:
        _pins[origin(server)] = _canonical(fingerprint)


def unpin(server: str) -> None:
    """Go back to CA verification for `server`."""
    with _lock:
        _pins.pop(origin(server), None)


def pinned(server: str) -> str | None:
    """Return the fingerprint pinned for `server`, if any."""
    with _lock:
        return _pins.get(origin(server))


def trust_certificate(url: str, pem_path: str | Path) -> None:
    """Accept for https/wss to `url`'s origin exactly the chains anchored in the certificate(s) in `pem_path`."""
    if urlsplit(url).scheme.lower() not in ("https", "wss"):
        raise ValueError(f"not an https URL: {url}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the anchor below is the trust; 127.0.0.1 is rarely in a domain's cert
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a CA-issued leaf may be the anchor too
    context.load_verify_locations(cafile=str(pem_path))
    with _lock:
        _anchors[origin(url)] = (context, str(pem_path))


def ca_file(url: str) -> str | None:
    """Return the PEM file trusted for `url`'s origin (FFmpeg's ca_file when the TV opens the core's media)."""
    with _lock:
        anchor = _anchors.get(origin(url))
    return anchor[1] if anchor is not None else None


def ssl_context(url: str) -> ssl.SSLContext | None:
    """Return the TLS context for connecting to `url`: None for plain http/ws; pinned, trusted-file or CA for https/wss."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("https", "wss"):
        return None
    fingerprint = pinned(url)
    if fingerprint is not None:
        return pinned_context(fingerprint)
    with _lock:
        anchor = _anchors.get(origin(url))
    return anchor[0] if anchor is not None else ssl.create_default_context()


def pinned_context(fingerprint: str) -> ssl.SSLContext:
    """Return a client context whose handshake succeeds only when the server's certificate has `fingerprint`."""
    expected = _canonical(fingerprint)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The pin replaces the CA chain and host name checks; it is checked in the handshake below, before any byte
    # of the request (and so any token) is sent.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    class _PinnedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            _check(self.getpeercert(binary_form=True), expected)

    class _PinnedObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            _check(self.getpeercert(binary_form=True), expected)

    context.sslsocket_class = _PinnedSocket
    context.sslobject_class = _PinnedObject
    return context


def _check(der: Any, expected: str) -> None:
    if not isinstance(der, bytes) or fingerprint_of(der) != expected:
        raise PinMismatch("the server's certificate does not match the pinned fingerprint")


def _canonical(fingerprint: str) -> str:
    digits = fingerprint.strip()
    if digits[:7].lower() == "sha256:":
        digits = digits[7:]
    digits = digits.replace(":", "").upper()
    if len(digits) != 64 or any(ch not in "0123456789ABCDEF" for ch in digits):
        raise ValueError("a fingerprint is sha256: and 32 hex bytes")
    return "sha256:" + ":".join(digits[i:i + 2] for i in range(0, 64, 2))

"""Which TLS checks the SDK makes for a core: normal CA verification, or a pinned certificate fingerprint.

A core with a CA-signed certificate (``https://core.example``) is checked as a browser would: the system's CAs
(or $SSL_CERT_FILE) and the host name. A core with a self-signed certificate cannot be checked that way, so its
sha256 fingerprint travels with the invite link (``#fp=sha256:AB:CD:…``, the format of tvapp.tv.remote.tls) and
the SDK pins it: `pin(server, fingerprint)` makes every https call to that server's origin (REST through
tvapp.client.rest, the signaling websocket through tvapp.client.signaling) accept exactly the certificate with
that fingerprint and nothing else. Verification is never switched off: without a pin the CA check applies; with
one, a different certificate fails the handshake with `PinMismatch` (an ssl.SSLCertVerificationError).

The pins are per process and per origin (scheme, host, port), kept until `unpin`.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

_lock = threading.Lock()
_pins: dict[str, str] = {}


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


def ssl_context(url: str) -> ssl.SSLContext | None:
    """Return the TLS context for connecting to `url`: None for plain http/ws, pinned or CA-verifying for https/wss."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("https", "wss"):
        return None
    fingerprint = pinned(url)
    if fingerprint is None:
        return ssl.create_default_context()
    return pinned_context(fingerprint)


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


def fingerprint_of(der: bytes) -> str:
    """Return the "sha256:AB:CD:..." fingerprint of a DER certificate (as tvapp.tv.remote.tls writes it)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


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

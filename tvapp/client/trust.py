"""Certificates this process trusts for one core's https/wss origin, instead of the system's certificate authorities.

A TV's built-in core on the LAN serves https with a self-signed certificate (tvapp.web.tls), or with a domain's
certificate that does not name 127.0.0.1; the TV itself talks to that core on loopback through the SDK. So the
TV trusts exactly that certificate for exactly that origin (`trust_certificate`): the connection must present it
(it is the only trust anchor; the host name is not checked because the anchor is the pin). Every other origin
keeps the library default (system CAs, host names checked). The REST client and the signaling websocket take
their TLS context from `ssl_context(url)`; the media decoder (FFmpeg) verifies against `ca_file(url)`.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

_lock = threading.Lock()
_contexts: dict[tuple[str, int], ssl.SSLContext] = {}
_files: dict[tuple[str, int], str] = {}


def _origin(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "wss") or not parts.hostname:
        return None
    return parts.hostname.lower(), parts.port or 443


def trust_certificate(url: str, pem_path: str | Path) -> None:
    """Accept for https/wss to `url`'s host and port exactly the certificate in `pem_path` (and nothing else)."""
    origin = _origin(url)
    if origin is None:
        raise ValueError(f"not an https URL: {url}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the one trust anchor below is the pin; 127.0.0.1 is rarely in a domain's cert
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a CA-issued leaf may be the anchor too
    context.load_verify_locations(cafile=str(pem_path))
    with _lock:
        _contexts[origin] = context
        _files[origin] = str(pem_path)


def ssl_context(url: str) -> ssl.SSLContext | None:
    """Return the TLS context for a connection to `url`: None (system defaults) unless its origin is trusted here."""
    origin = _origin(url)
    return _contexts.get(origin) if origin is not None else None


def ca_file(url: str) -> str | None:
    """Return the PEM file trusted for `url`'s origin (FFmpeg's ca_file when the TV opens the core's media)."""
    origin = _origin(url)
    return _files.get(origin) if origin is not None else None

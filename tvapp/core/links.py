"""Invite links and server addresses: where a room on another core lives, read strictly from what people paste.

A TV joins a room on another core from an invite link or from a server address plus an invite code:

    https://core.example/?code=ABCD-EFGH                        a CA-signed core: normal certificate checks
    https://192.168.1.9:8800/?code=ABCD-EFGH#fp=sha256:AB:CD:…  a self-signed core: its certificate is pinned
    http://192.168.1.9:8800/?code=ABCD-EFGH                     plain http (a LAN core without TLS)
    192.168.1.9:8800/?code=ABCD-EFGH                            a bare host:port is http

A server is reduced to its base URL (``scheme://host[:port][/path]``, no trailing slash). Refused, with a reason
that never repeats the input (it may hold a password): any scheme but http and https, credentials in the URL
(``user:pass@``), a missing host, a bad port, control characters or spaces, anything over MAX_URL_CHARS, a query
or fragment on a server address, a code that tvapp.core.codes does not take, a fingerprint that is not
``sha256:`` and 32 hex bytes (the format of tvapp.web.tls), and a fingerprint on plain http.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple
from urllib.parse import parse_qs, urlsplit

from tvapp.core.codes import normalize_invite_code

MAX_URL_CHARS: Final = 512
MAX_LINK_CHARS: Final = 1024
SCHEMES: Final = ("http", "https")
_HOST_RE: Final = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}"
                             r"[A-Za-z0-9])?\.?|\[[0-9A-Fa-f:.]+\]")
_PATH_RE: Final = re.compile(r"(?:/[A-Za-z0-9._~\-]+)*/?")
_HEX_RE: Final = re.compile(r"[0-9A-Fa-f]{64}")
_BARE_RE: Final = re.compile(r"[A-Za-z0-9.\-\[\]:]+(?:[/?#].*)?", re.DOTALL)


class LinkError(ValueError):
    """A link, server address, code or fingerprint that cannot be used; the message says why (never the input)."""


class InviteLink(NamedTuple):
    """Where a room lives and how to get in: the core's base URL, the canonical code, the pinned fingerprint."""

    server: str
    code: str
    fingerprint: str | None = None


def parse_fingerprint(text: str) -> str:
    """Return the canonical "sha256:AB:CD:..." form of a certificate fingerprint; raise LinkError otherwise."""
    if len(text) > 128:
        raise LinkError("fingerprint is too long")
    body = text.strip()
    if body[:7].lower() != "sha256:":
        raise LinkError("fingerprint must start with sha256:")
    digits = body[7:].replace(":", "")
    if not _HEX_RE.fullmatch(digits):
        raise LinkError("fingerprint must be sha256: and 32 hex bytes")
    digits = digits.upper()
    return "sha256:" + ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def parse_server(text: str) -> str:
    """Return the base URL of a core from a server address ("https://core.example", "host:port"); raise LinkError."""
    base, query, fragment = _split(text, MAX_URL_CHARS)
    if query or fragment:
        raise LinkError("a server address takes no ?query or #fragment (give the invite link instead)")
    return base


def parse_code(text: str) -> str:
    """Return the canonical invite code; raise LinkError when `text` cannot be one."""
    code = normalize_invite_code(text)
    if code is None:
        raise LinkError("the invite code is not a code (8 letters and digits, like ABCD-EFGH)")
    return code


def parse_link(text: str) -> InviteLink:
    """Return the server, code and fingerprint of an invite link (module docstring); raise LinkError."""
    base, query, fragment = _split(text, MAX_LINK_CHARS)
    codes = parse_qs(query, keep_blank_values=True).get("code", [])
    if len(codes) != 1:
        raise LinkError("the link has no ?code=… (or more than one)")
    fingerprint = None
    if fragment:
        fields = parse_qs(fragment, keep_blank_values=True).get("fp", [])
        if len(fields) > 1:
            raise LinkError("the link has more than one #fp=")
        if fields:
            fingerprint = parse_fingerprint(fields[0])
    return join_target(base, parse_code(codes[0]), fingerprint)


def join_target(server: str, code: str, fingerprint: str | None) -> InviteLink:
    """Return the InviteLink for a checked server base URL, code and fingerprint; raise LinkError for http + pin."""
    if fingerprint is not None and not server.startswith("https://"):
        raise LinkError("a certificate fingerprint goes with https only")
    return InviteLink(server, code, fingerprint)


def server_label(server: str) -> str:
    """Return how people see a core's base URL: its host, with the port when not the scheme's default."""
    parts = urlsplit(server)
    host = parts.hostname or server
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port
    except ValueError:
        port = None
    return host if port in (None, default) else f"{host}:{port}"


def _split(text: str, limit: int) -> tuple[str, str, str]:
    """Return (base URL, query, fragment) of a URL or bare host:port; raise LinkError for what the docstring lists."""
    if len(text) > limit:
        raise LinkError(f"the address is longer than {limit} characters")
    text = text.strip()
    if not text:
        raise LinkError("the address is empty")
    if not text.isascii() or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise LinkError("the address has spaces or characters that do not belong in a URL")
    if "://" not in text:
        if ":" in text.split("/", 1)[0].split("?", 1)[0] and not _BARE_RE.fullmatch(text):
            raise LinkError("the address is not a host:port")
        scheme_like = text.split(":", 1)[0].lower()
        if scheme_like in ("javascript", "data", "file", "ftp", "ws", "wss", "mailto"):
            raise LinkError("only http:// and https:// servers can be joined")
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in SCHEMES:
        raise LinkError("only http:// and https:// servers can be joined")
    if "@" in parts.netloc:
        raise LinkError("the address must not carry a user name or password")
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if not host or not _HOST_RE.fullmatch(host):
        raise LinkError("the address has no valid host name")
    try:
        port = parts.port
    except ValueError:
        raise LinkError("the port is not a number from 1 to 65535") from None
    if port == 0 or (parts.netloc.endswith(":")):
        raise LinkError("the port is not a number from 1 to 65535")
    if not _PATH_RE.fullmatch(parts.path or "/"):
        raise LinkError("the address has a path that is not a plain /path")
    netloc = parts.netloc.lower()
    base = f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"
    return base, parts.query, parts.fragment

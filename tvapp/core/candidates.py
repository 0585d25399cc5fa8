"""The one reader of ICE candidate lines that a client trickles over signaling (RFC 8839 section 5.1).

A client sends `{"type": "candidate", "candidate": "candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host"}`.
`parse_candidate()` reads such a line into an `IceCandidate` or raises `CandidateError` saying what is wrong,
so the SFU hands aiortc only candidates it has already checked (aiortc's own parser asserts on short lines
and raises whatever `int()` raises on others). The rules:

- The line may start with ``candidate:``; it is printable ASCII, its fields separated by spaces.
- foundation: 1-32 ice-chars (letters, digits, ``+``, ``/``); component: 1-256; transport: ``udp`` or
  ``tcp`` (any case); priority: 0 to 2**32-1; address: an IPv4 or IPv6 literal, or an mDNS name ending
  in ``.local`` (what browsers send to hide local addresses; any other host name is refused, as nothing
  here resolves DNS); port: 0-65535; then ``typ`` and one of host, srflx, prflx, relay.
- Then name/value pairs: ``raddr`` (an address as above, ``0.0.0.0`` and ``::`` included), ``rport``
  (a port), ``tcptype`` (active, passive, so), and any other extension (``generation``, ``ufrag``,
  ``network-id``, ...) kept as it is. A name without its value is refused.

An empty line is not a candidate: it means "no more candidates" and is the caller's business. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

CANDIDATE_PREFIX = "candidate:"
CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
TRANSPORTS = frozenset({"udp", "tcp"})
TCP_TYPES = frozenset({"active", "passive", "so"})
MAX_PRIORITY = 2**32 - 1
MAX_COMPONENT = 256
MAX_PORT = 65_535

_FOUNDATION = re.compile(r"[A-Za-z0-9+/]{1,32}")
_DIGITS = re.compile(r"[0-9]{1,10}")
_MDNS_NAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+local", re.IGNORECASE)
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")


class CandidateError(ValueError):
    """A candidate line that cannot be used; the message says what is wrong (never echoing the input)."""


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """One remote ICE candidate, checked field by field."""

    foundation: str
    component: int
    transport: str  # lower case: "udp" or "tcp"
    priority: int
    address: str  # an IP literal as written, or an mDNS name
    port: int
    type: str  # host, srflx, prflx or relay
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()  # other name/value pairs, in order


def parse_candidate(line: str) -> IceCandidate:
    """Return the candidate a line describes; raise CandidateError when it is not a valid candidate."""
    text = line.strip().removeprefix(CANDIDATE_PREFIX)
    if not text:
        raise CandidateError("the candidate is empty")
    if not (text.isascii() and text.isprintable()):
        raise CandidateError("the candidate is not printable ASCII")
    fields = text.split()
    if len(fields) < 8:
        raise CandidateError("the candidate has fewer than the 8 fields every candidate has")
    foundation, component, transport, priority, address, port, typ, kind = fields[:8]
    if not _FOUNDATION.fullmatch(foundation):
        raise CandidateError("the candidate's foundation is not 1-32 letters, digits, '+' or '/'")
    if transport.lower() not in TRANSPORTS:
        raise CandidateError("the candidate's transport is neither udp nor tcp")
    if typ != "typ":
        raise CandidateError("the candidate has no 'typ' where its type belongs")
    if kind not in CANDIDATE_TYPES:
        raise CandidateError("the candidate's type is not host, srflx, prflx or relay")
    candidate = IceCandidate(
        foundation=foundation,
        component=_number(component, 1, MAX_COMPONENT, "component"),
        transport=transport.lower(),
        priority=_number(priority, 0, MAX_PRIORITY, "priority"),
        address=_address(address, "address"),
        port=_number(port, 0, MAX_PORT, "port"),
        type=kind,
    )
    return _with_extensions(candidate, fields[8:])


def _with_extensions(candidate: IceCandidate, rest: list[str]) -> IceCandidate:
    if len(rest) % 2:
        raise CandidateError("the candidate ends with a name that has no value")
    related_address = related_port = tcp_type = None
    extensions = []
    for name, value in zip(rest[::2], rest[1::2]):
        if name == "raddr":
            related_address = _address(value, "related address")
        elif name == "rport":
            related_port = _number(value, 0, MAX_PORT, "related port")
        elif name == "tcptype":
            if value not in TCP_TYPES:
                raise CandidateError("the candidate's tcptype is not active, passive or so")
            tcp_type = value
        elif not (_TOKEN.fullmatch(name) and _TOKEN.fullmatch(value)):
            raise CandidateError("the candidate has an extension name or value that is too long")
        else:
            extensions.append((name, value))
    return IceCandidate(candidate.foundation, candidate.component, candidate.transport, candidate.priority,
                        candidate.address, candidate.port, candidate.type, related_address, related_port,
                        tcp_type, tuple(extensions))


def _number(text: str, low: int, high: int, what: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise CandidateError(f"the candidate's {what} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CandidateError(f"the candidate's {what} is not between {low} and {high}")
    return value


def _address(text: str, what: str) -> str:
    if _MDNS_NAME.fullmatch(text) and len(text) <= 253:
        return text
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise CandidateError(f"the candidate's {what} is neither an IP address nor an mDNS .local name") from None
    return text

"""The guards: malformed input from the network is dropped and counted, never allowed to stop a transport.

Applied once per process by `install_guards()` (every peer connection tvapp makes, server, SDK and TV alike, goes
through tvapp.rtc.peer, which calls it), with `route_rtx` (tvapp.rtc.internals.recovery) and the ICE host
sockets' port range and announced candidates (tvapp.rtc.internals.hosts):

- `guard_datagrams`: aioice hands every datagram that is not STUN to the connection, from any address.
  A datagram from an address ICE does not know (no candidate pair, no authenticated check) is dropped
  unless it is STUN, an empty datagram is dropped (aiortc's DTLS transport reads its first byte unchecked),
  an exception aioice raises on a STUN message (`struct.error` on an attribute of the wrong size, `KeyError`
  on a check without PRIORITY) is caught, and at most `MAX_QUEUED_DATAGRAMS` wait for the DTLS transport
  (before ICE connects, nothing reads them).
- `guard_rtp_handling`: `struct.error` while aiortc parses or routes an RTP/RTCP packet (an RTP header
  extension of the wrong size, a REMB counting more SSRCs than it carries) drops that packet; any other
  exception (but ConnectionError, aiortc's own way to end) drops it too and is logged as an ERROR with its
  traceback, so a bug shows without stopping the transport.
- `guard_connect_race`: aiortc starts a peer connection's senders and receivers in a background task
  (`__connect`) after each description; one still waiting for DTLS can resume while the next answer is
  being applied (transceivers already marked, the description not yet replaced) and die on an IndexError,
  logged as "Task exception was never retrieved". The answer being applied starts its own, so that
  IndexError is dropped (at DEBUG) and anything else still raised. So is the InvalidStateError of one the peer
  connection's closing overtook (a participant leaving while its transports start).
- `guard_ssrcs`: every SSRC that passes SRTP costs libsrtp a stream and aiortc some dicts, never given back;
  a transport admits at most `SSRCS_BASE + SSRCS_PER_MLINE` x its m-lines, and drops packets of any
  further SSRC before decrypting them (`ssrc_admission` reads a transport's count).

Every drop is counted by kind (`dropped()`, tvapp.rtc.internals.patching) and logged as a WARNING at most once a
minute per kind.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable
from typing import Any

import aioice
import aioice.ice
import aioice.stun
import aiortc
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter

from tvapp.rtc.internals.hosts import _bind_host_sockets
from tvapp.rtc.internals.patching import (
    _CONNECT,
    _GATHER,
    _ICE_TRANSPORTS,
    _KNOWN_SOURCES,
    _REMOTE_DESCRIPTION,
    AiortcInternalsChanged,
    _drop,
    _exception_name,
    _fail,
    _originals,
    _wrap,
)
from tvapp.rtc.internals.recovery import route_rtx

MAX_QUEUED_DATAGRAMS = 1000  # more than a socket's default receive buffer holds: only an unread queue fills up
SSRCS_BASE = 8
SSRCS_PER_MLINE = 4  # an m-line needs 1 (a receiver's RTCP) to 2 (media and RTX), simulcast aside


_guards_installed = False  # apart from _originals: use_video_receive_buffers wraps through _wrap too


def _guard_problems() -> list[str]:
    """Name what the guards wrap that the installed aiortc/aioice lacks."""
    problems = []
    for owner, name in ((aioice.ice.StunProtocol, "datagram_received"), (aioice.ice.Connection, "data_received"),
                        (RTCDtlsTransport, "_setup_srtp"), (RTCDtlsTransport, "_handle_rtp_data"),
                        (RTCDtlsTransport, "_register_rtp_receiver"),
                        (RTCDtlsTransport, "_handle_rtcp_data"), (RTCPeerConnection, _CONNECT),
                        (RTCPeerConnection, _REMOTE_DESCRIPTION), (RTCRtpTransceiver, "_get_mline_index")):
        if not callable(_originals.get(f"{owner.__name__}.{name}", getattr(owner, name, None))):
            problems.append(f"{owner.__name__}.{name} is gone")
    for attr in ("_check_list", "_early_checks", "_queue"):
        if attr not in aioice.ice.Connection.__init__.__code__.co_names:
            problems.append(f"aioice's Connection no longer sets {attr}")
    for owner, name in ((aioice.ice.Connection, "get_component_candidates"), (RTCPeerConnection, _GATHER)):
        if not callable(_originals.get(f"{owner.__name__}.{name}", getattr(owner, name, None))):
            problems.append(f"{owner.__name__}.{name} is gone")
    binds = _originals.get("Connection.get_component_candidates", aioice.ice.Connection.get_component_candidates)
    if not {"get_running_loop", "create_datagram_endpoint"} <= set(binds.__code__.co_names):
        problems.append("aioice's get_component_candidates no longer binds through asyncio.get_running_loop()")
    if getattr(aioice.ice, "asyncio", None) is None:
        problems.append("aioice.ice no longer imports asyncio")
    if _ICE_TRANSPORTS not in RTCPeerConnection.__init__.__code__.co_names:
        problems.append("RTCPeerConnection no longer sets __iceTransports")
    for attr in ("_rx_srtp", "_rtp_router"):
        if attr not in RTCDtlsTransport.__init__.__code__.co_names:
            problems.append(f"RTCDtlsTransport no longer sets {attr}")
    if not callable(getattr(aioice.stun, "parse_message", None)):
        problems.append("aioice.stun.parse_message is gone")
    return problems


def install_guards() -> None:
    """Apply every guard below to aiortc/aioice, once per process (later calls do nothing)."""
    global _guards_installed
    if _guards_installed:
        return
    problems = _guard_problems()
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))
    _guards_installed = True
    guard_datagrams()
    guard_rtp_handling()
    guard_connect_race()
    guard_ssrcs()
    route_rtx()
    _bind_host_sockets()


def guard_datagrams() -> None:
    """Drop datagrams from unknown addresses (but STUN), empty ones, and STUN that aioice fails on; cap the queue."""

    def make_received(original: Callable[..., None]) -> Callable[..., None]:
        def datagram_received(protocol: Any, data: bytes, addr: tuple[Any, ...]) -> None:
            if not data:
                _drop("empty datagrams")
                return
            if not _known_source(protocol, (addr[0], addr[1])):
                try:
                    aioice.stun.parse_message(data)
                except ValueError:
                    _drop("datagrams from an address ICE does not know")
                    return
                except Exception as exc:
                    _drop(f"STUN messages aioice could not parse ({_exception_name(exc)})")
                    return
            try:
                original(protocol, data, addr)
            except Exception as exc:  # aioice handles STUN without checking attribute sizes or presence
                _drop(f"STUN messages aioice failed on ({_exception_name(exc)})")

        return datagram_received

    def make_data_received(original: Callable[..., None]) -> Callable[..., None]:
        def data_received(connection: Any, data: bytes, component: int) -> None:
            if not data:
                _drop("empty datagrams")
            elif connection._queue.qsize() >= MAX_QUEUED_DATAGRAMS:
                _drop("datagrams beyond the receive queue's limit (nothing reads it before ICE connects)")
            else:
                original(connection, data, component)

        return data_received

    _wrap(aioice.ice.StunProtocol, "datagram_received", make_received)
    _wrap(aioice.ice.Connection, "data_received", make_data_received)


def _known_source(protocol: Any, addr: tuple[Any, Any]) -> bool:
    """Tell whether ICE knows `addr` on `protocol`: a candidate pair's remote end, or an authenticated check."""
    known: set[tuple[Any, Any]] | None = protocol.__dict__.get(_KNOWN_SOURCES)
    if known is not None and addr in known:
        return True
    connection = protocol.receiver
    found = any(pair.protocol is protocol and pair.remote_addr == addr for pair in connection._check_list) or any(
        source is protocol and checked == addr for _, checked, source in connection._early_checks)
    if found:
        if known is None:
            known = set()
            setattr(protocol, _KNOWN_SOURCES, known)
        known.add(addr)  # bounded: every address here has a pair or an authenticated check
    return found


def guard_rtp_handling() -> None:
    """Drop an RTP/RTCP packet that aiortc raises on while parsing or routing it, instead of ending the transport."""

    def make(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
        async def handle(transport: Any, *args: Any, **kwargs: Any) -> None:
            try:
                await original(transport, *args, **kwargs)
            except ConnectionError:  # how aiortc says the transport is done: let it end as it would
                raise
            except struct.error:
                _drop(f"{what} aiortc could not parse (a field of the wrong size or count)")
            except Exception as exc:
                _fail(what, exc)

        return handle

    _wrap(RTCDtlsTransport, "_handle_rtp_data", functools.partial(make, "RTP packets"))
    _wrap(RTCDtlsTransport, "_handle_rtcp_data", functools.partial(make, "RTCP packets"))


def guard_connect_race() -> None:
    """Let a peer connection's start-up task that a newer answer overtook end quietly (see the module docstring)."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        async def connect(pc: Any) -> None:
            try:
                await original(pc)
            except IndexError:
                if not _remote_description_behind(pc):
                    raise
                _drop("peer connection start-ups overtaken by the next answer (its own start-up follows)",
                      logging.DEBUG)
            except aiortc.InvalidStateError:  # "RTCIceTransport is closed": the peer connection closed meanwhile
                if pc.signalingState != "closed" and getattr(pc, "_RTCPeerConnection__isClosed", None) is None:
                    raise  # (an answer applied during the close can have set signalingState back to "stable")
                _drop("peer connection start-ups ended by the peer connection closing", logging.DEBUG)

        return connect

    _wrap(RTCPeerConnection, _CONNECT, make)


def _remote_description_behind(pc: Any) -> bool:
    """Tell whether a transceiver has an m-line the remote description does not have yet."""
    remote = getattr(pc, _REMOTE_DESCRIPTION)()
    count = len(remote.media) if remote is not None else 0
    return any((index := t._get_mline_index()) is not None and index >= count for t in pc.getTransceivers())


class _SsrcAdmission:
    """Stands in for a transport's inbound SRTP session: decrypts packets of admitted SSRCs only.

    An SSRC is admitted when its first packet authenticates, while the transport has fewer than its limit;
    packets of any other SSRC are refused before libsrtp sees them (so it clones no stream for them).
    """

    __slots__ = ("admitted", "router", "session")

    def __init__(self, session: pylibsrtp.Session, router: RtpRouter) -> None:
        self.session = session
        self.router = router
        self.admitted: set[int] = set()

    def limit(self) -> int:
        """Return how many SSRCs the transport may use: a few per m-line it carries."""
        return SSRCS_BASE + SSRCS_PER_MLINE * (len(self.router.receivers) + len(self.router.senders))

    def unprotect(self, data: bytes) -> bytes:
        """Decrypt one SRTP packet (its SSRC at bytes 8-11)."""
        return self._admit(data, 8, self.session.unprotect)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        """Decrypt one SRTCP packet (its sender's SSRC at bytes 4-7)."""
        return self._admit(data, 4, self.session.unprotect_rtcp)

    def _admit(self, data: bytes, offset: int, unprotect: Callable[[bytes], bytes]) -> bytes:
        if len(data) < offset + 4:
            return unprotect(data)  # libsrtp refuses it, and creates nothing
        ssrc = int.from_bytes(data[offset:offset + 4], "big")
        if ssrc in self.admitted:
            return unprotect(data)
        if len(self.admitted) >= self.limit():
            _drop("SRTP packets of SSRCs beyond the transport's limit")
            raise pylibsrtp.Error("SSRC beyond the transport's limit")  # aiortc drops the packet quietly
        clear = unprotect(data)  # raises unless authentic: a stranger cannot use up the limit
        self.admitted.add(ssrc)
        return clear


def guard_ssrcs() -> None:
    """Cap the SSRCs each DTLS transport decrypts packets of (see `_SsrcAdmission`)."""

    def make(original: Callable[..., None]) -> Callable[..., None]:
        def setup_srtp(transport: Any) -> None:
            original(transport)
            if transport._rx_srtp is not None and not isinstance(transport._rx_srtp, _SsrcAdmission):
                transport._rx_srtp = _SsrcAdmission(transport._rx_srtp, transport._rtp_router)

        return setup_srtp

    _wrap(RTCDtlsTransport, "_setup_srtp", make)


def ssrc_admission(transport: Any) -> tuple[int, int] | None:
    """Return how many SSRCs a DTLS transport admitted so far and its limit now (None before SRTP is set up)."""
    session = getattr(transport, "_rx_srtp", None)
    return (len(session.admitted), session.limit()) if isinstance(session, _SsrcAdmission) else None

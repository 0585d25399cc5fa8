"""Every use of aiortc/aioice private attributes in tvapp, behind small functions (pinned: aiortc 1.16.0).

- `tap_receiver`: replace a receiver's jitter buffer and decoder queue so each incoming RTP packet
  (RTX already unwrapped, payload already depayloaded into ``packet._data``) goes to a callback and
  nothing is ever decoded. The SFU reassembles frames itself (tvapp.core.framing) without the buffer's
  extra frame of latency.
- `send_pli`: ask a publisher for a keyframe through its receiver's RTCP (to the media SSRC).
- `on_keyframe_request`: learn that the remote end of a sender sent PLI/FIR (aiortc only flags its own
  encoder, which pre-encoded packets bypass).
- `packets_received`: how many datagrams a peer connection's transports have received (RTP, RTCP and DTLS alike),
  read without building a stats report: the dead-path watch of tvapp.core.reconnect reads it several times a second.
- `receive_counts`: a receiver's cumulative packets received and lost and its jitter, media SSRCs only (aiortc's
  own getStats gives every SSRC the same id, so an RTX stream hides the media one); the SFU's network quality.
- `set_host_addresses`: choose the host candidates ICE gathers (aioice skips 127.0.0.1 otherwise).
- `set_port_range`: bind every ICE host socket inside `[media] udp_port_range` (aioice binds port 0
  otherwise): aioice.ice's `asyncio` is replaced by a shim whose running loop binds a host socket (a
  datagram endpoint on port 0) to a free port of the range, tried from a rotating start. A range with no free
  port left makes gathering fail with `PortRangeExhausted` (an OSError naming the range) at once, not an ICE
  timeout later.
- `new_peer_connection(announced=...)` (tvapp.rtc.peer) marks a peer connection so that, for each host
  candidate, every announced address of its family (`[media] announced_addresses`, a 1:1 NAT's public IP) is
  offered too, as a server-reflexive candidate on the same port with the host candidate as its related
  address. It is offered in addition to the private host candidate, which keeps LAN clients direct.
- `wrap_receiver_decoders`: build every decoder aiortc's receivers make through a wrapper (aiortc's
  decoder_worker looks `get_decoder` up in its module) and `decoder_thread`, the thread a receiver decodes in;
  tvapp.client.decodecost meters decode cost with them.
- `use_video_receive_buffers`: give every video receiver aiortc creates another jitter buffer (the SDK's
  tvapp.client.receivebuffer, which gives a lost packet up and asks for a keyframe instead of stalling).
- `install_guards`: make aiortc/aioice drop malformed input from the network instead of raising, which
  would stop a participant's DTLS transport or log a traceback per datagram (see "Guards" below).

`check_internals()` raises `AiortcInternalsChanged` naming what moved; the server calls it at start-up.

Guards, applied once per process by `install_guards()` (every peer connection tvapp makes, server, SDK
and TV alike, goes through tvapp.rtc.peer, which calls it):

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
- `route_rtx`: aiortc's RTP router learns a receiver's media SSRC from the remote description but not its RTX
  SSRC; an RTX packet is then routed by payload type alone, which works only while one receiver of the transport
  has that payload type. With two video m-lines on a bundled transport (a member subscribed to several publishers,
  a publisher with a simulcast rendition) every retransmission was dropped: a lost packet was never recovered and
  aiortc's video jitter buffer (512 packets) held every later frame back, so nothing was decoded for up to 512
  packets (over 30 s for a 15 fps rendition). Each receiver's RTX SSRC is now registered with the router too.
- `guard_ssrcs`: every SSRC that passes SRTP costs libsrtp a stream and aiortc some dicts, never given back;
  a transport admits at most `SSRCS_BASE + SSRCS_PER_MLINE` x its m-lines, and drops packets of any
  further SSRC before decrypting them.

Every drop is counted by kind (`dropped()`) and logged as a WARNING at most once a minute per kind.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import ipaddress
import logging
import os
import random
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import aioice
import aioice.ice
import aioice.stun
import aiortc
import aiortc.rtcrtpreceiver
import pylibsrtp
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from tvapp.core.drops import DropCounter

PINNED_AIORTC = "1.16.0"
PINNED_AIOICE = "0.13.0"  # what aiortc 1.16.0 installs; the guards wrap its methods too
_JITTER = "_RTCRtpReceiver__jitter_buffer"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"
_RTX_SSRCS = "_RTCRtpReceiver__rtx_ssrc"
_CODECS = "_RTCRtpReceiver__codecs"
_ENV_HOSTS = "TVAPP_MEDIA_HOST_ADDRESSES"
_KNOWN_SOURCES = "_tvapp_known_sources"
_CONNECT = "_RTCPeerConnection__connect"
_REMOTE_DESCRIPTION = "_RTCPeerConnection__remoteDescription"
_GATHER = "_RTCPeerConnection__gather"
_ICE_TRANSPORTS = "_RTCPeerConnection__iceTransports"
ANNOUNCED = "_tvapp_announced"

MAX_QUEUED_DATAGRAMS = 1000  # more than a socket's default receive buffer holds: only an unread queue fills up
SSRCS_BASE = 8
SSRCS_PER_MLINE = 4  # an m-line needs 1 (a receiver's RTCP) to 2 (media and RTX), simulcast aside

log = logging.getLogger(__name__)

_original_host_addresses = aioice.ice.get_host_addresses


class AiortcInternalsChanged(RuntimeError):
    """The installed aiortc no longer has the private attributes tvapp relies on."""


class _PacketTap:
    """Stands in for the receiver's JitterBuffer: hands each packet on, never returns a frame."""

    __slots__ = ("on_packet", "capacity")

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        self.on_packet = on_packet
        self.capacity = 1

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self.on_packet(packet)
        return False, None


class _NoDecoder:
    """Stands in for the receiver's decoder queue: the decoder thread finds nothing and ends at once."""

    def get(self) -> None:
        return None

    def put(self, item: object) -> None:
        pass


def check_internals() -> None:
    """Raise AiortcInternalsChanged unless the installed aiortc has what this module uses."""
    problems = []
    if aiortc.__version__ != PINNED_AIORTC:
        problems.append(f"aiortc {aiortc.__version__} is installed, tvapp is pinned to {PINNED_AIORTC}")
    if aioice.__version__ != PINNED_AIOICE:
        problems.append(f"aioice {aioice.__version__} is installed, tvapp's guards expect {PINNED_AIOICE}")
    problems += _guard_problems()
    for owner, name in ((RTCRtpReceiver, "_send_rtcp_pli"), (RTCRtpReceiver, "_handle_rtp_packet"),
                        (RTCRtpSender, "_send_keyframe"), (RTCRtpSender, "_handle_rtcp_packet")):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")
    if not callable(getattr(aiortc.rtcrtpreceiver, "get_decoder", None)):
        problems.append("aiortc.rtcrtpreceiver.get_decoder is gone")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    init_names = _originals.get("RTCRtpReceiver.__init__", RTCRtpReceiver.__init__).__code__.co_names
    for attr in (_JITTER, _DECODER_QUEUE, _DECODER_THREAD, _ESTIMATOR, _RTCP_SSRC, _REMOTE_STREAMS, _RTX_SSRCS,
                 _CODECS):
        if attr not in init_names:
            problems.append(f"RTCRtpReceiver no longer sets {attr.split('__')[1]}")
    if _RX_PACKETS not in RTCDtlsTransport.__init__.__code__.co_names:
        problems.append("RTCDtlsTransport no longer counts received packets")
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))


def packets_received(pc: Any) -> int:
    """Return how many datagrams `pc`'s DTLS transports have received so far (0 before any exists)."""
    total = 0
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None:
            total = max(total, int(getattr(transport, _RX_PACKETS, 0)))
    return total


def receive_counts(receiver: RTCRtpReceiver) -> tuple[int, int, float] | None:
    """Return (packets received, packets lost, jitter in seconds) of a receiver's media streams; None before any."""
    streams = getattr(receiver, _REMOTE_STREAMS, None) or {}
    rtx = getattr(receiver, _RTX_SSRCS, None) or {}
    media = [stream for ssrc, stream in list(streams.items()) if ssrc not in rtx]
    if not media:
        return None
    received = sum(int(stream.packets_received) for stream in media)
    lost = sum(int(stream.packets_lost) for stream in media)
    jitter = max((stream.jitter / stream._clockrate for stream in media if stream._clockrate), default=0.0)
    return received, lost, float(jitter)


def local_address(pc: Any) -> str | None:
    """Return the host address `pc`'s nominated ICE pair sends from (None before one is nominated, or when it is a
    relay: its candidate's address is the TURN server's, not one of this host's)."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        connection = getattr(getattr(transport, "transport", None), "_connection", None)
        nominated = getattr(connection, "_nominated", None)  # aioice: {component: CandidatePair}
        if nominated:
            candidate = nominated[min(nominated)].local_candidate
            return str(candidate.host) if candidate.type == "host" else None
    return None


def tap_receiver(receiver: RTCRtpReceiver, on_packet: Callable[[RtpPacket], None], *,
                 estimate_bandwidth: bool = True) -> None:
    """Send every RTP packet `receiver` accepts to `on_packet` instead of reassembling and decoding it.

    With `estimate_bandwidth` False the receiver also stops running aiortc's per-packet REMB estimator
    (the SFU sends its own periodic REMB with `send_remb`).
    """
    for attr in (_JITTER, _DECODER_QUEUE, _ESTIMATOR):
        if not hasattr(receiver, attr):
            raise AiortcInternalsChanged(f"RTCRtpReceiver has no {attr}")
    # A receiver already started has a decoder thread waiting on the old queue: let it end.
    getattr(receiver, _DECODER_QUEUE).put(None)
    setattr(receiver, _JITTER, _PacketTap(on_packet))
    setattr(receiver, _DECODER_QUEUE, _NoDecoder())
    if not estimate_bandwidth:
        setattr(receiver, _ESTIMATOR, None)


def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrcs: Sequence[int]) -> asyncio.Task[None] | None:
    """Tell the remote sender of `receiver` the most it may send (RTCP REMB), in the background."""
    rtcp_ssrc = getattr(receiver, _RTCP_SSRC, None)
    if rtcp_ssrc is None or not media_ssrcs:
        return None
    packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                            fci=pack_remb_fci(int(bitrate), list(media_ssrcs)))
    coro: Any = receiver._send_rtcp(packet)
    return asyncio.ensure_future(coro)



def depayloaded(packet: RtpPacket) -> bytes:
    """Return the codec payload aiortc's receiver extracted from an RTP packet (the VP8/H.264 descriptor gone)."""
    data: bytes = getattr(packet, "_data", b"")
    return data


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> asyncio.Task[None]:
    """Send a Picture Loss Indication for `media_ssrc` to the remote end of `receiver` (in the background)."""
    coro: Any = receiver._send_rtcp_pli(media_ssrc)
    return asyncio.ensure_future(coro)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` whenever the remote end of `sender` asks for a keyframe (PLI or FIR)."""
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise AiortcInternalsChanged("RTCRtpSender has no _send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


_SENDER_STATS = "_RTCRtpSender__stats"
_SENDER_PACKETS = "_RTCRtpSender__packet_count"
_SENDER_OCTETS = "_RTCRtpSender__octet_count"


def sender_counts(sender: RTCRtpSender) -> tuple[int, int, int, int] | None:
    """Return (packets sent, bytes sent, packets the remote end reported received, and lost) of a sender, read
    without building a stats report (cheap enough for every 250 ms); the last two are those of its latest RTCP
    receiver report, -1 before any. None if aiortc no longer keeps these."""
    packets = getattr(sender, _SENDER_PACKETS, None)
    octets = getattr(sender, _SENDER_OCTETS, None)
    stats = getattr(sender, _SENDER_STATS, None)
    if packets is None or octets is None or stats is None:
        return None
    received = lost = -1
    for entry in list(stats.values()):
        if getattr(entry, "type", None) == "remote-inbound-rtp":
            received, lost = int(entry.packetsReceived or 0), int(entry.packetsLost or 0)
    return int(packets), int(octets), received, lost


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(bps)` with every REMB the remote end of `sender` sends about it (aiortc's own handling stays)."""
    original = getattr(sender, "_handle_rtcp_packet", None)
    if not callable(original):
        raise AiortcInternalsChanged("RTCRtpSender has no _handle_rtcp_packet")

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                if sender._ssrc in ssrcs:
                    callback(int(bitrate))
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def on_nack(sender: RTCRtpSender, callback: Callable[[list[int]], None]) -> None:
    """Call `callback(seqs)` with the sequence numbers of every NACK the remote end of `sender` sends about it
    (aiortc's receiver NACKs at once on a gap, where its receiver reports come every 0.5-1.5 s; the retransmission
    stays aiortc's)."""
    original = getattr(sender, "_handle_rtcp_packet", None)
    if not callable(original):
        raise AiortcInternalsChanged("RTCRtpSender has no _handle_rtcp_packet")

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK and packet.media_ssrc == sender._ssrc:
            callback(list(packet.lost))
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def wrap_receiver_decoders(wrap: Callable[[Any, Any], Any]) -> None:
    """Make aiortc's receivers use `wrap(decoder, codec)` for each decoder they make from now on."""
    make = getattr(aiortc.rtcrtpreceiver, "get_decoder")  # noqa: B009 (not in its __all__)

    def wrapped(codec: Any) -> Any:
        return wrap(make(codec), codec)

    setattr(aiortc.rtcrtpreceiver, "get_decoder", wrapped)  # decoder_worker looks it up in its module


def use_video_receive_buffers(make: Callable[[Callable[[int], str | None]], Any]) -> None:
    """Give every video receiver aiortc creates from now on `make(codec_of)` as its jitter buffer, `codec_of`
    naming the codec of a payload type (tvapp.client.receivebuffer; the SFU's tap_receiver replaces it anyway)."""

    def wrap(original: Callable[..., None]) -> Callable[..., None]:
        def init(receiver: Any, kind: str, transport: Any) -> None:
            original(receiver, kind, transport)
            if kind == "video":
                def codec_of(payload_type: int) -> str | None:
                    codec = getattr(receiver, _CODECS, {}).get(payload_type)
                    return None if codec is None else str(codec.mimeType.split("/")[1])

                setattr(receiver, _JITTER, make(codec_of))

        return init

    _wrap(RTCRtpReceiver, "__init__", wrap)


def decoder_thread(receiver: RTCRtpReceiver) -> Any:
    """Return the thread a receiver decodes in (None before its first frame)."""
    return getattr(receiver, _DECODER_THREAD, None)


def set_host_addresses(addresses: Sequence[str] | None) -> None:
    """Offer exactly these host addresses as ICE candidates (None: aioice's default, every non-loopback one)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_host_addresses
        return
    chosen = [a.strip() for a in addresses if a.strip()]

    def fixed(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = fixed


def default_host_addresses() -> list[str]:
    """Return the addresses aioice gathers by default (every non-loopback one of this machine)."""
    return list(_original_host_addresses(use_ipv4=True, use_ipv6=True))


def configure_from_env() -> None:
    """Apply TVAPP_MEDIA_HOST_ADDRESSES (comma-separated) when it is set."""
    value = os.environ.get(_ENV_HOSTS)
    if value is not None:
        set_host_addresses(value.split(",") if value.strip() else None)


def negotiated_codecs(transceiver: Any) -> list[Any]:
    """Return the RTCRtpCodecParameters negotiated for a transceiver, preferred (in use) first."""
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        raise AiortcInternalsChanged("RTCRtpTransceiver has no _codecs")
    return list(codecs)


# --- guards: malformed input from the network is dropped and counted, never allowed to stop a transport ---

_drops = DropCounter(interval_s=60.0)
_originals: dict[str, Any] = {}
_guards_installed = False  # apart from _originals: use_video_receive_buffers wraps through _wrap too


def dropped() -> dict[str, int]:
    """Return how many inputs of each kind the guards dropped in this process so far."""
    return _drops.totals()


def _drop(kind: str, level: int = logging.WARNING) -> None:
    report = _drops.drop(kind, time.monotonic())
    if report is not None:
        log.log(level, "media: dropped %d %s (%d in all; said at most once a minute)", report.count, report.kind,
                    report.total)


def _fail(what: str, exc: BaseException) -> None:
    """Drop what an unexpected exception stopped: an ERROR with its traceback, at most once a minute per place."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{os.path.basename(frame.tb_frame.f_code.co_filename)}:{frame.tb_lineno}" if frame else "?"
    report = _drops.drop(f"{what} that raised {_exception_name(exc)} at {where}", time.monotonic())
    if report is not None:
        log.error("media: dropped %d %s (%d in all; said at most once a minute)", report.count, report.kind,
                  report.total, exc_info=exc)


def _exception_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


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


def _wrap(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    key = f"{owner.__name__}.{name}"
    if key in _originals:
        return
    original = _originals[key] = getattr(owner, name)
    setattr(owner, name, functools.wraps(original)(make(original)))


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


def route_rtx() -> None:
    """Register each receiver's RTX SSRC with its transport's RTP router, as aiortc does its media SSRC."""

    def make(original: Callable[..., None]) -> Callable[..., None]:
        def register(transport: Any, receiver: Any, parameters: Any) -> None:
            original(transport, receiver, parameters)
            table = transport._rtp_router.ssrc_table
            for encoding in parameters.encodings:
                if encoding.rtx is not None and encoding.rtx.ssrc is not None:
                    table[encoding.rtx.ssrc] = receiver  # route_rtp checks the payload type is the receiver's

        return register

    _wrap(RTCDtlsTransport, "_register_rtp_receiver", make)


def ssrc_admission(transport: Any) -> tuple[int, int] | None:
    """Return how many SSRCs a DTLS transport admitted so far and its limit now (None before SRTP is set up)."""
    session = getattr(transport, "_rx_srtp", None)
    return (len(session.admitted), session.limit()) if isinstance(session, _SsrcAdmission) else None



# --- ICE host sockets: a UDP port range and announced addresses ---

_port_range: tuple[int, int] | None = None


class PortRangeExhausted(OSError):
    """No port of `[media] udp_port_range` is free for an ICE host socket."""


class HostAddressUnusable(OSError):
    """No ICE host socket could be bound for another reason than a full range (e.g. the address is gone)."""


# address -> why this gathering's host socket could not be bound there (aioice logs and swallows it); one dict per
# gathering task, so concurrent gatherings do not see each other's failures
_bind_errors: contextvars.ContextVar[dict[str, OSError] | None] = contextvars.ContextVar("bind_errors", default=None)


def set_port_range(ports: tuple[int, int] | None) -> None:
    """Bind every ICE host socket of this process to a port in `ports` (low, high inclusive); None: any port."""
    global _port_range
    if ports is not None and not 0 < ports[0] <= ports[1] <= 65535:
        raise ValueError(f"bad port range {ports}")
    _port_range = ports


def port_range() -> tuple[int, int] | None:
    """Return the port range ICE host sockets are bound in (None: any port)."""
    return _port_range


def _port_taken(exc: OSError) -> bool:
    """Tell whether a failed bind means that port is taken (try the next one) rather than a real failure.

    uvloop (the core's loop) raises a bare OSError("could not bind to local_addr ...") without an errno and chains
    the bind's own error as its cause; asyncio's loop raises the bind's error itself."""
    for error in (exc, exc.__cause__):
        if isinstance(error, OSError) and error.errno in (errno.EADDRINUSE, errno.EACCES):
            return True
    return False


async def _bind_in_range(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], address: str,
                         ports: tuple[int, int]) -> tuple[Any, Any]:
    low, high = ports
    count = high - low + 1
    start = random.randrange(count)
    for i in range(count):
        try:
            return await loop.create_datagram_endpoint(factory, local_addr=(address, low + (start + i) % count))
        except OSError as exc:
            if not _port_taken(exc):
                raise
    raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in udp_port_range {low}-{high} on {address}")


class _LoopInRange:
    """The running loop as aioice's host gathering sees it: a host socket (port 0) lands in the port range."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, factory: Callable[[], Any], *args: Any, **kwargs: Any) -> Any:
        ports = _port_range
        local = kwargs.get("local_addr")
        if ports is None or args or set(kwargs) != {"local_addr"} or local is None or local[1] != 0:
            return await self._loop.create_datagram_endpoint(factory, *args, **kwargs)
        try:
            return await _bind_in_range(self._loop, factory, local[0], ports)
        except OSError as exc:
            errors = _bind_errors.get()
            if errors is not None:
                errors[local[0]] = exc
            raise


class _AsyncioForIce:
    """Stands in for the asyncio module inside aioice.ice; only get_running_loop differs."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop() -> Any:
        return _LoopInRange(asyncio.get_running_loop())


def _bind_host_sockets() -> None:
    """Put host sockets in the port range, fail clearly when it is full, add announced candidates."""
    setattr(aioice.ice, "asyncio", _AsyncioForIce())  # noqa: B010 - aioice.ice does not export asyncio

    def make_candidates(original: Callable[..., Any]) -> Callable[..., Any]:
        async def get_component_candidates(connection: Any, component: int, addresses: list[str],
                                           *args: Any, **kwargs: Any) -> list[Candidate]:
            errors: dict[str, OSError] = {}
            _bind_errors.set(errors)
            candidates: list[Candidate] = await original(connection, component, addresses, *args, **kwargs)
            hosts = [c for c in candidates if c.type == "host"]
            ports = _port_range
            if ports is not None and addresses and not hosts:
                other = [f"{a}: {e}" for a, e in errors.items() if not isinstance(e, PortRangeExhausted)]
                if other:  # say what really failed, not "full"
                    raise HostAddressUnusable(errno.EADDRNOTAVAIL, "could not bind an ICE host socket on "
                                              + "; ".join(other))
                raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in udp_port_range "
                                         f"{ports[0]}-{ports[1]} on {', '.join(addresses)}")
            for host in hosts:
                version = ipaddress.ip_address(host.host).version
                for public in connection.__dict__.get(ANNOUNCED, ()):
                    if ipaddress.ip_address(public).version == version and public != host.host:
                        candidates.append(Candidate(
                            foundation=candidate_foundation("srflx", "udp", public), component=component,
                            transport="udp", priority=candidate_priority(component, "srflx"), host=public,
                            port=host.port, type="srflx", related_address=host.host, related_port=host.port))
            return candidates

        return get_component_candidates

    def make_gather(original: Callable[..., Any]) -> Callable[..., Any]:
        async def gather(pc: Any) -> None:
            announced = pc.__dict__.get(ANNOUNCED, ())
            for transport in getattr(pc, _ICE_TRANSPORTS):
                setattr(transport.iceGatherer._connection, ANNOUNCED, announced)
            await original(pc)

        return gather

    _wrap(aioice.ice.Connection, "get_component_candidates", make_candidates)
    _wrap(RTCPeerConnection, _GATHER, make_gather)

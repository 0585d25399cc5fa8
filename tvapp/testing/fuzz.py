"""Hypothesis strategies and helpers for fuzzing what a stranger or a hostile participant can send to a core.

Strategies build RTP bursts, RTCP compounds, STUN messages, raw datagrams, signaling messages and mangled SDP
from tvapp.testing.packets, with the fields a careful peer would never write. `fuzz_settings(n)` runs `n`
examples in the suite, scaled by `TVAPP_FUZZ_EXAMPLES` / 200 when set (`make fuzz`, for a night).

The `*_crash` classifiers run the parser aiortc 1.16 / aioice 0.13 run on a packet, in this process, and return
the name of the exception it raises that aiortc's own caller does not catch (anything but ValueError), or None.
tvapp.rtc.internals guards every such path in the server (and tvapp.core.candidates reads candidates before
aiortc does), so fuzz tests send these packets like any other and only count them; the tests that pin one
bug each use them to show that their packet is one raw aiortc fails on.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tvapp.protocol.messages import CLIENT_MESSAGE_TYPES, PROTOCOL_VERSION
from tvapp.testing import packets as p

T = TypeVar("T")
EXAMPLES_ENV = "TVAPP_FUZZ_EXAMPLES"


REFERENCE_EXAMPLES = 200


def scale() -> float:
    """Return how many times longer than in the suite the fuzz runs: TVAPP_FUZZ_EXAMPLES / 200 (1 when unset)."""
    value = os.environ.get(EXAMPLES_ENV, "").strip()
    return max(1.0, int(value) / REFERENCE_EXAMPLES) if value else 1.0


def examples(default: int) -> int:
    """Return how many examples a fuzz test whose suite run has `default` examples runs now.

    TVAPP_FUZZ_EXAMPLES is the count for a test with the reference 200 in the suite; costlier tests, which
    run fewer in the suite, scale in proportion, so one number sets the length of the whole night.
    """
    return round(default * scale())


def fuzz_settings(default: int) -> settings:
    """Return hypothesis settings for a fuzz test against real processes: no deadline, no slowness checks."""
    return settings(max_examples=examples(default), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


# --- an event loop in a thread, so fuzz examples (plain functions) can drive asyncio peers --------------------


class LoopThread:
    """An asyncio event loop running in a daemon thread; `run(coro)` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coro` on the loop and return its result (TimeoutError after `timeout` seconds)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        """Cancel what is left, stop the loop and join its thread."""
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), 10.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10.0)
            self.loop.close()


# --- what an SDP says ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SdpMedia:
    """What one m-line of an SDP says about RTP: kind, payload types by codec name, SSRCs, extension ids."""

    kind: str
    payload_types: dict[str, int]
    ssrcs: tuple[int, ...]
    extensions: dict[str, int]  # extension URI -> id


def sdp_media(sdp: str) -> list[SdpMedia]:
    """Return the m-lines of an SDP with their payload types, SSRCs and header extension ids."""
    sections = re.split(r"\r?\n(?=m=)", sdp)
    found = []
    for section in sections[1:]:
        kind = section[2:].split(" ", 1)[0]
        pts = {m.group(2).upper(): int(m.group(1)) for m in re.finditer(r"a=rtpmap:(\d+) ([^/\s]+)", section)}
        ssrcs = tuple(dict.fromkeys(int(s) for s in re.findall(r"a=ssrc:(\d+) ", section)))
        exts = {m.group(2): int(m.group(1)) for m in re.finditer(r"a=extmap:(\d+)(?:/\w+)? (\S+)", section)}
        found.append(SdpMedia(kind, pts, ssrcs, exts))
    return found


def sdp_candidate_ports(sdp: str) -> list[int]:
    """Return the UDP ports of the host candidates in an SDP."""
    return sorted({int(m.group(1)) for m in re.finditer(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ", sdp,
                                                       re.IGNORECASE)})


# --- classifiers: would the server's own parser raise something its caller does not catch? -------------------


def rtp_crash(packet: bytes, extensions: dict[str, int]) -> str | None:
    """Return the exception aiortc's RTP parser raises past its caller for `packet` (None: parsed or refused)."""
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u)
                                                         for u, i in extensions.items()]))
    try:
        RtpPacket.parse(packet, ext_map)
    except ValueError:
        return None
    except Exception as exc:
        return f"aiortc RtpPacket.parse: {type(exc).__name__}"
    return None


def rtcp_crash(packet: bytes) -> str | None:
    """Return the exception aiortc raises past its caller for an RTCP compound (parse, then REMB routing)."""
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPacket, RtcpPsfbPacket, unpack_remb_fci

    try:
        parsed = RtcpPacket.parse(packet)
    except ValueError:
        return None
    except Exception as exc:
        return f"aiortc RtcpPacket.parse: {type(exc).__name__}"
    for item in parsed:
        if isinstance(item, RtcpPsfbPacket) and item.fmt == RTCP_PSFB_APP:
            try:
                unpack_remb_fci(item.fci)
            except ValueError:
                pass
            except Exception as exc:
                return f"aiortc unpack_remb_fci: {type(exc).__name__}"
    return None


def stun_crash(datagram: bytes) -> str | None:
    """Return the exception aioice's STUN parser raises past its caller (datagram_received) for a datagram."""
    from aioice import stun

    try:
        stun.parse_message(datagram)
    except ValueError:
        return None
    except Exception as exc:
        return f"aioice parse_message: {type(exc).__name__}"
    return None


def datagram_crash(datagram: bytes) -> str | None:
    """Return what an unguarded SFU socket (aioice, then aiortc's DTLS transport) raises past its caller.

    Unguarded, aioice hands every datagram that is not STUN to the DTLS transport, from any address, and the
    transport reads its first byte without checking there is one.
    """
    crash = stun_crash(datagram)
    if crash is None and not datagram:
        return "aiortc RTCDtlsTransport._recv_next: IndexError (empty datagram)"
    return crash


def candidate_crash(line: str) -> str | None:
    """Return the exception aiortc's own candidate parser raises but ValueError and IndexError (None: parsed or refused)."""
    from aiortc.sdp import candidate_from_sdp

    line = line.strip()
    if not line:
        return None
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    try:
        candidate_from_sdp(line)
    except (ValueError, IndexError):
        return None
    except Exception as exc:
        return f"aiortc candidate_from_sdp: {type(exc).__name__}"
    return None


# --- strategies: numbers a careful peer never writes ------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.one_of(st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF]), st.integers(0, 0xFFFF))
u32 = st.one_of(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF))
u64 = st.one_of(st.sampled_from([0, 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))
small_bytes = st.binary(max_size=64)


def ssrc_choice(known: Sequence[int]) -> st.SearchStrategy[int]:
    """An SSRC: usually one the session really uses, sometimes any (from a bounded set, to bound server state)."""
    fixed_random = [0, 0xFFFFFFFF, 0x12345678, 0xDEADBEEF, 0x0BADF00D, 0x7FFFFFFF]
    options = list(known) + fixed_random
    return st.sampled_from(options)


def rtp_extension_blocks(extension_ids: Sequence[int]) -> st.SearchStrategy[tuple[int, bytes]]:
    """An RTP header extension block: RFC 8285 one- or two-byte elements (ids the session uses or not), or junk."""
    ids = st.one_of(st.sampled_from(list(extension_ids) or [1]), st.integers(0, 15))
    element = st.tuples(ids, st.binary(min_size=0, max_size=17))
    return st.one_of(
        st.lists(element, max_size=5).map(p.one_byte_extensions),
        st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4).map(p.two_byte_extensions),
        st.tuples(u16, st.binary(max_size=48)),
    )


@st.composite
def rtp_packets(draw: st.DrawFn, ssrcs: Sequence[int] = (), payload_types: Sequence[int] = (96,),
                extension_ids: Sequence[int] = ()) -> bytes:
    """One RTP packet: usually well formed for the session, with any field (version, CC, lengths) able to lie."""
    lie = draw(st.sampled_from(["none", "none", "version", "csrc_count", "extension_words", "padding_byte"]))
    extension = draw(st.none() | rtp_extension_blocks(extension_ids))
    csrcs = draw(st.lists(u32, max_size=15))
    padding = draw(st.sampled_from([0, 0, 0, 1, 4, 255]))
    return p.rtp(
        payload_type=draw(st.sampled_from(list(payload_types)) | st.integers(0, 127)),
        sequence=draw(u16), timestamp=draw(u32), ssrc=draw(ssrc_choice(ssrcs)), marker=draw(st.booleans()),
        payload=draw(vp8_like_payloads()), csrcs=csrcs,
        version=draw(st.integers(0, 3)) if lie == "version" else 2,
        csrc_count=draw(st.integers(0, 15)) if lie == "csrc_count" else None,
        extension=extension,
        extension_words=draw(u16) if lie == "extension_words" and extension is not None else None,
        padding=padding, padding_byte=draw(u8) if lie == "padding_byte" else None,
    )


def vp8_like_payloads() -> st.SearchStrategy[bytes]:
    """RTP payloads that start like VP8 (descriptor with S bit, key/inter frame bit) or like nothing at all."""
    descriptor = st.sampled_from([b"\x10", b"\x90\x80\x00", b"\x00", b"\x90\xe0\x80\x01\x00\x01", b""])
    frame = st.binary(max_size=300)
    return st.one_of(st.tuples(descriptor, frame).map(b"".join), st.binary(max_size=1200))


@dataclass(frozen=True)
class RtpBurst:
    """Consecutive RTP packets of one stream: what the SFU's frame assembler sees from a hostile publisher."""

    ssrc: int
    payload_type: int
    packets: tuple[tuple[int, int, bool, bytes], ...]  # (sequence step, timestamp step, marker, payload)


@st.composite
def rtp_bursts(draw: st.DrawFn, ssrcs: Sequence[int], payload_types: Sequence[int]) -> RtpBurst:
    """A burst of 1-24 packets with realistic or absurd steps in sequence number and timestamp."""
    seq_step = st.one_of(st.just(1), st.just(1), st.sampled_from([0, 2, 3, -1, 100, 0x8000, -0x8000]),
                         st.integers(-0xFFFF, 0xFFFF))
    ts_step = st.one_of(st.just(0), st.just(3000), st.sampled_from([1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), u32)
    packet = st.tuples(seq_step, ts_step, st.booleans(), vp8_like_payloads())
    return RtpBurst(draw(ssrc_choice(ssrcs)), draw(st.sampled_from(list(payload_types)) | st.integers(0, 127)),
                    tuple(draw(st.lists(packet, min_size=1, max_size=24))))


@st.composite
def report_blocks(draw: st.DrawFn, ssrcs: Sequence[int]) -> bytes:
    """One reception report block with absurd loss, jitter, LSR/DLSR."""
    return p.report_block(draw(ssrc_choice(ssrcs)), fraction_lost=draw(u8), packets_lost=draw(st.integers(0, 2**24 - 1)),
                          highest=draw(u32), jitter=draw(u32), lsr=draw(u32), dlsr=draw(u32))


def count_lie() -> st.SearchStrategy[int | None]:
    """A count field: honest (None) or any 5-bit value."""
    return st.none() | st.none() | st.integers(0, 31)


@st.composite
def rtcp_packets(draw: st.DrawFn, ssrcs: Sequence[int] = ()) -> bytes:
    """One RTCP packet of any type, targeted at the session's SSRCs, with absurd counts, lengths and values."""
    ssrc = ssrc_choice(ssrcs)
    kind = draw(st.sampled_from(["sr", "rr", "sdes", "bye", "app", "nack", "pli", "fir", "remb", "raw"]))
    blocks = st.lists(report_blocks(ssrcs), max_size=4)
    if kind == "sr":
        return p.sender_report(draw(ssrc), ntp=draw(u64), rtp_ts=draw(u32), packets=draw(u32), octets=draw(u32),
                               blocks=draw(blocks), count=draw(count_lie()),
                               length_words=draw(st.none() | u16))
    if kind == "rr":
        return p.receiver_report(draw(ssrc), draw(blocks), count=draw(count_lie()), length_words=draw(st.none() | u16))
    if kind == "sdes":
        items = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=3)
        return p.sdes(draw(st.lists(st.tuples(ssrc, items), max_size=3)), count=draw(count_lie()))
    if kind == "bye":
        return p.bye(draw(st.lists(ssrc, max_size=5)), reason=draw(small_bytes), count=draw(count_lie()))
    if kind == "app":
        return p.app(draw(ssrc), draw(st.binary(min_size=4, max_size=4)), draw(small_bytes), subtype=draw(st.integers(0, 31)))
    if kind == "nack":
        return p.nack(draw(ssrc), draw(ssrc), draw(st.lists(st.tuples(u16, u16), max_size=40)))
    if kind == "pli":
        return p.pli(draw(ssrc), draw(ssrc))
    if kind == "fir":
        return p.fir(draw(ssrc), draw(st.lists(st.tuples(ssrc, u8), max_size=4)))
    if kind == "remb":
        exponent, mantissa = draw(st.none() | st.tuples(st.integers(0, 63), st.integers(0, 0x3FFFF))) or (None, None)
        return p.remb(draw(ssrc), draw(st.integers(0, 2**40)), draw(st.lists(ssrc, max_size=8)),
                      count=draw(st.none() | st.none() | u8), exponent=exponent, mantissa=mantissa)
    return p.rtcp(draw(st.integers(192, 223)), draw(st.integers(0, 31)), draw(st.binary(max_size=80)),
                  version=draw(st.sampled_from([2, 2, 0, 1, 3])), padding=draw(st.sampled_from([0, 0, 4, 255])),
                  length_words=draw(st.none() | u16))


def rtcp_compounds(ssrcs: Sequence[int] = ()) -> st.SearchStrategy[bytes]:
    """A compound RTCP datagram of 1-4 packets."""
    return st.lists(rtcp_packets(ssrcs), min_size=1, max_size=4).map(b"".join)


@st.composite
def stun_messages(draw: st.DrawFn, usernames: Sequence[str] = (), passwords: Sequence[bytes] = ()) -> bytes:
    """A STUN message: binding requests with wrong or right-looking USERNAME, wrong integrity, bad lengths."""
    attr_type = st.one_of(st.sampled_from(sorted(p.STUN_ATTR.values())), u16)
    username = st.one_of(st.sampled_from(list(usernames) or ["nobody:nobody"]), st.text(max_size=40))
    attributes = [p.stun_attribute(p.STUN_ATTR["USERNAME"], draw(username).encode("utf-8", "surrogatepass"))]
    for kind, value in draw(st.lists(st.tuples(attr_type, st.binary(max_size=40)), max_size=5)):
        attributes.append(p.stun_attribute(kind, value, length=draw(st.none() | st.none() | u16)))
    if draw(st.booleans()):
        attributes.append(p.stun_attribute(p.STUN_ATTR["PRIORITY"], struct.pack("!I", draw(u32))))
        attributes.append(p.stun_attribute(p.STUN_ATTR["ICE-CONTROLLING"], struct.pack("!Q", draw(u64))))
    key = draw(st.none() | st.sampled_from(list(passwords) or [b"wrong"]) | st.binary(max_size=24))
    return p.stun(draw(st.permutations(attributes)),
                  message_type=draw(st.sampled_from([p.STUN_BINDING_REQUEST, 0x0101, 0x0111, 0x0011, 0x0003]) | u16),
                  transaction_id=draw(st.binary(min_size=12, max_size=12)),
                  cookie=draw(st.sampled_from([p.STUN_MAGIC]) | u32), length=draw(st.none() | st.none() | u16),
                  integrity_key=key, fingerprint=draw(st.booleans()))


def datagrams() -> st.SearchStrategy[bytes]:
    """Raw datagrams whose first byte falls in each class a WebRTC port demultiplexes on (RFC 7983)."""
    first = st.one_of(st.integers(0, 3), st.integers(20, 63), st.integers(128, 191), u8)
    return st.one_of(st.tuples(first, st.binary(max_size=1400)).map(lambda t: bytes([t[0]]) + t[1]),
                     st.binary(max_size=1400))


# --- signaling --------------------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=60))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def texts_with_controls() -> st.SearchStrategy[str]:
    """Strings with NUL, control characters, lone surrogates, long runs."""
    return st.one_of(st.text(max_size=80), st.sampled_from(["", "\x00", "a\x00b", "\ud800", "\u202e", "x" * 5000]),
                     st.text(st.characters(max_codepoint=0x1F), max_size=10))


@st.composite
def client_message_objects(draw: st.DrawFn, types: Sequence[str] | None = None) -> dict[str, Any]:
    """A signaling client message as a JSON object: real type and field names, values of any type or shape."""
    import dataclasses

    names = sorted(types if types is not None else CLIENT_MESSAGE_TYPES)
    kind = draw(st.sampled_from(names))
    cls = CLIENT_MESSAGE_TYPES[kind]
    obj: dict[str, Any] = {"type": kind, "v": draw(st.just(PROTOCOL_VERSION) | st.just(PROTOCOL_VERSION) | json_scalars)}
    for field in dataclasses.fields(cls):
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        obj[field.name] = draw(st.one_of(texts_with_controls(), json_values, st.integers(-1, 10**6)))
    if draw(st.integers(0, 4)) == 0:
        obj[draw(st.text(max_size=10))] = draw(json_values)
    return obj


def encoded(obj: Any) -> str:
    """Encode a JSON value as a client would (lone surrogates allowed through, as a hostile client may)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass").decode(
        "utf-8", "replace")


SdpMutation = tuple[str, int, int, str]


def sdp_mutations() -> st.SearchStrategy[list[SdpMutation]]:
    """1-6 edits to apply to whatever SDP a round produces (`mangle_sdp`): drop, duplicate, swap, replace a
    token, insert junk. Drawn apart from the SDP itself, whose ids and ports change from round to round."""
    junk = st.sampled_from(["", "-1", "99999999999", "0", "x", "\x00"]) | st.text(max_size=60)
    edit = st.tuples(st.sampled_from(["drop", "dup", "token", "junk", "swap"]), st.integers(0, 2**16),
                     st.integers(0, 2**16), junk)
    return st.lists(edit, min_size=1, max_size=6)


def mangle_sdp(sdp: str, edits: Sequence[SdpMutation]) -> str:
    """Apply `sdp_mutations()` edits to an SDP; positions wrap around the lines (and tokens) there are."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    for action, where, other, junk in edits:
        if not lines:
            break
        index = where % len(lines)
        if action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "swap":
            second = other % len(lines)
            lines[index], lines[second] = lines[second], lines[index]
        elif action == "token":
            tokens = re.split(r"([ :/=])", lines[index])
            tokens[other % len(tokens)] = junk[:12]
            lines[index] = "".join(tokens)
        else:
            lines.insert(index, junk)
    return "\r\n".join(lines)

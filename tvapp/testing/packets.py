"""Raw RTP, RTCP and STUN packets for fuzzing the media path: every field settable, every length a lie if asked.

The builders take the fields of each header as numbers and never check them, so a test can write what a
careful peer never would: a version of 3, a CSRC count of 15 over a 12-byte packet, an extension length past
the end, a padding byte longer than the packet, an RTCP length word that disagrees with the payload, a REMB
whose SSRC count promises more SSRCs than it carries, a STUN length that does not match the datagram. A field
left as None is filled in with the honest value.

References: RTP RFC 3550 §5.1 (header extension §5.3.1, RFC 8285 one- and two-byte forms), RTCP RFC 3550 §6.4-6.7,
feedback RFC 4585 §6.2-6.3 and RFC 5104 §4.3.1 (FIR), REMB draft-alvestrand-rmcat-remb-03, STUN RFC 8489 §5, §14.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct
from collections.abc import Sequence

# RTCP packet types (RFC 3550, RFC 4585)
SR, RR, SDES, BYE, APP, RTPFB, PSFB = 200, 201, 202, 203, 204, 205, 206
# feedback message types
NACK_FMT = 1
PLI_FMT, FIR_FMT, AFB_FMT = 1, 4, 15

STUN_MAGIC = 0x2112A442
STUN_BINDING_REQUEST = 0x0001
STUN_ATTR = {"USERNAME": 0x0006, "MESSAGE-INTEGRITY": 0x0008, "ERROR-CODE": 0x0009, "PRIORITY": 0x0024,
             "USE-CANDIDATE": 0x0025, "FINGERPRINT": 0x8028, "ICE-CONTROLLED": 0x8029, "ICE-CONTROLLING": 0x802A,
             "XOR-MAPPED-ADDRESS": 0x0020}


def rtp(*, payload_type: int = 96, sequence: int = 0, timestamp: int = 0, ssrc: int = 0, marker: bool = False,
        payload: bytes = b"", version: int = 2, csrcs: Sequence[int] = (), csrc_count: int | None = None,
        extension: tuple[int, bytes] | None = None, extension_words: int | None = None,
        padding: int = 0, padding_flag: bool | None = None, padding_byte: int | None = None) -> bytes:
    """Return one RTP packet (RFC 3550 §5.1).

    `extension` is (profile, body); `extension_words` overrides its declared length in 32-bit words.
    `padding` adds that many padding bytes (the last says how many, unless `padding_byte` lies);
    `padding_flag` overrides the P bit, `csrc_count` the CC field.
    """
    cc = len(csrcs) if csrc_count is None else csrc_count
    p = (padding > 0) if padding_flag is None else padding_flag
    first = ((version & 3) << 6) | (int(p) << 5) | (int(extension is not None) << 4) | (cc & 0x0F)
    data = struct.pack("!BBHII", first, (int(marker) << 7) | (payload_type & 0x7F), sequence & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    data += b"".join(struct.pack("!I", c & 0xFFFFFFFF) for c in csrcs)
    if extension is not None:
        profile, body = extension
        words = (len(body) + 3) // 4 if extension_words is None else extension_words
        data += struct.pack("!HH", profile & 0xFFFF, words & 0xFFFF) + body
    data += payload
    if padding > 0:
        data += bytes(padding - 1) + bytes([(padding if padding_byte is None else padding_byte) & 0xFF])
    return data


def one_byte_extensions(elements: Sequence[tuple[int, bytes]]) -> tuple[int, bytes]:
    """Return an RFC 8285 one-byte header extension block (profile 0xBEDE) of (id, value) elements, padded.

    The length nibble is len(value) - 1 as the RFC says; an empty value writes a nibble of 0 (a 1-byte lie).
    """
    body = b"".join(bytes([((x_id & 0x0F) << 4) | (max(len(v), 1) - 1 & 0x0F)]) + v for x_id, v in elements)
    return 0xBEDE, body + bytes(-len(body) % 4)


def two_byte_extensions(elements: Sequence[tuple[int, bytes]]) -> tuple[int, bytes]:
    """Return an RFC 8285 two-byte header extension block (profile 0x1000), padded."""
    body = b"".join(bytes([x_id & 0xFF, len(v) & 0xFF]) + v for x_id, v in elements)
    return 0x1000, body + bytes(-len(body) % 4)


def rtcp(packet_type: int, count: int, body: bytes, *, version: int = 2, padding: int = 0,
         length_words: int | None = None) -> bytes:
    """Return one RTCP packet (RFC 3550 §6.4.1 common header); `length_words` overrides the length field."""
    if padding:
        body += bytes(padding - 1) + bytes([padding & 0xFF])
    words = (len(body) + 3) // 4 if length_words is None else length_words
    first = ((version & 3) << 6) | (int(padding > 0) << 5) | (count & 0x1F)
    return struct.pack("!BBH", first, packet_type & 0xFF, words & 0xFFFF) + body


def report_block(ssrc: int, *, fraction_lost: int = 0, packets_lost: int = 0, highest: int = 0, jitter: int = 0,
                 lsr: int = 0, dlsr: int = 0) -> bytes:
    """Return one 24-byte reception report block (RFC 3550 §6.4.1)."""
    return (struct.pack("!IB", ssrc & 0xFFFFFFFF, fraction_lost & 0xFF) + (packets_lost & 0xFFFFFF).to_bytes(3, "big")
            + struct.pack("!IIII", highest & 0xFFFFFFFF, jitter & 0xFFFFFFFF, lsr & 0xFFFFFFFF, dlsr & 0xFFFFFFFF))


def sender_report(ssrc: int, *, ntp: int = 0, rtp_ts: int = 0, packets: int = 0, octets: int = 0,
                  blocks: Sequence[bytes] = (), count: int | None = None, length_words: int | None = None) -> bytes:
    """Return an SR (RFC 3550 §6.4.1); `count` overrides the report count."""
    body = struct.pack("!IQIII", ssrc & 0xFFFFFFFF, ntp & 0xFFFFFFFFFFFFFFFF, rtp_ts & 0xFFFFFFFF,
                       packets & 0xFFFFFFFF, octets & 0xFFFFFFFF) + b"".join(blocks)
    return rtcp(SR, len(blocks) if count is None else count, body, length_words=length_words)


def receiver_report(ssrc: int, blocks: Sequence[bytes] = (), *, count: int | None = None,
                    length_words: int | None = None) -> bytes:
    """Return an RR (RFC 3550 §6.4.2); `count` overrides the report count."""
    body = struct.pack("!I", ssrc & 0xFFFFFFFF) + b"".join(blocks)
    return rtcp(RR, len(blocks) if count is None else count, body, length_words=length_words)


def sdes(chunks: Sequence[tuple[int, Sequence[tuple[int, bytes]]]], *, count: int | None = None) -> bytes:
    """Return an SDES packet (RFC 3550 §6.5): chunks of (ssrc, [(item type, value)])."""
    body = b""
    for ssrc, items in chunks:
        chunk = struct.pack("!I", ssrc & 0xFFFFFFFF)
        chunk += b"".join(bytes([kind & 0xFF, len(value) & 0xFF]) + value for kind, value in items)
        chunk += b"\x00"
        body += chunk + bytes(-len(chunk) % 4)
    return rtcp(SDES, len(chunks) if count is None else count, body)


def bye(ssrcs: Sequence[int], *, reason: bytes = b"", count: int | None = None) -> bytes:
    """Return a BYE (RFC 3550 §6.6)."""
    body = b"".join(struct.pack("!I", s & 0xFFFFFFFF) for s in ssrcs)
    if reason:
        body += bytes([len(reason) & 0xFF]) + reason
        body += bytes(-len(body) % 4)
    return rtcp(BYE, len(ssrcs) if count is None else count, body)


def app(ssrc: int, name: bytes = b"FUZZ", data: bytes = b"", *, subtype: int = 0) -> bytes:
    """Return an APP packet (RFC 3550 §6.7)."""
    body = struct.pack("!I", ssrc & 0xFFFFFFFF) + name[:4].ljust(4, b" ") + data
    return rtcp(APP, subtype, body + bytes(-len(body) % 4))


def nack(sender_ssrc: int, media_ssrc: int, pairs: Sequence[tuple[int, int]]) -> bytes:
    """Return a generic NACK (RFC 4585 §6.2.1): (packet id, bitmask of the 16 following) pairs."""
    fci = b"".join(struct.pack("!HH", pid & 0xFFFF, blp & 0xFFFF) for pid, blp in pairs)
    return rtcp(RTPFB, NACK_FMT, struct.pack("!II", sender_ssrc & 0xFFFFFFFF, media_ssrc & 0xFFFFFFFF) + fci)


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """Return a Picture Loss Indication (RFC 4585 §6.3.1)."""
    return rtcp(PSFB, PLI_FMT, struct.pack("!II", sender_ssrc & 0xFFFFFFFF, media_ssrc & 0xFFFFFFFF))


def fir(sender_ssrc: int, entries: Sequence[tuple[int, int]]) -> bytes:
    """Return a Full Intra Request (RFC 5104 §4.3.1): (ssrc, command sequence number) entries."""
    fci = b"".join(struct.pack("!IB3x", s & 0xFFFFFFFF, seq & 0xFF) for s, seq in entries)
    return rtcp(PSFB, FIR_FMT, struct.pack("!II", sender_ssrc & 0xFFFFFFFF, 0) + fci)


def remb(sender_ssrc: int, bitrate: int, ssrcs: Sequence[int], *, count: int | None = None,
         exponent: int | None = None, mantissa: int | None = None) -> bytes:
    """Return a REMB (draft-alvestrand-rmcat-remb-03): an application-layer PSFB whose FCI starts "REMB".

    `count` overrides the number of SSRCs announced; `exponent`/`mantissa` override the bitrate encoding
    (6 and 18 bits: up to 2**63 * 2**18 bps).
    """
    if exponent is None or mantissa is None:
        exponent, mantissa = 0, max(0, bitrate)
        while mantissa > 0x3FFFF:
            mantissa >>= 1
            exponent += 1
    n = len(ssrcs) if count is None else count
    fci = b"REMB" + struct.pack("!BBH", n & 0xFF, ((exponent & 0x3F) << 2) | ((mantissa >> 16) & 0x03),
                                mantissa & 0xFFFF)
    fci += b"".join(struct.pack("!I", s & 0xFFFFFFFF) for s in ssrcs)
    return rtcp(PSFB, AFB_FMT, struct.pack("!II", sender_ssrc & 0xFFFFFFFF, 0) + fci)


def stun_attribute(kind: int, value: bytes, *, length: int | None = None) -> bytes:
    """Return one STUN attribute TLV, padded to 4 bytes; `length` overrides the declared length."""
    declared = len(value) if length is None else length
    return struct.pack("!HH", kind & 0xFFFF, declared & 0xFFFF) + value + bytes(-len(value) % 4)


def stun(attributes: Sequence[bytes] = (), *, message_type: int = STUN_BINDING_REQUEST,
         transaction_id: bytes = b"fuzzfuzzfuzz", cookie: int = STUN_MAGIC, length: int | None = None,
         integrity_key: bytes | None = None, fingerprint: bool = False) -> bytes:
    """Return a STUN message (RFC 8489 §5) of already-built attributes.

    With `integrity_key` a MESSAGE-INTEGRITY (HMAC-SHA1 over the message so far) is appended, then a
    FINGERPRINT if asked. `length` overrides the header's length field (it then describes no real message).
    """
    body = b"".join(attributes)

    def header(body_length: int) -> bytes:
        return struct.pack("!HHI", message_type & 0x3FFF, body_length & 0xFFFF, cookie & 0xFFFFFFFF) + \
            transaction_id[:12].ljust(12, b"\x00")

    if integrity_key is not None:
        mac = hmac.new(integrity_key, header(len(body) + 24) + body, hashlib.sha1).digest()
        body += stun_attribute(STUN_ATTR["MESSAGE-INTEGRITY"], mac)
    if fingerprint:
        crc = (binascii.crc32(header(len(body) + 8) + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += stun_attribute(STUN_ATTR["FINGERPRINT"], struct.pack("!I", crc))
    return header(len(body) if length is None else length) + body

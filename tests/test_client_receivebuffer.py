"""The SDK's video receive buffer (tvapp.client.receivebuffer) on real RTP packets with VP8 payloads, fake clock.

Where aiortc's own video jitter buffer held every frame behind a packet lost for good (until 512 newer packets
waited), the SDK's buffer gives the loss up after MAX_WAIT_MS, drops delta frames until a keyframe, and asks for
one (PLI); a retransmission that comes in time fills the gap with nothing given up.
"""

from __future__ import annotations

import subprocess
import sys

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from tvapp.client.receivebuffer import MAX_WAIT_MS, PLI_REPEAT_MS, VideoReceiveBuffer


class Clock:
    def __init__(self) -> None:
        self.ms = 0.0

    def __call__(self) -> float:
        return self.ms


def frame_packets(seq: int, number: int, *, key: bool, parts: int = 2) -> list[RtpPacket]:
    """Return one VP8 frame as `parts` RTP packets (descriptor S bit on the first, marker on the last)."""
    packets = []
    for i in range(parts):
        data = (b"\x00" if key else b"\x01") + bytes([number % 256]) * 20 if i == 0 else bytes([i]) * 20
        packet = RtpPacket(payload_type=97, sequence_number=(seq + i) % 65536, timestamp=number * 6000,
                           marker=i == parts - 1, payload=(b"\x10" if i == 0 else b"\x00") + data)
        packet._data = data  # type: ignore[attr-defined]  # what aiortc's receiver depayloads before add()
        packets.append(packet)
    return packets


def stream(frames: int, *, key_every: int = 30, start: int = 65530) -> list[RtpPacket]:
    """Return `frames` frames, a keyframe first and every `key_every`, sequence numbers wrapping."""
    out: list[RtpPacket] = []
    for n in range(frames):
        out += frame_packets(start + 2 * n, n, key=n % key_every == 0)
    return out


def feed(buffer: VideoReceiveBuffer, clock: Clock, packets: list[RtpPacket], step_ms: float = 33.0
         ) -> tuple[list[int], int]:
    """Add packets a step apart; return the timestamps of the frames handed out and how many PLIs were asked."""
    out, plis = [], 0
    for packet in packets:
        clock.ms += step_ms
        pli, frame = buffer.add(packet)
        plis += pli
        if frame is not None:
            out.append(frame.timestamp)
    return out, plis


def make() -> tuple[VideoReceiveBuffer, Clock]:
    clock = Clock()
    return VideoReceiveBuffer(lambda pt: "VP8" if pt == 97 else None, clock=clock), clock


def test_frames_come_out_in_order_once_each_across_the_sequence_number_wrap() -> None:
    buffer, clock = make()
    out, plis = feed(buffer, clock, stream(20))
    assert out == [n * 6000 for n in range(20)]
    assert buffer.given_up == 0 and plis == 0


def test_before_a_keyframe_nothing_is_decoded_and_a_keyframe_is_asked_for_again_every_second() -> None:
    buffer, clock = make()
    packets = stream(40, key_every=30)[2:]  # joined after the keyframe: deltas until frame 30
    out, plis = feed(buffer, clock, packets[:58], step_ms=20.0)  # 58 packets x 20 ms: 1.16 s of deltas
    assert out == [] and plis == 1  # none at the first packet (the SFU asked as it started), one a second later
    out, _ = feed(buffer, clock, packets[58:])
    assert out == [n * 6000 for n in range(30, 40)]


def test_a_packet_lost_for_good_is_given_up_then_only_a_keyframe_resumes_and_one_is_asked_for() -> None:
    buffer, clock = make()
    packets = stream(60, key_every=30)
    del packets[21]  # frame 10's second packet never comes
    out, plis = feed(buffer, clock, packets)
    assert out[:10] == [n * 6000 for n in range(10)]
    assert out[10:] == [n * 6000 for n in range(30, 60)]  # frames 11-29 would decode against a missing picture
    assert buffer.given_up == 1 and plis >= 1

    # aiortc's own buffer, same packets: nothing after the gap comes out (it waits for 512 newer packets).
    aiortc_buffer = JitterBuffer(capacity=512, is_video=True)
    frames = [frame for frame in (aiortc_buffer.add(p)[1] for p in packets) if frame is not None]
    assert len(frames) <= 10


def test_a_retransmission_within_the_wait_fills_the_gap_with_nothing_given_up() -> None:
    buffer, clock = make()
    packets = stream(12)
    late = packets.pop(5)
    packets.insert(5 + int(MAX_WAIT_MS // 33.0) - 2, late)  # arrives a little under MAX_WAIT_MS later
    out, plis = feed(buffer, clock, packets)
    out += [frame.timestamp for frame in buffer.ready]  # handed out with the next packets
    assert out == [n * 6000 for n in range(12)]
    assert buffer.given_up == 0 and plis == 0
    assert PLI_REPEAT_MS >= MAX_WAIT_MS


def test_installing_the_receive_buffer_first_does_not_stop_the_guards_from_installing() -> None:
    # The SDK installs its receive buffer as a MediaSession is made, before its first peer connection installs the
    # guards; both wrap aiortc through the same table of originals, which once made install_guards() think it had
    # run (no guard, no RTX routing in SDK and TV processes). A fresh process, in that order:
    code = (
        "from aiortc import RTCRtpReceiver\n"
        "from aiortc.rtcdtlstransport import RTCDtlsTransport\n"
        "from tvapp.client import receivebuffer\n"
        "from tvapp.rtc import internals\n"
        "before = RTCDtlsTransport._register_rtp_receiver\n"
        "receivebuffer.install()\n"
        "internals.install_guards()\n"
        "assert RTCDtlsTransport._register_rtp_receiver is not before, 'route_rtx not installed'\n"
        "assert RTCRtpReceiver.__init__ is not internals._originals['RTCRtpReceiver.__init__']\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

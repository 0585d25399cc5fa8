"""Media load for the SFU benchmarks: pre-encoded media replayed without encoding, received without decoding.

- `encode_media(seconds)` encodes N seconds of 640x480@30 VP8 once with the SDK's encoder (800 kbps, a
  keyframe every 4 s; the test pattern under a panning texture, so the encoder meets its bitrate as a
  camera would) and a 440 Hz Opus tone as aiortc's own encoder makes it for SDK audio (96 kbps stereo, 20 ms).
  `save_media` / `load_media` hand it to load processes.
- `Replay` feeds a publisher's two PacketTracks on the media clock (video 30 fps, audio every 20 ms), looping.
  A keyframe request (PLI from the SFU) restarts the video at its first frame, a keyframe, so the bitstream
  stays valid. RTP time never jumps: the n-th video frame sent has pts n*3000, the n-th audio frame n*960.
  When the load falls behind it does not burst: the schedule restarts (`late_restarts` counts that).
- `ReceiveCounter` counts one received m-line's packets and frames from the receiver tap (nothing decoded)
  and its newest RTP timestamp; over a window, frames expected = timestamp span / frame step.
- `LoadPeer` is one RTCPeerConnection that answers offers saying which m-line publishes which kind and which
  receives what. `SfuParticipant` joins a tvapp room with one (SignalClient; the server makes the offers).
- `python -m bench.media_load ...` runs participants in a load process (`LoadProcess` is the parent's handle);
  JSON lines on stdout, commands on stdin: it prints `ready` once every participant receives every stream it
  expects, then answers each `mark` with its counters, and leaves on `quit`. With `--udp HOST:PORT` the same
  media goes as plain UDP datagrams (the sizes aiortc's packetizer makes, plus RTP/SRTP overhead) to the
  minimal relay of `bench.relay_baseline --udp`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import functools
import json
import os
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from tvapp.client.encoder import VideoEncoder
from tvapp.client.signaling import SignalClient, SignalClosed
from tvapp.client.sources import TestPatternTrack
from tvapp.protocol import messages as m
from tvapp.rtc import internals
from tvapp.rtc.packets import audio_packet, video_packet
from tvapp.rtc.peer import new_peer_connection
from tvapp.rtc.tracks import PacketTrack

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 800_000
AUDIO_BITRATE = 96_000
VIDEO_STEP = 3000  # 90 kHz ticks per frame at 30 fps
AUDIO_STEP = 960  # 48 kHz samples per 20 ms
STEPS = {"video": VIDEO_STEP, "audio": AUDIO_STEP}
INTERVALS = {"video": 1 / FPS, "audio": 0.020}
LATE_RESTART_S = 0.2
# RTP header (12) + one-byte extension block with abs-send-time and mid (12) + SRTP auth tag (10).
RTP_OVERHEAD = 34
UINT32 = 1 << 32


@dataclass
class EncodedMedia:
    """Encoded frames to replay: VP8 frames at FPS (the first a keyframe) and 20 ms Opus frames."""

    video: list[bytes]
    audio: list[bytes]
    width: int = WIDTH
    height: int = HEIGHT
    fps: int = FPS

    def bitrates(self) -> dict[str, int]:
        """Return the average bitrate of each stream in bits per second."""
        return {"video": round(sum(map(len, self.video)) * 8 * self.fps / len(self.video)),
                "audio": round(sum(map(len, self.audio)) * 8 * 50 / len(self.audio))}


def _texture() -> np.ndarray[Any, np.dtype[np.uint8]]:
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, ((2 * HEIGHT) // 8 + 1, (2 * WIDTH) // 8 + 1), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8), dtype=np.uint8))


def encode_media(seconds: float) -> EncodedMedia:
    """Encode `seconds` of 640x480@30 VP8 and of Opus, as an SDK participant would send them."""
    pattern = TestPatternTrack(WIDTH, HEIGHT, FPS)
    scene = _texture().astype(np.int16) - 128
    encoder = VideoEncoder("vp8", WIDTH, HEIGHT, FPS, VIDEO_BITRATE)
    video: list[bytes] = []
    for i in range(round(seconds * FPS)):
        planes = pattern.make_frame(i, 0, i / FPS).to_ndarray()
        top, left = (i * 2) % HEIGHT, (i * 3) % WIDTH
        luma = planes[:HEIGHT].astype(np.int16) + scene[top:top + HEIGHT, left:left + WIDTH] * 60 // 128
        planes[:HEIGHT] = np.clip(luma, 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts, frame.time_base = i * VIDEO_STEP, fractions.Fraction(1, 90000)
        video.extend(bytes(p) for p in encoder.encode(frame))
    opus = av.CodecContext.create("libopus", "w")
    opus.bit_rate, opus.format, opus.layout, opus.sample_rate = AUDIO_BITRATE, "s16", "stereo", 48000
    opus.options = {"application": "voip"}
    opus.time_base = fractions.Fraction(1, 48000)
    audio: list[bytes] = []
    for j in range(round(seconds * 50)):
        t = (np.arange(AUDIO_STEP) + j * AUDIO_STEP) / 48000
        tone = np.round(np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
        chunk = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        chunk.sample_rate, chunk.pts, chunk.time_base = 48000, j * AUDIO_STEP, fractions.Fraction(1, 48000)
        audio.extend(bytes(p) for p in opus.encode(chunk))
    return EncodedMedia(video=video, audio=audio)


def save_media(media: EncodedMedia, path: str) -> None:
    """Write encoded media to `path` for load processes (counts, then length-prefixed frames)."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("!II", len(media.video), len(media.audio)))
        for data in [*media.video, *media.audio]:
            fh.write(struct.pack("!I", len(data)) + data)


def load_media(path: str) -> EncodedMedia:
    """Read encoded media written by save_media."""
    with open(path, "rb") as fh:
        blob = fh.read()
    videos, audios = struct.unpack_from("!II", blob)
    frames, at = [], 8
    for _ in range(videos + audios):
        (size,) = struct.unpack_from("!I", blob, at)
        frames.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return EncodedMedia(video=frames[:videos], audio=frames[videos:])


# --- publishing ------------------------------------------------------------------------------------------------


class Replay:
    """A publisher's pre-encoded video and audio, pushed on the media clock into PacketTracks (or a sink)."""

    def __init__(self, media: EncodedMedia, sink: Callable[[str, bytes, int], None] | None = None) -> None:
        self.media = media
        self.tracks = {"video": PacketTrack("video"), "audio": PacketTrack("audio")}
        self.sink = sink
        self.sent = {"video": 0, "audio": 0}
        self.late_restarts = 0
        self.keyframe_restarts = 0
        self._video_at = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sending from the first video frame (a keyframe); no-op when running."""
        if self._task is None:
            for track in self.tracks.values():
                track.clear()
            self._video_at = 0
            self._task = asyncio.create_task(self._run())

    def attached(self, kind: str) -> None:
        """Note that a sender just took the `kind` track: drop its backlog (video starts again at a keyframe)."""
        self.tracks[kind].clear()
        if kind == "video":
            self._video_at = 0

    def restart_video(self) -> None:
        """Send the first frame (a keyframe) next: the receiver asked for a keyframe."""
        self._video_at = 0
        self.keyframe_restarts += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = {"video": 0, "audio": 0}
        while True:
            now = loop.time() - start
            if now - min(done[k] * INTERVALS[k] for k in done) > LATE_RESTART_S:
                self.late_restarts += 1
                start, now, done = loop.time(), 0.0, {"video": 0, "audio": 0}
            for kind in ("audio", "video"):
                while done[kind] * INTERVALS[kind] <= now:
                    self._send(kind)
                    done[kind] += 1
            due = min(done[k] * INTERVALS[k] for k in done)
            await asyncio.sleep(max(0.0, due - (loop.time() - start)))

    def _send(self, kind: str) -> None:
        if kind == "video":
            data = self.media.video[self._video_at]
            self._video_at = (self._video_at + 1) % len(self.media.video)
        else:
            data = self.media.audio[self.sent["audio"] % len(self.media.audio)]
        pts = (self.sent[kind] * STEPS[kind]) % UINT32
        self.sent[kind] += 1
        if self.sink is not None:
            self.sink(kind, data, pts)
        else:
            self.tracks[kind].push(video_packet(data, pts) if kind == "video" else audio_packet(data, pts))

    def stop(self) -> None:
        """Stop sending and end the tracks."""
        if self._task is not None:
            self._task.cancel()
        for track in self.tracks.values():
            track.close()


# --- receiving -------------------------------------------------------------------------------------------------


class ReceiveCounter:
    """Packets and whole frames arriving on one m-line, counted as the receiver tap hands them over."""

    def __init__(self, kind: str, label: str) -> None:
        self.kind = kind
        self.label = label
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.last_ts: int | None = None
        self._recent: deque[int] = deque(maxlen=64)

    def on_packet(self, packet: RtpPacket) -> None:
        """Count one RTP packet (retransmissions arrive unwrapped; a frame counts once)."""
        self.add(len(packet.payload), packet.timestamp, bool(packet.marker) or self.kind == "audio")

    def add(self, size: int, timestamp: int, frame_end: bool) -> None:
        """Count one packet of `size` bytes; `frame_end` when it completes a frame (marker bit, or audio)."""
        self.packets += 1
        self.bytes += size
        if not frame_end or timestamp in self._recent:
            return
        self._recent.append(timestamp)
        self.frames += 1
        if self.last_ts is None or (timestamp - self.last_ts) % UINT32 < UINT32 // 2:
            self.last_ts = timestamp

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as JSON-ready values."""
        return {"label": self.label, "kind": self.kind, "packets": self.packets, "bytes": self.bytes,
                "frames": self.frames, "last_ts": self.last_ts}


def window(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Return one stream's packets, bytes, frames counted and frames expected between two snapshots."""
    expected = 0
    if before["last_ts"] is not None and after["last_ts"] is not None:
        expected = ((after["last_ts"] - before["last_ts"]) % UINT32) // STEPS[after["kind"]]
    return {"packets": after["packets"] - before["packets"], "bytes": after["bytes"] - before["bytes"],
            "frames": after["frames"] - before["frames"], "expected": expected}


# --- one peer connection -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """What one offered m-line carries: our `kind` to publish, or a remote stream (`label`) to receive."""

    mid: str
    role: str  # "publish" | "subscribe"
    kind: str
    label: str = ""


class LoadPeer:
    """A peer connection that publishes a Replay and counts what it receives, answering the other side's offers."""

    def __init__(self, replay: Replay | None) -> None:
        self.pc: RTCPeerConnection = new_peer_connection()
        self.replay = replay
        self.counters: dict[str, ReceiveCounter] = {}
        self.pc.on("connectionstatechange", self._state_changed)

    def _state_changed(self) -> None:
        if self.pc.connectionState == "connected" and self.replay is not None:
            self.replay.start()

    async def answer(self, sdp: str, slots: Iterable[Slot]) -> str:
        """Apply an offer whose m-lines carry `slots`; return the answer SDP."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        by_mid = {slot.mid: slot for slot in slots}
        for transceiver in self.pc.getTransceivers():
            slot = by_mid.get(transceiver.mid or "")
            if slot is None:
                if transceiver.sender.track is not None:
                    transceiver.sender.replaceTrack(None)
                transceiver.direction = "inactive"
            elif slot.role == "publish":
                assert self.replay is not None, "offered to receive from a peer that does not publish"
                track = self.replay.tracks[slot.kind]
                if transceiver.sender.track is not track:
                    transceiver.sender.replaceTrack(track)
                    self.replay.attached(slot.kind)
                    if slot.kind == "video":
                        internals.on_keyframe_request(transceiver.sender, self.replay.restart_video)
                transceiver.direction = "sendonly"
            else:
                transceiver.direction = "recvonly"
                counter = self.counters.get(slot.mid)
                if counter is None:
                    counter = self.counters[slot.mid] = ReceiveCounter(slot.kind, slot.label)
                    internals.tap_receiver(transceiver.receiver, counter.on_packet)
                counter.label = slot.label
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return str(self.pc.localDescription.sdp)

    def receiving(self) -> int:
        """Return how many m-lines have received at least one whole frame."""
        return sum(1 for c in self.counters.values() if c.frames > 0)

    def snapshot(self) -> dict[str, Any]:
        """Return what this peer sent and received so far."""
        replay = self.replay
        return {"sent": dict(replay.sent) if replay else {}, "late_restarts": replay.late_restarts if replay else 0,
                "keyframe_restarts": replay.keyframe_restarts if replay else 0,
                "recv": [c.snapshot() for c in self.counters.values()]}

    async def close(self) -> None:
        """Stop the replay and close the peer connection."""
        if self.replay is not None:
            self.replay.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()


class SfuParticipant:
    """A LoadPeer joined to a tvapp room: it answers the server's offers and publishes camera + microphone."""

    def __init__(self, signal: SignalClient, peer: LoadPeer) -> None:
        self.signal = signal
        self.peer = peer
        self.identity = signal.joined.participant.identity
        self.errors: list[str] = []
        self._task = asyncio.create_task(self._run())

    @classmethod
    async def join(cls, url: str, token: str, media: EncodedMedia | None) -> SfuParticipant:
        """Join with `token`; publish `media` (video + audio) unless it is None."""
        signal = await SignalClient.connect(url, token, timeout=20)
        participant = cls(signal, LoadPeer(Replay(media) if media is not None else None))
        if media is not None:
            await signal.send(m.Publish(cid="v", kind="video", source="camera", name="camera"))
            await signal.send(m.Publish(cid="a", kind="audio", source="microphone", name="microphone"))
        return participant

    async def _run(self) -> None:
        with contextlib.suppress(SignalClosed):
            while True:
                await self._handle(await self.signal.receive())

    async def _handle(self, msg: m.ServerMessage) -> None:
        if isinstance(msg, m.Offer):
            slots = [Slot(t.mid, t.direction, t.kind, f"{t.participant_sid}/{t.kind}") for t in msg.transceivers]
            await self.signal.send(m.Answer(sdp=await self.peer.answer(msg.sdp, slots)))
        elif isinstance(msg, m.Error):
            self.errors.append(f"{msg.code}: {msg.message}")

    async def close(self) -> None:
        """Leave the room and close the media."""
        self._task.cancel()
        with contextlib.suppress(Exception):
            await self.signal.send(m.Leave())
        await self.signal.close()
        await self.peer.close()


def local_mark(peers: Sequence[LoadPeer | UdpParticipant]) -> dict[str, Any]:
    """Return this process's counters in the form a load process prints for `mark`."""
    return {"event": "mark", "t": time.perf_counter(), "cpu": time.process_time(),
            "participants": [p.snapshot() for p in peers]}


async def wait_receiving(peers: Sequence[LoadPeer | UdpParticipant], streams: int, timeout: float) -> None:
    """Wait until every peer receives whole frames on `streams` m-lines (TimeoutError after `timeout` s)."""
    async with asyncio.timeout(timeout):
        while any(p.receiving() < streams for p in peers):
            await asyncio.sleep(0.05)


# --- plain UDP (for the minimal relay baseline) ------------------------------------------------------------------


_UDP_HEADER = struct.Struct("!BBBI")  # sender index, kind (0 video, 1 audio), frame end, RTP timestamp


class UdpParticipant(asyncio.DatagramProtocol):
    """The same media as datagrams of the sizes aiortc would send, to and from a minimal UDP relay."""

    def __init__(self, index: int, media: EncodedMedia | None) -> None:
        self.index = index
        self.replay = Replay(media, self._send) if media is not None else None
        self.counters: dict[tuple[int, int], ReceiveCounter] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self._vp8 = Vp8Encoder()
        self._opus = OpusEncoder()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's UDPTransport is not a subclass
        self.transport.sendto(_UDP_HEADER.pack(self.index, 255, 0, 0))  # say hello to the relay

    def _send(self, kind: str, data: bytes, pts: int) -> None:
        make = video_packet if kind == "video" else audio_packet
        payloads, timestamp = (self._vp8 if kind == "video" else self._opus).pack(make(data, pts))
        assert self.transport is not None
        for i, payload in enumerate(payloads):
            header = _UDP_HEADER.pack(self.index, 0 if kind == "video" else 1, i == len(payloads) - 1, timestamp)
            self.transport.sendto(header + bytes(len(payload) + RTP_OVERHEAD - _UDP_HEADER.size))

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        sender, kind, end, timestamp = _UDP_HEADER.unpack_from(data)
        counter = self.counters.get((sender, kind))
        if counter is None:
            name = "video" if kind == 0 else "audio"
            counter = self.counters[(sender, kind)] = ReceiveCounter(name, f"u{sender}/{name}")
        counter.add(len(data), timestamp, bool(end))

    def receiving(self) -> int:
        """Return how many streams have delivered at least one whole frame."""
        return sum(1 for c in self.counters.values() if c.frames > 0)

    def snapshot(self) -> dict[str, Any]:
        """Return what this participant sent and received so far."""
        replay = self.replay
        return {"sent": dict(replay.sent) if replay else {}, "late_restarts": replay.late_restarts if replay else 0,
                "keyframe_restarts": 0, "recv": [c.snapshot() for c in self.counters.values()]}

    async def close(self) -> None:
        """Stop sending."""
        if self.replay is not None:
            self.replay.stop()
        if self.transport is not None:
            self.transport.close()


# --- load processes --------------------------------------------------------------------------------------------


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _child(args: argparse.Namespace) -> None:
    media = load_media(args.media) if args.publish else None
    participants: list[Any] = []
    if args.udp:
        host, port = args.udp.rsplit(":", 1)
        loop = asyncio.get_running_loop()
        for index in args.udp_index:
            _, protocol = await loop.create_datagram_endpoint(functools.partial(UdpParticipant, index, media),
                                                              remote_addr=(host, int(port)))
            participants.append(protocol)
        await asyncio.sleep(0.2)  # every load process says hello before media flows
        for p in participants:
            if p.replay is not None:
                p.replay.start()
        peers: list[Any] = participants
    else:
        internals.set_host_addresses(["127.0.0.1"])
        participants = list(await asyncio.gather(*(SfuParticipant.join(args.url, t, media) for t in args.token)))
        peers = [p.peer for p in participants]
    try:
        await wait_receiving(peers, args.streams, args.ready_timeout)
        _emit({"event": "ready"})
    except TimeoutError:
        _emit({"event": "not_ready", "receiving": [p.receiving() for p in peers],
               "errors": [e for p in participants for e in getattr(p, "errors", [])]})
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if line == "mark":
            _emit(local_mark(peers))
        elif line in ("quit", ""):
            break
    await asyncio.gather(*(p.close() for p in participants), return_exceptions=True)


class LoadProcess:
    """A load process (`python -m bench.media_load`), pinned to a CPU, driven over stdin/stdout."""

    def __init__(self, args: Sequence[str], cpu: int | None) -> None:
        cmd = [sys.executable, "-m", "bench.media_load", *args]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def read(self) -> dict[str, Any]:
        """Return the next JSON line the process prints (RuntimeError if it ended)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load process ended (exit {self.proc.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def ready(self) -> dict[str, Any]:
        """Wait for the process to report that all its streams flow (RuntimeError if they never did)."""
        event = self.read()
        if event["event"] != "ready":
            raise RuntimeError(f"load process not ready: {event}")
        return event

    def send(self, command: str) -> None:
        """Send one command line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def mark(self) -> dict[str, Any]:
        """Return the process's counters now."""
        self.send("mark")
        return self.read()

    def quit(self) -> None:
        """Ask the process to leave and wait for it."""
        with contextlib.suppress(OSError):
            self.send("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def summarize(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum the streams of load-process marks (pairs in the same order) over the window between them."""
    total: dict[str, dict[str, int]] = {k: {"packets": 0, "bytes": 0, "frames": 0, "expected": 0}
                                        for k in ("video", "audio")}
    sent = {"video": 0, "audio": 0}
    late = keyframes = 0
    wall = cpu = 0.0
    for b, a in zip(before, after):
        wall = max(wall, a["t"] - b["t"])
        cpu += a["cpu"] - b["cpu"]
        for pb, pa in zip(b["participants"], a["participants"]):
            for kind in sent:
                sent[kind] += pa["sent"].get(kind, 0) - pb["sent"].get(kind, 0)
            late += pa["late_restarts"] - pb["late_restarts"]
            keyframes += pa["keyframe_restarts"] - pb["keyframe_restarts"]
            old = {s["label"]: s for s in pb["recv"]}
            for stream in pa["recv"]:
                if stream["label"] in old:
                    counted = window(old[stream["label"]], stream)
                    for key, value in counted.items():
                        total[stream["kind"]][key] += value
    return {"wall_s": wall, "load_cpu_s": cpu, "sent_frames": sent, "late_restarts": late,
            "keyframe_restarts": keyframes, "received": total}


def loss_percent(received: dict[str, dict[str, int]]) -> dict[str, float]:
    """Return frame loss in % per kind: 100 * (1 - counted / expected)."""
    return {kind: round(100 * (1 - r["frames"] / r["expected"]), 3) if r["expected"] else 100.0
            for kind, r in received.items()}


def main() -> None:
    """Run participants in this load process (see the module docstring)."""
    p = argparse.ArgumentParser(description="a load process for the SFU benchmarks")
    p.add_argument("--media", required=True, help="file written by save_media")
    p.add_argument("--url", default="", help="server URL (SFU mode)")
    p.add_argument("--token", action="append", default=[], help="one access token per participant (SFU mode)")
    p.add_argument("--udp", default="", help="HOST:PORT of the minimal UDP relay (UDP mode)")
    p.add_argument("--udp-index", type=int, action="append", default=[], help="participant numbers (UDP mode)")
    p.add_argument("--no-publish", dest="publish", action="store_false")
    p.add_argument("--streams", type=int, required=True, help="streams each participant must receive to be ready")
    p.add_argument("--ready-timeout", type=float, default=30.0)
    from bench.common import run

    run(_child(p.parse_args()))


if __name__ == "__main__":
    main()

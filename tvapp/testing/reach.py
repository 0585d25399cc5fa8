"""An SDK participant for reach tests and benchmarks: join, publish, time the first remote frame, report the path.

`take_part()` is a coroutine meant to run in a home (`home.run_in_namespace(asyncio.run, take_part(...))`, usually
from a worker thread so several homes take part at once): it joins the room at `url`, publishes a one-colour test
pattern, waits for `watch`'s video, decodes `frames` of it (timing the first), then keeps the call up until `hold`
is set (the others are still decoding its video) and leaves. The `Reach` it returns says how long the join and the first
decoded frame took, the colour of that frame (so a test knows whose video it decoded), and which ICE candidate
pair carried the media (`local_type` "relay" = through TURN), read from aioice's nominated pair.

ICE host candidates: with `host_addresses=None` aioice offers every address of the namespace the calling thread
is in (it enumerates interfaces per thread), which is what a client in a home should do; the process-wide
`set_host_addresses` list would be shared by clients of several homes in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from tvapp.client import events as ev
from tvapp.client.room import Room
from tvapp.client.sources.synthetic import TestPatternTrack
from tvapp.client.stamp import read_stamp
from tvapp.rtc import internals


@dataclass(frozen=True)
class Reach:
    """What one participant saw: timings from the start of the join, the decoded colour and its media path."""

    identity: str
    joined_s: float
    first_frame_s: float
    rgb: tuple[int, int, int]
    local_type: str
    local_addr: tuple[str, int]
    remote_addr: tuple[str, int]
    latencies_s: tuple[float, ...] = ()  # capture -> decoded, per frame whose stamp was read (one wall clock)
    sid: str = ""  # the participant's sid (the identity in the TURN REST username the core made for it)


async def take_part(url: str, token: str, *, watch: str, color: tuple[int, int, int] | None = (255, 0, 0),
                    hold: threading.Event | None = None, done: threading.Event | None = None,
                    host_addresses: list[str] | None = None, timeout: float = 30.0,
                    size: tuple[int, int] = (320, 240), fps: float = 15.0, frames: int = 1) -> Reach:
    """Join, publish `color` (None: publish nothing), decode `frames` of `watch`'s video; leave once `hold` is set.

    `watch` is an identity or a display name (a guest's identity is made up by the server).
    """
    internals.set_host_addresses(host_addresses)
    started = time.perf_counter()
    room = await Room.connect(url, token, host_addresses=host_addresses, timeout=timeout)
    joined = time.perf_counter() - started
    try:
        if color is not None:
            await room.local_participant.publish_track(TestPatternTrack(*size, fps, color=color))
        track = await _video_of(room, watch, timeout)
        frame = await asyncio.wait_for(_first_video_frame(track), timeout)
        first = time.perf_counter() - started
        latencies = [_age(frame)]
        for _ in range(frames - 1):
            latencies.append(_age(await asyncio.wait_for(_first_video_frame(track), timeout)))
        rgb = frame.to_ndarray(format="rgb24")
        median = tuple(int(v) for v in np.median(rgb.reshape(-1, 3), axis=0))
        local_type, local_addr, remote_addr = media_path(room)
        if done is not None:
            done.set()
        if hold is not None and not await asyncio.to_thread(hold.wait, timeout):
            raise TimeoutError("the others did not finish decoding in time")
        return Reach(room.local_participant.identity, joined, first, (median[0], median[1], median[2]),
                     local_type, local_addr, remote_addr, tuple(a for a in latencies if a is not None),
                     room.local_participant.sid)
    finally:
        await room.disconnect()


class Follower:
    """A subscriber that logs every decoded frame of one participant's video: (decoded at, captured at), wall clock.

    `follow()` runs in a home (like `take_part`); the thread that made the Follower reads `frames` and
    `back_after(t)`, and sets `stop` to make it leave. With `color` it also publishes a test pattern of that colour.
    `events` logs, in order, what the room said about the others ("participant_left" etc., their identity, the reason
    or cause) and about itself ("reconnecting", "reconnected", "disconnected", "", the reason; "reconnected" with
    "resumed"/"rejoined"); `changed` is set at each entry.
    """

    def __init__(self, color: tuple[int, int, int] | None = None) -> None:
        self.frames: list[tuple[float, float]] = []
        self.first = threading.Event()
        self.stop = threading.Event()
        self.room: Room | None = None
        self.left: list[str] = []  # identities the room said left, in order
        self.color = color
        self.events: list[tuple[str, str, str, float]] = []  # (name, who, reason or cause, wall clock)
        self.changed = threading.Event()
        self.ended = threading.Event()  # the room is left (for good, or the follower stopped)
        self.track: TestPatternTrack | None = None  # what it publishes (its `color` may change mid-call)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _log(self, name: str, who: str, why: str) -> None:
        self.events.append((name, who, why, time.time()))
        self.changed.set()

    def recolor(self, color: tuple[int, int, int]) -> None:
        """Make the published test pattern `color` from the next frame on (from any thread)."""
        track = self.track
        assert track is not None and self._loop is not None, "recolor() a follower that publishes, once it follows"

        def change() -> None:
            track.color = color
            track.set_format(track.width, track.height, track.fps)

        self._loop.call_soon_threadsafe(change)

    def _disconnected(self, event: ev.Disconnected) -> None:
        self._log("disconnected", "", event.reason)
        self.ended.set()

    def saw(self, name: str, who: str = "") -> list[tuple[str, str, str, float]]:
        """Return the logged events called `name` (about `who`, when given)."""
        return [e for e in list(self.events) if e[0] == name and (not who or e[1] == who)]

    async def follow(self, url: str, token: str, watch: str, *, timeout: float = 30.0,
                     host_addresses: list[str] | None = None) -> None:
        """Join, log `watch`'s frames until `stop` is set, leave (giving up on a dead connection after 5 s).

        A repaired media path (a fresh peer connection) brings a new track object for the same publication: every
        video track of `watch` the room subscribes to is read (`watch` "": none, `first` is set once joined).
        `host_addresses` as in `take_part`.
        """
        internals.set_host_addresses(host_addresses)
        self._loop = asyncio.get_running_loop()
        self.room = room = await Room.connect(url, token, timeout=timeout, host_addresses=host_addresses)
        room.on(ev.ParticipantLeft, lambda e: self.left.append(e.participant.identity))
        room.on(ev.ParticipantLeft, lambda e: self._log(e.NAME, e.participant.identity, e.reason))
        room.on(ev.ParticipantReconnecting, lambda e: self._log(e.NAME, e.participant.identity, e.cause))
        room.on(ev.ParticipantReconnected, lambda e: self._log(e.NAME, e.participant.identity, ""))
        room.on(ev.Reconnecting, lambda e: self._log("reconnecting", "", e.reason))
        room.on(ev.Reconnected, lambda e: self._log("reconnected", e.reason, "resumed" if e.resumed else "rejoined"))
        room.on(ev.Disconnected, self._disconnected)
        if self.color is not None:
            self.track = TestPatternTrack(320, 240, 15.0, color=self.color)
            await room.local_participant.publish_track(self.track)
        readers: list[asyncio.Future[None]] = []

        def read_new(e: ev.TrackSubscribed) -> None:
            if watch in (e.participant.identity, e.participant.name) and e.track.kind == "video":
                readers.append(asyncio.ensure_future(self._read(e.track)))

        room.on(ev.TrackSubscribed, read_new)
        try:
            if watch:
                readers.append(asyncio.ensure_future(self._read(await _video_of(room, watch, timeout))))
            else:
                self.first.set()
            while not self.stop.is_set() and not self.ended.is_set():
                await asyncio.to_thread(self.stop.wait, 0.1)
        finally:
            self.ended.set()
            for reader in readers:
                reader.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(room.disconnect(), 5)

    async def _read(self, track: Any) -> None:
        while True:
            try:
                frame = await _first_video_frame(track)
            except MediaStreamError:  # this track ended (its peer connection was replaced or closed)
                return
            now = time.time()
            stamp = read_stamp(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
            if stamp is not None:
                self.frames.append((now, stamp[1] / 1000))
                self.first.set()

    def back_after(self, moment: float) -> float | None:
        """Return how long after `moment` (wall clock) the first frame captured after it was decoded (None: none)."""
        return next((decoded - moment for decoded, captured in list(self.frames) if captured > moment), None)


def media_path(room: Room) -> tuple[str, tuple[str, int], tuple[str, int]]:
    """Return (local candidate type, local address, remote address) of the room's nominated ICE pair."""
    session: Any = room._session  # the SDK keeps its one peer connection there
    pc = session.media.pc
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        nominated = ice._connection._nominated  # aioice: {component: CandidatePair}
        if nominated:
            pair = nominated[min(nominated)]
            return pair.local_candidate.type, pair.local_addr, pair.remote_addr
    raise RuntimeError("no nominated ICE pair")


async def _video_of(room: Room, who: str, timeout: float) -> Any:
    """Return the video track of the participant whose identity or display name is `who`, once subscribed."""
    for participant in room.participants.values():
        if who in (participant.identity, participant.name):
            for pub in participant.tracks.values():
                if pub.kind == "video" and pub.track is not None:
                    return pub.track
    def theirs(e: ev.TrackSubscribed) -> bool:
        return who in (e.participant.identity, e.participant.name) and e.track.kind == "video"

    event = await room.wait_for(ev.TrackSubscribed, theirs, timeout=timeout)
    return event.track


async def _first_video_frame(track: Any) -> av.VideoFrame:
    while True:
        frame = await track.recv()
        if isinstance(frame, av.VideoFrame):
            return frame


def _age(frame: av.VideoFrame) -> float | None:
    """Return how long ago (wall clock) the frame was captured, from the stamp TestPatternTrack draws into it."""
    now = time.time()
    stamp = read_stamp(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
    return None if stamp is None else now - stamp[1] / 1000


def close_to(rgb: Sequence[int], expected: Sequence[int], tolerance: int = 40) -> bool:
    """Tell whether a decoded median colour is `expected` within the codec's error."""
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, expected))

"""A measuring room member for congestion tests and bench/quality.py: an SDK subscriber in its own process.

    TVAPP_MEMBER_TOKEN=... python -m tvapp.testing.member URL OUT.jsonl [--host-address ADDR]

The token comes in the environment (never on a command line). It joins, receives everything (the SDK decodes every frame), and appends JSON lines to OUT as things happen:

    {"t": monotonic s, "event": "subscribed", "sid", "kind", "participant": sid}
    {"t", "event": "track_switched_off", "sid", "reason"} / {"t", "event": "track_switched_on", "sid"}
    {"t", "event": "dominant", "sid": participant sid or null}
    {"t", "event": "freeze", "sid", "start", "end", "announced"}   a video track's frames stopped > 500 ms
    {"t", "stats": {track sid: {"kind", "packets", "lost", "frames", "size"}}}   every 0.5 s, cumulative; "size":
                                  [width, height] of the last decoded video frame (null: none yet, or audio)

A freeze is "announced" when the track was switched off (track_switched_off) at any point of the gap. Run it in a
netem namespace with the link's exec_prefix so its whole media path goes through the shaped link. SIGTERM ends it
(an ongoing freeze is written first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from typing import Any

import av

from tvapp.client import (
    ActiveSpeakersChanged,
    Room,
    TrackSubscribed,
    TrackSwitchedOff,
    TrackSwitchedOn,
)

FREEZE_S = 0.5
POLL_S = 0.02
STATS_S = 0.5


class Member:
    """The measurements of one member: frame times per video track, switch events, counters."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.tracks: dict[str, Any] = {}  # sid -> RemoteTrack
        self.last_frame: dict[str, tuple[int, float]] = {}  # sid -> (frames_received, when it last changed)
        self.off_since: dict[str, float] = {}
        self.off_during: set[str] = set()  # tracks switched off at some point of their current gap

    def write(self, **record: Any) -> None:
        """Append one record to the output."""
        self.out.write(json.dumps({"t": round(time.monotonic(), 3), **record}) + "\n")
        self.out.flush()

    def subscribed(self, event: TrackSubscribed) -> None:
        """Start watching a new subscription."""
        track = event.track
        self.tracks[track.sid] = track
        self.last_frame[track.sid] = (track.frames_received, time.monotonic())
        self.write(event="subscribed", sid=track.sid, kind=track.kind, participant=event.participant.sid)

    def switched(self, event: TrackSwitchedOff | TrackSwitchedOn) -> None:
        """Record a switch."""
        if isinstance(event, TrackSwitchedOff):
            self.off_since[event.track.sid] = time.monotonic()
            self.off_during.add(event.track.sid)
            self.write(event="track_switched_off", sid=event.track.sid, reason=event.reason)
        else:
            self.off_since.pop(event.track.sid, None)
            self.write(event="track_switched_on", sid=event.track.sid)

    def poll(self, *, final: bool = False) -> None:
        """Check every video track for a new frame; write a freeze when a gap longer than FREEZE_S ends."""
        now = time.monotonic()
        for sid, track in list(self.tracks.items()):
            if track.kind != "video":
                continue
            count, since = self.last_frame[sid]
            if track.frames_received != count or final:
                if now - since > FREEZE_S:
                    self.write(event="freeze", sid=sid, start=round(since, 3), end=round(now, 3),
                               announced=sid in self.off_during)
                self.last_frame[sid] = (track.frames_received, now)
                if sid not in self.off_since:
                    self.off_during.discard(sid)


async def main(url: str, token: str, out_path: str, host: str | None) -> None:
    """Join and measure until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with open(out_path, "a") as out:  # noqa: ASYNC230 - once, before anything runs
        member = Member(out)
        room = await Room.connect(url, token, host_addresses=[host] if host else None, timeout=30.0)
        room.on(TrackSubscribed, member.subscribed)
        room.on(TrackSwitchedOff, member.switched)
        room.on(TrackSwitchedOn, member.switched)
        room.on(ActiveSpeakersChanged, lambda e: member.write(
            event="dominant", sid=e.dominant.sid if e.dominant is not None else None))
        member.write(event="joined", sid=room.local_participant.sid)

        sizes: dict[str, list[int]] = {}

        async def drain(sid: str, track: Any) -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:  # noqa: BLE001 - the track ended (MediaStreamError) or the room closed
                    return
                if isinstance(frame, av.VideoFrame):
                    sizes[sid] = [frame.width, frame.height]

        drains: dict[str, asyncio.Task[None]] = {}
        next_stats = 0.0
        try:
            while not stop.is_set():
                for sid, track in member.tracks.items():
                    if sid not in drains:
                        drains[sid] = asyncio.ensure_future(drain(sid, track))
                member.poll()
                now = time.monotonic()
                if now >= next_stats:
                    next_stats = now + STATS_S
                    stats = await room.receive_stats()
                    member.write(stats={sid: {"kind": s.kind, "packets": s.packets_received, "lost": s.packets_lost,
                                              "frames": s.frames_received, "size": sizes.get(sid)}
                                        for sid, s in stats.items()})
                try:
                    await asyncio.wait_for(stop.wait(), POLL_S)
                except TimeoutError:
                    pass
            member.poll(final=True)
        finally:
            for task in drains.values():
                task.cancel()
            await room.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--host-address")
    args = parser.parse_args()
    asyncio.run(main(args.url, os.environ["TVAPP_MEMBER_TOKEN"], args.out, args.host_address))

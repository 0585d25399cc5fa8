"""Outages on a real link: a bot publishing from a network namespace behind tvapp.testing.netem, a real server and
an SDK Room watching it from this side.

A 5 s cut (signaling and media both dead): the watcher never sees the bot leave, only participant_reconnecting
and participant_reconnected; the bot's tracks keep their sids; decoded video comes back (the test logs how long
after the link was restored). A 25 s cut, longer than the 20 s grace window: the watcher sees a clean leave
with reason "reconnect_timeout" about 20 s after the media stopped, not before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tvapp.client import (
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnected,
    ParticipantReconnecting,
    RemoteTrack,
    Room,
    TrackSubscribed,
    TrackUnpublished,
)
from tvapp.client.stamp import read_stamp
from tvapp.testing.aio import runner
from tvapp.testing.netem import NetemLink, netem_link
from tvapp.testing.recorder import Recorder
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess
from tvapp.testing.waiting import wait_until_async

log = logging.getLogger(__name__)
run = runner(deadline=120)


@pytest.fixture
def link() -> Iterator[NetemLink]:
    with netem_link("rc") as made:
        yield made


class FrameLog:
    """Reads a remote video track all along: (monotonic arrival time, stamped counter) of every decoded frame."""

    def __init__(self, track: RemoteTrack) -> None:
        self.frames: list[tuple[float, int]] = []
        self.arrived = asyncio.Event()
        self.task = asyncio.ensure_future(self._read(track))

    async def _read(self, track: RemoteTrack) -> None:
        while True:
            frame: Any = await track.recv()
            stamp = read_stamp(frame.to_ndarray(format="rgb24"))
            if stamp is not None:
                self.frames.append((time.monotonic(), int(stamp[0])))
                self.arrived.set()

    async def first_after(self, since: float, above: int, timeout: float) -> tuple[float, int]:
        """Return the first frame that arrived after `since` with a counter above `above`."""
        async with asyncio.timeout(timeout):
            while True:
                found = [(t, c) for t, c in self.frames if t > since and c > above]
                if found:
                    return found[0]
                self.arrived.clear()
                await self.arrived.wait()

    def last_before(self, moment: float) -> int:
        """Return the highest counter seen before `moment`."""
        return max(c for t, c in self.frames if t <= moment)

    def close(self) -> None:
        """Stop reading."""
        self.task.cancel()


def start(link: NetemLink, tmp_path: Path) -> tuple[ServerProcess, BotProcess, str]:
    server = ServerProcess(tmp_path / "server", host=link.host_ip,
                           env={"TVAPP_MEDIA_HOST_ADDRESSES": link.host_ip, "TVAPP_SERVER_TLS": "off"}).start()
    room = "outage"
    server.http.post("/v1/rooms", json={"name": room})
    token = server.token(room, "bot")["access_token"]
    bot = BotProcess(tmp_path, "bot", ["--server", server.url, "--token", token, "--video", "pattern:320x240@15"],
                     env={"TVAPP_MEDIA_HOST_ADDRESSES": link.ns_ip}, prefix=link.exec_prefix)
    bot.wait_published(2)
    return server, bot, room


async def watch(server: ServerProcess, room: str, link: NetemLink) -> tuple[Room, Recorder, TrackSubscribed]:
    watcher = await Room.connect(server.url, server.token(room, "watcher", host=True)["access_token"],
                                 host_addresses=[link.host_ip])
    events = Recorder(watcher)
    video = await events.wait(TrackSubscribed, lambda e: e.track.kind == "video", timeout=20)
    return watcher, events, video


def test_a_5_second_cut_is_reconnecting_never_a_leave_and_the_video_comes_back_with_the_same_track_sids(
        link: NetemLink, tmp_path: Path) -> None:
    server, bot, room = start(link, tmp_path)

    async def scenario() -> None:
        watcher, events, video = await watch(server, room, link)
        bot_participant = video.participant
        sids_before = set(bot_participant.tracks)
        assert len(sids_before) == 2
        frames = FrameLog(video.track)
        await frames.first_after(0.0, -1, 10)
        link.cut()
        cut_at = time.monotonic()
        seen = await events.wait(ParticipantReconnecting, timeout=8)
        assert seen.participant is bot_participant
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - cut_at)))  # the outage lasts 5 s
        link.restore()
        restored = time.monotonic()
        print(f"restored at wall {time.time():.3f}")
        before = frames.last_before(restored)
        assert not [t for t, _ in frames.frames if cut_at + 1.0 < t <= restored], "frames crossed a cut link?"
        arrived, after = await frames.first_after(restored, before, 15)  # the same subscription: it never ended
        back_after = arrived - restored
        log.warning("media back %.2f s after a 5 s outage ended", back_after)
        print(f"RESUME-MEASURE media back {back_after:.2f} s after a 5 s outage ended")
        assert after > before
        frames.close()
        await events.wait(ParticipantReconnected, timeout=10)
        print(f"reconnected at wall {time.time():.3f}")
        await wait_until_async(lambda: '"event": "reconnected", "reason": "media"' in bot.log_path.read_text(),
                               timeout=10, what="the bot's media is back")
        assert not events.of(ParticipantLeft) and not events.of(TrackUnpublished)
        assert len(events.of(ParticipantJoined)) == 0  # the bot was there before the watcher: never joined again
        assert set(bot_participant.tracks) == sids_before
        assert watcher.participants == {bot_participant.sid: bot_participant}
        await watcher.disconnect()

    try:
        run(scenario())
    finally:
        bot.stop()
        server.stop()
    text = bot.log_path.read_text()
    print("\n".join(line for line in text.splitlines() if "reconnect" in line))
    assert '"reconnecting"' in text and '"reconnected"' in text, text


def test_a_25_second_cut_past_the_grace_window_is_a_clean_leave(link: NetemLink, tmp_path: Path) -> None:
    server, bot, room = start(link, tmp_path)

    async def scenario() -> None:
        watcher, events, video = await watch(server, room, link)
        bot_participant = video.participant
        link.cut()
        cut_at = time.monotonic()
        await events.wait(ParticipantReconnecting, timeout=8)
        left = await events.wait(ParticipantLeft, timeout=30)
        gone_after = time.monotonic() - cut_at
        assert left.participant is bot_participant and left.reason == "reconnect_timeout"
        assert 20.0 <= gone_after <= 24.0, gone_after  # 20 s of grace after ~1.5 s of silence, not before
        await asyncio.sleep(max(0.0, 25.0 - (time.monotonic() - cut_at)))
        link.restore()
        # The bot comes back as a new participant (its old one is gone) and publishes again.
        joined = await events.wait(ParticipantJoined, timeout=20)
        assert joined.participant.identity == "bot" and joined.participant.sid != bot_participant.sid
        await watcher.disconnect()

    try:
        run(scenario())
    finally:
        bot.stop()
        server.stop()

"""The content player (tvapp.client.player) with real av on real stamped clips: it keeps its video and its audio on
a timeline (play, seek, pause, late join, a device clock running fast), reports a stall and its end, keeps media
errors to itself, and follows a real room (attach, `tvapp bot --watch`)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tvapp.client.events import PlaybackChanged
from tvapp.client.player import ContentPlayer, MediaError, PlayerStatus, attach, default_open
from tvapp.core.playback import PlaybackState
from tvapp.testing.clip import AUDIO_RATE, TONE_AMPLITUDE, make_clip, read_clip_stamp, tone_phase
from tvapp.testing.media import dominant_frequency, rms_dbfs
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until

FRAME = 1 / 30
Buffering = tuple[float, bool, float, "float | None"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def clip(clips: Path) -> Path:
    return make_clip(clips, seconds=10.0)


def playing(content: Path | str, position: float = 0.0, at: float | None = None, seq: int = 1,
            playing: bool = True) -> PlaybackState:
    return PlaybackState(content=str(content), playing=playing, position=position,
                         at=time.time() if at is None else at, seq=seq)


def stamp_of(frame: av.VideoFrame) -> tuple[int, int] | None:
    return read_clip_stamp(frame.to_ndarray(format="rgb24"))


def watch(player: ContentPlayer, state: PlaybackState, seconds: float) -> list[tuple[float, float, av.VideoFrame]]:
    """Call video_frame about 60 times a second for `seconds`; return (target, pts, frame) of each answer."""
    shown = []
    end = time.time() + seconds
    while (now := time.time()) < end:
        result = player.video_frame(now)
        if result is not None:
            shown.append((state.position_at(now), result[1], result[0]))
        time.sleep(1 / 60)
    return shown


@pytest.fixture
def player() -> Any:
    players: list[ContentPlayer] = []

    def make(**kwargs: Any) -> ContentPlayer:
        made = ContentPlayer(server_now=kwargs.pop("server_now", time.time), **kwargs)
        players.append(made)
        return made

    yield make
    for made in players:
        made.close()


def test_video_tracks_the_timeline_within_one_frame(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player()
    state = playing(clip, at=time.time() + 0.5)
    screen.follow(state)
    time.sleep(0.5)
    shown = watch(screen, state, 3.0)
    assert len(shown) > 120
    for target, pts, frame in shown:
        assert -0.0011 <= target - pts < FRAME + 0.002, (target, pts)
    for target, pts, frame in shown[::15]:
        assert stamp_of(frame) == (round(pts * 30), round(pts * 1000))
    status = screen.status()
    assert status.frames_shown >= 80 and status.seeks == 0 and status.media_error is None
    assert status.duration is not None and abs(status.duration - 10.0) < 0.05
    assert status.error is not None and -FRAME - 0.002 < status.error <= 0.0011
    assert 0.5 <= status.buffered_ahead <= 1.6


def test_seek_forward_and_back(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player()
    screen.follow(playing(clip, seq=1))
    wait_until(lambda: screen.video_frame(time.time()), what="first frame")
    for seq, position in ((2, 7.0), (3, 1.5)):
        state = playing(clip, position=position, seq=seq, at=time.time() + 0.3)  # the room's lead, as it sends
        screen.follow(state)
        time.sleep(0.3)
        for target, pts, frame in watch(screen, state, 0.5):
            assert -0.0011 <= target - pts < FRAME + 0.002
        assert screen.status().seeks == seq - 1
    # A small step forward inside what is buffered needs no seek.
    state = playing(clip, position=state.position_at(time.time()) + 0.3, seq=4)
    screen.follow(state)
    for target, pts, frame in watch(screen, state, 0.3):
        assert -0.0011 <= target - pts < FRAME + 0.002
    assert screen.status().seeks == 2


def test_pause_holds_the_frame_and_play_moves_on(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player()
    paused = playing(clip, position=4.0, playing=False, seq=1)
    screen.follow(paused)
    wait_until(lambda: screen.video_frame(time.time()), what="first frame")
    shown = watch(screen, paused, 1.0)
    assert {pts for _, pts, _ in shown} == {4.0}
    assert stamp_of(shown[-1][2]) == (120, 4000)
    assert screen.status().frames_repeated >= 40
    assert screen.audio_pull(960, time.time()) is not None
    assert not screen.audio_pull(960, time.time()).any()  # paused: silence
    resumed = playing(clip, position=4.0, at=time.time() + 0.3, seq=2)
    screen.follow(resumed)
    shown = watch(screen, resumed, 1.0)
    assert shown[0][1] == 4.0 and shown[-1][1] > 4.5
    for target, pts, frame in shown:
        assert -0.0011 <= target - pts < FRAME + 0.002


def test_a_pause_just_behind_the_frame_shown_steps_back_to_the_frame_at_the_position(player: Any, clip: Path) -> None:
    # A screen picks each frame for the instant it will flip (a little ahead): when the room then stops at a position
    # just behind it (a pause, or waiting for a stalled screen), it must show the room's frame, as every other
    # screen does, not hold the one ahead for the whole pause.
    screen: ContentPlayer = player()
    start = time.time()
    screen.follow(playing(clip, position=2.0, at=start, seq=1))
    wait_until(lambda: (shown := screen.video_frame(start + 1.01)) is not None and shown[1] == 3.0,
               what="frame 90 (3.0 s) shown")
    seeks = screen.status().seeks  # the start at 2.0
    screen.follow(playing(clip, position=2.99, playing=False, at=start + 0.99, seq=2))
    frame, pts = screen.video_frame(time.time()) or (None, None)
    assert pts is not None and abs(pts - 89 / 30) < 1e-6, pts
    assert frame is not None and stamp_of(frame) == (89, 2967)
    assert screen.status().seeks == seeks  # the frame was still there: no seek


def test_a_late_follow_starts_where_the_timeline_is(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player()
    state = playing(clip, at=time.time() - 4.0)
    screen.follow(state)
    first = wait_until(lambda: screen.video_frame(time.time()), timeout=2.0, what="first frame")
    assert first[1] > 3.9
    time.sleep(0.2)
    for target, pts, frame in watch(screen, state, 0.5):
        assert -0.0011 <= target - pts < FRAME + 0.002
    assert screen.status().seeks == 1


def test_video_is_downscaled_in_the_decoder_when_asked(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player(video_size=(320, 180), audio=False)
    state = playing(clip, position=2.0)
    screen.follow(state)
    frame, pts = wait_until(lambda: screen.video_frame(time.time()), what="first frame")
    assert (frame.width, frame.height) == (320, 180)
    assert stamp_of(frame) == (round(pts * 30), round(pts * 1000))
    assert screen.audio_pull(480, time.time()) is None


def test_stop_and_nothing_loaded_show_nothing(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player()
    assert screen.video_frame(time.time()) is None and screen.audio_pull(480, time.time()) is None
    screen.follow(playing(clip))
    wait_until(lambda: screen.video_frame(time.time()), what="first frame")
    screen.follow(PlaybackState(seq=2))
    assert screen.video_frame(time.time()) is None and screen.audio_pull(480, time.time()) is None
    assert screen.status().content == ""


def pull_in_real_time(screen: ContentPlayer, seconds: float, block: int = 960) -> np.ndarray:
    out = []
    start = time.time()
    for index in range(int(seconds * AUDIO_RATE / block)):
        due = start + index * block / AUDIO_RATE
        time.sleep(max(0.0, due - time.time()))
        chunk = screen.audio_pull(block, due)
        assert chunk is not None and chunk.shape == (block, 2) and chunk.dtype == np.float32
        out.append(chunk)
    return np.concatenate(out)


def test_audio_plays_the_tone_at_its_level(player: Any, clip: Path) -> None:
    screen: ContentPlayer = player(video=False)
    screen.follow(playing(clip, at=time.time() + 0.3))
    samples = pull_in_real_time(screen, 1.5)
    before, playing_part = samples[:int(0.25 * AUDIO_RATE)], samples[int(0.6 * AUDIO_RATE):]
    assert not before.any()  # the timeline starts at `at`
    assert abs(dominant_frequency(playing_part[:, 0], AUDIO_RATE) - 440) < 2
    assert abs(rms_dbfs(playing_part[:, 0]) - 20 * np.log10(TONE_AMPLITUDE / np.sqrt(2))) < 0.5
    assert screen.status().position is not None  # audio-only: the audio read position is what is presented


def test_audio_stays_on_the_timeline_with_a_device_clock_300_ppm_fast(player: Any, clips: Path) -> None:
    # A 20 Hz tone tells the content position modulo 50 ms. The device plays 300 ppm more samples per second than
    # the timeline moves: uncorrected, audio would run 13.5 ms ahead after 45 s. The consumer runs faster than real
    # time on a simulated server clock, waiting for the decoder when its buffer runs low.
    slow_tone = make_clip(clips, seconds=50.0, fps=5, size=(320, 180), audio_hz=20.0)
    period, block, ppm = 1 / 20, 480, 300e-6
    server = [1000.0]
    screen: ContentPlayer = player(video=False, server_now=lambda: server[0])
    state = playing(slow_tone, at=1000.1)
    screen.follow(state)
    chunks, times, rates = [], [], []
    while server[0] < 1045.0:
        if server[0] > state.at:
            wait_until(lambda: screen.status().buffered_ahead > 0.3, what="decoded audio")
        chunk = screen.audio_pull(block, server[0])
        assert chunk is not None
        chunks.append(chunk[:, 0])
        times.append(server[0])
        rates.append(screen.status().audio_rate)
        server[0] += block / (AUDIO_RATE * (1 + ppm))
    errors = []
    for index in range(30, len(chunks) - 5, 5):  # 50 ms windows, from 0.2 s after the start
        position = tone_phase(np.concatenate(chunks[index:index + 5]), 20.0)
        expected = state.position_at(times[index])
        errors.append((position - expected + period / 2) % period - period / 2)
    errors_ms = np.abs(np.array(errors)) * 1000
    assert errors_ms.max() <= 10.0, errors_ms.max()
    assert errors_ms[-200:].max() <= 7.0  # uncorrected it would be 12-13.5 ms by now
    assert min(rates) < 1.0 and min(rates) >= 0.995  # nudged, inaudibly
    assert max(rates) <= 1.0 + 1e-9


class SlowFile(io.RawIOBase):
    """A file that blocks the read reaching `offset` for `block` seconds (once): slow storage or network."""

    def __init__(self, path: str, offset: int, block: float) -> None:
        self._file = open(path, "rb")
        self._offset, self._block = offset, block
        self.blocked: tuple[float, float] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        position = self._file.tell()
        if self.blocked is None and position + len(buffer) > self._offset:
            start = time.time()
            time.sleep(self._block)
            self.blocked = (start, time.time())
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


def test_a_stall_is_reported_and_then_its_end(player: Any, clip: Path) -> None:
    reports: list[Buffering] = []
    offset = int(os.path.getsize(clip) * 0.3)
    slow: list[SlowFile] = []

    def open_slowly(content: str) -> Any:
        slow.append(SlowFile(content, offset, 2.0))
        return av.open(slow[-1])

    screen: ContentPlayer = player(on_buffering=lambda *args: reports.append((time.time(), *args)),
                                   open_media=open_slowly)
    state = playing(clip, at=time.time() + 0.3)
    screen.follow(state)
    wait_until(lambda: reports, what="the report after opening")
    assert reports[0][1:3] == (False, 0.0) and reports[0][3] is not None and abs(reports[0][3] - 10.0) < 0.05
    stall = wait_until(lambda: [r for r in reports if r[1]], timeout=8.0, what="a stall")[0]
    assert screen.status().stalled
    assert 2.0 < stall[2] < 4.5  # where the timeline was: a bit past the blocked byte's content
    ready = wait_until(lambda: [r for r in reports if r[0] > stall[0] and not r[1]], timeout=4.0, what="ready")[0]
    assert not screen.status().stalled
    blocked = slow[0].blocked
    assert blocked is not None and blocked[0] + 0.25 < stall[0] < blocked[1] <= ready[0] < blocked[1] + 1.0
    assert [r[1] for r in reports] == [False, True, False]
    wait_until(lambda: (r := screen.video_frame(time.time())) and state.position_at(time.time()) - r[1] < FRAME,
               timeout=1.0, what="back on the timeline")
    for target, pts, frame in watch(screen, state, 0.5):
        assert -0.0011 <= target - pts < FRAME + 0.002


def test_a_missing_file_is_a_media_error_not_an_exception(player: Any, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-film.mp4"
    reports: list[Buffering] = []
    screen: ContentPlayer = player(on_buffering=lambda *args: reports.append((time.time(), *args)))
    screen.follow(playing(missing, at=time.time() - 1.0))
    status: PlayerStatus = wait_until(lambda: (s := screen.status()).media_error and s, what="the media error")
    assert "no-such-film.mp4" in status.media_error
    assert screen.video_frame(time.time()) is None and screen.audio_pull(480, time.time()) is None
    time.sleep(0.4)  # time passes on purpose: a screen with a media error must report no stall in it
    assert not [r for r in reports if r[1]]  # a screen that cannot play does not hold the room up
    with pytest.raises(MediaError, match="no-such-film"):
        default_open(str(missing))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a film" * 100)
    screen.follow(playing(garbage, seq=2))
    status = wait_until(lambda: (s := screen.status()).media_error and "garbage" in s.media_error and s,
                        what="the second media error")
    assert status.content == str(garbage)


# -- with a real room ---------------------------------------------------------------------------------------------

def test_attach_follows_the_room_and_tells_it_the_duration(server: ServerProcess, clip: Path) -> None:
    from tvapp.client import Room

    async def scenario() -> None:
        name = room_name("watch", 10)
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        screen = ContentPlayer(server_now=host.clock.now, audio=False)
        detach = attach(host, screen)
        try:
            await host.clock.wait_synced(5.0)
            await host.load(str(clip), title="clip")
            await wait_async(lambda: screen.status().content == str(clip))
            await wait_async(lambda: (r := screen.video_frame(host.clock.now() or 0.0)) and r[1] > 0.5)
            await wait_async(lambda: host.playback is not None and host.playback.duration is not None)
            assert host.playback is not None and host.playback.duration is not None
            assert abs(host.playback.duration - 10.0) < 0.05
            await host.seek(6.0)
            await wait_async(lambda: (r := screen.video_frame(host.clock.now() or 0.0)) and 6.0 <= r[1] < 7.0)
            detach()
            await host.seek(2.0)
            await asyncio.sleep(0.5)
            frame = screen.video_frame(host.clock.now() or 0.0)
            assert frame is not None and frame[1] >= 6.0  # detached: the room's seek no longer reaches it
        finally:
            screen.close()
            await host.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_stalled_screen_pauses_the_room_until_it_is_ready(server: ServerProcess, clip: Path) -> None:
    from tvapp.client import Room

    async def scenario() -> None:
        name = room_name("watch", 10)
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        states: list[PlaybackState] = []
        host.on(PlaybackChanged, lambda event: states.append(event.state))
        offset = int(os.path.getsize(clip) * 0.3)
        slow = SlowFile(str(clip), offset, 2.0)
        screen = ContentPlayer(server_now=host.clock.now, open_media=lambda content: av.open(slow), audio=False)
        detach = attach(host, screen)
        try:
            await host.clock.wait_synced(5.0)
            await host.configure_playback(on_stall="pause")
            await host.load(str(clip))
            await wait_async(lambda: [s for s in states if s.waiting_for == ("host",)], timeout=10.0)
            frozen = [s for s in states if s.waiting_for][0]
            assert not frozen.moving and 2.0 < frozen.position < 4.5
            resumed = await wait_async(lambda: [s for s in states if s.seq > frozen.seq and s.moving], timeout=5.0)
            assert abs(resumed[0].position - frozen.position) < 0.001  # it goes on from where everyone stopped
            assert slow.blocked is not None
            await asyncio.sleep(0.6)
            state = host.playback
            assert state is not None
            for _ in range(30):
                now = host.clock.now()
                assert now is not None
                shown = screen.video_frame(now)
                assert shown is not None and -0.0011 <= state.position_at(now) - shown[1] < FRAME + 0.002
                await asyncio.sleep(1 / 60)
        finally:
            detach()
            screen.close()
            await host.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 60))


async def wait_async(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_bot_watch_traces_the_frames_it_would_show(server: ServerProcess, clip: Path, tmp_path: Path) -> None:
    from tvapp.client import Room

    trace = tmp_path / "bot-trace.jsonl"
    name = room_name("watch", 10)
    env = {**os.environ, "TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
    bot = subprocess.Popen(
        [sys.executable, "-m", "tvapp", "bot", "--server", server.url, "--token",
         server.token(name, "bot")["access_token"], "--video", "none", "--audio", "none", "--watch", str(trace)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    async def scenario() -> None:
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        try:
            await wait_async(lambda: host.participants, timeout=20.0)
            await host.load(str(clip))
            await wait_async(lambda: trace.exists() and any(row["pts"] is not None and row["pts"] > 2.0
                                                            for row in read_trace(trace)), timeout=20.0)
        finally:
            await host.disconnect()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        bot.terminate()
        out, err = bot.communicate(timeout=20)
    assert bot.returncode == 0, err.decode()
    rows = [row for row in read_trace(trace) if row["pts"] is not None]
    assert {"t", "server", "pts", "target"} <= set(rows[0])
    steady = [row for row in rows if 1.0 < row["target"] < 9.0]
    assert len(steady) > 30
    intervals = np.diff([row["t"] for row in steady])
    assert np.median(intervals) < 0.025  # about 60 a second
    offsets = np.array([row["target"] - row["pts"] for row in steady])
    assert np.mean((offsets >= -0.0011) & (offsets < FRAME + 0.002)) > 0.95


def read_trace(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def test_content_over_http_plays(player: Any, clip: Path) -> None:
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{clip.name}"
        screen: ContentPlayer = player()
        state = playing(url, position=3.0, at=time.time() + 0.3)
        screen.follow(state)
        time.sleep(0.4)
        shown = watch(screen, state, 1.0)
        assert len(shown) > 20 and screen.status().media_error is None
        for target, pts, frame in shown:
            assert -0.0011 <= target - pts < FRAME + 0.002
        assert stamp_of(shown[-1][2]) == (round(shown[-1][1] * 30), round(shown[-1][1] * 1000))
    finally:
        httpd.shutdown()
        httpd.server_close()

"""Live events together, with real parts: a real ffmpeg live origin (stamped wall-clock frames, program date-time)
behind local CDN edges (one 4 s later), a real core, SDK players in real rooms; and what bad input does.

The TV end-to-end test (two TVs behind different edges, an SDK player joining late, pause/resume, back to live) is
in tests/test_live_tv.py (heavy: run it alone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tvapp.client.player import ContentPlayer, attach
from tvapp.core.live import CATCH_UP_RATE, HOLD_MARGIN
from tvapp.core.playback import LIVE_START_GRACE, PlaybackState
from tvapp.testing.clip import read_clip_stamp
from tvapp.testing.live_origin import Edge, LiveOrigin
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess

FPS = 15
FRAME = 1 / FPS


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveOrigin]:
    with LiveOrigin(tmp_path_factory.mktemp("live"), fps=FPS) as made:
        yield made


@pytest.fixture(scope="module", autouse=True)
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveOrigin]:
    """A stream without PROGRAM-DATE-TIME, started with the module (autouse): by the time its test runs it already
    has the seconds of stream that test waits for (that wait was ~5 s of idle suite time)."""
    with LiveOrigin(tmp_path_factory.mktemp("nopdt"), fps=FPS, pdt=False) as made:
        yield made


@pytest.fixture(scope="module")
def edges(origin: LiveOrigin) -> Iterator[tuple[Edge, Edge]]:
    near, far = Edge(origin), Edge(origin, delay=4.0)
    yield near, far
    near.close()
    far.close()


async def wait_async(check: Callable[[], Any], timeout: float = 15.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def command(server: ServerProcess, room: str, **body: Any) -> Any:
    return server.http.post(f"/v1/rooms/{room}/playback", json=body)


def shown_stamps(players: list[ContentPlayer], now: float) -> list[tuple[int, int] | None]:
    """Return the stamp in the pixels each player shows at server instant `now` (the same instant for all)."""
    out = []
    for player in players:
        shown = player.video_frame(now)
        out.append(read_clip_stamp(shown[0].to_ndarray(format="rgb24")) if shown is not None else None)
    return out


async def same_moment(players: list[ContentPlayer], clock: Callable[[], float | None], samples: int = 40) -> None:
    """Assert that at the same instants every player shows a picture of the same moment (frame index +-1)."""
    agree = 0
    for _ in range(samples):
        now = clock()
        assert now is not None
        stamps = shown_stamps(players, now)
        assert all(s is not None for s in stamps), stamps
        indexes = [s[0] for s in stamps if s is not None]
        if max(indexes) - min(indexes) <= 1:
            agree += 1
        await asyncio.sleep(1 / 30)
    assert agree >= 0.95 * samples, (agree, samples)


def test_two_players_behind_edges_4s_apart_show_the_same_moment_through_pause_and_back_to_live(
        server: ServerProcess, origin: LiveOrigin, edges: tuple[Edge, Edge]) -> None:
    from tvapp.client import Room

    near, far = edges

    async def scenario() -> None:
        name = room_name("live", 10)
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        players = [ContentPlayer(server_now=host.clock.now, audio=False, content_proxy=edge.proxy)
                   for edge in (near, far)]
        detach = [attach(host, player) for player in players]
        try:
            await host.clock.wait_synced(5.0)
            await wait_async(lambda: origin.snapshot(time.time() - 6.0), what="6 s of stream")
            await host.load(near.url, title="The match")
            state = await wait_async(lambda: host.playback if host.playback and host.playback.live else None)
            assert state.delay == 6.0 and state.program_date_time and state.window > 0
            await wait_async(lambda: all(p.status().buffered_ahead > 0.3 for p in players), what="both playing")
            assert not any(p.status().media_error for p in players)
            await same_moment(players, host.clock.now)
            # The moment shown is the room's: the frame's instant is the timeline position (within a frame).
            now = host.clock.now()
            assert now is not None
            shown = players[1].video_frame(now)
            assert shown is not None and -FRAME - 0.01 <= shown[1] - host.playback.position_at(now) <= 0.002

            await host.pause()
            paused = await wait_async(lambda: host.playback if host.playback and not host.playback.playing else None)
            await asyncio.sleep(3.0)  # the scenario's pause (short here; tests/test_live_tv.py pauses 10 s)
            play_sent = host.clock.now()
            assert play_sent is not None
            await host.play()
            resumed = await wait_async(lambda: host.playback if host.playback and host.playback.moving else None)
            # The event has just begun (its playlist still lists segment 0): the paused picture is still listed,
            # so the room resumes on it, not later (it used to jump forward by up to half a delay).
            assert resumed.position == pytest.approx(paused.position, abs=0.001)
            # Paused N s => N s further behind the live edge. N is the time the timeline stood still, on the core's
            # clock: from the pause until the resumed state moves (the 3 s sleep, the pause's acknowledgement, the
            # play's trip to the core and its lead). The live edge is extrapolated continuously from the playlist
            # read at load, so it does not move in segment steps; one frame covers rounding of the fields.
            behind = resumed.behind_at(resumed.at)
            assert behind is not None and behind == pytest.approx(6.0 + (resumed.at - paused.at), abs=FRAME)
            # ... and the time it stood still is the host's 3 s pause: 0.2 s covers the pause's acknowledgement and
            # the 20 ms polls on 127.0.0.1 (the play's trip and lead come after `play_sent`).
            assert play_sent - paused.at == pytest.approx(3.0, abs=0.2) and resumed.at >= play_sent
            await asyncio.sleep(1.5)
            await same_moment(players, host.clock.now)

            await host.back_to_live()
            await wait_async(lambda: host.playback is not None and host.playback.seq > resumed.seq)
            back = host.playback
            assert back is not None and back.behind_at(back.at) == pytest.approx(back.delay, abs=0.01)
            await asyncio.sleep(2.0)
            await same_moment(players, host.clock.now)
        finally:
            for undo in detach:
                undo()
            for player in players:
                player.close()
            await host.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_a_404_on_segments_stalls_the_screen_the_room_waits_then_catches_up_to_its_live_point(
        server: ServerProcess, origin: LiveOrigin, edges: tuple[Edge, Edge]) -> None:
    from tvapp.client import Room
    from tvapp.client.events import PlaybackChanged

    near, far = edges

    async def scenario() -> None:
        name = room_name("live", 10)
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        states: list[PlaybackState] = []
        host.on(PlaybackChanged, lambda event: states.append(event.state))
        player = ContentPlayer(server_now=host.clock.now, audio=False, content_proxy=far.proxy)
        detach = attach(host, player)
        try:
            await host.clock.wait_synced(5.0)
            await wait_async(lambda: origin.snapshot(time.time() - 6.0), what="6 s of stream")
            await host.load(near.url)
            await wait_async(lambda: player.status().buffered_ahead > 0.3, what="playing")
            # Mid-stream, not while the screens start (a stall then starts the room at its live point instead).
            started = states[-1].at + LIVE_START_GRACE
            await wait_async(lambda: (host.clock.now() or 0.0) > started, what="the room playing a while")
            far.fail("seg*.ts")  # the edge loses every segment for a while
            waiting = await wait_async(lambda: [s for s in states if s.waiting_for == ("host",)], timeout=15,
                                       what="the room to wait")
            assert far.failures
            await asyncio.sleep(2.0)
            far.heal()
            resumed = await wait_async(lambda: [s for s in states if s.seq > waiting[0].seq and s.moving],
                                       timeout=20, what="the room to resume")
            # The room resumes where it stood still (nothing skipped), now further behind than its delay, and
            # catches that up at CATCH_UP_RATE; the delay itself grew only as far as the screen's hold needs (its
            # edge listed segments as before): the stall is not kept in it for good.
            assert resumed[0].behind_at(resumed[0].at) > resumed[0].delay + 1.5
            assert resumed[0].rate == CATCH_UP_RATE and resumed[0].delay < 6.0 + 1.5
            await wait_async(lambda: not player.status().stalled)
            now = host.clock.now()
            assert now is not None
            await wait_async(lambda: (s := player.video_frame(host.clock.now() or 0.0)) is not None
                             and abs(s[1] - resumed[0].position_at(host.clock.now() or 0.0)) < FRAME + 0.02,
                             what="the screen back on the timeline")
        finally:
            far.heal()
            detach()
            player.close()
            await host.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_a_screen_behind_a_later_edge_grows_the_delay_up_front_by_its_hold_not_by_a_wait(
        server: ServerProcess, origin: LiveOrigin, edges: tuple[Edge, Edge]) -> None:
    """An edge 6.5 s late cannot hold the 6 s delay: its screen measures how far behind the room's live edge it has
    each new segment in hand and tells the room, which grows its delay to that + a margin, once (no whole waits
    added), and the screen then shows the room's moment."""
    from tvapp.client import Room
    from tvapp.client.events import PlaybackChanged

    near, _ = edges
    late = Edge(origin, delay=6.5)

    async def scenario() -> None:
        name = room_name("live", 10)
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        states: list[PlaybackState] = []
        host.on(PlaybackChanged, lambda event: states.append(event.state))
        holds: list[float] = []
        player = ContentPlayer(server_now=host.clock.now, audio=False, content_proxy=late.proxy)
        detach = attach(host, player)
        told = player.on_hold
        assert told is not None

        def tell(stalled: bool, hold: float) -> None:
            holds.append(hold)
            told(stalled, hold)

        player.on_hold = tell
        try:
            await host.clock.wait_synced(5.0)
            await wait_async(lambda: origin.snapshot(time.time() - 9.0), what="9 s of stream")
            await host.load(near.url)
            grown = await wait_async(lambda: [s for s in states if s.delay > 6.0], timeout=15,
                                     what="the delay to grow")
            assert holds and 6.5 < holds[0] < 9.0, holds  # 6.5 s of edge delay + up to a segment + the fetch
            assert grown[0].delay == pytest.approx(holds[0] + HOLD_MARGIN * 1.0, abs=1e-6)
            await wait_async(lambda: player.status().buffered_ahead > 0.3 and not player.status().stalled,
                             timeout=15, what="the screen playing")
            await asyncio.sleep(3.0)
            final = host.playback
            assert final is not None and final.delay == pytest.approx(max(holds) + HOLD_MARGIN, abs=1e-6), \
                (final.delay, holds)  # the delay is what the hold needs, with no stall's wait added to it
            await wait_async(lambda: (s := player.video_frame(host.clock.now() or 0.0)) is not None
                             and abs(s[1] - final.position_at(host.clock.now() or 0.0)) < FRAME + 0.02,
                             what="the screen on the room's moment")
        finally:
            detach()
            player.close()
            late.close()
            await host.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_without_program_date_time_the_room_says_so_and_screens_agree_by_media_sequence(
        server: ServerProcess, plain: LiveOrigin) -> None:
    from tvapp.client import Room

    near, far = Edge(plain), Edge(plain, delay=3.0)

    async def scenario() -> None:
        name = room_name("live", 10)
        host = await Room.connect(server.url, server.token(name, "host", host=True)["access_token"],
                                  host_addresses=["127.0.0.1"])
        players = [ContentPlayer(server_now=host.clock.now, audio=False, content_proxy=edge.proxy)
                   for edge in (near, far)]
        detach = [attach(host, player) for player in players]
        try:
            await host.clock.wait_synced(5.0)
            await wait_async(lambda: plain.snapshot(time.time() - 5.0), what="5 s of stream")
            await host.load(near.url)
            state = await wait_async(lambda: host.playback if host.playback and host.playback.live else None)
            assert not state.program_date_time
            await wait_async(lambda: all(p.status().buffered_ahead > 0.3 for p in players), what="both playing")
            await same_moment(players, host.clock.now)
        finally:
            for undo in detach:
                undo()
            for player in players:
                player.close()
            await host.disconnect()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        near.close()
        far.close()


def test_playlist_and_segment_fetches_are_bounded(
        origin: LiveOrigin, edges: tuple[Edge, Edge]) -> None:
    from tvapp.client import hls
    from tvapp.core.live import MAX_PLAYLIST_BYTES

    near, _ = edges
    near.extra["huge.m3u8"] = b"#EXTM3U\n" + b"#" * MAX_PLAYLIST_BYTES
    with pytest.raises(hls.HlsFetchError, match="larger than"):
        hls.read_playlist(near.url.replace("stream.m3u8", "huge.m3u8"))
    near.extra["fits.m3u8"] = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + b"#" * (MAX_PLAYLIST_BYTES - 40) + b"\n"
    assert hls.read_playlist(near.url.replace("stream.m3u8", "fits.m3u8"))[1].segments == ()
    near.extra["seg.bin"] = b"x" * 2048
    with pytest.raises(hls.HlsFetchError, match="larger than 1024"):
        hls.fetch(near.url.replace("stream.m3u8", "seg.bin"), limit=1024)
    assert len(hls.fetch(near.url.replace("stream.m3u8", "seg.bin"), limit=2048)) == 2048
    with pytest.raises(hls.HlsFetchError, match="not an http"):
        hls.fetch("file:///etc/passwd")


def test_a_complete_playlist_plays_as_a_file_and_what_is_not_hls_is_refused_clearly(
        server: ServerProcess, origin: LiveOrigin, edges: tuple[Edge, Edge]) -> None:
    near, _ = edges
    room = room_name("live", 10)
    assert server.http.post("/v1/rooms", json={"name": room}).status_code == 201
    host = server.token(room, "host", host=True)["access_token"]
    from tvapp.client import Room

    async def joined() -> None:
        member = await Room.connect(server.url, host, host_addresses=["127.0.0.1"])
        try:
            # Not HLS: an .m3u8 URL answering something else, and one that is not there.
            near.extra["page.m3u8"] = b"<html><body>Sorry</body></html>"
            refused = command(server, room, action="load", content=near.url.replace("stream.m3u8", "page.m3u8"))
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["code"] == "invalid_value" and "not an HLS playlist" in error["message"], error
            missing = command(server, room, action="load", content=near.url.replace("stream.m3u8", "gone.m3u8"))
            assert missing.status_code == 400 and "HTTP 404" in missing.json()["error"]["message"], missing.text
            assert command(server, room, action="live").status_code == 409  # nothing loaded

            # A playlist with ENDLIST is a complete stream: it plays as a file (positions in seconds).
            await wait_async(lambda: origin.snapshot(time.time() - 3.0), what="3 s of stream")
            playlist = origin.snapshot(time.time())
            assert playlist is not None
            near.extra["vod.m3u8"] = playlist + b"#EXT-X-ENDLIST\n"
            vod = near.url.replace("stream.m3u8", "vod.m3u8")
            loaded = command(server, room, action="load", content=vod)
            assert loaded.status_code == 200, loaded.text
            assert loaded.json()["live"] is False and loaded.json()["position"] == 0.0
            player = ContentPlayer(server_now=time.time, audio=False)
            try:
                player.follow(PlaybackState(content=vod, playing=True, position=0.0, at=time.time(), seq=1))
                await wait_async(lambda: player.video_frame(time.time()) is not None or player.status().media_error,
                                 what="the complete stream to play")
                assert player.status().media_error is None
            finally:
                player.close()
            refused_live = command(server, room, action="live")
            assert refused_live.status_code == 400 and "live stream" in refused_live.json()["error"]["message"]
        finally:
            await member.disconnect()

    asyncio.run(asyncio.wait_for(joined(), 60))

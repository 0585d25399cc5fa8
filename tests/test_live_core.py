"""The live timeline's pure rules: playlist parsing (PDT, fallback, ENDLIST, master, not HLS) and the room's live
point (load, pause/time-shift, seek within the window, back to live, stalls grow the delay, never shrink it)."""

from __future__ import annotations

import pytest

from tvapp.core.live import LiveError, LiveInfo, MasterPlaylist, Playlist, looks_like_hls, parse_pdt, parse_playlist
from tvapp.core.playback import LIVE_START_GRACE, PlaybackError, PlaybackRoom

URL = "http://edge.example/live/stream.m3u8"
T0 = 1_765_000_000.0  # an instant of the event (epoch seconds)


def live_playlist(first: int = 10, count: int = 5, pdt: bool = True, ended: bool = False,
                  duration: float = 1.0) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for index in range(count):
        lines.append(f"#EXTINF:{duration:.6f},")
        if pdt:
            lines.append("#EXT-X-PROGRAM-DATE-TIME:" + _iso(T0 + (first + index) * duration))
        lines.append(f"stream{first + index}.ts")
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _iso(instant: float) -> str:
    import datetime
    moment = datetime.datetime.fromtimestamp(instant, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"  # as ffmpeg writes it


def test_a_live_playlist_places_each_segment_at_its_program_date_time() -> None:
    playlist = parse_playlist(live_playlist(), URL)
    assert isinstance(playlist, Playlist)
    assert not playlist.ended and playlist.program_date_time
    assert playlist.target_duration == 1.0 and playlist.media_sequence == 10
    assert [s.sequence for s in playlist.segments] == [10, 11, 12, 13, 14]
    assert playlist.segments[0].url == "http://edge.example/live/stream10.ts"
    assert playlist.segments[0].start == pytest.approx(T0 + 10, abs=1e-3)
    assert playlist.live_edge == pytest.approx(T0 + 15, abs=1e-3)
    assert playlist.window == pytest.approx(5.0, abs=1e-3)
    assert playlist.locate(T0 + 12.5).sequence == 12  # type: ignore[union-attr]
    assert playlist.locate(T0 + 20) is None
    assert playlist.after(12).sequence == 13  # type: ignore[union-attr]


def test_without_program_date_time_screens_with_different_windows_agree_by_media_sequence() -> None:
    early = parse_playlist(live_playlist(first=10, pdt=False), URL)
    later = parse_playlist(live_playlist(first=13, pdt=False), URL)
    assert isinstance(early, Playlist) and isinstance(later, Playlist)
    assert not early.program_date_time
    assert early.segments[3].start == later.segments[0].start == 13.0


def test_endlist_master_and_not_hls() -> None:
    complete = parse_playlist(live_playlist(ended=True), URL)
    assert isinstance(complete, Playlist) and complete.ended
    master = parse_playlist("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nhi.m3u8\n"
                            "#EXT-X-STREAM-INF:BANDWIDTH=200000\nlo.m3u8\n", URL)
    assert isinstance(master, MasterPlaylist) and master.pick() == "http://edge.example/live/lo.m3u8"
    with pytest.raises(LiveError) as refused:
        parse_playlist("<html>not found</html>", URL)
    assert refused.value.code == "not_hls"
    with pytest.raises(LiveError):
        parse_playlist("#EXTM3U\n#EXTINF:abc,\nx.ts\n", URL)
    with pytest.raises(LiveError):
        parse_pdt("yesterday")
    assert looks_like_hls(URL + "?token=1") and not looks_like_hls("http://x/clip.mp4")
    assert not looks_like_hls("/media/stream.m3u8")


def loaded_room(now: float = 100.0, delay: float = 6.0) -> PlaybackRoom:
    room = PlaybackRoom(lead=0.5, live_delay=delay, stall_timeout=30.0)
    info = LiveInfo(live_edge=T0, fetched_at=now - 1.0, window=30.0, target_duration=1.0, program_date_time=True)
    room.command("load", now, is_host=True, content=URL, live=info)
    return room


def test_a_live_load_starts_the_room_live_delay_behind_the_live_edge() -> None:
    room = loaded_room()
    state = room.state
    assert state.live and state.playing and state.delay == 6.0 and state.window == 30.0
    assert state.at == 100.5
    # At server time 100.5 the edge is T0 + 1.5 (fetched 1 s before the load, plus the lead).
    assert state.live_edge_at(100.5) == pytest.approx(T0 + 1.5)
    assert state.position_at(100.5) == pytest.approx(T0 + 1.5 - 6.0)
    assert state.behind_at(110.0) == pytest.approx(6.0)


def test_pause_time_shifts_and_back_to_live_rejoins_the_live_point() -> None:
    room = loaded_room()
    paused = room.command("pause", 110.0, is_host=True)
    resumed = room.command("play", 120.0, is_host=True)
    assert resumed.behind_at(130.0) == pytest.approx(16.5)  # 10.5 s more behind: paused 10 s, then the lead
    assert resumed.delay == 6.0  # the room's live point did not move
    assert resumed.position_at(130.0) == pytest.approx(paused.position + 10.0)
    back = room.command("live", 131.0, is_host=True)
    assert back.playing and back.behind_at(140.0) == pytest.approx(6.0)


def test_a_live_seek_stays_in_the_window_and_never_passes_the_live_point() -> None:
    room = loaded_room()
    edge = room.state.live_edge_at(110.0)
    assert edge is not None
    ahead = room.command("seek", 110.0, is_host=True, position=edge + 100.0)
    assert ahead.position == pytest.approx(edge - 6.0)  # no spoiler: at most the room's live point
    back = room.command("seek", 110.0, is_host=True, position=edge - 12.0)
    assert back.position == pytest.approx(edge - 12.0)
    old = room.command("seek", 110.0, is_host=True, position=1.0)
    assert old.position == pytest.approx(edge - 30.0 + 3.0)  # the oldest listed moment, with half a delay margin
    with pytest.raises(PlaybackError):
        room.command("seek", 110.0, is_host=True, position=float("nan"))


def test_a_pause_near_the_oldest_moment_of_a_growing_window_resumes_exactly_where_it_paused() -> None:
    # The event has just started: the playlist still lists its first segment (media sequence 0), so nothing
    # expires from its window; the room paused 2.5 s after the oldest listed moment must resume on that very
    # picture (it used to jump forward to "oldest + delay / 2", so a 3 s pause left it only 2.5 s further behind).
    room = PlaybackRoom(lead=0.5, live_delay=6.0, stall_timeout=30.0)
    info = LiveInfo(live_edge=T0, fetched_at=99.0, window=6.0, target_duration=1.0, program_date_time=True,
                    growing=True)
    room.command("load", 100.0, is_host=True, content=URL, live=info)  # from T0 + 1.5 - 6; the oldest is T0 - 6
    paused = room.command("pause", 101.5, is_host=True)
    assert paused.position == pytest.approx(T0 - 3.5, abs=1e-6)  # (approx's default tolerance is ~30 min here)
    resumed = room.command("play", 104.5, is_host=True)
    assert resumed.position == pytest.approx(paused.position, abs=1e-6)
    behind = resumed.behind_at(resumed.at)
    assert behind == pytest.approx(6.0 + (resumed.at - paused.at), abs=1e-6)  # 3 s paused + the lead, no jump
    # Before the oldest listed moment (still growing: it has not moved), a seek lands on it, not later.
    early = room.command("seek", 105.0, is_host=True, position=T0 - 50.0)
    assert early.position == pytest.approx(T0 - 6.0, abs=1e-6)


def test_a_pause_older_than_a_sliding_window_resumes_at_its_oldest_moment_with_a_margin() -> None:
    room = loaded_room()  # a sliding 30 s window: its oldest segment leaves the playlist as the stream goes on
    room.command("pause", 110.0, is_host=True)
    resumed = room.command("play", 150.0, is_host=True)
    edge = resumed.live_edge_at(150.0)
    assert edge is not None and resumed.position == pytest.approx(edge - 30.0 + 3.0, abs=1e-6)


def test_a_stall_grows_the_delay_by_its_length_and_it_never_shrinks() -> None:
    room = loaded_room()
    waiting = room.buffering("tv-b", True, 110.0)
    assert waiting is not None and waiting.waiting_for == ("tv-b",)
    resumed = room.buffering("tv-b", False, 112.5)
    assert resumed is not None and resumed.delay == pytest.approx(9.0)  # waited 2.5 s + the 0.5 s lead
    assert resumed.behind_at(120.0) == pytest.approx(9.0)
    back = room.command("live", 121.0, is_host=True)
    assert back.behind_at(125.0) == pytest.approx(9.0)  # back to live keeps the grown delay: no spoiler


def test_stalls_while_the_screens_start_are_not_waited_for_one_still_stalled_after_the_grace_is() -> None:
    # Load at 100, moving at 100.5: screens fetching their first segments stall; the room goes on without them (it
    # used to wait and keep the start-up wait in its delay for good: a room loaded on a busy machine settled seconds
    # further behind live than any screen needed).
    room = loaded_room()
    assert room.buffering("tv-a", True, 100.8) is None and room.buffering("tv-b", True, 101.0) is None
    assert room.buffering("tv-a", False, 102.0) is None
    assert room.state.moving and room.state.delay == 6.0
    assert room.next_deadline() == pytest.approx(100.5 + LIVE_START_GRACE)
    # tv-b is still stalled when the grace is over: it cannot hold the delay; now the room waits, and grows.
    assert room.tick(102.4) is None
    waiting = room.tick(102.5)
    assert waiting is not None and waiting.waiting_for == ("tv-b",) and not waiting.moving
    grown = room.buffering("tv-b", False, 104.0)
    assert grown is not None and grown.delay == pytest.approx(6.0 + 1.5 + 0.5)  # waited 1.5 s + the 0.5 s lead
    assert grown.behind_at(grown.at) == pytest.approx(8.0, abs=1e-6)
    # Later stalls are waited for at once, and grow it for good.
    assert room.buffering("tv-a", True, 110.0) is not None
    again = room.buffering("tv-a", False, 111.0)
    assert again is not None and again.delay == pytest.approx(9.5)
    # Back to live is a live start too; a pause, seek or play right after it makes the room the host's.
    room.command("live", 120.0, is_host=True)
    assert room.buffering("tv-a", True, 120.6) is None  # in the grace
    room.command("pause", 120.8, is_host=True)
    resumed = room.command("play", 121.0, is_host=True)
    assert resumed.waiting_for == ("tv-a",)  # still stalled, and the grace is over: waited for


def test_back_to_live_needs_a_live_stream_and_a_file_load_clears_the_live_fields() -> None:
    room = loaded_room()
    state = room.command("load", 130.0, is_host=True, content="/media/clip.mp4")
    assert not state.live and state.live_edge is None and state.delay == 0.0
    with pytest.raises(PlaybackError) as refused:
        room.command("live", 131.0, is_host=True)
    assert refused.value.code == "invalid_value"
    with pytest.raises(ValueError):
        PlaybackRoom(live_delay=0.0)


def test_the_remote_says_live_and_the_delay_and_sends_back_to_live() -> None:
    from tvapp.commands.remote_text import build_command, describe_playback
    from tvapp.protocol.remote_messages import Playback, PlaybackInfo

    live = PlaybackInfo(content=URL, title="The match", playing=True, position=6.0, live=True, delay=6.0)
    assert describe_playback(live) == "playing The match: LIVE, 6 s delay"
    shifted = PlaybackInfo(content=URL, title="The match", playing=False, position=16.5, live=True, delay=6.0)
    assert describe_playback(shifted) == "paused The match: LIVE, 6 s delay, 0:10 behind live"
    back = build_command("live", [])
    assert isinstance(back, Playback) and back.action == "live"
    loaded = build_command("load", [URL])
    assert isinstance(loaded, Playback) and loaded.content == URL


def test_live_delay_is_checked_in_config() -> None:
    from tvapp.config import WatchConfig
    from tvapp.server.playback import check_watch_config

    check_watch_config(WatchConfig(live_delay=3600.0))
    for bad in (0.0, -1.0, 3600.5):
        with pytest.raises(ValueError, match="live_delay"):
            check_watch_config(WatchConfig(live_delay=bad))


def test_urls_in_errors_and_logs_lose_credentials_and_tokens() -> None:
    from tvapp.client.hls import HlsFetchError, fetch, shown

    assert shown("https://user:pw@cdn.example:8443/live/a.m3u8?token=s3cret#x") == "https://cdn.example:8443/live/a.m3u8"
    with pytest.raises(HlsFetchError) as failed:
        fetch("http://user:pw@127.0.0.1:9/live/a.m3u8?token=s3cret", timeout=1.0)
    assert "s3cret" not in str(failed.value) and "pw" not in str(failed.value)


def test_a_freeze_does_not_make_the_next_flips_choose_their_frames_ahead() -> None:
    from tvapp.core.steering import FLIP_LEAD_CAP, FlipLead

    lead = FlipLead(fps=60)
    period = 1 / 60
    for _ in range(50):  # a steady screen: each turn, chosen to flipped, takes one period
        lead.update(period)
    assert lead.value == pytest.approx(period)
    after = lead.update(0.2)  # a CPU-starved TV got no CPU for 200 ms between choosing a frame and its flip
    assert after <= period + 0.1 * (FLIP_LEAD_CAP - 1) * period + 1e-9
    assert after - period < 0.002  # the next frame is chosen < 2 ms ahead of its flip (18 ms: one frame early)
    for _ in range(3):
        lead.update(period)
    assert lead.update(float("nan")) == lead.value  # nonsense is ignored
    assert lead.update(-1.0) == lead.value
    slower = FlipLead(fps=60)
    for _ in range(100):  # a screen whose turns really take longer (within the cap) follows it
        slower.update(1.5 * period)
    assert slower.value == pytest.approx(1.5 * period, rel=1e-3)

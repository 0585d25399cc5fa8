"""Tests for tvapp.core.playback: the timeline's rules (who may, what each command does, stalls) and SyncController."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tvapp.core.playback import (
    MAX_CONTENT_CHARS,
    MAX_POSITION,
    MAX_TITLE_CHARS,
    Correction,
    PlaybackError,
    PlaybackRoom,
    PlaybackState,
    SyncController,
)

FILM = "http://192.168.1.10/film.mp4"
T = 1_700_000_000.0            # a server clock reading
LEAD = 0.4


def loaded(*, play: bool = True, position: float = 0.0, on_stall: str = "pause", control: str = "host",
           at: float = T) -> PlaybackRoom:
    """Return a room with FILM loaded by the host at server time `at`."""
    room = PlaybackRoom(control=control, on_stall=on_stall, lead=LEAD, stall_timeout=15.0)  # type: ignore[arg-type]
    room.command("load", at, is_host=True, content=FILM, title="Film", position=position, play=play)
    return room


def refused(code: str, room: PlaybackRoom, action: str, now: float = T, **kwargs: object) -> PlaybackError:
    """Assert that the command is refused with `code` and that the state did not change."""
    before = room.state
    with pytest.raises(PlaybackError) as info:
        room.command(action, now, **{"is_host": True, **kwargs})  # type: ignore[arg-type]
    assert info.value.code == code, info.value
    assert room.state is before
    return info.value


# --- PlaybackState ---------------------------------------------------------------------------------------------

def test_position_is_held_before_at_then_moves_and_stops_at_the_duration() -> None:
    s = PlaybackState(content=FILM, playing=True, position=10.0, at=100.0, duration=12.0)
    assert s.moving
    assert s.position_at(99.0) == 10.0 and s.position_at(100.0) == 10.0
    assert s.position_at(101.5) == pytest.approx(11.5)
    assert s.position_at(500.0) == 12.0
    paused = PlaybackState(content=FILM, playing=False, position=10.0, at=100.0)
    assert not paused.moving and paused.position_at(200.0) == 10.0
    waiting = PlaybackState(content=FILM, playing=True, position=10.0, at=100.0, waiting_for=("bob",))
    assert not waiting.moving and waiting.position_at(200.0) == 10.0
    assert not PlaybackState(playing=True, position=3.0).moving


# --- load / play / pause / seek / stop -------------------------------------------------------------------------

def test_load_starts_every_screen_together_lead_seconds_ahead() -> None:
    room = PlaybackRoom(lead=LEAD)
    s = room.command("load", T, is_host=True, content=FILM, title="Film")
    assert (s.content, s.title, s.playing, s.position, s.rate, s.at, s.seq) == (FILM, "Film", True, 0.0, 1.0,
                                                                                 T + LEAD, 1)
    assert s.waiting_for == () and s.duration is None and room.state is s


def test_load_paused_at_a_position_takes_effect_now() -> None:
    s = PlaybackRoom(lead=LEAD).command("load", T, is_host=True, content="/srv/a.mkv", position=42.5, play=False)
    assert (s.playing, s.position, s.at, s.title) == (False, 42.5, T, "")


def test_pause_freezes_where_the_timeline_is_and_play_resumes_from_there_together() -> None:
    room = loaded()
    paused = room.command("pause", T + 10.0, is_host=True)
    assert (paused.playing, paused.position, paused.at, paused.seq) == (False, pytest.approx(10.0 - LEAD), T + 10.0, 2)
    assert paused.position_at(T + 99.0) == paused.position
    playing = room.command("play", T + 20.0, is_host=True)
    assert (playing.playing, playing.position, playing.at, playing.seq) == (True, paused.position, T + 20.0 + LEAD, 3)


def test_pause_during_the_lead_keeps_the_start_position() -> None:
    room = loaded(position=30.0)
    assert room.command("pause", T + 0.1, is_host=True).position == 30.0


def test_play_when_playing_and_pause_when_paused_change_nothing() -> None:
    room = loaded()
    before = room.state
    assert room.command("play", T + 5.0, is_host=True) is before
    paused = room.command("pause", T + 6.0, is_host=True)
    assert room.command("pause", T + 7.0, is_host=True) is paused and paused.seq == before.seq + 1


def test_seek_keeps_play_or_pause() -> None:
    room = loaded()
    s = room.command("seek", T + 3.0, is_host=True, position=600.0)
    assert (s.playing, s.position, s.at) == (True, 600.0, T + 3.0 + LEAD)
    room.command("pause", T + 4.0, is_host=True)
    s = room.command("seek", T + 5.0, is_host=True, position=12)
    assert (s.playing, s.position, s.at) == (False, 12.0, T + 5.0)
    again = room.command("seek", T + 5.0, is_host=True, position=12)
    assert again.seq == s.seq + 1                       # a seek is always news: screens re-align on it


def test_seek_is_clamped_to_a_known_duration() -> None:
    room = loaded()
    room.buffering("tv", False, T + 1.0, duration=100.0)
    assert room.command("seek", T + 2.0, is_host=True, position=150.0).position == 100.0


def test_stop_unloads_and_stop_again_changes_nothing() -> None:
    room = loaded()
    room.buffering("tv", False, T + 1.0, duration=100.0)
    s = room.command("stop", T + 2.0, is_host=True)
    assert (s.content, s.title, s.playing, s.position, s.duration, s.waiting_for) == ("", "", False, 0.0, None, ())
    assert room.command("stop", T + 3.0, is_host=True) is s


def test_the_room_s_settings_survive_load_and_stop() -> None:
    room = loaded(control="everyone", on_stall="continue")
    s = room.command("stop", T + 1.0, is_host=False)
    assert (s.control, s.on_stall) == ("everyone", "continue")


# --- refusals ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["load", "play", "pause", "seek", "stop"])
def test_only_the_host_controls_a_host_controlled_room(action: str) -> None:
    room = loaded()
    err = refused("not_allowed", room, action, is_host=False, content=FILM, position=1.0)
    assert "host" in err.message


@pytest.mark.parametrize("action", ["load", "play", "pause", "seek", "stop"])
def test_everyone_controls_a_room_set_to_everyone(action: str) -> None:
    room = loaded(control="everyone", play=action == "pause")
    s = room.command(action, T + 1.0, is_host=False, content=FILM, position=1.0)
    assert s.seq == 2


def test_only_the_host_configures_even_when_everyone_controls() -> None:
    refused("not_allowed", loaded(control="everyone"), "configure", is_host=False, control="host")


def test_unknown_actions_are_invalid() -> None:
    refused("invalid_value", loaded(), "rewind")
    refused("invalid_value", loaded(), "")


@pytest.mark.parametrize("action", ["play", "pause", "seek"])
def test_nothing_loaded_is_no_content(action: str) -> None:
    err = refused("no_content", PlaybackRoom(), action, position=3.0)
    assert action in err.message


@pytest.mark.parametrize("content", [None, "", "x" * (MAX_CONTENT_CHARS + 1), "film\n.mp4", "a\x00b", "a\x7fb",
                                     "a\x85b", 42])
def test_load_needs_sane_content(content: object) -> None:
    refused("invalid_value", PlaybackRoom(), "load", content=content)


def test_content_and_title_at_their_limits_are_fine() -> None:
    s = PlaybackRoom().command("load", T, is_host=True, content="é" * MAX_CONTENT_CHARS, title="t" * MAX_TITLE_CHARS)
    assert len(s.content) == MAX_CONTENT_CHARS and len(s.title) == MAX_TITLE_CHARS
    assert PlaybackRoom().command("load", T, is_host=True, content=FILM, title=None).title == ""  # type: ignore[arg-type]


@pytest.mark.parametrize("title", ["t" * (MAX_TITLE_CHARS + 1), "two\nlines", 7])
def test_a_bad_title_is_refused_not_truncated(title: object) -> None:
    refused("invalid_value", PlaybackRoom(), "load", content=FILM, title=title)


@pytest.mark.parametrize("position", [-0.001, math.nan, math.inf, -math.inf, MAX_POSITION + 1, True, "3"])
def test_positions_must_be_finite_and_in_range(position: object) -> None:
    refused("invalid_value", PlaybackRoom(), "load", content=FILM, position=position)
    refused("invalid_value", loaded(), "seek", position=position)


def test_seek_needs_a_position() -> None:
    refused("invalid_value", loaded(), "seek")
    assert loaded().command("seek", T, is_host=True, position=MAX_POSITION).position == MAX_POSITION


def test_configure_needs_a_valid_value() -> None:
    room = loaded()
    refused("invalid_value", room, "configure", control="anyone")
    refused("invalid_value", room, "configure", on_stall="wait")
    refused("invalid_value", room, "configure", control="everyone", on_stall="wait")


@pytest.mark.parametrize("kwargs", [{"control": "all"}, {"on_stall": "stop"}, {"lead": -1.0},
                                    {"stall_timeout": 0.0}, {"lead": math.nan}])
def test_bad_room_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PlaybackRoom(**kwargs)  # type: ignore[arg-type]


# --- configure -----------------------------------------------------------------------------------------------

def test_configure_changes_the_settings_and_not_the_timeline() -> None:
    room = loaded()
    before = room.state
    s = room.command("configure", T + 5.0, is_host=True, control="everyone")
    assert (s.control, s.on_stall, s.seq) == ("everyone", "pause", before.seq + 1)
    assert (s.position, s.at, s.playing) == (before.position, before.at, True)
    assert room.command("configure", T + 6.0, is_host=True, control="everyone", on_stall="pause") is s
    assert room.command("configure", T + 7.0, is_host=True) is s                 # nothing to set


def test_configure_works_with_nothing_loaded() -> None:
    s = PlaybackRoom().command("configure", T, is_host=True, on_stall="continue")
    assert s.on_stall == "continue" and s.content == ""


# --- stalls -----------------------------------------------------------------------------------------------------

def test_a_stall_freezes_everyone_and_readiness_resumes_everyone_together() -> None:
    room = loaded()
    s = room.buffering("bob", True, T + 10.0, position=9.0)
    assert s is not None and s.playing and s.waiting_for == ("bob",) and not s.moving
    assert s.position == pytest.approx(10.0 - LEAD) and s.at == T + 10.0
    s = room.buffering("alice", True, T + 11.0)
    assert s is not None and s.waiting_for == ("alice", "bob") and s.position == pytest.approx(10.0 - LEAD)
    assert room.buffering("bob", True, T + 12.0) is None          # already waited for
    s = room.buffering("bob", False, T + 13.0)
    assert s is not None and s.waiting_for == ("alice",)
    s = room.buffering("alice", False, T + 14.0)
    assert s is not None and s.waiting_for == () and s.moving
    assert (s.position, s.at) == (pytest.approx(10.0 - LEAD), T + 14.0 + LEAD)
    assert room.buffering("alice", False, T + 15.0) is None       # ready and not waited for: nothing new


def test_with_on_stall_continue_stalls_change_nothing() -> None:
    room = loaded(on_stall="continue")
    assert room.buffering("bob", True, T + 10.0) is None
    assert room.state.moving and room.next_deadline() is None


def test_a_stall_while_paused_is_waited_for_once_playing() -> None:
    room = loaded(play=False)
    assert room.buffering("bob", True, T + 1.0) is None
    s = room.command("play", T + 2.0, is_host=True)
    assert s.playing and s.waiting_for == ("bob",) and s.at == T + 2.0 and not s.moving
    s2 = room.buffering("bob", False, T + 3.0)
    assert s2 is not None and s2.moving and s2.at == T + 3.0 + LEAD and s2.position == s.position


def test_pause_while_waiting_stops_waiting_but_remembers_the_stall() -> None:
    room = loaded()
    room.buffering("bob", True, T + 5.0)
    s = room.command("pause", T + 6.0, is_host=True)
    assert not s.playing and s.waiting_for == ()
    assert room.command("play", T + 7.0, is_host=True).waiting_for == ("bob",)


def test_seek_while_waiting_keeps_waiting() -> None:
    room = loaded()
    room.buffering("bob", True, T + 5.0)
    s = room.command("seek", T + 6.0, is_host=True, position=100.0)
    assert s.waiting_for == ("bob",) and s.position == 100.0 and not s.moving
    s2 = room.buffering("bob", False, T + 7.0)
    assert s2 is not None and (s2.position, s2.at) == (100.0, T + 7.0 + LEAD)


def test_a_load_or_stop_forgets_the_stalls() -> None:
    room = loaded()
    room.buffering("bob", True, T + 5.0)
    s = room.command("load", T + 6.0, is_host=True, content="/srv/b.mp4")
    assert s.waiting_for == () and s.moving and s.at == T + 6.0 + LEAD
    assert room.next_deadline() is None
    room.buffering("bob", True, T + 7.0)
    room.command("stop", T + 8.0, is_host=True)
    assert room.next_deadline() is None


def test_switching_to_continue_resumes_a_waiting_room() -> None:
    room = loaded()
    room.buffering("bob", True, T + 5.0)
    s = room.command("configure", T + 6.0, is_host=True, on_stall="continue")
    assert s.on_stall == "continue" and s.waiting_for == () and s.at == T + 6.0 + LEAD
    assert s.position == pytest.approx(5.0 - LEAD)
    assert room.next_deadline() is None


def test_a_screen_that_leaves_is_waited_for_no_more() -> None:
    room = loaded()
    room.buffering("bob", True, T + 5.0)
    assert room.left("carol", T + 6.0) is None
    s = room.left("bob", T + 6.0)
    assert s is not None and s.moving and s.at == T + 6.0 + LEAD


def test_a_stall_that_outlives_the_timeout_is_given_up() -> None:
    room = loaded()
    assert room.next_deadline() is None and room.tick(T + 100.0) is None
    room.buffering("bob", True, T + 5.0)
    room.buffering("alice", True, T + 8.0)
    assert room.next_deadline() == T + 20.0
    assert room.tick(T + 19.9) is None
    s = room.tick(T + 20.0)
    assert s is not None and s.waiting_for == ("alice",)
    assert room.next_deadline() == T + 23.0
    s = room.tick(T + 30.0)
    assert s is not None and s.moving and s.at == T + 30.0 + LEAD and room.next_deadline() is None


def test_a_timed_out_stall_while_paused_is_dropped_quietly() -> None:
    room = loaded(play=False)
    room.buffering("bob", True, T + 1.0)
    assert room.next_deadline() == T + 16.0
    assert room.tick(T + 16.0) is None
    assert room.next_deadline() is None                          # no busy timer loop on the server
    assert room.command("play", T + 17.0, is_host=True).waiting_for == ()


def test_nothing_loaded_ignores_buffering() -> None:
    room = PlaybackRoom()
    assert room.buffering("bob", True, T, duration=60.0) is None
    assert room.next_deadline() is None


# --- duration ---------------------------------------------------------------------------------------------------

def test_the_first_sane_duration_wins_until_the_next_load() -> None:
    room = loaded()
    for bad in (0.0, -5.0, math.nan, math.inf, MAX_POSITION + 1):
        assert room.buffering("bob", False, T + 1.0, duration=bad) is None
    s = room.buffering("bob", False, T + 1.0, duration=90.0)
    assert s is not None and s.duration == 90.0 and s.seq == 2 and s.at == T + LEAD
    assert room.buffering("alice", False, T + 2.0, duration=95.0) is None
    assert room.state.position_at(T + 1000.0) == 90.0
    assert room.command("load", T + 3.0, is_host=True, content=FILM).duration is None


def test_duration_is_recorded_with_on_stall_continue_and_together_with_a_stall() -> None:
    room = loaded(on_stall="continue")
    s = room.buffering("bob", True, T + 1.0, duration=90.0)
    assert s is not None and s.duration == 90.0 and s.moving
    room2 = loaded()
    s = room2.buffering("bob", True, T + 1.0, duration=90.0)
    assert s is not None and s.duration == 90.0 and s.waiting_for == ("bob",) and s.seq == 2


# --- random command sequences ------------------------------------------------------------------------------------

SCREENS = ("alice", "bob", "carol")
positions = st.one_of(st.none(), st.floats(0.0, 7200.0), st.floats(0.0, 7200.0),
                      st.sampled_from([-1.0, math.nan, math.inf]))


class TimelineMachine(RuleBasedStateMachine):
    """Drive a PlaybackRoom with random commands and reports; check the rules that must always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.room = PlaybackRoom(lead=LEAD, stall_timeout=5.0)
        self.now = T

    def check(self, before: PlaybackState, after: PlaybackState | None, *, moved_on_purpose: bool) -> None:
        """Check one transition: seq, identity of unchanged states, and no jump of the timeline by accident."""
        if after is None or after is before:
            assert self.room.state is before
            return
        assert self.room.state is after and after.seq == before.seq + 1
        if not moved_on_purpose and before.content:
            expected = before.position_at(self.now)
            if after.duration is not None:
                expected = min(expected, after.duration)       # a newly known duration may cut it short
            assert after.position_at(self.now) == pytest.approx(expected, abs=1e-9)
        timeline = (after.playing, after.position, after.waiting_for)
        if timeline == (before.playing, before.position, before.waiting_for) and not moved_on_purpose:
            assert after.at == before.at                         # a duration or a setting: the timeline stays
        elif after.moving:
            assert after.at == self.now + LEAD                   # (re)started: everyone starts together
        else:
            assert after.at == self.now                          # stopped, or put somewhere while stopped

    @initialize(play=st.booleans(), on_stall=st.sampled_from(["pause", "pause", "continue"]))
    def start_with_a_film(self, play: bool, on_stall: str) -> None:
        self.room.command("configure", self.now, is_host=True, on_stall=on_stall)
        self.room.command("load", self.now, is_host=True, content=FILM, play=play)

    @rule(dt=st.floats(0.0, 8.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule(action=st.sampled_from(["load", "load", "play", "play", "pause", "seek", "stop", "configure", "jump"]),
          is_host=st.sampled_from([True, True, True, False]),
          content=st.sampled_from([None, "", FILM, FILM, "/srv/b.mp4"]), position=positions,
          play=st.booleans(), control=st.sampled_from([None, "host", "everyone", "x"]),
          on_stall=st.sampled_from([None, "pause", "continue", "x"]))
    def command(self, action: str, is_host: bool, content: str | None, position: float | None, play: bool,
                control: str | None, on_stall: str | None) -> None:
        before = self.room.state
        try:
            after = self.room.command(action, self.now, is_host=is_host, content=content, position=position,
                                      play=play, control=control, on_stall=on_stall)
        except PlaybackError as e:
            assert e.code in ("not_allowed", "no_content", "invalid_value")
            assert self.room.state is before
            return
        assert action != "configure" or is_host
        assert is_host or action == "configure" or before.control == "everyone"
        self.check(before, after, moved_on_purpose=action in ("load", "seek", "stop"))
        if action in ("play", "pause") and after is not before:
            assert after.playing is (action == "play")

    @rule(who=st.sampled_from(SCREENS), stalled=st.booleans(),
          duration=st.one_of(st.none(), st.floats(-1.0, 5000.0), st.just(math.nan)))
    def buffering(self, who: str, stalled: bool, duration: float | None) -> None:
        before = self.room.state
        after = self.room.buffering(who, stalled, self.now, None, duration)
        self.check(before, after, moved_on_purpose=False)
        if after is not None and before.duration is not None:
            assert after.duration == before.duration

    @rule(who=st.sampled_from(SCREENS))
    def leaves(self, who: str) -> None:
        before = self.room.state
        after = self.room.left(who, self.now)
        self.check(before, after, moved_on_purpose=False)
        assert who not in self.room.state.waiting_for

    @rule()
    def tick(self) -> None:
        before = self.room.state
        deadline = self.room.next_deadline()
        after = self.room.tick(self.now)
        self.check(before, after, moved_on_purpose=False)
        if deadline is not None and deadline > self.now:
            assert after is None
        later = self.room.next_deadline()
        assert later is None or later > self.now

    @invariant()
    def the_state_is_consistent(self) -> None:
        s = self.room.state
        assert list(s.waiting_for) == sorted(set(s.waiting_for)) and set(s.waiting_for) <= set(SCREENS)
        if s.waiting_for:
            assert s.playing and s.on_stall == "pause" and s.content and self.room.next_deadline() is not None
        if not s.content:
            assert (s.playing, s.position, s.duration, s.title) == (False, 0.0, None, "")
        assert s.duration is None or 0.0 < s.duration <= MAX_POSITION
        assert s.rate == 1.0 and s.control in ("host", "everyone") and s.on_stall in ("pause", "continue")

    @invariant()
    def the_position_is_never_negative_and_never_runs_backwards(self) -> None:
        s = self.room.state
        times = [self.now - 10.0, self.now, s.at, s.at + 0.5, self.now + 3.0, self.now + 1e4]
        values = [s.position_at(t) for t in sorted(times)]
        assert all(v >= 0.0 for v in values)
        assert values == sorted(values)
        if s.duration is not None:
            assert max(values) <= s.duration
        if not s.moving:
            assert len(set(values)) == 1


TimelineMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_timeline_rules_hold_for_random_sequences = TimelineMachine.TestCase


# --- SyncController ---------------------------------------------------------------------------------------------

def test_inside_the_dead_band_nothing_is_done() -> None:
    c = SyncController(deadband=0.010)
    assert c.update(0.0, 5.0) == Correction()
    assert c.update(0.009, 5.0) == Correction() and c.update(-0.010, 5.0) == Correction()


def test_small_errors_nudge_the_rate_against_the_error() -> None:
    c = SyncController(deadband=0.010, gain=0.5, max_rate_change=0.02)
    ahead = c.update(0.030, 5.0)
    assert ahead.seek_to is None and ahead.rate == pytest.approx(1 - 0.015)    # ahead: slow down
    c.reset()
    behind = c.update(-0.030, 5.0)
    assert behind.rate == pytest.approx(1 + 0.015)                              # behind: speed up


def test_the_rate_change_is_clamped() -> None:
    c = SyncController(deadband=0.010, gain=0.5, max_rate_change=0.02)
    assert c.update(0.3, 5.0).rate == pytest.approx(0.98)
    assert c.update(-0.45, 5.0).rate == pytest.approx(1.02)


def test_hysteresis_keeps_correcting_down_to_half_the_dead_band() -> None:
    c = SyncController(deadband=0.010, gain=0.5)
    assert c.update(0.008, 5.0).rate == 1.0              # not correcting yet: inside the band
    assert c.update(0.020, 5.0).rate < 1.0               # starts
    assert c.update(0.008, 5.0).rate == pytest.approx(1 - 0.004)   # keeps on inside the band
    assert c.update(0.006, 5.0).rate < 1.0
    assert c.update(0.005, 5.0).rate == 1.0              # within half the band: stops
    assert c.update(0.008, 5.0).rate == 1.0              # and does not start again inside the band
    c.update(0.020, 5.0)
    c.reset()
    assert c.update(0.008, 5.0).rate == 1.0


@pytest.mark.parametrize("error", [0.5, -0.5, 3.0, -100.0, math.nan, math.inf])
def test_large_errors_seek_to_where_the_timeline_will_be(error: float) -> None:
    c = SyncController(seek_threshold=0.5, seek_ahead=0.2)
    c.update(0.02, 10.0)
    assert c.update(error, 10.0) == Correction(rate=1.0, seek_to=10.2)
    assert c.update(0.008, 10.0).rate == 1.0             # a seek forgets the hysteresis


def test_a_seek_never_goes_before_the_start() -> None:
    assert SyncController(seek_ahead=0.1).update(-2.0, -0.5).seek_to == 0.0


def test_a_drifting_player_is_pulled_in_and_held_without_seeking() -> None:
    # A player whose clock runs 0.3% fast, starting 200 ms behind, corrected 10 times a second.
    c = SyncController()
    error, dt = -0.2, 0.1
    history = []
    for _ in range(600):
        correction = c.update(error, 100.0)
        assert correction.seek_to is None
        error += (correction.rate * 1.003 - 1.0) * dt
        history.append(error)
    assert abs(history[150]) <= 0.011                     # within 15 s
    assert max(abs(e) for e in history[150:]) <= 0.011    # and it stays there

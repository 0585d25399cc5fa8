"""The bot's demo options: solid-colour patterns (--color), turn-taking tones (--talk) and parsing errors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tvapp.commands.bot import parse_turns, speaking_turn
from tvapp.client.sources import SourceError, TestPatternTrack, ToneTrack, parse_color, rgb_to_yuv


def test_parse_color_takes_hex_and_names_and_explains_bad_input() -> None:
    assert parse_color("#ff8000") == (255, 128, 0)
    assert parse_color("00FF00") == (0, 255, 0)
    assert parse_color("Red") == parse_color("red")
    with pytest.raises(SourceError, match="expected #RRGGBB"):
        parse_color("#12345")


def test_a_coloured_pattern_decodes_back_to_its_colour() -> None:
    track = TestPatternTrack(320, 240, 30, color=(224, 48, 48))
    frame = track.make_frame(0, 0, 0.0)
    rgb = frame.to_ndarray(format="rgb24")
    corner = rgb[200:236, 4:40].reshape(-1, 3)  # away from the stamp band and (at t=0) the moving box
    assert np.abs(np.median(corner, axis=0) - np.array([224, 48, 48])).max() <= 6


def test_rgb_to_yuv_matches_bt601_limited_range() -> None:
    assert rgb_to_yuv((0, 0, 0)) == (16, 128, 128)
    assert rgb_to_yuv((255, 255, 255)) == (235, 128, 128)


def test_turns_split_the_wall_clock_between_bots() -> None:
    turns = [parse_turns(f"{i}/3@2") for i in range(3)]
    for now in np.arange(0, 30, 0.25):
        assert sum(speaking_turn(t, float(now)) for t in turns) == 1
    assert speaking_turn(turns[0], 0.5) and speaking_turn(turns[1], 2.5) and speaking_turn(turns[2], 5.9)
    assert parse_turns("1/2") == (1, 2, 4.0)
    for bad in ("2/2", "x/3", "0/3@0", "1"):
        with pytest.raises(SourceError):
            parse_turns(bad)


def test_a_gated_tone_is_silent_outside_its_turn() -> None:
    async def frames(gate_open: bool) -> np.ndarray:
        tone = ToneTrack(440, gate=lambda now: gate_open)
        try:
            return (await tone.recv()).to_ndarray()
        finally:
            tone.stop()

    assert np.abs(asyncio.run(frames(True))).max() > 9000
    assert np.abs(asyncio.run(frames(False))).max() == 0

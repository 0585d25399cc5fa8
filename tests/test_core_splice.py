"""Tests for tvapp.core.splice: what one subscription m-line sends and at which timestamps."""

from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.splice import UINT32, StreamSplice


def test_video_starts_at_a_keyframe_and_audio_at_once() -> None:
    video = StreamSplice(video=True, frame_step=3000)
    assert video.admit(100, keyframe=False) is None
    assert video.admit(3100, keyframe=True) == 3100
    assert video.admit(6100, keyframe=False) == 6100
    audio = StreamSplice(video=False, frame_step=960)
    assert audio.admit(5, keyframe=False) == 5


def test_resync_waits_for_the_next_keyframe_without_moving_the_timeline() -> None:
    splice = StreamSplice(video=True, frame_step=3000)
    assert splice.admit(0, keyframe=True) == 0
    splice.resync()
    assert splice.admit(3000, keyframe=False) is None
    assert splice.admit(6000, keyframe=True) == 6000


def test_a_reused_m_line_continues_its_own_timeline() -> None:
    splice = StreamSplice(video=True, frame_step=3000)
    splice.restart()
    assert splice.admit(1_000, keyframe=True) == 1_000  # nothing sent before: no offset
    splice.restart()  # now another publication, with its own clock
    assert splice.admit(9_000_000, keyframe=False) is None
    assert splice.admit(9_003_000, keyframe=True) == 4_000
    assert splice.admit(9_006_000, keyframe=False) == 7_000


@given(st.integers(0, UINT32 - 1), st.integers(0, UINT32 - 1), st.lists(st.integers(1, 10_000), max_size=20))
def test_after_a_restart_timestamps_continue_one_step_on_and_keep_their_spacing(
        last: int, start: int, gaps: list[int]) -> None:
    splice = StreamSplice(video=False, frame_step=960)
    assert splice.admit(last, keyframe=True) == last
    splice.restart()
    sent = [splice.admit(start, keyframe=True)]
    ts = start
    for gap in gaps:
        ts = (ts + gap) % UINT32
        sent.append(splice.admit(ts, keyframe=True))
    assert sent[0] == (last + 960) % UINT32
    for gap, (a, b) in zip(gaps, zip(sent, sent[1:])):
        assert a is not None and b is not None and (b - a) % UINT32 == gap

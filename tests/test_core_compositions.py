"""The pure composition rules (tvapp.core.compositions): request validation, sources and join order, tiles from the
TV's layout math, the speaker timeline from audio levels, progress and ETA; and the worker's progress lines on a
small synthesized session (real PyAV decode and encode)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from bench.composition import COLORS, synth_audio, synth_session, synth_video
from tvapp.compose.render import Job, render
from tvapp.compose.worker import job_from_json, job_json, run
from tvapp.core import layout
from tvapp.core.compositions import (
    Request,
    RequestError,
    Track,
    parse_request,
    picture_rect,
    progress,
    select,
    span,
    speaker_at,
    speaker_timeline,
    tile_rects,
)


def test_a_request_takes_defaults_and_reads_every_field() -> None:
    req = parse_request({"session": "RM_abc"})
    assert (req.layout, req.width, req.height, req.format, req.fps) == ("grid", 640, 360, "mp4", 15)
    assert req.audio_sources is None and req.video_sources is None and (req.trim_start, req.trim_end) == (0, None)
    req = parse_request({"session": "RM_abc", "layout": "speaker", "resolution": "1280x720", "format": "webm",
                         "fps": 25, "audio_sources": ["alice"], "video_sources": "all",
                         "trim": {"start": 2, "end": 9.5}})
    assert (req.layout, req.resolution, req.format, req.fps) == ("speaker", "1280x720", "webm", 25)
    assert req.audio_sources == ("alice",) and req.video_sources is None and (req.trim_start, req.trim_end) == (2, 9.5)


@pytest.mark.parametrize(("body", "code"), [
    ({}, "invalid_session"), ({"session": "RM_a", "layout": "GRID"}, "invalid_layout"),
    ({"session": "RM_a", "resolution": "62x62"}, "invalid_resolution"),
    ({"session": "RM_a", "resolution": "1922x1080"}, "invalid_resolution"),
    ({"session": "RM_a", "resolution": 640}, "invalid_resolution"),
    ({"session": "RM_a", "format": "mkv"}, "invalid_format"), ({"session": "RM_a", "fps": True}, "invalid_fps"),
    ({"session": "RM_a", "audio_sources": ["../x"]}, "invalid_sources"),
    ({"session": "RM_a", "audio_sources": ["a"] * 65}, "invalid_sources"),
    ({"session": "RM_a", "trim": {"start": -1}}, "invalid_trim"),
    ({"session": "RM_a", "trim": {"start": float("nan")}}, "invalid_trim"),
    ({"session": "RM_a", "trim": {"middle": 1}}, "invalid_trim"),
])
def test_bad_requests_name_what_is_wrong(body: dict[str, object], code: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(body)
    assert caught.value.code == code and caught.value.status == 400


def test_sources_pick_by_identity_or_track_and_people_come_in_join_order() -> None:
    tracks = [Track("RE_1", "bob", "TR_b", "video", 3.0, 5.0), Track("RE_2", "bob", "TR_ba", "audio", 2.5, 5.0),
              Track("RE_3", "alice", "TR_a", "video", 1.0, 9.0), Track("RE_4", "carol", "TR_c", "audio", 4.0, 1.0)]
    people, video, audio = select(tracks, parse_request({"session": "RM_a"}))
    assert people == ["alice", "bob", "carol"] and len(video) == 2 and len(audio) == 2
    people, video, audio = select(tracks, parse_request({"session": "RM_a", "video_sources": ["TR_b"],
                                                         "audio_sources": ["carol"]}))
    assert people == ["bob", "carol"] and [t.sid for t in video] == ["RE_1"] and [t.sid for t in audio] == ["RE_4"]
    assert span(tracks, parse_request({"session": "RM_a"})) == (0.0, 10.0)
    assert span(tracks, parse_request({"session": "RM_a", "trim": {"start": 2, "end": 4}})) == (2.0, 4.0)


def test_tiles_are_the_tvs_layout_math_over_the_whole_frame() -> None:
    frame = layout.Rect(0, 0, 640, 360)
    for count in range(1, 8):
        assert tile_rects(count, 640, 360, "grid") == layout.tiles(count, frame, frame, layout.Mode.GRID)
        assert tile_rects(count, 640, 360, "speaker", 1 % count) == layout.tiles(
            count, frame, frame, layout.Mode.SPEAKER, speaker=1 % count)
    single = tile_rects(3, 640, 360, "single", 2).tiles
    assert single[2] == frame and single[0].w == single[1].w == 0
    box = picture_rect(320, 240, layout.Rect(0, 0, 317, 360))
    assert box == layout.Rect(0, 61, 316, 238)  # fit() gives 317x238 at y 61; the scaler gets an even width


def test_the_speaker_timeline_follows_the_loudest_voice_after_a_hold_and_ignores_silence() -> None:
    quiet, loud = 0.001, 0.2
    alice = [quiet] * 5 + [loud] * 20 + [quiet] * 30
    bob = [quiet] * 25 + [quiet] * 5 + [loud] * 3 + [quiet] * 2 + [loud] * 20
    timeline = speaker_timeline([alice, bob], window=0.1, hold=0.5)
    assert timeline == [(0.0, 0), (4.0, 1)]  # bob's 0.3 s blip does not take the tile; 0.5 s from 3.5 s does
    assert speaker_at(timeline, 1.0) == 0 and speaker_at(timeline, 3.85) == 0 and speaker_at(timeline, 4.0) == 1
    assert speaker_timeline([[quiet] * 10, [loud] * 10]) == [(0.0, 1)]  # the first voice owns the start
    assert speaker_timeline([]) == []


def test_progress_gives_percent_and_an_eta_from_the_pace_so_far() -> None:
    assert progress(100.0, 100.0, 0.0, 60.0) == (0.0, None)
    assert progress(100.0, 110.0, 20.0, 60.0) == (33.3, 20.0)
    assert progress(100.0, 130.0, 60.0, 60.0) == (100.0, 0.0)
    assert progress(100.0, 130.0, 61.0, 60.0) == (100.0, 0.0)
    assert progress(100.0, 100.0, 0.0, 0.0) == (100.0, 0.0)


def test_the_worker_reports_progress_up_to_the_whole_duration_and_writes_a_playable_file(tmp_path: Path) -> None:
    tracks = synth_session(tmp_path, 3, 2.0, stagger=0.4)
    job = Job(Request(session="RM_t", layout="speaker", format="webm"), tracks, tmp_path, tmp_path / "out.webm")
    assert job_from_json(json.loads(json.dumps(job_json(job)))) == job
    out = io.StringIO()
    assert run(job, out, every=0.0) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    done = [line["done"] for line in lines if "done" in line]
    assert len(done) >= 30 and done == sorted(done) and done[-1] == lines[-2]["total"] == 2.0
    assert lines[-1] == {"status": "completed", "duration": 2.0}
    probe = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "out.webm"), "-f", "null", "-"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 0 and probe.stderr == ""
    assert not (tmp_path / "out.webm.part").exists()


def test_a_missing_recording_fails_the_job_with_a_reason(tmp_path: Path) -> None:
    tracks = [Track("RE_x", "ghost", "TR_x", "video", 0.0, 3.0, "RE_x.webm")]
    out = io.StringIO()
    assert run(Job(Request(session="RM_t"), tracks, tmp_path, tmp_path / "out.mp4"), out) == 1
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["status"] == "failed" and "could not render" in last["reason"]
    assert not list(tmp_path.iterdir())


def test_a_trimmed_render_covers_only_the_trim_and_keeps_the_session_timeline(tmp_path: Path) -> None:
    tracks = synth_session(tmp_path, 2, 3.0, stagger=1.0)  # p0 from 0 s, p1 from 1 s
    req = parse_request({"session": "RM_t", "trim": {"start": 0.5, "end": 2.0}})
    render(Job(req, tracks, tmp_path, tmp_path / "trim.mp4"))
    with av.open(str(tmp_path / "trim.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(tmp_path / "trim.mp4")) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert len(frames) == 23  # ceil(1.5 s x 15 fps)
    tiles = [picture_rect(320, 240, tile) for tile in tile_rects(2, 640, 360, "grid").tiles]
    second = tiles[1]
    # p1 joins 1 s into the session: 0.5 s into the trimmed file. Black before, its colour after.
    y, x = second.y + second.h * 3 // 4, second.x + 8
    assert frames[6][y, x].max() < 30  # 0.4 s into the file = 0.9 s of the session
    for index in (9, 22):  # 0.6 s and 1.47 s into the file = 1.1 s and 1.97 s of the session
        assert max(abs(int(c) - e) for c, e in zip(frames[index][y, x], COLORS[1], strict=True)) < 40
    assert abs(len(audio) / 48_000 - 1.5) < 0.05 and float(np.abs(audio).max()) > 0.1


def test_a_gap_in_a_recording_is_black_and_silent_in_the_composition(tmp_path: Path) -> None:
    synth_video(tmp_path / "v.webm", COLORS[0], 4.0, gap=(1.0, 3.0))  # the camera was off from 1 s to 3 s
    synth_audio(tmp_path / "a.mka", 440, 4.0, gap=(1.0, 3.0))  # and the microphone
    tracks = [Track("RE_v", "p", "TR_v", "video", 0.5, 4.0, "v.webm"), Track("RE_a", "p", "TR_a", "audio", 0.5, 4.0,
                                                                          "a.mka")]
    render(Job(Request(session="RM_t"), tracks, tmp_path, tmp_path / "gap.mp4"))
    with av.open(str(tmp_path / "gap.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(tmp_path / "gap.mp4")) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    box = picture_rect(320, 240, tile_rects(1, 640, 360, "grid").tiles[0])
    y, x = box.y + box.h * 3 // 4, box.x + 8

    def coloured(t: float) -> bool:
        return max(abs(int(c) - e) for c, e in zip(frames[round(t * 15)][y, x], COLORS[0], strict=True)) < 40

    # session time = 0.5 s + recording time: the gap is 1.5-3.5 s; the last frame is held for MAX_HOLD, then black
    assert [coloured(t) for t in (0.2, 1.0, 2.0, 2.8, 3.3, 3.8, 4.2)] == [False, True, True, False, False, True, True]
    rms = [float(np.sqrt(np.mean(audio[int(t * 48_000):int((t + 0.2) * 48_000)] ** 2))) for t in (0.1, 1.0, 2.5, 4.0)]
    assert rms[0] < 0.01 and rms[1] > 0.1 and rms[2] < 0.01 and rms[3] > 0.1, rms

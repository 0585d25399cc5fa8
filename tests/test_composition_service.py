"""The core's composition queue with real parts: a RecordingStore holding a synthesized 3-person session (real
VP8/Opus files), the real worker process (`python -m tvapp.compose`), SQLite rows. A job a stopped core left
`processing` is rendered at the next start; a job whose recording file is gone fails with a reason; the speaker
layout puts the loudest participant in the big tile."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

import av
import pytest

from bench.composition import COLORS, synth_audio, synth_session
from tvapp.core.compositions import Request, picture_rect, tile_rects
from tvapp.server.compositions import (
    MAX_PENDING,
    CompositionRefused,
    CompositionRow,
    CompositionService,
    CompositionStore,
)
from tvapp.server.recording_store import DB_FILE, RecordingRow, RecordingStore
from tvapp.testing import aio


def recorded_session(data: Path, people: int = 3, seconds: float = 2.0) -> RecordingStore:
    """Write a synthesized session's files into DATA/recordings and its rows into DATA/recordings.db."""
    root = data / "recordings"
    root.mkdir(parents=True)
    store = RecordingStore(data / DB_FILE)
    for t in synth_session(root, people, seconds, stagger=0.3):
        store.insert(RecordingRow(
            sid=t.sid, room="r", session="RM_s", participant=t.participant, participant_sid="PA_" + t.participant,
            track=t.track, type=t.type, codec="vp8" if t.type == "video" else "opus",
            container=t.file.rsplit(".", 1)[1], status="completed", offset=t.offset, duration=t.duration,
            size=(root / t.file).stat().st_size, created_at=1000.0 + t.offset, completed_at=1010.0, file=t.file))
    return store


async def finished(service: CompositionService, sid: str) -> CompositionRow:
    while (row := service.rows.get(sid)) is None or row.status not in ("completed", "failed"):
        await asyncio.sleep(0.05)
    return row


def test_a_job_left_processing_by_a_stopped_core_is_rendered_at_the_next_start(tmp_path: Path) -> None:
    store = recorded_session(tmp_path)

    async def scenario() -> None:
        # What a core killed mid-render leaves: a row marked processing at 40 %, no file.
        (tmp_path / "compositions").mkdir()
        rows = CompositionStore(tmp_path / "compositions.db")
        req = Request(session="RM_s", format="webm")
        row = CompositionRow(sid="CJ_left", room="r", session="RM_s", layout="grid", resolution="640x360",
                             format="webm", status="processing", percent=40.0, eta=3.0, duration=0.8, size=0,
                             created_at=1.0, started_at=5.0, request=json.dumps(asdict(req)), file="CJ_left.webm")
        rows.put(row)
        rows.close()
        again = CompositionService(tmp_path, store)
        seen: list[CompositionRow] = []
        again.on_finished.append(seen.append)
        await again.open()
        try:
            done = await finished(again, row.sid)
        finally:
            await again.close()
        assert done.status == "completed" and done.percent == 100.0 and done.size > 0, done
        assert [r.sid for r in seen] == [row.sid] and abs(done.duration - 2.0) < 0.1
        with av.open(str(tmp_path / "compositions" / done.file)) as container:
            assert [s.codec_context.name for s in container.streams] == ["vp8", "opus"]
        assert not list((tmp_path / "compositions").glob("*.json")) and not list(
            (tmp_path / "compositions").glob("*.part"))

    aio.run(scenario(), 90)


def test_a_job_whose_recording_is_gone_fails_with_a_reason(tmp_path: Path) -> None:
    store = recorded_session(tmp_path, people=1)
    (tmp_path / "recordings" / "RE_v0.webm").unlink()

    async def scenario() -> None:
        service = CompositionService(tmp_path, store)
        seen: list[CompositionRow] = []
        service.on_finished.append(seen.append)
        await service.open()
        try:
            row = service.create(Request(session="RM_s"), "r")
            done = await finished(service, row.sid)
        finally:
            await service.close()
        assert done.status == "failed" and done.reason and "could not render" in done.reason
        assert seen == [done] and not (tmp_path / "compositions" / done.file).exists()

    aio.run(scenario(), 60)


def test_the_speaker_layout_gives_the_big_tile_to_whoever_talks(tmp_path: Path) -> None:
    store = recorded_session(tmp_path, people=3, seconds=3.0)
    # p2's tone plays from its offset (0.6 s) on; p0 and p1 only blip for 0.2 s at their start.
    root = tmp_path / "recordings"
    for i in (0, 1):
        (root / f"RE_a{i}.mka").unlink()
        synth_audio(root / f"RE_a{i}.mka", 300, 0.2)  # a short blip at their start, then nothing
    from tvapp.compose.render import Job, render
    from tvapp.server.compositions import session_tracks

    tracks = session_tracks(store, "RM_s")
    out = tmp_path / "speaker.mp4"
    render(Job(Request(session="RM_s", layout="speaker"), tracks, root, out))
    # Join order p0, p1, p2. Before p2 talks the first voice (p0's blip) holds the big tile; after, p2.
    # (The big tile is the same rectangle whoever has it: its colour tells who.)
    big = {who: picture_rect(320, 240, tile_rects(3, 640, 360, "speaker", who).tiles[who]) for who in (0, 2)}
    with av.open(str(out)) as container:
        frames = {round(f.time, 2): f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    for t, who in ((0.4, 0), (2.8, 2)):
        image = frames[min(frames, key=lambda k: abs(k - t))]
        box = big[who]
        centre = image[box.y + box.h * 3 // 4, box.x + box.w // 8]
        assert max(abs(int(c) - e) for c, e in zip(centre, COLORS[who], strict=True)) < 40, (t, who, centre)


def test_at_most_max_pending_compositions_wait_and_the_next_is_refused(tmp_path: Path) -> None:
    store = recorded_session(tmp_path, people=1, seconds=0.5)
    service = CompositionService(tmp_path, store)  # never opened: nothing renders, every job stays enqueued
    service.store = CompositionStore(tmp_path / "compositions.db")
    for _ in range(MAX_PENDING):
        service.create(Request(session="RM_s"), "r")
    with pytest.raises(CompositionRefused) as caught:
        service.create(Request(session="RM_s"), "r")
    assert (caught.value.status, caught.value.code) == (409, "composition_queue_full")
    assert len(service.rows.select(None, "enqueued", 100)) == MAX_PENDING

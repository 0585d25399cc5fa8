"""The recorder's service on a real recordings.db and real files, driven by a fake clock: the retention job,
the start-up recovery of recordings a crash left processing (truncated, garbage, missing), and the writer thread
muxing real encoded frames (libvpx, libopus) into files ffprobe reads, with its events."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tvapp.config import RecordingsConfig
from tvapp.core.recordings import SECONDS_PER_DAY, RecordingFilter
from tvapp.server.recorder import RecordingService
from tvapp.server.recording_store import DB_FILE, RecordingRow, RecordingStore
from tvapp.server.recording_writer import RecordingWriter, recover

T0 = 1_800_000_000.0


def row(sid: str, status: str = "processing", *, codec: str = "vp8", ended: float | None = None) -> RecordingRow:
    container, kind = {"vp8": ("webm", "video"), "opus": ("mka", "audio")}[codec]
    return RecordingRow(sid=sid, room="den", session="RM_s", participant="gran", participant_sid="PA_g",
                        track="TR_t", type=kind, codec=codec, container=container, status=status, offset=1.0,
                        duration=2.0, size=100, created_at=T0, completed_at=ended, file=f"{sid}.{container}")


def vp8_frames(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 160, 120, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = {"g": "15"}
    encoder.open()  # type: ignore[attr-defined]
    out: list[bytes] = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), (i * 7) % 255, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in encoder.encode(frame)]  # type: ignore[attr-defined]
    return out


def decodes_cleanly(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True,
                          text=True, timeout=60, check=False).stderr


def write_recording(tmp_path: Path, store: RecordingStore, sid: str, frames: list[bytes],
                    quota: int = 0) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    writer = RecordingWriter(store, tmp_path / "recordings", quota, lambda event, r: events.append((event, r.sid)),
                             clock=lambda: T0 + 10)
    writer.start()
    writer.open(row(sid), 90_000)
    for i, data in enumerate(frames):
        writer.packet(sid, data, i * 3000, not data[0] & 1)
    writer.close(sid)
    writer.stop()
    return events


def test_the_writer_muxes_encoded_frames_into_a_playable_file_and_says_so(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / DB_FILE)
    events = write_recording(tmp_path, store, "RE_one", vp8_frames(60))
    assert events == [("started", "RE_one"), ("completed", "RE_one")]
    done = store.get("RE_one")
    assert done is not None and done.status == "completed" and abs(done.duration - 2.0) < 0.05
    path = tmp_path / "recordings" / "RE_one.webm"
    assert done.size == path.stat().st_size and path.stat().st_mode & 0o777 == 0o600
    assert decodes_cleanly(path) == ""


def test_a_quota_fails_the_recording_with_a_reason_and_a_finished_file(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / DB_FILE)
    frames = vp8_frames(60)
    events = write_recording(tmp_path, store, "RE_big", frames, quota=len(frames[0]) + 10)
    assert events == [("started", "RE_big"), ("failed", "RE_big")]
    failed = store.get("RE_big")
    assert failed is not None and failed.status == "failed" and failed.reason is not None
    assert failed.reason.startswith("quota_exceeded")
    assert decodes_cleanly(tmp_path / "recordings" / "RE_big.webm") == ""


def test_recovery_finishes_a_cut_off_file_and_fails_what_cannot_be_read(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / DB_FILE)
    write_recording(tmp_path, store, "RE_cut", vp8_frames(60))
    folder = tmp_path / "recordings"
    whole = (folder / "RE_cut.webm").read_bytes()
    (folder / "RE_cut.webm").write_bytes(whole[: len(whole) * 2 // 3])  # what a kill -9 could leave
    with store.batch():
        store.insert(row("RE_again"))
        store.insert(row("RE_junk"))
        store.insert(row("RE_gone"))
    (folder / "RE_again.webm").write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "RE_junk.webm").write_bytes(b"\x1a\x45\xdf\xa3" + b"not matroska at all" * 50)
    recovered = {r.sid: r for r in recover(store, folder, T0 + 99)}
    assert set(recovered) == {"RE_again", "RE_junk", "RE_gone"}  # RE_cut was completed: left alone
    again = recovered["RE_again"]
    assert again.status == "completed" and again.completed_at == T0 + 99 and 0.5 < again.duration < 2.0
    assert again.size == (folder / "RE_again.webm").stat().st_size
    assert decodes_cleanly(folder / "RE_again.webm") == ""
    assert not list(folder.glob("*.recovering"))
    for sid in ("RE_junk", "RE_gone"):
        assert recovered[sid].status == "failed" and (recovered[sid].reason or "").startswith("unrecoverable")
    assert recover(store, folder, T0 + 100) == []  # nothing is processing any more


def test_the_retention_job_deletes_what_expired_by_the_fake_clock(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = RecordingService(RecordingsConfig(retention_days=2), tmp_path, sfu=None,  # type: ignore[arg-type]
                                   clock=lambda: T0)
        await service.open()
        store = RecordingStore(tmp_path / DB_FILE)
        folder = tmp_path / "recordings"
        for sid, status, ended in (("RE_old", "completed", T0 - 3 * SECONDS_PER_DAY),
                                   ("RE_oldfail", "failed", T0 - 2 * SECONDS_PER_DAY),
                                   ("RE_new", "completed", T0 - SECONDS_PER_DAY),
                                   ("RE_live", "processing", None)):
            store.insert(row(sid, status, ended=ended))
            (folder / f"{sid}.webm").write_bytes(b"x")
        assert await service.expire() == 2
        assert {r.sid for r in store.select(RecordingFilter(), 10) if r.status == "deleted"} == {"RE_old", "RE_oldfail"}
        assert sorted(p.name for p in folder.iterdir()) == ["RE_live.webm", "RE_new.webm"]
        assert await service.expire(now=T0 + SECONDS_PER_DAY) == 1  # a day later RE_new has expired too
        assert await service.expire(now=T0 + 100 * SECONDS_PER_DAY) == 0  # processing is never expired
        await service.close()

    asyncio.run(scenario())



def test_events_reach_the_listeners_on_the_event_loop_with_their_rows(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = RecordingService(RecordingsConfig(), tmp_path, sfu=None, clock=lambda: T0)  # type: ignore[arg-type]
        await service.open()
        loop_thread = threading.get_ident()
        seen: list[tuple[str, str, str, bool]] = []
        for event, listeners in (("started", service.events.on_started), ("completed", service.events.on_completed),
                                 ("failed", service.events.on_failed)):
            listeners.append(lambda r, event=event: seen.append(
                (event, r.sid, r.status, threading.get_ident() == loop_thread)))
        service.events.on_completed.insert(0, lambda r: 1 / 0)  # a failing listener does not stop the others
        frames = vp8_frames(30)
        service.writer.open(row("RE_ev"), 90_000)
        for i, data in enumerate(frames):
            service.writer.packet("RE_ev", data, i * 3000, not data[0] & 1)
        service.writer.close("RE_ev")
        service.writer.open(row("RE_empty"), 90_000)
        service.writer.close("RE_empty")  # no frame at all: failed, said why
        for _ in range(200):
            if len(seen) == 4:
                break
            await asyncio.sleep(0.02)
        assert seen == [("started", "RE_ev", "processing", True), ("completed", "RE_ev", "completed", True),
                        ("started", "RE_empty", "processing", True), ("failed", "RE_empty", "failed", True)]
        assert (service.store.get("RE_empty").reason or "").startswith("no_media")  # type: ignore[union-attr]
        await service.close()

    asyncio.run(scenario())


def test_a_full_disk_fails_the_recording_cleanly_and_the_writer_goes_on(tmp_path: Path) -> None:
    """A real full file system: a 64 KiB tmpfs mounted on the recordings folder (the tests run as root)."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder)], check=True)
    try:
        store = RecordingStore(tmp_path / DB_FILE)
        events: list[tuple[str, str]] = []
        writer = RecordingWriter(store, folder, 0, lambda event, r: events.append((event, r.sid)))
        writer.start()
        big = vp8_frames(150)
        writer.open(row("RE_full"), 90_000)
        for i, data in enumerate(big * 20):  # ~ 20 times what fits
            writer.packet("RE_full", data + bytes(2000), i * 3000, not data[0] & 1)
        writer.close("RE_full")
        writer.open(row("RE_after"), 90_000)  # the thread is still there for the next one
        writer.close("RE_after")
        writer.stop()
        failed = store.get("RE_full")
        assert failed is not None and failed.status == "failed", failed
        assert (failed.reason or "").startswith("write_failed"), failed.reason
        assert events[:2] == [("started", "RE_full"), ("failed", "RE_full")]
        assert events[2:] == [("started", "RE_after"), ("failed", "RE_after")]  # no frame: failed, said why
        assert (store.get("RE_after").reason or "").startswith("no_media")  # type: ignore[union-attr]
    finally:
        subprocess.run(["umount", str(folder)], check=True)

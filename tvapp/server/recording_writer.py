"""The recorder's disk side: one thread muxes every recorded track's encoded frames into its file, off the event loop.

The event loop only queues commands (`open`, `packet`, `close`), gathered for `BATCH_INTERVAL` and handed over as one
queue item (a few thread wake-ups a second, not one per frame); this thread writes each track's frames, as
received, into Matroska/WebM with PyAV's mux-only streams (no codec is opened: nothing is decoded or encoded),
closing a cluster every second and flushing each packet to the kernel, so that a ``kill -9`` of the core leaves
all but the last second readable. It keeps the recordings table (tvapp.server.recording_store) up to date:
progress about once a second, the final status at close. A write that would pass the quota, or that the disk
refuses, fails that recording cleanly (file closed, status failed, a reason) and never reaches the call.

`recover` is the start-up pass: a recording still `processing` (the core died) is remuxed into a finished
file and marked completed, or failed when nothing in it can be read. `recording_path` is the only way from a
row to a file: the name is the server's own (sid + extension) and must stay inside DATA/recordings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from tvapp.core.recordings import CONTAINERS, fits_quota
from tvapp.server.recording_store import RecordingRow, RecordingStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between progress rows (and quota re-reads)
BATCH_INTERVAL = 0.1  # seconds the event loop gathers commands before handing them to the thread
MUX_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}
_NAME_RE = re.compile(r"RE_[A-Za-z0-9_\-]{1,40}\.(mka|webm|mkv)")

Notify = Callable[[str, RecordingRow], None]  # ("started" | "completed" | "failed", row), from this thread


class UnsafePath(ValueError):
    """A recording's file name that is not one the server makes, or that leaves the recordings folder."""


def recording_path(root: Path, name: str) -> Path:
    """Return the file of a recording named `name` under `root`; raise UnsafePath for any other name."""
    if not _NAME_RE.fullmatch(name):
        raise UnsafePath(f"not a recording file name: {name!r}")
    path = (root / name).resolve()
    if path.parent != root.resolve():
        raise UnsafePath(f"outside the recordings folder: {name!r}")
    return path


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """Return (width, height) from a VP8 keyframe's header, None for an interframe."""
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF


class _Bits:
    """An H.264 RBSP read bit by bit (Exp-Golomb codes included)."""

    def __init__(self, data: bytes) -> None:
        self.data = data.replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes out
        self.pos = 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]  # IndexError past the end: not an SPS we can read
        self.pos += 1
        return (byte >> (7 - ((self.pos - 1) & 7))) & 1

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def h264_size(frame: bytes) -> tuple[int, int] | None:
    """Return (width, height) from the SPS in an Annex B H.264 frame, None when it has none (or it is unreadable)."""
    for nal in frame.split(b"\x00\x00\x01"):
        if not nal or nal[0] & 0x1F != 7:
            continue
        try:
            bits = _Bits(nal[1:])
            profile = bits.bits(8)
            bits.bits(16)  # constraint flags, level
            bits.ue()  # seq_parameter_set_id
            chroma = 1
            if profile in _HIGH_PROFILES:
                chroma = bits.ue()
                if chroma == 3:
                    bits.bit()
                bits.ue()
                bits.ue()
                bits.bit()
                if bits.bit():  # scaling matrices
                    for i in range(8 if chroma != 3 else 12):
                        if bits.bit():
                            last = following = 8
                            for _ in range(16 if i < 6 else 64):
                                if following:
                                    following = (last + bits.se() + 256) % 256
                                last = following or last
            bits.ue()  # log2_max_frame_num_minus4
            order = bits.ue()
            if order == 0:
                bits.ue()
            elif order == 1:
                bits.bit()
                bits.se()
                bits.se()
                for _ in range(bits.ue()):
                    bits.se()
            bits.ue()  # max_num_ref_frames
            bits.bit()
            width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
            frame_mbs_only = bits.bit()
            if not frame_mbs_only:
                bits.bit()
            bits.bit()
            left = right = top = bottom = 0
            if bits.bit():
                left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
            crop_x, crop_y = (2, 2 * (2 - frame_mbs_only)) if chroma == 1 else (1, 2 - frame_mbs_only)
            return (width_mbs * 16 - crop_x * (left + right),
                    (2 - frame_mbs_only) * height_units * 16 - crop_y * (top + bottom))
        except (IndexError, ValueError):
            return None
    return None


@dataclass
class _Open:
    row: RecordingRow
    path: Path
    rate: int
    container: Any = None
    stream: Any = None
    first_pts: int | None = None
    last_pts: int = 0
    step: int = 0
    written: int = 0


@dataclass
class RecordingWriter:
    """The writer thread and the commands the event loop queues for it."""

    store: RecordingStore
    root: Path
    quota_bytes: int
    notify: Notify
    clock: Callable[[], float] = time.time
    _queue: queue.SimpleQueue[list[tuple[Any, ...]] | None] = field(default_factory=queue.SimpleQueue)
    _batch: list[tuple[Any, ...]] = field(default_factory=list)
    _open: dict[str, _Open] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _used: int = 0
    _pending: int = 0

    def start(self) -> None:
        """Start the thread."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="tvapp-recorder", daemon=True)
        self._thread.start()

    def open(self, row: RecordingRow, rate: int) -> None:
        """Queue: create the recording's row and file (its first frame follows)."""
        self._send(("open", row, rate))

    def packet(self, sid: str, data: bytes, pts: int, keyframe: bool) -> None:
        """Queue one encoded frame, `pts` in the track's clock from its first frame."""
        self._send(("packet", sid, data, pts, keyframe))

    def close(self, sid: str) -> None:
        """Queue: finish the recording (completed)."""
        self._send(("close", sid))

    def _send(self, item: tuple[Any, ...]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a test, a tool): straight to the thread
            self._queue.put([item])
            return
        if not self._batch:
            loop.call_later(BATCH_INTERVAL, self.flush)
        self._batch.append(item)

    def flush(self) -> None:
        """Hand the commands gathered on the event loop to the thread."""
        batch, self._batch = self._batch, []
        if batch:
            self._queue.put(batch)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish every open recording and stop the thread (waits for the queue to drain; `flush` first)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    # the thread ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        self._used = self.store.used_bytes()
        next_progress = time.monotonic() + PROGRESS_INTERVAL
        while True:
            try:
                batch = self._queue.get(timeout=PROGRESS_INTERVAL)
            except queue.Empty:
                batch = []
            if batch is None:
                break
            for item in batch:
                try:
                    self._do(item)
                except Exception:
                    log.exception("recorder: a %s command failed", item[0])
            if time.monotonic() >= next_progress:
                next_progress = time.monotonic() + PROGRESS_INTERVAL
                try:
                    self._progress()
                except Exception:
                    log.exception("recorder: progress could not be saved")
        for sid in list(self._open):
            self._finish(sid, "completed")

    def _do(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "packet":
            self._write(*item[1:])
        elif kind == "open":
            row, rate = item[1], item[2]
            self.store.insert(row)
            self._open[row.sid] = _Open(row=row, path=recording_path(self.root, row.file), rate=rate)
            self.notify("started", row)
        elif kind == "close" and item[1] in self._open:
            self._finish(item[1], "completed")

    def _write(self, sid: str, data: bytes, pts: int, keyframe: bool) -> None:
        rec = self._open.get(sid)
        if rec is None:
            return
        if not fits_quota(self._used + self._pending, len(data), self.quota_bytes):
            self._finish(sid, "failed", "quota_exceeded: the recordings would pass [recordings] quota_bytes")
            return
        try:
            if rec.container is None:
                self._start_file(rec, data)
            packet = av.Packet(data)
            packet.stream = rec.stream
            packet.time_base = Fraction(1, rec.rate)  # the muxer rescales to its own (Matroska: 1/1000)
            packet.pts = packet.dts = pts
            packet.is_keyframe = keyframe
            if rec.row.type == "audio":
                packet.duration = 960
            rec.container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            self._finish(sid, "failed", f"write_failed: {exc}"[:300])
            return
        if rec.first_pts is None:
            rec.first_pts = pts
        elif pts > rec.last_pts:
            frames = max(1, rec.written)
            rec.step = (pts - rec.first_pts) // frames
        rec.last_pts = max(rec.last_pts, pts)
        rec.written += 1
        self._pending += len(data)

    def _start_file(self, rec: _Open, first: bytes) -> None:
        extension = rec.row.container
        muxer = next(m for ext, m in CONTAINERS.values() if ext == extension)
        os.close(os.open(rec.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # private before a byte is in it
        rec.container = av.open(str(rec.path), "w", format=muxer, options=dict(MUX_OPTIONS))
        codec = rec.row.codec
        if rec.row.type == "audio":
            stream = rec.container.add_mux_stream(codec, rate=rec.rate)
        else:
            size = vp8_size(first) if codec == "vp8" else h264_size(first)
            width, height = size or (0, 0)
            stream = rec.container.add_mux_stream(codec, width=width, height=height)
        stream.time_base = Fraction(1, rec.rate)
        rec.stream = stream

    def _duration(self, rec: _Open) -> float:
        if rec.first_pts is None:
            return 0.0
        frame = 960 if rec.row.type == "audio" else rec.step
        return (rec.last_pts - rec.first_pts + frame) / rec.rate

    def _size(self, rec: _Open) -> int:
        try:
            return rec.path.stat().st_size
        except OSError:
            return 0

    def _progress(self) -> None:
        if self._open:
            with self.store.batch():  # one durable transaction for all of them
                for rec in self._open.values():
                    self.store.progress(rec.row.sid, self._duration(rec), self._size(rec))
        self._used, self._pending = self.store.used_bytes(), 0

    def _finish(self, sid: str, status: str, reason: str | None = None) -> None:
        rec = self._open.pop(sid)
        if rec.container is not None:
            try:
                rec.container.close()
            except (OSError, av.FFmpegError) as exc:
                status, reason = "failed", reason or f"write_failed: {exc}"[:300]
        if rec.written == 0 and status == "completed":
            status, reason = "failed", "no_media: the track sent no frame while recorded"
        size = self._size(rec)
        row = self.store.finish(sid, status, duration=self._duration(rec), size=size, at=self.clock(),
                                reason=reason)
        if row is not None:
            if status == "failed":
                log.warning("recorder: %s failed: %s", sid, reason)
            self.notify(status, row)


def remux(path: Path) -> tuple[float, int]:
    """Rewrite a cut-off recording into a finished file in place; return (duration s, size); raise on nothing."""
    muxer = next(m for ext, m in CONTAINERS.values() if path.suffix == "." + ext)
    temporary = path.with_name(path.name + ".recovering")
    packets = 0
    first: float | None = None
    last = 0.0
    try:
        with av.open(str(path)) as source:
            in_stream = source.streams[0]
            with av.open(str(temporary), "w", format=muxer) as target:
                out_stream = target.add_stream_from_template(in_stream)
                try:
                    for packet in source.demux(in_stream):
                        if packet.pts is None or packet.size == 0:
                            continue
                        seconds = float(packet.pts * packet.time_base)
                        first = seconds if first is None else first
                        last = max(last, seconds + float((packet.duration or 0) * packet.time_base))
                        packet.stream = out_stream
                        target.mux(packet)
                        packets += 1
                except (av.FFmpegError, EOFError):
                    pass  # the cut-off end: everything before it is kept
        if packets == 0:
            raise ValueError("no readable frame")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return last - (first or 0.0), path.stat().st_size


def recover(store: RecordingStore, root: Path, now: float) -> list[RecordingRow]:
    """Finish every recording a crash left `processing`: remuxed and completed, or failed; return them."""
    done = []
    for row in store.processing():
        try:
            path = recording_path(root, row.file)
            duration, size = remux(path)
        except (OSError, ValueError, av.FFmpegError, StopIteration, IndexError) as exc:  # unreadable, missing, not ours
            size = 0
            try:
                size = recording_path(root, row.file).stat().st_size
            except (OSError, UnsafePath):
                pass
            finished = store.finish(row.sid, "failed", duration=row.duration, size=size, at=now,
                                    reason=f"unrecoverable: {exc}"[:300])
        else:
            finished = store.finish(row.sid, "completed", duration=duration, size=size, at=now,
                                    reason="recovered after the core stopped")
        if finished is not None:
            done.append(finished)
    return done

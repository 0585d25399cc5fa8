"""Room recordings, the event-loop side: which rooms record, one `TrackRecorder` per recorded track, and events.

A room session records when it was created with `record: true` or told `POST /v1/rooms/{room}/recording`
(kept in DATA/recordings.db across restarts). While it does, every publication of the room whose codec is
known gets a `TrackRecorder`, a sink on tvapp.server.forwarding.Publication: each complete encoded frame the SFU
forwards (video from its first keyframe) is handed, with its RTP timestamp unwrapped and made relative to the
track's first frame, to the writer thread (tvapp.server.recording_writer) as a queue push; nothing here waits on
the disk. The track's `offset` is its first frame's wall time minus the room session's start (its `started_at`,
else `created_at`), so a composition can place every track of a session on one timeline.

Events: `events.on_started`, `on_completed`, `on_failed` are lists of callables taking the `RecordingRow`,
called on the event loop (webhooks hook here). Start-up recovers the recordings a crash left `processing`;
`expire(now)` deletes what `[recordings] retention_days` has expired (tvapp.core.recordings.expired).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tvapp.config import RecordingsConfig
from tvapp.core.codes import new_id
from tvapp.core.recordings import (
    CLOCK_RATES,
    RecordingFilter,
    container_for,
    expired,
    offset_of,
    unwrap_timestamp,
)
from tvapp.server.recording_store import DB_FILE, RecordingRow, RecordingStore
from tvapp.server.recording_writer import (
    RecordingWriter,
    UnsafePath,
    recording_path,
    recover,
)

if TYPE_CHECKING:
    from tvapp.server.forwarding import Publication
    from tvapp.server.live import LiveRoom
    from tvapp.server.media import Sfu

log = logging.getLogger(__name__)

FOLDER = "recordings"
Listener = Callable[[RecordingRow], None]


@dataclass
class RecordingEvents:
    """Callbacks run on the event loop when a recording starts, completes or fails (each gets its row)."""

    on_started: list[Listener] = field(default_factory=list)
    on_completed: list[Listener] = field(default_factory=list)
    on_failed: list[Listener] = field(default_factory=list)


class TrackRecorder:
    """A publication's sink: hands each frame to the writer thread with a pts relative to the first frame."""

    def __init__(self, service: RecordingService, publication: Publication, room: str, session: str,
                 session_start: float, identity: str) -> None:
        self.service = service
        self.publication = publication
        self.room, self.session, self.session_start, self.identity = room, session, session_start, identity
        self.rate = CLOCK_RATES[publication.kind]
        self.sid: str | None = None
        self.first: int | None = None
        self.position = 0  # the last timestamp, unwrapped
        self.stopped = False

    def frame(self, data: bytes, timestamp: int, keyframe: bool) -> None:
        """Take one complete encoded frame (called by the publication, on the event loop)."""
        if self.stopped:
            return
        writer = self.service.writer
        if self.first is None:
            if not keyframe:
                return
            codec = (self.publication.codec or "").lower()
            extension, _ = container_for(codec)
            now = self.service.clock()
            self.sid = new_id("RE")
            self.first = self.position = timestamp
            row = RecordingRow(
                sid=self.sid, room=self.room, session=self.session, participant=self.identity,
                participant_sid=self.publication.participant_sid, track=self.publication.track_sid,
                type=self.publication.kind, codec=codec, container=extension, status="processing",
                offset=round(offset_of(now, self.session_start), 3), duration=0.0, size=0, created_at=now,
                file=f"{self.sid}.{extension}")
            self.service.by_sid[self.sid] = self
            writer.open(row, self.rate)
        self.position = unwrap_timestamp(self.position, timestamp)
        pts = self.position - self.first
        if pts >= 0 and self.sid is not None:
            writer.packet(self.sid, data, pts, keyframe)

    def close(self) -> None:
        """Stop recording this track (its file is finished as completed)."""
        if self.stopped:
            return
        self.stopped = True
        if self in self.publication.sinks:
            self.publication.sinks.remove(self)
        self.service.tracks.pop(self.publication.track_sid, None)
        if self.sid is not None:
            self.service.writer.close(self.sid)

    def failed(self) -> None:
        """Stop feeding a recording the writer has failed (quota, disk): the call goes on."""
        self.stopped = True
        if self in self.publication.sinks:
            self.publication.sinks.remove(self)
        self.service.tracks.pop(self.publication.track_sid, None)


class RecordingService:
    """Which room sessions record, their track recorders, the writer thread, and the recordings' events."""

    def __init__(self, config: RecordingsConfig, data_dir: Path, sfu: Sfu,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.root = data_dir / FOLDER
        self.db_path = data_dir / DB_FILE
        self.sfu = sfu
        self.clock = clock
        self.events = RecordingEvents()
        self.active: set[str] = set()  # room session sids that record
        self.tracks: dict[str, TrackRecorder] = {}  # track sid -> its recorder
        self.by_sid: dict[str, TrackRecorder] = {}  # recording sid -> its recorder
        self.reader: RecordingStore | None = None
        self._store: RecordingStore | None = None
        self._writer: RecordingWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def writer(self) -> RecordingWriter:
        """Return the writer thread's front (after `open`)."""
        assert self._writer is not None
        return self._writer

    @property
    def store(self) -> RecordingStore:
        """Return the store the event loop reads."""
        assert self.reader is not None
        return self.reader

    async def open(self) -> list[RecordingRow]:
        """Open the store, recover what a crash left processing, start the writer; return the recovered."""
        self._loop = asyncio.get_running_loop()
        self._store = await asyncio.to_thread(RecordingStore, self.db_path)
        self.reader = RecordingStore(self.db_path)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        recovered = await asyncio.to_thread(recover, self._store, self.root, self.clock())
        for row in recovered:
            log.info("recorder: %s was left processing by a stop: now %s", row.sid, row.status)
        self.active = self.reader.active_rooms()
        self._writer = RecordingWriter(self._store, self.root, self.config.quota_bytes, self._notify,
                                       clock=self.clock)
        self._writer.start()
        return recovered

    async def close(self) -> None:
        """Finish every recording and stop the writer thread."""
        for recorder in list(self.tracks.values()):
            recorder.close()
        if self._writer is not None:
            self._writer.flush()
            await asyncio.to_thread(self._writer.stop)
        if self._store is not None:
            self._store.close()
        if self.reader is not None:
            self.reader.close()

    # events (from the writer thread) -----------------------------------------------------------------------

    def _notify(self, event: str, row: RecordingRow) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._emit, event, row)
            except RuntimeError:
                pass  # the loop has stopped: nobody listens any more

    def _emit(self, event: str, row: RecordingRow) -> None:
        if event != "started":
            recorder = self.by_sid.pop(row.sid, None)
            if recorder is not None and event == "failed":
                recorder.failed()
        listeners = {"started": self.events.on_started, "completed": self.events.on_completed,
                     "failed": self.events.on_failed}[event]
        for listener in list(listeners):
            try:
                listener(row)
            except Exception:
                log.exception("recorder: a %s listener failed", event)

    # rooms ---------------------------------------------------------------------------------------------------

    def is_recording(self, session: str) -> bool:
        """Tell whether a room session records."""
        return session in self.active

    async def set_recording(self, live: LiveRoom, on: bool) -> None:
        """Start or stop recording a live room session (every published track, and each one published later)."""
        session = live.row.sid
        assert self._store is not None
        store = self._store
        await asyncio.to_thread(store.set_room, session, on)
        if on:
            self.active.add(session)
            room = self.sfu.rooms.get(session)
            for publication in list(room.publications()) if room is not None else []:
                if publication.ready:
                    self.track_ready(live, publication)
        else:
            self.active.discard(session)
            for recorder in [r for r in self.tracks.values() if r.session == session]:
                recorder.close()

    def track_ready(self, live: LiveRoom, publication: Publication) -> None:
        """Start recording a publication whose codec is now known, if its room records."""
        session = live.row.sid
        if session not in self.active or publication.track_sid in self.tracks or publication.rendition_of is not None:
            return  # (a rendition is a second encode of a track recorded already, tvapp.core.simulcast)
        try:
            container_for(publication.codec or "")
        except KeyError:
            log.warning("recorder: %s cannot be recorded (codec %s)", publication.track_sid, publication.codec)
            return
        media = self.sfu.sessions.get(publication.participant_sid)
        identity = media.participant.identity if media is not None else publication.participant_sid
        start = live.row.started_at or live.row.created_at
        recorder = TrackRecorder(self, publication, live.row.name, session, start, identity)
        self.tracks[publication.track_sid] = recorder
        publication.sinks.append(recorder)
        publication.request_keyframe()

    # deletion -------------------------------------------------------------------------------------------------

    def _delete(self, rows: list[RecordingRow], now: float) -> int:
        """Delete rows' files and mark them deleted (on a worker thread); return how many."""
        assert self._store is not None
        count = 0
        for row in rows:
            try:
                recording_path(self.root, row.file).unlink(missing_ok=True)
            except (OSError, UnsafePath) as exc:
                log.warning("recorder: could not delete the file of %s: %s", row.sid, exc)
                continue
            if self._store.mark_deleted(row.sid, now):
                count += 1
        return count

    async def delete(self, rows: list[RecordingRow]) -> int:
        """Delete finished recordings (their files, then their rows marked deleted); return how many."""
        return await asyncio.to_thread(self._delete, rows, self.clock())

    async def expire(self, now: float | None = None) -> int:
        """Delete the recordings [recordings] retention_days has expired; return how many."""
        now = self.clock() if now is None else now
        rows = [row for row in self.store.ended()
                if expired(row.completed_at or row.created_at, now, self.config.retention_days)]
        return await self.delete(rows) if rows else 0

    def matching(self, flt: RecordingFilter, limit: int, after: RecordingRow | None = None) -> list[RecordingRow]:
        """Return the recordings a filter selects (newest first)."""
        return self.store.select(flt, limit, after)

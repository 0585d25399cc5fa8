"""Compositions on the core: a queue of render jobs, one worker process at a time, and their rows.

`CompositionService.create` checks a validated request against the session's recordings (none: refused), stores
a row (``DATA/compositions.db``, status enqueued) and queues it. The runner task takes one job at a time, writes
its job file and starts ``python -m tvapp.compose JOB.json`` (tvapp.compose.worker), a separate process so
the event loop never renders; it reads the worker's progress lines (percent and ETA from
tvapp.core.compositions.progress, kept in the row), then marks the row completed (file, size, duration) or
failed (reason) and calls `on_finished` (the state turns it into a composition_completed/failed webhook).
Files are DATA/compositions/<sid>.<format>, named by the server only. Jobs left enqueued or processing by a stopped
core are queued again on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from tvapp.compose.render import Job
from tvapp.compose.worker import job_json
from tvapp.core.codes import new_id
from tvapp.core.compositions import Request, Track, progress, select
from tvapp.core.errors import CodedError
from tvapp.core.recordings import RecordingFilter
from tvapp.server.database import Database, Migration
from tvapp.server.recording_store import RecordingStore

log = logging.getLogger(__name__)

DB_FILE = "compositions.db"
FOLDER = "compositions"
MAX_TRACKS = 10_000
MAX_PENDING = 16  # compositions enqueued or processing at once; more are refused (409 composition_queue_full)


@dataclass(frozen=True, slots=True)
class CompositionRow:
    """One composition: what was asked, how far its render got, and its file."""

    sid: str
    room: str  # the room's name
    session: str  # the room session's sid (RM_...)
    layout: str
    resolution: str
    format: str
    status: str  # enqueued | processing | completed | failed | deleted
    percent: float
    eta: float | None  # seconds left while processing (None: not known yet)
    duration: float  # seconds of output
    size: int  # bytes of the file
    created_at: float
    started_at: float | None = None
    completed_at: float | None = None
    reason: str | None = None
    request: str = "{}"  # the validated request (JSON)
    file: str = ""  # the file's name under DATA/compositions/


def _migration_1_initial(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE compositions (
        sid TEXT PRIMARY KEY, room TEXT NOT NULL, session TEXT NOT NULL, layout TEXT NOT NULL,
        resolution TEXT NOT NULL, format TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('enqueued', 'processing', 'completed', 'failed', 'deleted')),
        percent REAL NOT NULL, eta REAL, duration REAL NOT NULL, size INTEGER NOT NULL, created_at REAL NOT NULL,
        started_at REAL, completed_at REAL, reason TEXT, request TEXT NOT NULL, file TEXT NOT NULL)""")
    conn.execute("CREATE INDEX compositions_created ON compositions (created_at)")


_COLUMNS = ", ".join(f.name for f in fields(CompositionRow))
_PLACES = ", ".join("?" for _ in fields(CompositionRow))


class CompositionStore(Database):
    """The compositions table."""

    MIGRATIONS: ClassVar[tuple[Migration, ...]] = (_migration_1_initial,)

    def put(self, row: CompositionRow) -> None:
        """Insert or replace a composition row."""
        with self._transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO compositions ({_COLUMNS}) VALUES ({_PLACES})",
                         tuple(getattr(row, f.name) for f in fields(row)))

    def get(self, sid: str) -> CompositionRow | None:
        """Return one composition, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM compositions WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else CompositionRow(*row)

    def select(self, session: str | None, status: str | None, limit: int) -> list[CompositionRow]:
        """Return compositions (of a session, in a status), newest first, at most `limit`."""
        clauses, args = [], []
        if session is not None:
            clauses.append("session = ?")
            args.append(session)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM compositions{where} ORDER BY created_at DESC, sid DESC"
                                " LIMIT ?", (*args, limit)).fetchall()
        return [CompositionRow(*r) for r in rows]


class CompositionRefused(CodedError):
    """A composition the session's recordings cannot give (400/409)."""


def session_tracks(recordings: RecordingStore, session: str) -> list[Track]:
    """Return the session's finished recordings with a file, as composition tracks; refuse while some record."""
    rows = recordings.select(RecordingFilter(session=session), MAX_TRACKS)
    if any(r.status == "processing" for r in rows):
        raise CompositionRefused("recording_in_progress", "the session is still being recorded: stop its "
                                 "recording (or end the room) first", status=409)
    tracks = [Track(r.sid, r.participant, r.track, r.type, r.offset, r.duration, r.file) for r in rows
              if r.status in ("completed", "failed") and r.size > 0 and r.duration > 0]
    if not tracks:
        raise CompositionRefused("no_recordings", "this room session has no recordings to compose")
    return tracks


class CompositionService:
    """Queue, run and keep compositions (one worker process at a time)."""

    def __init__(self, data_dir: Path, recordings: RecordingStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = data_dir / FOLDER
        self.recordings_root = data_dir / "recordings"
        self.recordings = recordings
        self.clock = clock
        self.store: CompositionStore | None = None
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.on_finished: list[Callable[[CompositionRow], None]] = []
        self.child: asyncio.subprocess.Process | None = None
        self._runner: asyncio.Task[None] | None = None

    @property
    def rows(self) -> CompositionStore:
        """Return the open store."""
        assert self.store is not None, "CompositionService.open() was not awaited"
        return self.store

    async def open(self) -> None:
        """Open the store, queue again what a stopped core left unfinished, start the runner."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = await asyncio.to_thread(CompositionStore, self.root.parent / DB_FILE)
        for status in ("processing", "enqueued"):
            for row in reversed(self.rows.select(None, status, MAX_TRACKS)):
                self.rows.put(replace(row, status="enqueued", percent=0.0, eta=None))
                self.queue.put_nowait(row.sid)
        self._runner = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the runner and a running worker; the job stays queued for the next start."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self.store is not None:
            self.store.close()

    def create(self, req: Request, room: str) -> CompositionRow:
        """Check the request against the session's recordings, store it enqueued and queue it."""
        pending = [r for status in ("enqueued", "processing") for r in self.rows.select(None, status, MAX_PENDING)]
        if len(pending) >= MAX_PENDING:
            raise CompositionRefused("composition_queue_full", f"{MAX_PENDING} compositions are already waiting "
                                     "or rendering: try again when one has finished", status=409)
        tracks = session_tracks(self.recordings, req.session)
        _, video, audio = select(tracks, req)
        if not video and not audio:
            raise CompositionRefused("no_sources", "audio_sources and video_sources pick no recording of the session")
        sid = new_id("CJ")
        row = CompositionRow(sid=sid, room=room, session=req.session, layout=req.layout, resolution=req.resolution,
                             format=req.format, status="enqueued", percent=0.0, eta=None, duration=0.0, size=0,
                             created_at=self.clock(), request=json.dumps(asdict(req)), file=f"{sid}.{req.format}")
        self.rows.put(row)
        self.queue.put_nowait(sid)
        return row

    def delete(self, row: CompositionRow) -> None:
        """Delete a finished composition's file; the row stays, status deleted."""
        (self.root / row.file).unlink(missing_ok=True)
        self.rows.put(replace(row, status="deleted", percent=row.percent, eta=None))

    async def _run(self) -> None:
        while True:
            sid = await self.queue.get()
            try:
                await self._render(sid)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("composition %s: the runner failed", sid)

    async def _render(self, sid: str) -> None:
        row = self.rows.get(sid)
        if row is None or row.status != "enqueued":
            return
        raw = json.loads(row.request)
        for key in ("audio_sources", "video_sources"):
            if raw.get(key) is not None:
                raw[key] = tuple(raw[key])
        req = Request(**raw)
        started = self.clock()
        row = replace(row, status="processing", started_at=started)
        self.rows.put(row)
        try:
            tracks = session_tracks(self.recordings, req.session)
        except CompositionRefused as exc:
            self._finish(replace(row, status="failed", reason=exc.message, completed_at=self.clock()))
            return
        job_file = self.root / f"{sid}.job.json"
        job = Job(req, tracks, self.recordings_root, self.root / row.file)
        job_file.write_text(json.dumps(job_json(job)))
        job_file.chmod(0o600)
        outcome: dict[str, Any] = {}
        try:
            self.child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tvapp.compose", str(job_file), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
            assert self.child.stdout is not None
            async for raw_line in self.child.stdout:
                try:
                    line = json.loads(raw_line)
                except ValueError:
                    continue
                if "status" in line:
                    outcome = line
                elif "done" in line:
                    percent, eta = progress(started, self.clock(), float(line["done"]), float(line["total"]))
                    row = replace(row, percent=percent, eta=eta, duration=float(line["done"]))
                    await asyncio.to_thread(self.rows.put, row)
            await self.child.wait()
        except asyncio.CancelledError:
            if self.child is not None and self.child.returncode is None:
                self.child.kill()
                await self.child.wait()
            raise
        finally:
            job_file.unlink(missing_ok=True)
            self.child = None
        path = self.root / row.file
        if outcome.get("status") == "completed" and path.exists():
            row = replace(row, status="completed", percent=100.0, eta=0.0, size=path.stat().st_size,
                          duration=float(outcome["duration"]), completed_at=self.clock())
        else:
            reason = str(outcome.get("reason") or "the worker process stopped without finishing")
            row = replace(row, status="failed", eta=None, reason=reason, completed_at=self.clock())
        self._finish(row)

    def _finish(self, row: CompositionRow) -> None:
        self.rows.put(row)
        for listener in self.on_finished:
            try:
                listener(row)
            except Exception:
                log.exception("composition %s: a listener failed", row.sid)

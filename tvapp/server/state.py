"""Everything one running core server holds: config, keys, tokens, store connections, rooms.

`ServerState.open()` builds it and `close()` tears it down; the app's lifespan owns one,
and background tasks (the empty-room reaper, the purge of expired rows, the look at keys.json every
KEY_POLL_INTERVAL seconds that ends the live sessions of a revoked key's tokens) belong to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvapp.auth.keys import ApiKey, KeyStore, KeyStoreError, ensure_data_dir
from tvapp.auth.tokens import TokenAuthority
from tvapp.config import Config
from tvapp.core.attempts import AttemptLimiter
from tvapp.core.reconnect import check_grace
from tvapp.core.room import RoomLimits, room_limits
from tvapp.core.webhooks import COMPOSITION_KEYS, RECORDING_KEYS
from tvapp.protocol.messages import MAX_DATA_BYTES
from tvapp.server.compositions import CompositionRow, CompositionService
from tvapp.server.media import Sfu
from tvapp.server.playback import Watch
from tvapp.server.recorder import RecordingService
from tvapp.server.recording_store import RecordingRow
from tvapp.server.rooms import RoomManager
from tvapp.server.store import Store
from tvapp.server.webhooks import Webhooks
from tvapp.server.writer import StoreWriter

log = logging.getLogger(__name__)

DB_FILE = "tvapp.db"
PURGE_INTERVAL = 60.0
RECONNECT_CHECK_INTERVAL = 0.25  # how often grace windows are checked: a leave comes at most this late
KEY_POLL_INTERVAL = 0.5  # how often keys.json is looked at (a stat) for keys revoked by `tvapp keys revoke`
TOKEN_REVOKED = "token_revoked"


JOINS_PER_WINDOW = 20
JOIN_WINDOW = 10.0
"""At most JOINS_PER_WINDOW joins (resumes included) as one identity of one room per JOIN_WINDOW seconds: a token
joining and leaving in a loop would otherwise send everyone two messages and queue two webhooks per cycle."""


@dataclass(eq=False)
class ServerState:
    """The live parts of one core server."""

    config: Config
    data_dir: Path
    keys: KeyStore
    tokens: TokenAuthority
    reader: Store
    writer: StoreWriter
    rooms: RoomManager
    default_limits: RoomLimits
    redeem_limiter: AttemptLimiter
    auth_limiter: AttemptLimiter  # wrong API key credentials per client address
    sfu: Sfu
    watch: Watch
    recordings: RecordingService
    created_key: ApiKey | None = None
    hooks: Webhooks | None = None
    compositions: CompositionService | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    revoked_keys: frozenset[str] = frozenset()
    join_limiter: AttemptLimiter = field(default_factory=lambda: AttemptLimiter(JOINS_PER_WINDOW, JOIN_WINDOW))

    @classmethod
    async def open(cls, config: Config, data_dir: Path | None = None) -> ServerState:
        """Open the store, make sure an API key exists, recover live rooms and start background tasks."""
        data = ensure_data_dir(data_dir or config.data_path())
        keys = KeyStore(data)
        created = keys.ensure_key(time.time())
        writer = StoreWriter(data / DB_FILE)
        await writer.start()  # creates and migrates the database before the reader opens it
        reader = Store(data / DB_FILE)
        try:
            limits = room_limits(config.rooms.max_participants, config.rooms.empty_timeout)
        except ValueError as exc:
            raise ValueError(f"config [rooms]: {exc}") from None
        signal = config.signal
        if signal.data_rate_bytes and signal.data_burst_bytes < MAX_DATA_BYTES:
            raise ValueError(f"config [signal]: data_burst_bytes must be at least {MAX_DATA_BYTES} (one data message)")
        if min(signal.data_rate_bytes, signal.data_rate_messages) < 0 or (
                signal.data_rate_messages and signal.data_burst_messages < 1):
            raise ValueError("config [signal]: data rates must not be negative, a message burst at least 1")
        if signal.control_rate_messages < 0 or (signal.control_rate_messages and signal.control_burst_messages < 1):
            raise ValueError("config [signal]: control_rate_messages must not be negative, control_burst_messages "
                             "at least 1")
        try:
            grace = check_grace(signal.reconnect_grace)
        except ValueError as exc:
            raise ValueError(f"config [signal]: {exc}") from None
        sfu = Sfu(config.media)
        rooms = RoomManager(reader, writer, default_limits=limits, ping_interval=config.signal.ping_interval,
                            idle_timeout=config.signal.idle_timeout, reconnect_grace=grace)
        state = cls(
            config=config, data_dir=data, keys=keys,
            tokens=TokenAuthority(keys, audience=config.auth.audience, leeway=config.auth.leeway),
            reader=reader, writer=writer, rooms=rooms, default_limits=limits,
            redeem_limiter=AttemptLimiter(config.invites.redeem_failures, config.invites.redeem_window),
            auth_limiter=AttemptLimiter(config.server.auth_failures, config.server.auth_window),
            sfu=sfu, watch=Watch(config.watch), recordings=RecordingService(config.recordings, data, sfu),
            created_key=created,
        )
        rooms.media = state.sfu
        state.sfu.link = rooms
        state.hooks = rooms.hooks = Webhooks(config.webhooks, keys, reader, writer)
        await state.recordings.open()
        sfu.recorder = state.recordings
        events = state.recordings.events
        for event, listeners in (("recording_started", events.on_started), ("recording_completed", events.on_completed),
                                 ("recording_failed", events.on_failed)):
            listeners.append(functools.partial(state._recording_webhook, event))
        state.compositions = CompositionService(data, state.recordings.store)
        state.compositions.on_finished.append(state._composition_webhook)
        await state.compositions.open()
        state.revoked_keys = state._revoked_key_ids()
        await rooms.recover()
        state.tasks.append(asyncio.create_task(state.hooks.run()))
        state.tasks.append(asyncio.create_task(state._every(config.rooms.reaper_interval, rooms.reap)))
        state.tasks.append(asyncio.create_task(state._every(RECONNECT_CHECK_INTERVAL, state.expire_reconnecting)))
        state.tasks.append(asyncio.create_task(state._every(PURGE_INTERVAL, state._purge)))
        state.tasks.append(asyncio.create_task(state._every(KEY_POLL_INTERVAL, state.end_sessions_of_revoked_keys)))
        state.tasks.append(asyncio.create_task(state._every(config.recordings.retention_interval,
                                                            state.recordings.expire)))
        return state

    def _recording_webhook(self, event: str, row: RecordingRow) -> None:
        """Queue a recording_started/completed/failed webhook for the room session the recording belongs to."""
        live = self.rooms.live.get(row.room)
        room = live.row if live is not None and live.row.sid == row.session else self.reader.get_room(row.session)
        if room is None:
            log.warning("webhook %s: recording %s has no room session %s", event, row.sid, row.session)
            return
        recording = {key: getattr(row, key) for key in RECORDING_KEYS if key != "room_sid"} | {"room_sid": row.session}
        parts: dict[str, Any] = {"recording": recording}
        if event == "recording_failed":
            parts["reason"] = row.reason or "failed"
        self.rooms.emit(event, room, **parts)

    def _composition_webhook(self, row: CompositionRow) -> None:
        """Queue a composition_completed/failed webhook for the composition's room session."""
        room = self.reader.get_room(row.session)
        if room is None:
            log.warning("webhook: composition %s has no room session %s", row.sid, row.session)
            return
        composition = {key: getattr(row, key) for key in COMPOSITION_KEYS if key != "room_sid"}
        parts: dict[str, Any] = {"composition": composition | {"room_sid": row.session}}
        if row.status == "failed":
            parts["reason"] = row.reason or "failed"
        self.rooms.emit("composition_completed" if row.status == "completed" else "composition_failed", room,
                        **parts)

    def _revoked_key_ids(self) -> frozenset[str]:
        try:
            return frozenset(key.id for key in self.keys.list() if not key.active)
        except KeyStoreError:  # a damaged file: REST and joins say so; this poll keeps what it knew
            return self.revoked_keys

    async def end_sessions_of_revoked_keys(self) -> int:
        """End the live sessions whose token a newly revoked API key signed; return how many."""
        revoked = self._revoked_key_ids()  # one stat of keys.json unless it changed
        if revoked == self.revoked_keys:
            return 0
        self.revoked_keys = revoked
        return await self.rooms.end_sessions(lambda p: p.claims.issuer in revoked, TOKEN_REVOKED,
                                             "the API key that signed your token was revoked")

    async def end_sessions_of_family(self, family: str) -> int:
        """End the live sessions whose token belongs to a refresh family just revoked; return how many."""
        return await self.rooms.end_sessions(lambda p: p.claims.family == family, TOKEN_REVOKED,
                                             "your token was revoked (its refresh token was used twice)")

    async def expire_reconnecting(self) -> int:
        """Take out the participants whose reconnect grace window passed; return how many."""
        gone = await self.rooms.expire_reconnecting()
        for live, participant in gone:
            self.watch.left(live, participant)
        return len(gone)

    async def _purge(self) -> int:
        now = time.time()
        return await self.writer.call(lambda s: s.purge_expired(now))

    @staticmethod
    async def _every(interval: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                log.exception("background job %s failed", getattr(job, "__name__", job))

    async def close(self) -> None:
        """Stop background tasks, disconnect participants and close the store."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.watch.close()
        await self.rooms.close()
        await self.sfu.close()
        if self.compositions is not None:
            await self.compositions.close()
        await self.recordings.close()
        await asyncio.sleep(0.05)  # let the signaling writers send their close frames
        await self.writer.close()
        self.reader.close()

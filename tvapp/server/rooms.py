"""The room manager: opens, joins, leaves, removes and completes rooms, on the event loop.

Rooms are persisted in the store; the participants connected right now live only in memory
(tvapp.server.live: `LiveRoom`, `LiveParticipant`, and the `Peer` and `MediaHooks` it talks through). Every
decision (may this identity join? is this room due to complete?) comes from tvapp.core.room;
this module acts on it: it tells participants over their signaling peers and writes to the store.

Two parts of RoomManager live in modules of their own, as mixins: reconnection (tvapp.server.room_reconnect: a
participant whose websocket dropped or whose media died stays in its room, reconnecting, until `resume()` hands it to
a new connection, its media flows again, or `expire_reconnecting()` takes it out) and tracks
(tvapp.server.room_tracks: publish, unpublish, mute, subscribe).

Concurrency rule: between deciding a join and recording the participant there is no `await`,
so racing joins for the last slot cannot both win; the store write happens after the slot is taken
(and gives it back if the write fails).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace as _replace
from typing import TYPE_CHECKING, Any

from tvapp.core.claims import TokenClaims
from tvapp.core.codes import new_id
from tvapp.core.owners import Claim, Owner, claim_identity
from tvapp.core.reconnect import RECONNECT_GRACE_DEFAULT, Presence
from tvapp.core.room import (
    EmptyClock,
    JoinDecision,
    RoomEvent,
    RoomLimits,
    RoomStatus,
    decide_join,
    next_status,
)
from tvapp.protocol.messages import (
    Error,
    GrantsInfo,
    Joined,
    ParticipantJoined,
    ParticipantLeft,
    Removed,
    RoomCompleted,
)
from tvapp.server.live import (
    LiveParticipant,
    LiveRoom,
    MediaHooks,
    NoMedia,
    Peer,
    RoomError,
)
from tvapp.server.room_reconnect import CLOSE_NORMAL, RoomReconnection
from tvapp.server.room_tracks import RoomTracks
from tvapp.server.store import RoomNameTaken, RoomRow, SessionRow, Store, StoreError
from tvapp.server.writer import StoreWriter

if TYPE_CHECKING:
    from tvapp.server.webhooks import Webhooks

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008


class RoomManager(RoomReconnection, RoomTracks):
    """Owns the live rooms of one server."""

    def __init__(self, reader: Store, writer: StoreWriter, *, default_limits: RoomLimits,
                 ping_interval: float, idle_timeout: float, clock: Callable[[], float] = time.time,
                 reconnect_grace: float = RECONNECT_GRACE_DEFAULT) -> None:
        self.reader = reader
        self.writer = writer
        self.default_limits = default_limits
        self.ping_interval = ping_interval
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.reconnect_grace = reconnect_grace
        self.live: dict[str, LiveRoom] = {}
        self.media: MediaHooks = NoMedia()
        self.hooks: Webhooks | None = None

    def emit(self, event: str, row: RoomRow, participant: LiveParticipant | dict[str, Any] | None = None,
             **parts: Any) -> None:
        """Queue a webhook event about a room (and a participant, hidden ones too) when webhooks are on; never raise."""
        if self.hooks is None:
            return
        if isinstance(participant, LiveParticipant):
            parts["participant"] = self.hooks.participant_part(participant)
        elif participant is not None:
            parts["participant"] = participant
        try:
            self.hooks.emit(event, row, **parts)
        except (StoreError, ValueError) as exc:
            log.error("webhook %s could not be queued: %s", event, exc)

    # start-up ----------------------------------------------------------------

    async def recover(self) -> None:
        """Load live rooms from the store after a start; sessions left open by a crash are ended."""
        now = self.clock()
        cut = self.reader.open_sessions() if self.hooks is not None else []
        await self.writer.call(lambda s: s.end_open_sessions(now, "server_restart"))
        for session in cut:  # they left when the previous run stopped: say so
            room = self.reader.get_room(session.room_sid)
            if room is not None:
                self.emit("participant_left", room, reason="server_restart", participant={
                    "sid": session.sid, "identity": session.identity, "name": session.name,
                    "joined_at": session.joined_at})
        for row in self.reader.live_rooms():
            self.live[row.name] = LiveRoom(row=row, empty=EmptyClock(empty_since=now))

    # rooms -------------------------------------------------------------------

    def find(self, ref: str) -> tuple[RoomRow, LiveRoom | None] | None:
        """Resolve a room by sid or name: the live room of that name, else the newest one."""
        if ref.startswith("RM_"):
            for candidate in self.live.values():
                if candidate.row.sid == ref:
                    return candidate.row, candidate
            row = self.reader.get_room(ref)
            return (row, None) if row is not None else None
        live = self.live.get(ref)
        if live is not None and (live.ready is None or live.ready.done()):
            return live.row, live
        row = self.reader.latest_room(ref)
        return None if row is None else (row, None)

    def current(self, row: RoomRow) -> RoomRow:
        """Return the live room's row for a stored one when that room session is live (the store lags behind it)."""
        live = self.live.get(row.name)
        return live.row if live is not None and live.row.sid == row.sid else row

    def participant_count(self, row: RoomRow) -> int:
        """Return how many visible participants the room has now."""
        live = self.live.get(row.name)
        return live.roster.visible_count() if live is not None and live.row.sid == row.sid else 0

    async def create(self, name: str, limits: RoomLimits, status_callback: str | None = None) -> RoomRow:
        """Create a room (with its own webhook URL); raise RoomError("room_exists") when a live room has this name."""
        if name in self.live:
            raise RoomError("room_exists", f"a room named {name!r} is already open")
        return (await self._create_live(name, limits, status_callback)).row

    async def _create_live(self, name: str, limits: RoomLimits, status_callback: str | None = None) -> LiveRoom:
        now = self.clock()
        row = RoomRow(sid=new_id("RM"), name=name, status=RoomStatus.OPEN.value,
                      max_participants=limits.max_participants, empty_timeout=limits.empty_timeout,
                      created_at=now)
        live = LiveRoom(row=row, empty=EmptyClock.created(now), ready=asyncio.get_running_loop().create_future())
        self.live[name] = live  # claimed before the await: a racing create or join sees it
        try:
            def write(s: Store) -> None:
                s.insert_room(row)
                if status_callback:
                    s.set_room_callback(row.sid, status_callback)

            await self.writer.call(write)
        except BaseException as exc:
            if self.live.get(name) is live:
                del self.live[name]
            assert live.ready is not None
            live.ready.set_exception(RoomError("room_exists", "the room could not be created"))
            live.ready.exception()  # mark retrieved
            if isinstance(exc, RoomNameTaken):
                raise RoomError("room_exists", f"a room named {name!r} is already open") from None
            raise
        assert live.ready is not None
        live.ready.set_result(None)
        return live

    async def _live_for_join(self, claims: TokenClaims) -> LiveRoom:
        name = claims.grants.room
        for _ in range(3):
            live = self.live.get(name)
            if live is None:
                if claims.room_sid is not None:  # tied to one room session, which is over
                    raise RoomError("room_completed", "the room this token was issued for has ended")
                if not claims.grants.host:
                    raise RoomError("room_not_found", f"there is no open room named {name!r}")
                return await self._create_live(name, self.default_limits)
            if live.ready is None or live.ready.done():
                return live
            try:
                await asyncio.shield(live.ready)
            except RoomError:
                continue
        raise RoomError("room_not_found", f"the room {name!r} could not be opened")

    async def complete(self, live: LiveRoom, reason: str) -> RoomRow:
        """Complete a live room: tell and disconnect everyone, and end it in the store."""
        now = self.clock()
        next_status(live.status, RoomEvent.COMPLETE)
        live.row = _replace(live.row, status=RoomStatus.COMPLETED.value, ended_at=now)
        if self.live.get(live.row.name) is live:
            del self.live[live.row.name]
        leaving = list(live.participants.values())
        live.participants.clear()
        for participant in leaving:
            participant.peer.send(RoomCompleted(room_sid=live.row.sid))
            participant.peer.close(CLOSE_NORMAL, "room completed")
            live.roster.leave(participant.identity)
            self._media_left(live, participant)
            self._left_hooks(live, participant, reason)
        self.emit("room_finished", live.row, reason=reason)
        sid = live.row.sid

        def write(s: Store) -> None:
            s.set_room_status(sid, RoomStatus.COMPLETED.value, ended_at=now)
            for participant in leaving:
                s.end_session(participant.sid, now, reason)

        await self.writer.call(write)
        log.info("room %s (%s) completed: %s", live.row.name, sid, reason)
        return live.row

    async def reap(self) -> int:
        """Complete every live room that stayed empty past its empty timeout; return how many."""
        now = self.clock()
        due = [live for live in list(self.live.values())
               if (live.ready is None or live.ready.done())
               and live.empty.due(live.status, live.roster.visible_count(), live.row.empty_timeout, now)]
        for live in due:
            await self.complete(live, "empty_timeout")
        return len(due)

    # participants ------------------------------------------------------------

    async def join(self, claims: TokenClaims, peer: Peer) -> tuple[LiveParticipant, Joined]:
        """Admit a participant with checked claims, or raise RoomError with the reason."""
        live = await self._live_for_join(claims)
        if claims.room_sid is not None and claims.room_sid != live.row.sid:
            raise RoomError("room_completed", "the room this token was issued for has ended")
        identity = claims.identity
        if self.reader.is_banned(live.row.sid, identity):
            raise RoomError("removed", "you were removed from this room")
        # No await from here until the participant is recorded: the slot check and the take are one step.
        owner = Owner.of(claims.room_sid, claims.family, claims.grants.hidden)
        if claim_identity(live.owners.get(identity), owner) is Claim.TAKEN:
            raise RoomError("identity_taken", "this identity belongs to someone else in this room")
        decision = decide_join(live.status, live.roster.present(), identity, claims.grants.hidden,
                               live.row.max_participants)
        if decision is JoinDecision.ROOM_COMPLETED:
            raise RoomError("room_completed", "this room has ended")
        if decision is JoinDecision.ROOM_FULL:
            raise RoomError("room_full", f"this room is full ({live.row.max_participants} participants)")
        now = self.clock()
        old = live.participants.get(identity)
        participant = LiveParticipant(sid=new_id("PA"), identity=identity, name=claims.name or identity,
                                      joined_at=now, claims=claims, peer=peer,
                                      presence=Presence(grace=self.reconnect_grace),
                                      resume_token=secrets.token_urlsafe(32))
        live.participants[identity] = participant
        live.owners[identity] = owner
        live.roster.join(identity, claims.grants.hidden, now)
        live.empty.observe(live.roster.visible_count(), now)
        started = live.status is RoomStatus.OPEN
        if started:
            live.row = _replace(live.row, status=next_status(live.status, RoomEvent.PARTICIPANT_JOINED).value,
                                started_at=now)
        if old is not None:
            old.peer.send(Error(code="replaced", message="the same identity joined from another connection"))
            old.peer.close(CLOSE_NORMAL, "replaced")
            if not old.hidden:
                live.broadcast(ParticipantLeft(participant_sid=old.sid, identity=identity, reason="replaced"),
                               exclude=participant)
        session = SessionRow(sid=participant.sid, room_sid=live.row.sid, identity=identity,
                             name=participant.name, joined_at=now)
        row = live.row

        def write(s: Store) -> None:
            if old is not None:
                s.end_session(old.sid, now, "replaced")
            if started:
                s.set_room_status(row.sid, row.status, started_at=now)
            s.insert_session(session)

        try:
            await self.writer.call(write)
        except Exception:
            log.exception("could not record the join of %s", identity)
            if live.participants.get(identity) is participant:
                del live.participants[identity]
                live.roster.leave(identity)
                live.empty.observe(live.roster.visible_count(), self.clock())
            raise RoomError("internal_error", "the join could not be recorded; try again") from None
        if live.participants.get(identity) is not participant:  # completed or replaced while recording
            if live.status is RoomStatus.COMPLETED:
                raise RoomError("room_completed", "this room ended while you were joining")
            raise RoomError("replaced", "the same identity joined from another connection")
        if old is not None:
            self._left_hooks(live, old, "replaced")
        if started:
            self.emit("room_started", live.row)
        self.emit("participant_joined", live.row, participant)
        if not participant.hidden:
            live.broadcast(ParticipantJoined(participant=participant.info()), exclude=participant)
        others = tuple(p.info() for p in live.visible() if p is not participant)
        joined = Joined(
            room=live.info(),
            participant=participant.info(),
            grants=GrantsInfo(room=claims.grants.room, **claims.grants.flags()),
            participants=others,
            server_time=self.clock(),
            ping_interval=self.ping_interval,
            idle_timeout=self.idle_timeout,
            resume_token=participant.resume_token,
        )
        return participant, joined

    def room_of(self, participant: LiveParticipant) -> LiveRoom | None:
        """Return the live room `participant` is connected to, or None once it left."""
        live = self.live.get(participant.claims.grants.room)
        if live is not None and live.participants.get(participant.identity) is participant:
            return live
        return None

    async def leave(self, participant: LiveParticipant, reason: str) -> None:
        """Take a participant out of its room (no-op when it already left or was replaced)."""
        live = self.room_of(participant)
        if live is None:
            return
        now = self.clock()
        self._detach(live, participant, reason, now)
        await self.writer.call(lambda s: s.end_session(participant.sid, now, reason))

    def _detach(self, live: LiveRoom, participant: LiveParticipant, reason: str, now: float) -> None:
        del live.participants[participant.identity]
        live.roster.leave(participant.identity)
        live.empty.observe(live.roster.visible_count(), now)
        self._media_left(live, participant)
        self._left_hooks(live, participant, reason)
        if not participant.hidden:
            live.broadcast(ParticipantLeft(participant_sid=participant.sid, identity=participant.identity,
                                           reason=reason))

    def _left_hooks(self, live: LiveRoom, participant: LiveParticipant, reason: str) -> None:
        for track in list(participant.tracks.values()):
            self.emit("track_unpublished", live.row, participant, track=track.to_json())
        self.emit("participant_left", live.row, participant, reason=reason)

    def _media_left(self, live: LiveRoom, participant: LiveParticipant) -> None:
        try:
            self.media.participant_left(live, participant)
        except Exception:  # the room's bookkeeping must go on whatever the media side does
            log.exception("media: cleaning up after %s failed", participant.identity)

    def get_participant(self, live: LiveRoom, identity: str) -> LiveParticipant:
        """Return a connected visible-or-hidden participant by identity, or raise participant_not_found."""
        participant = live.participants.get(identity)
        if participant is None:
            raise RoomError("participant_not_found", f"{identity!r} is not in this room")
        return participant

    async def remove(self, live: LiveRoom, identity: str, reason: str = "removed by the host") -> None:
        """Remove a participant: disconnect it, refuse its token, and keep it out of this room session.

        A key-issued participant's identity is banned from the room session. A guest's is not (it may be an
        impostor's pick of someone else's identity): its token family is revoked and keeps owning the identity,
        so no guest can take it, while the key-issued owner it imitated still can.
        """
        participant = self.get_participant(live, identity)
        participant.peer.send(Removed(reason=reason))
        participant.peer.close(CLOSE_NORMAL, "removed")
        claims = participant.claims
        now = self.clock()
        room_sid = live.row.sid
        owner = participant.owner
        ban = not owner.is_guest
        if owner.is_guest and live.owners.get(identity) == owner:
            live.owners[identity] = _replace(owner, removed=True)
        self._detach(live, participant, "removed", now)  # before any await: its socket closing must not win

        def write(s: Store) -> None:
            s.revoke_jti(claims.jti, claims.expires_at, "removed")
            if claims.family is not None:
                s.revoke_family(claims.family, now)
            if ban:
                s.ban(room_sid, identity, now)
            s.end_session(participant.sid, now, "removed")

        await self.writer.call(write)

    async def end_sessions(self, ended: Callable[[LiveParticipant], bool], code: str, message: str) -> int:
        """Disconnect every participant for whom `ended(participant)` holds (its token stopped being valid).

        Each is told `error` with `code`, closed with 1008 and that code as the reason, and seen by the others to
        leave with `code` as the reason; it is not banned (a new valid token may join again). Return how many.
        """
        now = self.clock()
        ending: list[LiveParticipant] = []
        for live in list(self.live.values()):
            for participant in [p for p in live.participants.values() if ended(p)]:
                participant.peer.send(Error(code=code, message=message))
                participant.peer.close(CLOSE_POLICY, code)
                self._detach(live, participant, code, now)
                ending.append(participant)
        if ending:
            def write(s: Store) -> None:
                for participant in ending:
                    s.end_session(participant.sid, now, code)

            await self.writer.call(write)
            log.info("ended %d live session(s): %s", len(ending), code)
        return len(ending)

    async def close(self) -> None:
        """Tell every connected participant the server is going away."""
        for live in self.live.values():
            for participant in list(live.participants.values()):
                participant.peer.close(1001, "server shutting down")

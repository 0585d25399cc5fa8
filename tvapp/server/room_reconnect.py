"""Reconnection in the room manager: a participant whose link dropped stays in its room until it resumes or expires.

tvapp.core.reconnect decides (`Presence`: lost, back, grace window passed); this mixin of
tvapp.server.rooms.RoomManager acts on it: `resume()` hands the participant to a new connection, `link_lost()` /
`link_back()` track its signaling and media, `expire_reconnecting()` takes out those whose grace window passed
("reconnect_timeout"), and the room and webhooks hear of each change.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tvapp.core.claims import TokenClaims
from tvapp.core.owners import Owner
from tvapp.core.reconnect import TIMEOUT_REASON, Announce, Cause
from tvapp.protocol.messages import GrantsInfo, Joined, ParticipantReconnected, ParticipantReconnecting
from tvapp.server.live import LiveParticipant, LiveRoom, Peer, RoomError
from tvapp.server.store import RoomRow, Store
from tvapp.server.writer import StoreWriter

CLOSE_NORMAL = 1000
log = logging.getLogger("tvapp.server.rooms")  # the room manager's log, as before the split


class RoomReconnection:
    """The reconnection half of RoomManager (tvapp.server.rooms), which provides the attributes declared here."""

    live: dict[str, LiveRoom]
    writer: StoreWriter
    clock: Callable[[], float]
    ping_interval: float
    idle_timeout: float

    if TYPE_CHECKING:
        def emit(self, event: str, row: RoomRow, participant: LiveParticipant | dict[str, Any] | None = None,
                 **parts: Any) -> None: ...

        def room_of(self, participant: LiveParticipant) -> LiveRoom | None: ...

        def _detach(self, live: LiveRoom, participant: LiveParticipant, reason: str, now: float) -> None: ...

    def participant_reconnecting(self, participant: LiveParticipant) -> None:
        """Tell webhooks that a participant's connection dropped and it may come back (the resume state calls it)."""
        live = self.room_of(participant)
        if live is not None:
            self.emit("participant_reconnecting", live.row, participant)

    def participant_reconnected(self, participant: LiveParticipant) -> None:
        """Tell webhooks that a reconnecting participant is back."""
        live = self.room_of(participant)
        if live is not None:
            self.emit("participant_reconnected", live.row, participant)

    def resume(self, claims: TokenClaims, peer: Peer, resume_token: str) -> tuple[LiveParticipant, Joined]:
        """Hand the participant that `resume_token` belongs to over to a new connection (same sid, tracks,
        subscriptions); raise RoomError("resume_refused") unless the token is that participant's current one and
        the access token is of the same identity and owner. The token is used up: `joined` carries a new one."""
        live = self.live.get(claims.grants.room)
        participant = live.participants.get(claims.identity) if live is not None else None
        if (live is None or participant is None or not participant.resume_token
                or not hmac.compare_digest(participant.resume_token.encode(), resume_token.encode())
                or participant.owner != Owner.of(claims.room_sid, claims.family, claims.grants.hidden)
                or (claims.room_sid is not None and claims.room_sid != live.row.sid)):
            raise RoomError("resume_refused", "this resume token is not valid for you now (used already, another "
                                              "participant's, or its grace window passed): join without it")
        now = self.clock()
        old_peer, participant.peer = participant.peer, peer
        participant.claims = claims
        participant.resume_token = secrets.token_urlsafe(32)
        if old_peer is not peer:  # a connection the server still thought alive: the client has moved on
            old_peer.close(CLOSE_NORMAL, "resumed")
        self._announce(live, participant, participant.presence.back(Cause.SIGNAL, now), Cause.SIGNAL)
        others = tuple(p.info() for p in live.visible() if p is not participant)
        joined = Joined(room=live.info(), participant=participant.info(),
                        grants=GrantsInfo(room=claims.grants.room, **claims.grants.flags()), participants=others,
                        server_time=now, ping_interval=self.ping_interval, idle_timeout=self.idle_timeout,
                        resume_token=participant.resume_token, resumed=True)
        return participant, joined

    def link_lost(self, participant: LiveParticipant, cause: Cause, peer: Peer | None = None) -> None:
        """Mark a participant reconnecting for `cause`; a SIGNAL loss counts only if `peer` is still its connection."""
        live = self.room_of(participant)
        if live is None or (peer is not None and participant.peer is not peer):
            return
        self._announce(live, participant, participant.presence.lost(cause, self.clock()), cause)

    def link_back(self, participant: LiveParticipant, cause: Cause) -> None:
        """Mark `cause` (media flowing again) ended for a participant."""
        live = self.room_of(participant)
        if live is not None:
            self._announce(live, participant, participant.presence.back(cause, self.clock()), cause)

    def signal_activity(self, participant: LiveParticipant) -> None:
        """Note that a participant's signaling delivered a message (it is alive, whatever its media does)."""
        participant.presence.signal_activity(self.clock())

    def _announce(self, live: LiveRoom, participant: LiveParticipant, announce: Announce, cause: Cause) -> None:
        if announce is Announce.NOTHING:
            return
        participant.changed()
        if announce is Announce.RECONNECTING:  # webhooks hear of hidden participants too (as of their joins)
            self.participant_reconnecting(participant)
        elif announce is Announce.RECONNECTED:
            self.participant_reconnected(participant)
        if participant.hidden:
            return
        log.info("participant %s in %s: %s (%s)", participant.sid, live.row.sid, announce.value, cause.value)
        if announce is Announce.RECONNECTING:
            live.broadcast(ParticipantReconnecting(participant_sid=participant.sid, identity=participant.identity,
                                                   cause=cause.value), exclude=participant)
        elif announce is Announce.RECONNECTED:
            live.broadcast(ParticipantReconnected(participant_sid=participant.sid, identity=participant.identity),
                           exclude=participant)

    async def expire_reconnecting(self) -> list[tuple[LiveRoom, LiveParticipant]]:
        """Take out every participant whose grace window passed (others see reason "reconnect_timeout");
        return them with their rooms."""
        now = self.clock()
        gone: list[tuple[LiveRoom, LiveParticipant]] = []
        for live in list(self.live.values()):
            for participant in list(live.participants.values()):
                if participant.presence.tick(now) is Announce.LEFT:
                    participant.peer.close(CLOSE_NORMAL, TIMEOUT_REASON)
                    self._detach(live, participant, TIMEOUT_REASON, now)
                    gone.append((live, participant))
        if gone:
            def write(s: Store) -> None:
                for _, participant in gone:
                    s.end_session(participant.sid, now, TIMEOUT_REASON)

            await self.writer.call(write)
        return gone

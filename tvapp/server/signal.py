"""The signaling websocket at /v1/signal: moves text between the socket and a sans-I/O ServerConnection.

Each connection has two tasks: this reader (receive, feed the protocol object, dispatch the
events it yields) and a writer (send whatever the protocol object queued, then close when it
says so). Messages to one participant never wait on another's socket; a client that falls
`send_queue_max` messages behind is disconnected. An exception while handling one client's
message becomes an `error` message to that client only. Each connection's `send_data` goes through its own
tvapp.core.budget.DataBudget ([signal] data_rate_*/data_burst_*): past it a message is dropped and the sender
gets `data_rate_limited`, so one flooder cannot push the others' queues past `send_queue_max`. The messages that
change the room for the others (`CONTROL_MESSAGES`: publish, mute, playback...) go through a second budget
([signal] control_rate_messages/control_burst_messages): past it they are dropped with `rate_limited`.

A `join`'s token is accepted by tvapp.auth.tokens.TokenAuthority.accept (the same check as a REST
bearer token, plus the `join` grant); a refusal becomes the join's error code. Joining itself is the
room manager's (tvapp.server.rooms), media the SFU's (tvapp.server.media).

How a connection ends decides what the others see (tvapp.core.reconnect): a `leave`, a close frame 1000/1001 from
the client or a close the server made for a protocol violation is a leave at once; anything else (the socket just
died, or went silent past `idle_timeout`) is a drop, and the participant is reconnecting for `reconnect_grace`. A
`join` with a `resume_token` takes such a participant over (tvapp.server.rooms.RoomManager.resume); a
`media_restart` gives it a fresh peer connection (tvapp.server.media.Sfu.restart).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from tvapp.auth.tokens import TokenError
from tvapp.protocol.messages import (
    Answer,
    Candidate,
    ClientMessage,
    Encoded,
    Error,
    Join,
    Leave,
    MediaRestart,
    Mute,
    Offer,
    Ping,
    Playback,
    Buffering,
    Publish,
    SendData,
    ServerMessage,
    Subscribe,
    TrackSettings,
    Unpublish,
    Unsubscribe,
)
from tvapp.protocol.signaling import ConnectionState, ServerConnection
from tvapp.core.budget import DataBudget, DataVerdict
from tvapp.core.drops import DropCounter
from tvapp.core.playback import PlaybackError
from tvapp.core.reconnect import Cause
from tvapp.server.live import LiveParticipant, RoomError

if TYPE_CHECKING:
    from tvapp.server.state import ServerState

log = logging.getLogger(__name__)

CLEAN_CLOSE_CODES = frozenset({1000, 1001})
"""Close codes of a client that closed on purpose (a page unloading): it left. Anything else (1006: the connection
just died) is a drop, and the participant is reconnecting for [signal] reconnect_grace."""

FAILURES = DropCounter(interval_s=60.0)
"""Unexpected failures behind `internal_error`, per message type: one log line with its traceback per minute."""


def report_failure(kind: str, exc: BaseException, now: float, counter: DropCounter = FAILURES) -> None:
    """Log an unexpected failure handling a `kind` message: the first at once, then one line per minute per kind.

    A client that can make the server fail can make it fail a million times; the log gets one record (with the
    traceback of the latest failure and how many it stands for) per kind and interval, never one per failure.
    """
    report = counter.drop(kind, now)
    if report is not None:
        log.error("signaling: handling %s failed (%d time(s) since the last report, %d in all)", kind,
                  report.count, report.total, exc_info=exc)


CONTROL_MESSAGES = (Publish, Unpublish, Mute, Subscribe, Unsubscribe, Playback, Buffering)
"""Messages that change the room for the others (each may be sent to all of them): under the control budget."""


class SignalPeer:
    """A participant's outgoing side: queue into the protocol object, a writer task sends."""

    def __init__(self, ws: WebSocket, conn: ServerConnection, queue_max: int, data_budget: DataBudget,
                 control_budget: DataBudget | None = None) -> None:
        self.ws = ws
        self.conn = conn
        self.queue_max = queue_max
        self.data_budget = data_budget
        self.control_budget = control_budget or DataBudget.of(rate_bytes=0, burst_bytes=0, rate_messages=0,
                                                              burst_messages=0)
        self.pending = 0
        self._wake = asyncio.Event()

    def send(self, msg: ServerMessage | Encoded) -> None:
        """Queue a message (dropped once the connection is closing)."""
        if self.conn.state is not ConnectionState.JOINED:
            return
        self.conn.send(msg)
        self.pending += 1
        if self.pending > self.queue_max:
            self.conn.close(1008, "too slow", Error(code="too_slow", message="you fell too far behind"))
        self._wake.set()

    def close(self, code: int, reason: str, error: Error | None = None) -> None:
        """Ask for the connection to close after what is queued has been sent."""
        if self.conn.state is not ConnectionState.CLOSED:
            self.conn.close(code, reason, error)
        self._wake.set()

    def wake(self) -> None:
        """Have the writer look at the protocol object again."""
        self._wake.set()

    async def run_writer(self) -> None:
        """Send queued texts until the protocol object asks to close, then close the socket."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                texts = self.conn.data_to_send()
                self.pending = 0
                for text in texts:
                    await self.ws.send_text(text)
                if self.conn.close_code is not None:
                    await self.ws.close(self.conn.close_code, self.conn.close_reason[:120])
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client is gone; the reader notices too


async def signal_endpoint(ws: WebSocket, state: ServerState) -> None:
    """Serve one signaling connection from handshake to close."""
    cfg = state.config.signal
    await ws.accept()
    conn = ServerConnection(time.time(), join_timeout=cfg.join_timeout, idle_timeout=cfg.idle_timeout)
    peer = SignalPeer(ws, conn, cfg.send_queue_max, data_budget(state),
                      DataBudget.of(rate_bytes=0, burst_bytes=0, rate_messages=cfg.control_rate_messages,
                                    burst_messages=cfg.control_burst_messages))
    writer = asyncio.create_task(peer.run_writer())
    participant: LiveParticipant | None = None
    closed_cleanly = False  # the client closed with 1000/1001 (a page closed): a leave, not a drop
    try:
        while conn.state is not ConnectionState.CLOSED:
            timeout = max(0.0, conn.next_deadline() - time.time())
            try:
                message = await asyncio.wait_for(ws.receive(), timeout)
            except TimeoutError:
                conn.check_timeouts(time.time())
                peer.wake()
                continue
            if message["type"] == "websocket.disconnect":
                closed_cleanly = message.get("code") in CLEAN_CLOSE_CODES
                break
            now = time.time()
            if message.get("text") is not None:
                conn.receive_text(message["text"], now)
            else:
                conn.receive_bytes(message.get("bytes") or b"", now)
            for event in conn.events_received():
                try:
                    participant, leaving = await _dispatch(state, conn, peer, participant, event)
                except RoomError as exc:
                    peer.send(Error(code=exc.code, message=exc.message))
                    continue
                except Exception as exc:  # one client's bad luck must not take down its connection handler
                    report_failure(type(event).__name__, exc, time.monotonic())
                    peer.send(Error(code="internal_error", message="the server could not handle that message"))
                    continue
                if leaving:
                    participant = None
            peer.wake()
    except WebSocketDisconnect:
        pass
    finally:
        if participant is not None:
            try:  # a drop is not a leave: the participant is reconnecting for the grace window
                live = state.rooms.room_of(participant)
                # The server closed it for a protocol violation (not for silence): that client is not coming back.
                refused = conn.close_code is not None and not conn.idle_dropped
                if (closed_cleanly or refused) and live is not None and participant.peer is peer:
                    state.watch.left(live, participant)
                    await state.rooms.leave(participant, "disconnected")
                else:
                    state.rooms.link_lost(participant, Cause.SIGNAL, peer)
            except Exception:
                log.exception("signaling: could not record %s dropping", participant.identity)
        peer.wake()
        try:
            await asyncio.wait_for(writer, 2.0)
        except (TimeoutError, asyncio.CancelledError):
            writer.cancel()


def data_budget(state: ServerState) -> DataBudget:
    """Return a new connection's full send_data budget, from [signal]."""
    cfg = state.config.signal
    return DataBudget.of(rate_bytes=cfg.data_rate_bytes, burst_bytes=cfg.data_burst_bytes,
                         rate_messages=cfg.data_rate_messages, burst_messages=cfg.data_burst_messages)


async def _dispatch(state: ServerState, conn: ServerConnection, peer: SignalPeer,
                    participant: LiveParticipant | None, event: ClientMessage) -> tuple[LiveParticipant | None, bool]:
    """Act on one client message; return the (possibly new) participant and whether it left."""
    rooms = state.rooms
    if isinstance(event, Join):
        try:
            claims = state.tokens.accept(event.token, now=time.time(), revocations=state.reader, joining=True)
        except TokenError as exc:
            conn.reject_join(exc.code, exc.message)
            return participant, False
        joiner, tick = f"{claims.grants.room}\x00{claims.identity}", time.monotonic()
        wait = state.join_limiter.retry_after(joiner, tick)
        if wait > 0:
            conn.reject_join("rate_limited", f"too many joins as this identity: try again in {math.ceil(wait)} s")
            return participant, False
        state.join_limiter.record_failure(joiner, tick)  # every join counts, not only failed ones
        if event.resume_token is not None:
            try:
                resumed, joined = rooms.resume(claims, peer, event.resume_token)
            except RoomError as exc:
                conn.reject_join(exc.code, exc.message)
                return participant, False
            conn.accept_join(dataclasses.replace(joined, ice_servers=state.sfu.ice_servers(resumed.sid)))
            live = rooms.room_of(resumed)
            if live is not None:
                state.sfu.resumed(resumed)
                state.watch.joined(live, resumed)
            return resumed, False
        try:
            joined_participant, joined = await rooms.join(claims, peer)
        except RoomError as exc:
            conn.reject_join(exc.code, exc.message)
            return participant, False
        if conn.state is not ConnectionState.JOINING:  # the socket closed while the join was being recorded
            await rooms.leave(joined_participant, "disconnected")
            return participant, False
        conn.accept_join(dataclasses.replace(joined, ice_servers=state.sfu.ice_servers(joined_participant.sid)))
        live = rooms.room_of(joined_participant)
        if live is not None:
            state.sfu.participant_joined(live, joined_participant, event.auto_subscribe)
            state.watch.joined(live, joined_participant)
        return joined_participant, False
    if participant is None:
        return participant, False
    rooms.signal_activity(participant)
    if isinstance(event, CONTROL_MESSAGES):
        verdict = peer.control_budget.take(0, time.monotonic())
        if verdict is not DataVerdict.SEND:
            if verdict is DataVerdict.DROP_AND_TELL:
                peer.send(Error(code="rate_limited", message=f"you are sending {event.TYPE} and other room-changing "
                                                             "messages faster than the server allows; some were "
                                                             "dropped"))
            return participant, False
    if isinstance(event, Ping):
        conn.pong(event, time.time())
    elif isinstance(event, Leave):
        live = rooms.room_of(participant)
        if live is not None:
            state.watch.left(live, participant)
        await rooms.leave(participant, "left")
        return None, True
    elif isinstance(event, Publish):
        rooms.publish(participant, event.cid, event.kind, event.source, event.name, event.muted, event.rendition_of,
                      event.layer)
    elif isinstance(event, Unpublish):
        rooms.unpublish(participant, event.track_sid)
    elif isinstance(event, Mute):
        live = rooms.room_of(participant)
        if live is not None:
            rooms.set_muted(live, participant, event.track_sid, event.muted, by_server=False)
    elif isinstance(event, (Subscribe, Unsubscribe)):
        rooms.set_subscribed(participant, event.track_sid, isinstance(event, Subscribe))
    elif isinstance(event, MediaRestart):
        live = rooms.room_of(participant)
        if live is not None and state.sfu.restart(live, participant, event.generation):
            rooms.link_lost(participant, Cause.MEDIA)
    elif isinstance(event, Answer):
        await state.sfu.answer(participant, event.sdp)
    elif isinstance(event, Candidate):
        await state.sfu.candidate(participant, event)
    elif isinstance(event, Offer):
        peer.send(Error(code="server_offers", message="the server makes every offer: send publish to add a track"))
    elif isinstance(event, SendData):
        live = rooms.room_of(participant)
        if live is not None:
            verdict = peer.data_budget.take(len(event.payload.encode()) + len(event.topic), time.monotonic())
            if verdict is DataVerdict.SEND:
                state.sfu.send_data(live, participant, event)
            elif verdict is DataVerdict.DROP_AND_TELL:
                peer.send(Error(code="data_rate_limited",
                                message="you are sending data faster than the server allows; messages were dropped"))
    elif isinstance(event, Playback):
        live = rooms.room_of(participant)
        if live is not None:
            try:
                await state.watch.command(live, event, is_host=participant.grants.host)
            except PlaybackError as exc:
                peer.send(Error(code=exc.code, message=exc.message))
    elif isinstance(event, Buffering):
        live = rooms.room_of(participant)
        if live is not None:
            state.watch.buffering(live, participant, event)
    elif isinstance(event, TrackSettings):
        live = rooms.room_of(participant)
        if live is not None:
            state.sfu.track_settings(live, participant, event)
    return participant, False

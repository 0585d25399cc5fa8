"""The SDK's Room: join a room, publish local tracks, receive remote ones, and hear about it as typed events.

One Room is one participant. It wires together the parts that each do one job:

- tvapp.client.signaling: the websocket carrying the signaling protocol;
- tvapp.client.requests: the request channel (calls that wait for the server's answer) and the one pinger
  (clock sync and keep-alive); participants and publications talk to it, never to the Room;
- tvapp.client.negotiation: the peer connection of each joined connection, the server's offers, the
  subscriptions by m-line and their frame pumps;
- tvapp.client.roster: the remote participants and their publications, kept in step with the server;
- tvapp.client.eventbus: callbacks, iterators and waits for the events (tvapp.client.events);
- tvapp.client.tokens and tvapp.client.rest: the access token, kept fresh with the refresh token;
- tvapp.client.timeline: the shared-content commands (load, play, pause, seek, ...) the Room inherits.

What the Room itself decides is the connection's life: it reads server messages in order and dispatches them;
when the websocket drops without a reason (not removed, not completed, not replaced, not our disconnect), or the
server says nothing for 3 s (tvapp.client.linkwatch), it resumes the same participant with the resume token of
`joined`, keeping the peer connection (Reconnecting("signal") ... Reconnected("signal", resumed=True)). Once the
server has let it go (`resume_refused`) it rejoins with a fresh token for up to `reconnect_window` seconds,
republishes the local tracks, restores what was (un)subscribed by hand and carries on (resumed=False); otherwise it
ends with Disconnected(reason). A dead media path (no packet for ~2 s while something should arrive, or ICE/DTLS
failed) gets a fresh peer connection in the same session: `media_restart` with the next generation, offers of
older generations ignored (Reconnecting("media") ... Reconnected("media")).

Tasks: the connection runner, the link watch and the token refresher belong to the Room's TaskSet, started by `connect()` and
cancelled by `disconnect()`; the pinger to the request channel, the frame pumps to each MediaSession, the reader
to each SignalClient, the coroutine callbacks to the event bus. None is started in ``__init__``.

What is left here is the connection's life and its repair policy, which read and change the same few fields
(session, generation, state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from aiortc import RTCStatsReport
from websockets.exceptions import ConnectionClosed, WebSocketException

from tvapp.client import events as ev
from tvapp.client.clock import RoomClock
from tvapp.client.decodecost import DecodeCost
from tvapp.client.eventbus import EventBus
from tvapp.client.linkwatch import WATCH_INTERVAL_S, LinkWatch, Verdict
from tvapp.client.negotiation import MediaSession, ReceiveStats, end_subscription
from tvapp.client.participants import LocalParticipant, RemoteParticipant, RemoteTrack
from tvapp.client.requests import ConnectionState, RequestChannel
from tvapp.client.rest import ApiError, RestClient
from tvapp.client.roster import Roster
from tvapp.client.signaling import JoinError, SignalClient, SignalClosed
from tvapp.client.tasks import TaskSet
from tvapp.client.timeline import TimelineCommands
from tvapp.client.tokens import TokenKeeper, token_expired
from tvapp.core.playback import PlaybackState
from tvapp.core.reconnect import MIN_MEDIA_RESTART_INTERVAL_S
from tvapp.protocol import messages as m
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection

__all__ = ["RECONNECT_WINDOW", "Room"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=ev.RoomEvent)

RECONNECT_WINDOW = 30.0
REJOIN_ATTEMPT_TIMEOUT = 4.0  # one attempt to reach the server again; a cut link makes it fail, then another
# Join refusals that another attempt cannot fix (token_expired can be, with a refresh token).
FATAL_JOIN_CODES = frozenset({"removed", "not_allowed", "room_completed", "room_not_found", "token_revoked",
                              "identity_taken",
                              "token_reused", "invalid_token", "wrong_room", "token_expired"})


class _Session:
    """One joined connection: its signaling and its media."""

    def __init__(self, signal: SignalClient, media: MediaSession) -> None:
        self.signal = signal
        self.media = media

    async def close(self, *, emit: bool) -> None:
        """End the subscriptions (announced if `emit`), close the peer connection and the websocket."""
        await self.media.close(emit=emit)
        await self.signal.close()


class Room(TimelineCommands):
    """A joined room. Create with ``await Room.connect(url, token)``; leave with ``await room.disconnect()``."""

    def __init__(self, url: str, token: str, *, refresh_token: str | None, auto_subscribe: bool,
                 timeout: float, reconnect_window: float) -> None:
        self.url = url.rstrip("/")
        self.name = ""
        self.sid = ""
        self.disconnect_reason: str | None = None
        self.clock = RoomClock()
        self.playback: PlaybackState | None = None
        self._bus = EventBus(log)
        self._requests = RequestChannel(self.clock, reconnect_window=reconnect_window)
        self.local_participant = LocalParticipant(self._requests)
        self._roster = Roster(self.local_participant, self._bus.emit, self._end_subscription)
        self._tokens = TokenKeeper(RestClient(self.url), token, refresh_token)
        self._relay_only = False
        self._auto_subscribe = auto_subscribe
        self._timeout = timeout
        self._reconnect_window = reconnect_window
        self._session: _Session | None = None
        self._tasks = TaskSet("room", log)
        self._final_reason: str | None = None
        self._joined_once = False
        self._closing = False
        self._finished = False
        self._wanted: set[str] = set()
        self._unwanted: set[str] = set()
        self._resume_token: str | None = None
        self._links = LinkWatch()
        self._media_generation = 0  # our media_restart count in this participant session
        self._media_answered = 0  # the highest generation the server has offered for
        self._media_down = False

    # -- life ------------------------------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, token: str, *, refresh_token: str | None = None, auto_subscribe: bool = True,
                      host_addresses: Iterable[str] | None = None, timeout: float = 10.0,
                      reconnect_window: float = RECONNECT_WINDOW, udp_port_range: tuple[int, int] | None = None,
                      relay_only: bool = False) -> Room:
        """Join the room named in `token` at the server `url`; return once joined.

        Raise JoinError when the server refuses, OSError or a websockets error when it cannot be reached.
        `refresh_token` keeps the access token fresh (for reconnects); `host_addresses` fixes the ICE host
        candidates for this process (tests use ["127.0.0.1"]). After a drop the room tries to rejoin for
        `reconnect_window` seconds before giving up with Disconnected("reconnect_failed").
        `udp_port_range` (low, high) binds this process's ICE host sockets inside it; `relay_only` uses only
        the TURN servers the server hands out in `joined` (iceTransportPolicy "relay").
        """
        if udp_port_range is not None:
            internals.set_port_range(udp_port_range)
        if host_addresses is not None:
            internals.set_host_addresses(list(host_addresses))
        else:
            internals.configure_from_env()
        room = cls(url, token, refresh_token=refresh_token, auto_subscribe=auto_subscribe, timeout=timeout,
                   reconnect_window=reconnect_window)
        room._relay_only = relay_only
        if refresh_token is not None and token_expired(token, time.time()):
            await room._tokens.refresh(token)
        await room._open()
        room._tasks.start(room._run(), name=f"room {room.name}")
        room._tasks.start(room._watch_links(), name=f"room {room.name} link watch")
        if refresh_token is not None:
            room._tasks.start(room._tokens.keep_fresh(room._refresh_refused), name=f"room {room.name} refresh")
        room._bus.emit(ev.Connected(room.name, room.sid, room.local_participant))
        room._bus.connected()
        return room

    async def disconnect(self) -> None:
        """Leave the room: tell the server, close media, stop the sources the SDK made; emit Disconnected."""
        if self._finished:
            return
        self._closing = True
        session = self._session
        if session is not None and self.connection_state == "connected":
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await session.signal.send(m.Leave())
        await self._tasks.close()
        await self._finish("client_initiated")

    @property
    def connection_state(self) -> ConnectionState:
        """Return "connected", "reconnecting" (after a drop) or "disconnected" (for good)."""
        return self._requests.connection_state

    @property
    def participants(self) -> dict[str, RemoteParticipant]:
        """Return the other participants in the room, by participant sid."""
        return self._roster.participants

    @property
    def access_token(self) -> str:
        """Return the access token the next (re)join will use."""
        return self._tokens.access_token

    @property
    def refresh_token(self) -> str | None:
        """Return the current refresh token (it rotates on every refresh)."""
        return self._tokens.refresh_token

    # -- events ----------------------------------------------------------------------------------------------------

    def on(self, event: str | type[E], callback: Callable[[E], Any]) -> Callable[[], None]:
        """Call `callback(event)` for every event of this type (a coroutine function runs as a task);
        return a function that removes the callback. A callback's exception is logged, never raised here."""
        return self._bus.on(event, callback)

    def events(self) -> AsyncIterator[ev.RoomEvent]:
        """Yield every event from now on until Disconnected; a first caller within 5 s of connect also gets those since."""
        return self._bus.events()

    async def wait_for(self, event: str | type[E], predicate: Callable[[E], bool] | None = None, *,
                       timeout: float = 10.0) -> E:
        """Return the next event of this type (matching `predicate`); TimeoutError if none comes in time."""
        return await self._bus.wait_for(event, predicate, timeout=timeout)

    # -- subscriptions, data and stats -------------------------------------------------------------------------------

    async def subscribe(self, track_sid: str) -> None:
        """Receive a remote track (TrackSubscribed follows once its media is negotiated)."""
        self._unwanted.discard(track_sid)
        self._wanted.add(track_sid)
        await self._requests.request(m.Subscribe(track_sid=track_sid))

    async def unsubscribe(self, track_sid: str) -> None:
        """Stop receiving a remote track (TrackUnsubscribed follows)."""
        self._wanted.discard(track_sid)
        self._unwanted.add(track_sid)
        await self._requests.request(m.Unsubscribe(track_sid=track_sid))

    async def set_track_settings(self, track_sid: str, *, width: int, height: int, visible: bool = True,
                                 priority: m.TrackPriority = "standard", wait: bool = True) -> None:
        """Tell the server how a remote video track is shown here (adaptive stream): its rendered size in pixels
        (0 x 0: unknown) and whether it is visible (an invisible one is not sent to this client); RequestError
        (track_not_found, not_video, bad_message) if refused. Its publisher is asked for no more than needed.
        With `wait` False it is only sent (a refusal comes as an Error event), not queued behind other calls."""
        msg = m.TrackSettings(sid=track_sid, width=width, height=height, visible=visible, priority=priority)
        await (self._requests.request(msg) if wait else self._requests.send(msg))

    async def send_data(self, payload: str, topic: str = "", to: Iterable[str] = ()) -> None:
        """Send a data message (see LocalParticipant.send_data)."""
        await self.local_participant.send_data(payload, topic, to)

    async def get_stats(self) -> RTCStatsReport:
        """Return aiortc's statistics of the current peer connection (inbound-rtp, outbound-rtp... by id)."""
        session = self._session
        return await session.media.get_stats() if session is not None else RTCStatsReport()

    async def receive_stats(self) -> dict[str, ReceiveStats]:
        """Return what arrived so far for each subscribed track, by track sid (empty while reconnecting)."""
        session = self._session
        return await session.media.receive_stats() if session is not None else {}

    def decode_costs(self) -> dict[str, DecodeCost]:
        """Return what decoding each subscribed track has cost so far, by track sid (tvapp.client.decodecost;
        cumulative per receiver, empty while reconnecting)."""
        session = self._session
        return session.media.decode_costs() if session is not None else {}

    # -- connection --------------------------------------------------------------------------------------------------

    async def _open(self, *, kept: MediaSession | None = None, timeout: float | None = None) -> bool:
        """Join with the current token and set up a session; with `kept` (the media of a dropped connection) try
        to resume the same participant with the resume token and keep that media. Return whether it resumed."""
        signal = await SignalClient.connect(self.url, self._tokens.access_token, heartbeat=False,
                                            timeout=timeout or self._timeout, auto_subscribe=self._auto_subscribe,
                                            clock=self.clock.local, on_pong=self._requests.on_pong,
                                            resume_token=self._resume_token if kept is not None else None)
        joined = signal.joined
        self._resume_token = joined.resume_token
        resumed = kept is not None and joined.resumed
        if resumed and kept is not None:
            media = kept
        else:
            media = self._new_media(joined.ice_servers)
            self._media_generation = self._media_answered = 0
        self._session = _Session(signal, media)
        self.name, self.sid = joined.room.name, joined.room.sid
        self._roster.joined(joined, announce=self._joined_once)  # a rejoin: the user knew the room before
        self._joined_once = True
        await self._requests.attach(signal)
        return resumed

    def _new_media(self, ice_servers: Iterable[m.IceServer]) -> MediaSession:
        pc = new_peer_connection([(s.urls, s.username, s.credential) for s in ice_servers], relay_only=self._relay_only)
        return MediaSession(pc, participants=self._roster.participants,
                            publications=self.local_participant.publications, emit=self._bus.emit)

    async def _run(self) -> None:
        """Handle the connection until the room ends, rejoining after drops."""
        try:
            while True:
                session = self._session
                assert session is not None
                reason = await self._pump(session)
                if reason is not None:
                    await self._finish(reason)
                    return
                if not await self._reconnect():
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("room: the connection task failed")
            await self._finish("internal_error")

    async def _pump(self, session: _Session) -> str | None:
        """Handle server messages until the connection ends; return the final reason, or None to reconnect."""
        while True:
            try:
                msg = await session.signal.receive()
            except SignalClosed:
                if self._closing:
                    return "client_initiated"
                return self._final_reason
            try:
                await self._dispatch(session, msg)
            except (ConnectionClosed, SignalClosed, OSError) as exc:
                # The connection went while handling it (an answer to an offer, say): the next receive says so
                # and the reconnect negotiates afresh. Nothing failed but the link.
                log.debug("room: the connection ended while handling %s: %s", msg.TYPE, exc)
            except Exception as exc:
                log.exception("room: handling %s failed", msg.TYPE)
                if isinstance(msg, m.Offer):  # the server waits for an answer that will not come: say so
                    self._bus.emit(ev.Error("negotiation_failed", f"could not answer the server's offer: {exc}"))

    async def _reconnect(self) -> bool:
        """Resume (or, once the server let us go, rejoin) after a drop; return False (after Disconnected) when it
        cannot. A resume keeps the participant, its tracks and the peer connection (media may never stop); a rejoin
        starts over: new sid, the local tracks republished, what was (un)subscribed by hand restored."""
        await self._requests.detach("reconnecting")
        self._bus.emit(ev.Reconnecting("signal"))
        session, self._session = self._session, None
        kept: MediaSession | None = None
        if session is not None:
            session.signal.abort()  # no close frame: to the server a clean close is a leave
            await session.signal.close()
            kept = session.media if self._resume_token is not None else None
            if kept is None:
                await session.media.close(emit=True)
        deadline = time.monotonic() + self._reconnect_window
        delay = 0.2
        resumed = False
        while not self._closing:
            try:
                resumed = await self._open(kept=kept, timeout=min(self._timeout, REJOIN_ATTEMPT_TIMEOUT))
                break
            except JoinError as exc:
                if exc.code == "resume_refused" and kept is not None:
                    log.info("room: the server let this participant go; joining afresh")
                    await kept.close(emit=True)
                    kept = None
                    continue
                if exc.code == "token_expired" and self._tokens.refresh_token is not None:
                    with contextlib.suppress(ApiError, OSError):
                        await self._tokens.refresh(self._tokens.access_token)
                        continue
                if exc.code in FATAL_JOIN_CODES:
                    if kept is not None:
                        await kept.close(emit=False)
                    await self._finish(exc.code)
                    return False
                log.info("room: rejoin refused (%s), retrying", exc.code)
            except (OSError, WebSocketException, TimeoutError) as exc:
                log.info("room: rejoin failed (%s), retrying", exc)
            if time.monotonic() + delay > deadline:
                if kept is not None:
                    await kept.close(emit=False)
                await self._finish("reconnect_failed")
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        session = self._session
        if session is None:
            return False
        if resumed:
            if self._media_generation > self._media_answered:  # asked while the link was down: ask again
                await session.signal.send(m.MediaRestart(generation=self._media_generation))
            self._bus.emit(ev.Reconnected("signal", resumed=True))
            return True
        for publish in self.local_participant.rejoin_messages():
            await session.signal.send(publish)
        published = {sid for p in self.participants.values() for sid in p.tracks}
        for sid in (self._unwanted if self._auto_subscribe else self._wanted) & published:
            await session.signal.send(m.Unsubscribe(track_sid=sid) if self._auto_subscribe else m.Subscribe(track_sid=sid))
        self._bus.emit(ev.Reconnected("signal", resumed=False))
        return True

    async def _watch_links(self) -> None:
        """Four times a second: drop a silent websocket (the runner resumes), repair a dead media path."""
        while not self._finished:
            await asyncio.sleep(WATCH_INTERVAL_S)
            session = self._session
            if session is None or self.connection_state != "connected":
                continue
            now = time.monotonic()
            in_use = (session.signal.local_address, internals.local_address(session.media.pc))
            if self._links.check_addresses(in_use) is Verdict.ADDRESS_LOST:
                log.info("room: this host's address changed: resuming on a new connection with a fresh peer connection")
                await self._restart_media(session, now)  # (its media_restart is asked again once resumed)
                session.signal.abort()
                continue
            if self._links.check_signal(session.signal.last_received, now) is Verdict.SIGNAL_DEAD:
                log.info("room: nothing from the server for a while: the link is dead, resuming")
                session.signal.abort()
                continue
            verdict = self._links.check_media(session.media.pc, session.media.carries_media(), now)
            if verdict is Verdict.MEDIA_DEAD:
                await self._restart_media(session, now)
            elif verdict is Verdict.MEDIA_BACK and self._media_down:
                self._media_down = False
                self._bus.emit(ev.Reconnected("media", resumed=True))

    async def _restart_media(self, session: _Session, now: float) -> None:
        """Replace the peer connection by a fresh one in the same session and ask the server to offer for it."""
        self._media_generation += 1
        log.info("room: the media path is dead; negotiating a fresh peer connection (#%d)", self._media_generation)
        if not self._media_down:
            self._media_down = True
            self._bus.emit(ev.Reconnecting("media"))
        old, session.media = session.media, self._new_media(session.signal.joined.ice_servers)
        self._links.restarted(now)
        await old.close(emit=True)
        with contextlib.suppress(ConnectionClosed, SignalClosed, OSError):
            await session.signal.send(m.MediaRestart(generation=self._media_generation))

    async def _ask_media_again(self, session: _Session) -> None:
        """Ask again for the fresh peer connection the server refused as too soon, once its interval has passed."""
        await asyncio.sleep(MIN_MEDIA_RESTART_INTERVAL_S)
        if session is self._session and self._media_generation > self._media_answered:
            with contextlib.suppress(ConnectionClosed, SignalClosed, OSError):
                await session.signal.send(m.MediaRestart(generation=self._media_generation))

    async def _close_session(self, *, emit: bool) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close(emit=emit)

    async def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        self.disconnect_reason = reason
        await self._requests.detach("disconnected")
        await self._close_session(emit=False)
        await self._tasks.close()  # the refresher (and the runner, unless it is the one finishing)
        self.local_participant.stop_owned_sources()
        self._bus.emit(ev.Disconnected(reason))
        self._bus.end()
        await self._bus.close()

    def _refresh_refused(self, exc: ApiError) -> None:
        self._bus.emit(ev.Error("refresh_failed", f"the refresh token was refused ({exc.code})"))

    def _end_subscription(self, remote: RemoteTrack) -> None:
        session = self._session
        if session is not None:
            session.media.end_subscription(remote)
        else:
            end_subscription(remote, self._bus.emit)

    # -- server messages ---------------------------------------------------------------------------------------------

    async def _dispatch(self, session: _Session, msg: m.ServerMessage) -> None:
        if self._requests.take(msg) or self._roster.apply(msg):
            return
        if isinstance(msg, m.Offer):
            if msg.generation < self._media_generation:
                log.debug("room: ignored an offer for a peer connection replaced since")
                return
            self._media_answered = max(self._media_answered, msg.generation)
            result = await session.media.apply_offer(msg)
            if result is None or session is not self._session:
                return
            await session.signal.send(result.answer)
            session.media.announce(result)
        elif isinstance(msg, m.Error):
            if msg.code in ("replaced", "token_revoked"):
                self._final_reason = msg.code
            if msg.code == "media_restart_too_soon":  # (it made one less than a second ago: ask again after that)
                self._tasks.start(self._ask_media_again(session), name="media-restart-again")
            self._bus.emit(ev.Error(msg.code, msg.message))
        elif isinstance(msg, m.PlaybackStateMsg):
            state = msg.state()
            if state != self.playback:
                self.playback = state
                self._bus.emit(ev.PlaybackChanged(state))
        elif isinstance(msg, m.Data):
            self._bus.emit(ev.DataReceived(msg.payload, msg.topic, self.participants.get(msg.from_sid),
                                           msg.from_identity))
        elif isinstance(msg, m.PublishConstraints):
            local = self.local_participant.tracks.get(msg.sid)
            if local is not None:
                local.apply_constraints(msg)
        elif isinstance(msg, m.UnmuteRequest):
            publication = self.local_participant.tracks.get(msg.track_sid)
            if publication is not None:  # declined unless a handler calls event.accept()
                self._bus.emit(ev.UnmuteRequested(publication))
        elif isinstance(msg, m.Removed):
            self._final_reason = "removed"
        elif isinstance(msg, m.RoomCompleted):
            self._final_reason = "room_completed"
        elif isinstance(msg, m.Candidate):
            log.debug("room: ignored a trickled candidate (the server's are in its offer)")

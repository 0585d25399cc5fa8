"""The SDK's Room: join a room, publish local tracks, receive remote ones, and hear about it as typed events.

One Room is one participant (its people and tracks live in tvapp.client.participants): a signaling connection (tvapp.client.signaling) and one RTCPeerConnection
that carries every publication and subscription. The server makes every offer; its TransceiverInfo list
says which m-line carries which of our publications (we attach the local track and send) and which remote
track (we receive and hand decoded frames to a RemoteTrack). Video is encoded here (EncodedVideoTrack) so
the SFU's keyframe requests reach our encoder; audio goes to aiortc as frames (it encodes Opus and adds
the RFC 6464 level).

Tasks: `_run` owns the connection: it reads server messages in order, and when the websocket drops
without a reason (not removed, not completed, not replaced, not our disconnect) it rejoins with a fresh
token, republishes the local tracks and carries on; `_refresh_loop` renews the access token before it
expires. Calls that need a reply (publish, mute, subscribe) send the message and a ping behind it: the
server answers in order, so an error before the pong is that call's error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import itertools
import json
import logging
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal, TypeVar

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription, RTCStatsReport
from aiortc.mediastreams import MediaStreamError
from websockets.exceptions import WebSocketException

from tvapp.client import events as ev
from tvapp.client.participants import (
    LocalParticipant,
    LocalTrackPublication,
    RemoteParticipant,
    RemoteTrack,
    ReceiveStats,
    RemoteTrackPublication,
    RequestError,
)
from tvapp.client.clock import RoomClock
from tvapp.client.signaling import JoinError, SignalClient, SignalClosed
from tvapp.core.playback import PlaybackState
from tvapp.protocol import messages as m
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection

__all__ = [
    "ApiError", "LocalParticipant", "LocalTrackPublication", "ReceiveStats", "RemoteParticipant", "RemoteTrack",
    "RemoteTrackPublication", "RequestError", "Room", "api_post", "api_request", "refresh_delay", "refresh_tokens", "token_times",
]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=ev.RoomEvent)
ConnectionState = Literal["connected", "reconnecting", "disconnected"]

RECONNECT_WINDOW = 30.0
REQUEST_TIMEOUT = 10.0
EVENT_BACKLOG = 1000
# Join refusals that another attempt cannot fix (token_expired can be, with a refresh token).
FATAL_JOIN_CODES = frozenset({"removed", "not_allowed", "room_completed", "room_not_found", "token_revoked",
                              "token_reused", "invalid_token", "wrong_room", "token_expired"})


class ApiError(Exception):
    """A REST call got an error answer: HTTP ``status`` and the server's error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message


# --- REST and tokens ---------------------------------------------------------------------------------------------


async def api_post(server_url: str, path: str, body: dict[str, Any], *, timeout: float = 10.0,
                   api_key: tuple[str, str] | None = None, bearer: str | None = None) -> dict[str, Any]:
    """POST JSON to the server's REST API; return the answer (ApiError on an error status, OSError if unreachable).

    `api_key` (key id, secret) authenticates as the key's owner (Basic), as a customer's auth server does;
    `bearer` as the holder of an access token (a room host's token may remove and mute participants).
    """
    return await api_request(server_url, "POST", path, body, timeout=timeout, api_key=api_key, bearer=bearer)


async def api_request(server_url: str, method: str, path: str, body: dict[str, Any] | None = None, *,
                      timeout: float = 10.0, api_key: tuple[str, str] | None = None,
                      bearer: str | None = None) -> dict[str, Any]:
    """Call the server's REST API with any method; return the JSON answer ({} for 204 No Content)."""
    return await asyncio.to_thread(_request_json, method, server_url.rstrip("/") + path, body, timeout, api_key,
                                   bearer)


def _request_json(method: str, url: str, body: dict[str, Any] | None, timeout: float,
                  api_key: tuple[str, str] | None = None, bearer: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{api_key[0]}:{api_key[1]}".encode()).decode()
    elif bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        code, message = f"http_{exc.code}", exc.reason or ""
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            error = json.loads(exc.read())["error"]
            code, message = str(error["code"]), str(error.get("message", ""))
        raise ApiError(exc.code, code, message) from None
    except ValueError:
        raise ApiError(0, "bad_answer", "the server's answer was not JSON") from None
    if not isinstance(answer, dict):
        raise ApiError(0, "bad_answer", "the server's answer was not a JSON object")
    return answer


async def refresh_tokens(server_url: str, refresh_token: str) -> tuple[str, str]:
    """Trade a refresh token for a new (access token, refresh token) pair; the old refresh token is spent."""
    pair = await api_post(server_url, "/v1/tokens/refresh", {"refresh_token": refresh_token})
    return str(pair["access_token"]), str(pair["refresh_token"])


def token_times(token: str) -> tuple[float, float] | None:
    """Return a JWT's (issued at, expires at) without checking it, or None if it has no readable times."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["iat"]), float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


def refresh_delay(issued_at: float, expires_at: float, now: float) -> float:
    """Return how long from `now` to wait before refreshing: a fifth of the lifetime early, 1 to 60 s early."""
    margin = min(60.0, max(1.0, (expires_at - issued_at) * 0.2))
    return max(0.0, expires_at - margin - now)


# --- the room --------------------------------------------------------------------------------------------------------


class _Session:
    """One joined connection: signaling, its peer connection and the m-lines it negotiated."""

    def __init__(self, signal: SignalClient, pc: RTCPeerConnection) -> None:
        self.signal = signal
        self.pc = pc
        self.subscriptions: dict[str, RemoteTrack] = {}
        self.pumps: dict[str, asyncio.Task[None]] = {}

    async def close(self) -> None:
        """Close the websocket and the peer connection."""
        for task in self.pumps.values():
            task.cancel()
        await self.signal.close()
        with contextlib.suppress(Exception):
            await self.pc.close()


class _Barrier:
    """A pending call: the errors the server sent before the pong with ``t0``."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.errors: list[m.Error] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Room:
    """A joined room. Create with ``await Room.connect(url, token)``; leave with ``await room.disconnect()``."""

    def __init__(self, url: str, token: str, *, refresh_token: str | None, auto_subscribe: bool,
                 timeout: float, reconnect_window: float) -> None:
        self.url = url.rstrip("/")
        self.name = ""
        self.sid = ""
        self.participants: dict[str, RemoteParticipant] = {}
        self.local_participant = LocalParticipant(self)
        self.connection_state: ConnectionState = "connected"
        self.disconnect_reason: str | None = None
        self._token = token
        self._refresh_token = refresh_token
        self._auto_subscribe = auto_subscribe
        self._timeout = timeout
        self._reconnect_window = reconnect_window
        self._session: _Session | None = None
        self._ready = asyncio.Event()
        self._final_reason: str | None = None
        self._closing = False
        self._finished = False
        self._runner: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()
        self._request_lock = asyncio.Lock()
        self._barrier: _Barrier | None = None
        self._barrier_ids = itertools.count(1)
        self._wanted: set[str] = set()
        self._unwanted: set[str] = set()
        self._handlers: list[tuple[type[ev.RoomEvent], Callable[[Any], Any]]] = []
        self._queues: list[asyncio.Queue[ev.RoomEvent | None]] = []
        self._backlog: deque[ev.RoomEvent] | None = deque(maxlen=EVENT_BACKLOG)
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self.clock = RoomClock()
        self.playback: PlaybackState | None = None
        self._clock_pinger: asyncio.Task[None] | None = None

    # -- life ------------------------------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, token: str, *, refresh_token: str | None = None, auto_subscribe: bool = True,
                      host_addresses: Iterable[str] | None = None, timeout: float = 10.0,
                      reconnect_window: float = RECONNECT_WINDOW) -> Room:
        """Join the room named in `token` at the server `url`; return once joined.

        Raise JoinError when the server refuses, OSError or a websockets error when it cannot be reached.
        `refresh_token` keeps the access token fresh (for reconnects); `host_addresses` fixes the ICE host
        candidates for this process (tests use ["127.0.0.1"]). After a drop the room tries to rejoin for
        `reconnect_window` seconds before giving up with Disconnected("reconnect_failed").
        """
        if host_addresses is not None:
            internals.set_host_addresses(list(host_addresses))
        else:
            internals.configure_from_env()
        room = cls(url, token, refresh_token=refresh_token, auto_subscribe=auto_subscribe, timeout=timeout,
                   reconnect_window=reconnect_window)
        if refresh_token is not None and _expired(token):
            await room._refresh_now(token)
        await room._open()
        room._runner = asyncio.create_task(room._run(), name=f"room {room.name}")
        if refresh_token is not None:
            room._refresher = asyncio.create_task(room._refresh_loop(), name=f"room {room.name} refresh")
        room._emit(ev.Connected(room.name, room.sid, room.local_participant))
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
        if self._runner is not None and self._runner is not asyncio.current_task():
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._finish("client_initiated")

    @property
    def access_token(self) -> str:
        """Return the access token the next (re)join will use."""
        return self._token

    @property
    def refresh_token(self) -> str | None:
        """Return the current refresh token (it rotates on every refresh)."""
        return self._refresh_token

    # -- events ----------------------------------------------------------------------------------------------------

    def on(self, event: str | type[E], callback: Callable[[E], Any]) -> Callable[[], None]:
        """Call `callback(event)` for every event of this type (a coroutine function runs as a task);
        return a function that removes the callback. A callback's exception is logged, never raised here."""
        entry = (ev.event_type(event), callback)
        self._handlers.append(entry)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._handlers.remove(entry)

        return remove

    async def events(self) -> AsyncIterator[ev.RoomEvent]:
        """Yield every event from now on (the first caller also gets those since connect) until Disconnected."""
        queue: asyncio.Queue[ev.RoomEvent | None] = asyncio.Queue()
        if self._backlog is not None:
            for past in self._backlog:
                queue.put_nowait(past)
            self._backlog = None
        if self._finished:
            queue.put_nowait(None)
        self._queues.append(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
                if isinstance(event, ev.Disconnected):
                    return
        finally:
            with contextlib.suppress(ValueError):
                self._queues.remove(queue)

    async def wait_for(self, event: str | type[E], predicate: Callable[[E], bool] | None = None, *,
                       timeout: float = 10.0) -> E:
        """Return the next event of this type (matching `predicate`); TimeoutError if none comes in time."""
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()

        def check(e: E) -> None:
            if not future.done() and (predicate is None or predicate(e)):
                future.set_result(e)

        remove = self.on(event, check)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            remove()

    def _emit(self, event: ev.RoomEvent) -> None:
        for cls, callback in list(self._handlers):
            if not isinstance(event, cls):
                continue
            try:
                result = callback(event)
            except Exception:
                log.exception("room: a %s callback failed", event.NAME)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_done)
        if self._backlog is not None:
            self._backlog.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room: an event callback failed", exc_info=task.exception())

    # -- subscriptions and data ------------------------------------------------------------------------------------

    async def subscribe(self, track_sid: str) -> None:
        """Receive a remote track (TrackSubscribed follows once its media is negotiated)."""
        self._unwanted.discard(track_sid)
        self._wanted.add(track_sid)
        await self._request(m.Subscribe(track_sid=track_sid))

    async def unsubscribe(self, track_sid: str) -> None:
        """Stop receiving a remote track (TrackUnsubscribed follows)."""
        self._wanted.discard(track_sid)
        self._unwanted.add(track_sid)
        await self._request(m.Unsubscribe(track_sid=track_sid))

    async def send_data(self, payload: str, topic: str = "", to: Iterable[str] = ()) -> None:
        """Send a data message (see LocalParticipant.send_data)."""
        await self.local_participant.send_data(payload, topic, to)

    async def get_stats(self) -> RTCStatsReport:
        """Return aiortc's statistics of the current peer connection (inbound-rtp, outbound-rtp... by id)."""
        session = self._session
        return await session.pc.getStats() if session is not None else RTCStatsReport()

    async def receive_stats(self) -> dict[str, ReceiveStats]:
        """Return what arrived so far for each subscribed track, by track sid (empty while reconnecting)."""
        session = self._session
        if session is None:
            return {}
        by_mid = {t.mid: t for t in session.pc.getTransceivers() if t.mid is not None}
        result: dict[str, ReceiveStats] = {}
        for mid, remote in list(session.subscriptions.items()):
            transceiver = by_mid.get(mid)
            if transceiver is None:
                continue
            report = await transceiver.receiver.getStats()
            for stats in report.values():
                if getattr(stats, "type", "") == "inbound-rtp":
                    clock = 90.0 if remote.kind == "video" else 48.0  # RTP clock ticks per ms
                    result[remote.sid] = ReceiveStats(
                        track_sid=remote.sid, kind=remote.kind, packets_received=stats.packetsReceived,
                        packets_lost=max(0, stats.packetsLost), jitter_ms=stats.jitter / clock,
                        frames_received=remote.frames_received)
        return result

    # -- sending -----------------------------------------------------------------------------------------------------

    async def _live_session(self) -> _Session:
        if self.connection_state == "reconnecting":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._reconnect_window):
                    await self._ready.wait()
        if self.connection_state != "connected" or self._session is None:
            raise ConnectionError("the room is not connected")
        return self._session

    async def _send(self, msg: m.ClientMessage) -> None:
        session = await self._live_session()
        await session.signal.send(msg)

    async def _request(self, msg: m.ClientMessage) -> None:
        """Send `msg` and a ping behind it; raise RequestError if the server sent an error before the pong."""
        async with self._request_lock:
            session = await self._live_session()
            barrier = _Barrier(-float(next(self._barrier_ids)))
            self._barrier = barrier
            try:
                await session.signal.send(msg)
                await session.signal.send(m.Ping(t0=barrier.t0))
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    await barrier.done
            finally:
                self._barrier = None
        if barrier.errors:
            raise RequestError(barrier.errors[0].code, barrier.errors[0].message)

    # -- shared content ----------------------------------------------------------------------------------------------

    async def load(self, content: str, *, title: str = "", position: float = 0.0, play: bool = True) -> None:
        """Load `content` (a media URL or an absolute file path every screen can open) for the whole room."""
        await self._request(m.Playback(action="load", content=content, title=title, position=position, play=play))

    async def play(self) -> None:
        """Play the room's content from where it is (every screen starts at the same instant)."""
        await self._request(m.Playback(action="play"))

    async def pause(self) -> None:
        """Pause the room's content."""
        await self._request(m.Playback(action="pause"))

    async def seek(self, position: float) -> None:
        """Move the room's content to `position` seconds, playing or paused as it was."""
        await self._request(m.Playback(action="seek", position=position))

    async def stop(self) -> None:
        """Unload the room's content."""
        await self._request(m.Playback(action="stop"))

    async def configure_playback(self, *, control: str | None = None, on_stall: str | None = None) -> None:
        """Host only: who may command the content ("host" or "everyone"), what a stall does ("pause"/"continue")."""
        await self._request(m.Playback(action="configure", control=control, on_stall=on_stall))

    async def report_buffering(self, stalled: bool, position: float | None = None,
                               duration: float | None = None) -> None:
        """Tell the room this screen stalled (or is ready again), and the content's duration once known."""
        await self._send(m.Buffering(stalled=stalled, position=position, duration=duration))

    def _on_pong(self, pong: m.Pong, arrived: float) -> None:
        if pong.t0 is not None:
            self.clock.add_exchange(pong.t0, pong.t1, pong.t2, arrived)

    async def _ping_clock(self, signal: SignalClient) -> None:
        """Ping for clock sync: a burst after joining, then steadily (the pongs go to `_on_pong`)."""
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.clock.next_ping_in())
                await signal.send(m.Ping(t0=self.clock.local()))

    # -- connection --------------------------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Join with the current token and set up a new session (the old one must be closed)."""
        signal = await SignalClient.connect(self.url, self._token, timeout=self._timeout,
                                            auto_subscribe=self._auto_subscribe, clock=self.clock.local)
        signal.on_pong = self._on_pong
        if self._clock_pinger is not None:
            self._clock_pinger.cancel()
        self._clock_pinger = asyncio.create_task(self._ping_clock(signal), name="room clock pings")
        joined = signal.joined
        pc = new_peer_connection([(s.urls, s.username, s.credential) for s in joined.ice_servers])
        self._session = _Session(signal, pc)
        self.name, self.sid = joined.room.name, joined.room.sid
        me = self.local_participant
        me.sid, me.identity, me.name = joined.participant.sid, joined.participant.identity, joined.participant.name
        me.grants = joined.grants
        current = {info.sid: info for info in joined.participants}
        for sid in [sid for sid in self.participants if sid not in current]:
            self._drop_participant(sid, "disconnected")
        for sid, info in current.items():
            known = self.participants.get(sid)
            if known is not None:
                self._sync_tracks(known, info)
                continue
            participant = self._add_participant(info)
            if self._runner is not None:  # a rejoin: the user knew the room before
                self._emit(ev.ParticipantJoined(participant))
                for pub in participant.tracks.values():
                    self._emit(ev.TrackPublished(pub, participant))
        self.connection_state = "connected"
        self._ready.set()

    async def _run(self) -> None:
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
            except Exception as exc:
                log.exception("room: handling %s failed", msg.TYPE)
                if isinstance(msg, m.Offer):  # the server waits for an answer that will not come: say so
                    self._emit(ev.Error("negotiation_failed", f"could not answer the server's offer: {exc}"))

    async def _reconnect(self) -> bool:
        """Rejoin after a drop; return False (after Disconnected) when it cannot."""
        self.connection_state = "reconnecting"
        self._ready.clear()
        self._emit(ev.Reconnecting())
        await self._close_session(emit=True)
        deadline = time.monotonic() + self._reconnect_window
        delay = 0.2
        while not self._closing:
            try:
                await self._open()
                break
            except JoinError as exc:
                if exc.code == "token_expired" and self._refresh_token is not None:
                    with contextlib.suppress(ApiError, OSError):
                        await self._refresh_now(self._token)
                        continue
                if exc.code in FATAL_JOIN_CODES:
                    await self._finish(exc.code)
                    return False
                log.info("room: rejoin refused (%s), retrying", exc.code)
            except (OSError, WebSocketException, TimeoutError) as exc:
                log.info("room: rejoin failed (%s), retrying", exc)
            if time.monotonic() + delay > deadline:
                await self._finish("reconnect_failed")
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        session = self._session
        if session is None:
            return False
        for pub in self.local_participant.publications.values():
            pub.sid = None
            await session.signal.send(m.Publish(cid=pub.cid, kind=pub.kind, source=pub.source, name=pub.name,
                                                muted=pub._muted_by_user))
        published = {sid for p in self.participants.values() for sid in p.tracks}
        for sid in (self._unwanted if self._auto_subscribe else self._wanted) & published:
            await session.signal.send(m.Unsubscribe(track_sid=sid) if self._auto_subscribe else m.Subscribe(track_sid=sid))
        self._emit(ev.Reconnected())
        return True

    async def _close_session(self, *, emit: bool) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        for remote in list(session.subscriptions.values()):
            self._end_subscription(remote, emit=emit)
        session.subscriptions.clear()
        for pub in self.local_participant.publications.values():
            pub._release()
        if self._barrier is not None and not self._barrier.done.done():
            self._barrier.errors.append(m.Error(code="disconnected", message="the connection dropped"))
            self._barrier.done.set_result(None)
        await session.close()

    async def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        if self._clock_pinger is not None:
            self._clock_pinger.cancel()
        self.connection_state = "disconnected"
        self.disconnect_reason = reason
        self._ready.set()
        if self._refresher is not None:
            self._refresher.cancel()
        await self._close_session(emit=False)
        self.local_participant._stop_owned()
        self._emit(ev.Disconnected(reason))
        for queue in self._queues:
            queue.put_nowait(None)

    # -- tokens ------------------------------------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        failures = 0
        while self._refresh_token is not None:
            times = token_times(self._token)
            if times is None:
                return
            await asyncio.sleep(refresh_delay(*times, time.time()))
            try:
                await self._refresh_now(self._token)
                failures = 0
            except ApiError as exc:
                if exc.status in (400, 401, 403, 404, 422):
                    self._emit(ev.Error("refresh_failed", f"the refresh token was refused ({exc.code})"))
                    return
                failures += 1
            except OSError as exc:
                log.info("room: token refresh failed (%s), retrying", exc)
                failures += 1
            if failures:
                await asyncio.sleep(min(30.0, 2.0 * failures))

    async def _refresh_now(self, stale: str) -> None:
        """Trade the refresh token for a new pair, unless another task already replaced `stale`."""
        async with self._refresh_lock:
            if self._token != stale or self._refresh_token is None:
                return
            self._token, self._refresh_token = await refresh_tokens(self.url, self._refresh_token)

    # -- server messages ---------------------------------------------------------------------------------------------

    async def _dispatch(self, session: _Session, msg: m.ServerMessage) -> None:
        if isinstance(msg, m.Offer):
            await self._on_offer(session, msg)
        elif isinstance(msg, m.Pong):
            if self._barrier is not None and msg.t0 == self._barrier.t0 and not self._barrier.done.done():
                self._barrier.done.set_result(None)
        elif isinstance(msg, m.Error):
            if self._barrier is not None:
                self._barrier.errors.append(msg)
            else:
                if msg.code == "replaced":
                    self._final_reason = "replaced"
                self._emit(ev.Error(msg.code, msg.message))
        elif isinstance(msg, m.ParticipantJoined):
            participant = self._add_participant(msg.participant)
            self._emit(ev.ParticipantJoined(participant))
            for pub in participant.tracks.values():
                self._emit(ev.TrackPublished(pub, participant))
        elif isinstance(msg, m.ParticipantLeft):
            self._drop_participant(msg.participant_sid, msg.reason)
        elif isinstance(msg, m.TrackPublished):
            self._on_track_published(msg)
        elif isinstance(msg, m.TrackUnpublished):
            owner = self.participants.get(msg.participant_sid)
            remote_pub = owner.tracks.pop(msg.track_sid, None) if owner else None
            if owner is not None and remote_pub is not None:
                if remote_pub.track is not None:
                    self._end_subscription(remote_pub.track, emit=True)
                self._emit(ev.TrackUnpublished(remote_pub, owner))
        elif isinstance(msg, (m.TrackMuted, m.TrackUnmuted)):
            self._on_mute(msg)
        elif isinstance(msg, m.ActiveSpeakers):
            speakers = tuple(ev.Speaker(s.participant_sid, s.identity, s.level, self._participant(s.participant_sid))
                             for s in msg.speakers)
            dominant = self._participant(msg.dominant_sid) if msg.dominant_sid else None
            self._emit(ev.ActiveSpeakersChanged(speakers, dominant))
        elif isinstance(msg, m.PlaybackStateMsg):
            state = msg.state()
            if state != self.playback:
                self.playback = state
                self._emit(ev.PlaybackChanged(state))
        elif isinstance(msg, m.Data):
            self._emit(ev.DataReceived(msg.payload, msg.topic, self.participants.get(msg.from_sid), msg.from_identity))
        elif isinstance(msg, m.Removed):
            self._final_reason = "removed"
        elif isinstance(msg, m.RoomCompleted):
            self._final_reason = "room_completed"
        elif isinstance(msg, m.Candidate):
            log.debug("room: ignored a trickled candidate (the server's are in its offer)")

    def _participant(self, sid: str) -> RemoteParticipant | LocalParticipant | None:
        if sid == self.local_participant.sid:
            return self.local_participant
        return self.participants.get(sid)

    def _add_participant(self, info: m.ParticipantInfo) -> RemoteParticipant:
        participant = RemoteParticipant(info)
        self.participants[info.sid] = participant
        return participant

    def _sync_tracks(self, participant: RemoteParticipant, info: m.ParticipantInfo) -> None:
        """Catch up with a participant's tracks after a rejoin (what changed while we were away)."""
        now = {track.sid: track for track in info.tracks}
        for sid in [sid for sid in participant.tracks if sid not in now]:
            self._emit(ev.TrackUnpublished(participant.tracks.pop(sid), participant))
        for sid, track in now.items():
            pub = participant.tracks.get(sid)
            if pub is None:
                pub = participant.tracks[sid] = RemoteTrackPublication(track, participant)
                self._emit(ev.TrackPublished(pub, participant))
            elif pub.muted != track.muted:
                pub.muted = track.muted
                self._emit((ev.TrackMuted if track.muted else ev.TrackUnmuted)(pub, participant, False))

    def _drop_participant(self, sid: str, reason: str) -> None:
        participant = self.participants.pop(sid, None)
        if participant is None:
            return
        for pub in list(participant.tracks.values()):
            if pub.track is not None:
                self._end_subscription(pub.track, emit=True)
            self._emit(ev.TrackUnpublished(pub, participant))
        participant.tracks.clear()
        self._emit(ev.ParticipantLeft(participant, reason))

    def _on_track_published(self, msg: m.TrackPublished) -> None:
        if msg.participant_sid == self.local_participant.sid:
            pub = self.local_participant.publications.get(msg.cid or "")
            if pub is not None:
                pub.sid = msg.track.sid
            return
        participant = self.participants.get(msg.participant_sid)
        if participant is None:
            return
        remote_pub = RemoteTrackPublication(msg.track, participant)
        participant.tracks[remote_pub.sid] = remote_pub
        self._emit(ev.TrackPublished(remote_pub, participant))

    def _on_mute(self, msg: m.TrackMuted | m.TrackUnmuted) -> None:
        muted = isinstance(msg, m.TrackMuted)
        event_cls = ev.TrackMuted if muted else ev.TrackUnmuted
        if msg.participant_sid == self.local_participant.sid:
            local_pub = self.local_participant.tracks.get(msg.track_sid)
            if local_pub is None:
                return
            was_sending = local_pub.sending
            if msg.by_server:
                local_pub._muted_by_server = muted
            if local_pub.sending and not was_sending:
                local_pub.request_keyframe()
            self._emit(event_cls(local_pub, self.local_participant, msg.by_server))
            return
        participant = self.participants.get(msg.participant_sid)
        remote_pub = participant.tracks.get(msg.track_sid) if participant else None
        if participant is None or remote_pub is None:
            return
        remote_pub.muted = muted
        self._emit(event_cls(remote_pub, participant, msg.by_server))

    # -- media -------------------------------------------------------------------------------------------------------

    async def _on_offer(self, session: _Session, offer: m.Offer) -> None:
        """Apply a server offer: attach our tracks to publish m-lines, map subscribe m-lines, answer."""
        pc = session.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        if session is not self._session:
            return
        infos = {info.mid: info for info in offer.transceivers}
        by_cid = self.local_participant.publications
        arrived: list[RemoteTrack] = []
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            info = infos.get(mid) if mid is not None else None
            current = session.subscriptions.get(mid) if mid is not None else None
            if current is not None and (info is None or info.direction != "subscribe" or info.track_sid != current.sid):
                self._end_subscription(current, emit=True)
            if info is None:
                self._idle(transceiver)
            elif info.direction == "publish":
                pub = by_cid.get(info.cid or "")
                if pub is None:
                    log.warning("room: the server offered to receive an unknown track %s", info.cid)
                    self._idle(transceiver)
                    continue
                sending = pub._sending_for(transceiver.sender)
                if transceiver.sender.track is not sending:
                    transceiver.sender.replaceTrack(sending)
                transceiver.direction = "sendonly"
            else:
                transceiver.direction = "recvonly"
                if mid is not None and mid not in session.subscriptions:
                    remote = self._new_subscription(info)
                    if remote is not None:
                        session.subscriptions[mid] = remote
                        self._start_pump(session, mid, transceiver)
                        arrived.append(remote)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        await session.signal.send(m.Answer(sdp=pc.localDescription.sdp))
        for remote in arrived:
            self._emit(ev.TrackSubscribed(remote, remote.participant, remote.publication))

    @staticmethod
    def _idle(transceiver: RTCRtpTransceiver) -> None:
        if transceiver.sender.track is not None:
            transceiver.sender.replaceTrack(None)
        transceiver.direction = "inactive"

    def _new_subscription(self, info: m.TransceiverInfo) -> RemoteTrack | None:
        participant = self.participants.get(info.participant_sid)
        if participant is None:
            log.warning("room: the server sent track %s of unknown participant %s", info.track_sid,
                        info.participant_sid)
            return None
        pub = participant.tracks.get(info.track_sid)
        if pub is None:
            pub = RemoteTrackPublication(m.TrackInfo(sid=info.track_sid, kind=info.kind, source="unknown"), participant)
            participant.tracks[pub.sid] = pub
        remote = RemoteTrack(info.kind, info.track_sid, pub)
        pub.track = remote
        return remote

    def _end_subscription(self, remote: RemoteTrack, *, emit: bool) -> None:
        if remote._over:
            return
        remote._over = True
        remote.stop()
        session = self._session
        if session is not None:
            for mid, track in list(session.subscriptions.items()):
                if track is remote:
                    del session.subscriptions[mid]
        if remote.publication.track is remote:
            remote.publication.track = None
        if emit:
            self._emit(ev.TrackUnsubscribed(remote, remote.participant, remote.publication))

    def _start_pump(self, session: _Session, mid: str, transceiver: RTCRtpTransceiver) -> None:
        task = session.pumps.get(mid)
        if task is not None and not task.done():
            return
        session.pumps[mid] = asyncio.create_task(self._pump_frames(session, mid, transceiver.receiver.track))

    @staticmethod
    async def _pump_frames(session: _Session, mid: str, track: MediaStreamTrack) -> None:
        """Read one receiver's decoded frames forever and hand each to whichever subscription has the m-line."""
        try:
            while True:
                frame = await track.recv()
                remote = session.subscriptions.get(mid)
                if remote is not None and isinstance(frame, (av.AudioFrame, av.VideoFrame)):
                    remote._push(frame)
        except MediaStreamError:
            return


def _expired(token: str) -> bool:
    times = token_times(token)
    return times is not None and times[1] <= time.time()

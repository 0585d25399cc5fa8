"""The TV in a room: joins through the SDK, follows who is there, and keeps an up-to-date Scene for the screen.

Runs on the TV's asyncio thread (tvapp.tv.app starts it). It never draws: it replaces `scene` (an immutable
tvapp.tv.scene.Scene, so the frame loop on the main thread reads it without a lock) whenever something
changes, and every 100 ms for clocks, toasts, the highlight's hold and the pairing code's countdown. Who is on
screen, and the pumps feeding their tiles, are tvapp.tv.people's; the room's shared content, and the one view
of its timeline, tvapp.tv.content's. The pairing card is read from its one owner (`pairing_view`, the pairing
desk's `shown`) and counted down by `clock`, the clock the desk is given too.

How it gets in is tvapp.tv.join's (`JoinPlan`, `credentials`: a token, an invite code, or a room it hosts with an
API key, with an invite code for the room bar that the session renews before it expires); what goes wrong is shown
in words on an error screen (`JoinProblem`), never as a traceback.

A TV kept out of its room by something another try can fix (the core restarted or is unreachable, the SDK's
reconnect window ran out) says so and tries the same plan again by itself, with growing pauses, until it is back
in (tvapp.tv.join's `RejoinTries`; tvapp.core.rejoin decides which reasons and how long to wait); a new
`switch()` ends those tries.

The TV's own camera and microphone (`media`, tvapp.tv.capture.LocalMedia) are published in every room it joins
and closed when it leaves; `set_device` (the remote) and the TV's keys C and M switch them off and on. While it
runs, the microphone goes through the echo canceller (`echo`, tvapp.tv.echo): it hears everything the TV's audio
output plays (an output tap) and cleans each 10 ms microphone block (the capture filter) before it is sent;
`echo_json` is its state (who talks, the clocks' drift) for the screenshot sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from websockets.exceptions import WebSocketException

from tvapp.client import events as ev
from tvapp.client import trust
from tvapp.client.rest import ApiError
from tvapp.client.room import Room
from tvapp.client.signaling import JoinError
from tvapp.core.layout import Mode
from tvapp.core.links import server_label
from tvapp.core.rejoin import should_rejoin
from tvapp.core.stage import SpeakerHighlight, Toasts
from tvapp.tv.adaptive import TileSizeReporter
from tvapp.tv.content import TvContent
from tvapp.tv.join import (
    JoinPlan,
    JoinProblem,
    RejoinTries,
    credentials,
    disconnected,
    new_invite,
    problem_for,
    unreachable,
)
from tvapp.tv.people import People, TileInfo, display_name
from tvapp.tv.scene import (
    RECONNECTING_TEXT,
    ConnectingScreen,
    ErrorScreen,
    IdleScreen,
    LocalDevices,
    PairingPanel,
    RoomBar,
    RoomScreen,
    Scene,
)

if TYPE_CHECKING:
    from tvapp.protocol.remote_messages import TvStatus
    from tvapp.tv.audio import AudioOutput
    from tvapp.tv.capture import LocalMedia
    from tvapp.tv.echo import EchoCanceller
    from tvapp.tv.remote.controller import PairingView

log = logging.getLogger(__name__)

SCENE_INTERVAL = 0.1
STATS_INTERVAL = 1.0
INVITE_RENEW_MARGIN = 60.0


class TvSession:
    """The room side of the TV. Read `scene` from any thread; run `run(plan)` on the asyncio thread."""

    def __init__(self, *, friendly_name: str, mode: Mode = Mode.GRID, formats: tuple[str, str] = ("bgra", "BGRA"),
                 audio: AudioOutput | None = None, join_hint: Callable[[str | None], str] | None = None,
                 clock: Callable[[], float] = time.time, watch_mode: Mode = Mode.WATCH, content_volume: float = 1.0,
                 duck_db: float = -12.0, media: LocalMedia | None = None, content_proxy: str = "",
                 echo: EchoCanceller | None = None) -> None:
        self.media = media  # the TV's own camera and microphone (None: it has neither)
        self.on_room_left: Callable[[], None] | None = None  # the phone camera ends with the room
        self.echo = echo    # cleans the microphone of what `audio` plays (None: no canceller), wired by run()
        self._device_tasks: set[asyncio.Task[None]] = set()  # switches asked for by the TV's keys
        self.friendly_name = friendly_name
        self.mode = mode
        self.watch_mode = watch_mode      # the layout while content plays, unless a watch layout is chosen
        self.content = TvContent(formats, audio, volume=content_volume, duck_db=duck_db, content_proxy=content_proxy)
        self.formats = formats
        self.audio = audio
        self.join_hint = join_hint or (lambda code: "")
        self.join_url: Callable[[str], str | None] = lambda code: None  # the "scan to join" QR code's link
        self.fingerprint: str | None = None  # the built-in core's self-signed certificate, shown beside the code
        self.clock = clock
        self.room: Room | None = None
        self.room_name = ""
        self.invite_code: str | None = None
        self.invite_expires = 0.0
        self.joined_at: float | None = None     # wall time run() started joining, for join-to-frame traces
        self.people = People(formats, audio)
        self.tile_sizes = TileSizeReporter()  # track_settings from the layout drawn (tvapp.tv.adaptive)
        self.adaptive_stream = True  # [tv] adaptive_stream; false: no track_settings (full-size streams)
        self.highlight = SpeakerHighlight()
        self.toasts = Toasts()
        self.reconnecting: set[str] = set()  # which of the TV's own links ("signal", "media") are being repaired
        self._screen: IdleScreen | ConnectingScreen | ErrorScreen | None = ConnectingScreen("Starting…")
        self.scene = Scene(ConnectingScreen("Starting…"))
        self._plan: JoinPlan | None = None
        self._switching = asyncio.Lock()
        self._rejoin = RejoinTries(self)  # the tries to get back into `_plan`, while they run
        self._volume = audio.volume if audio is not None else 1.0
        self.invite_visible = True
        self.how_to_join: tuple[str, ...] = ("Start a room:  tvapp tv --room NAME", "Join one:  tvapp tv --invite CODE")
        self.pairing_view: Callable[[], PairingView | None] = lambda: None  # the pairing desk's `shown`
        self.on_refresh: Callable[[], None] | None = None  # told after every scene rebuild (remote state pushes)
        self.on_key: Callable[[str], None] | None = None   # a key pressed on the TV ("pair"), on this thread
        self.home_server: str | None = None  # the core the TV belongs to (its built-in one, or --server)
        self.home_label = "this TV"          # how the screen names it ("on this TV")

    # -- life ---------------------------------------------------------------------------------------------------

    async def run(self, plan: JoinPlan | None) -> None:
        """Show the idle screen (no plan) or join `plan`, then follow `switch()` calls until cancelled.

        A failed join is on the error screen; it never raises JoinProblem.
        """
        ticker = asyncio.create_task(self._tick())
        unwire = self._wire_echo()
        try:
            with contextlib.suppress(JoinProblem):
                await self.switch(plan)
            await asyncio.Event().wait()
        finally:
            unwire()
            ticker.cancel()
            for task in list(self._device_tasks):
                task.cancel()
            self._rejoin.stop()
            await self.leave()

    def _wire_echo(self) -> Callable[[], None]:
        """Put the echo canceller between the TV's output and its microphone; return what undoes it."""
        if self.echo is None or self.media is None or self.audio is None or not self.media.has_mic:
            return lambda: None
        return self.echo.wire(self.audio, self.media)

    def echo_json(self) -> dict[str, object] | None:
        """Return the echo canceller's state for the screenshot sidecar (None: the TV has none)."""
        return self.echo.to_json() if self.echo is not None else None

    async def switch(self, plan: JoinPlan | None) -> None:
        """Leave the current room (if any), then join `plan`, or show the idle screen for None.

        Raise JoinProblem when the join fails (the error screen says the same in words); when another try can
        fix it, the TV also keeps trying `plan` by itself until it gets in or is switched elsewhere.
        """
        if not self._rejoin.running_here():
            self._rejoin.stop()
        async with self._switching:
            await self.leave()
            self._plan = plan
            self.room_name, self.invite_code, self.invite_expires = "", None, 0.0
            self.highlight = SpeakerHighlight()
            if plan is None:
                self._screen = self.idle_screen()
                self.refresh()
                return
            try:
                await self._join(plan)
            except JoinProblem as problem:
                retrying = plan.keep_trying or self._rejoin.running_here()
                if retrying and should_rejoin(problem.code, hosting=self.hosting):
                    problem = problem.retrying()
                    self._rejoin.start()
                self._screen = problem.screen
                self.refresh()
                raise problem from None

    def show_problem(self, problem: JoinProblem) -> None:
        """Show `problem` on the error screen until something else is shown (e.g. the built-in core did not start)."""
        self._screen = problem.screen
        self.refresh()

    @property
    def plan(self) -> JoinPlan | None:
        """Return how the TV got into its current room (None when idle)."""
        return self._plan

    @property
    def room_server(self) -> str | None:
        """Return the base URL of the core the current plan's room lives on, when it is not the TV's own."""
        plan = self._plan
        if plan is None or self.home_server is None or plan.server.rstrip("/") == self.home_server.rstrip("/"):
            return None
        return plan.server

    def where(self) -> str:
        """Return where the room lives, for the room bar: "on this TV" or "on core.example"."""
        other = self.room_server
        return f"on {server_label(other)}" if other is not None else f"on {self.home_label}"

    def toast(self, text: str) -> None:
        """Show a short notice on screen now (e.g. why a join asked for by a remote failed)."""
        self.toasts.add(text, self._now_ms())
        self.refresh()

    @property
    def hosting(self) -> bool:
        """Return True when the TV created its room (its token carries the host grant)."""
        return self._plan is not None and bool(self._plan.room) and self._plan.api_key is not None

    @property
    def volume(self) -> float:
        """Return the master volume, 0..1."""
        return self.audio.volume if self.audio is not None else self._volume

    @volume.setter
    def volume(self, value: float) -> None:
        self._volume = value
        if self.audio is not None:
            self.audio.volume = value

    async def leave(self) -> None:
        """Leave the room (if in one) and stop every pump."""
        room, self.room = self.room, None
        self.content.detach()
        self._room_left()
        for sid in self.people:
            self._drop(sid)
        if room is not None:
            with contextlib.suppress(Exception):
                await room.disconnect()

    async def _join(self, plan: JoinPlan) -> None:
        self.joined_at = time.time()
        self._screen = ConnectingScreen(f"Joining {plan.room or 'the room'}…")
        self.refresh()
        if plan.fingerprint is not None:  # a self-signed core: its certificate, and only it (tvapp.client.trust)
            trust.pin(plan.server, plan.fingerprint)
        got = await credentials(plan)  # raises JoinProblem in words
        self.invite_code = got.invite_code  # the code to show others the way in
        if got.invite_expires:  # hosting: the code is renewed before it expires
            self.invite_expires = got.invite_expires
        try:
            room = await Room.connect(plan.server, got.token, refresh_token=got.refresh_token, auto_subscribe=True)
        except JoinError as exc:
            raise problem_for(exc.code, exc.message) from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise unreachable(plan.server, exc) from None
        self.room = room
        self.room_name = room.name
        room.on(ev.RoomEvent, self._on_event)
        self.content.attach(room)
        for participant in room.participants.values():
            self.people.add(participant)
            for publication in participant.tracks.values():
                if publication.track is not None:
                    self.people.subscribed(publication.track)
        if self.media is not None:
            self.media.on_change = self.refresh
            await self.media.attach(room)
        self._screen = None
        self.refresh()

    async def _renew_invite(self) -> None:
        plan = self._plan
        if plan is None or not plan.room or not plan.api_key:
            return
        self.invite_code, self.invite_expires = await new_invite(plan)

    async def _tick(self) -> None:
        """Refresh the scene for clocks and timeouts; renew the invite."""
        next_stats = 0.0
        while True:
            await asyncio.sleep(SCENE_INTERVAL)
            now = time.monotonic()
            if self.room is not None and now >= next_stats:
                next_stats = now + STATS_INTERVAL
                if self.invite_expires and self.invite_expires - self.clock() < INVITE_RENEW_MARGIN:
                    with contextlib.suppress(ApiError, OSError):
                        await self._renew_invite()
            if isinstance(self._screen, IdleScreen):
                self._screen = self.idle_screen()
            self.refresh()

    # -- room events --------------------------------------------------------------------------------------------

    def _on_event(self, event: ev.RoomEvent) -> None:
        if isinstance(event, ev.ParticipantJoined):
            self.people.add(event.participant)
            self.toasts.add(f"{display_name(event.participant)} joined", self._now_ms())
        elif isinstance(event, ev.ParticipantLeft):
            person = self.people.get(event.participant.sid)
            if person is not None:
                self.toasts.add(f"{person.name} left", self._now_ms())
            self._drop(event.participant.sid)
        elif isinstance(event, ev.TrackSubscribed):
            self.people.subscribed(event.track)
        elif isinstance(event, ev.TrackUnsubscribed):
            self.people.unsubscribed(event.track)
        elif isinstance(event, (ev.TrackPublished, ev.TrackUnpublished, ev.TrackMuted, ev.TrackUnmuted)):
            self._sync_publication(event.participant.sid)
        elif isinstance(event, ev.ActiveSpeakersChanged):
            dominant = event.dominant.sid if event.dominant is not None else None
            self.highlight.update(dominant if dominant in self.people else None, self._now_ms())
            self.content.speaking(any(s.participant_sid in self.people for s in event.speakers))
        elif isinstance(event, ev.PlaybackChanged):
            title = self.content.newly_loaded()
            if title is not None:
                self.toasts.add(f"Now playing: {title}", self._now_ms())
        elif isinstance(event, (ev.TrackSwitchedOff, ev.TrackSwitchedOn)):
            self.people.set_paused(event.participant.sid, isinstance(event, ev.TrackSwitchedOff), event.track.sid)
        elif isinstance(event, ev.NetworkQualityChanged):
            self.people.set_quality(event.participant.sid, event.level)
        elif isinstance(event, (ev.ParticipantReconnecting, ev.ParticipantReconnected)):
            self.people.set_reconnecting(event.participant.sid, isinstance(event, ev.ParticipantReconnecting))
        elif isinstance(event, ev.Reconnecting):
            self.reconnecting.add(event.reason)
            what = "Video connection lost" if event.reason == "media" else "Connection lost"
            self.toasts.add(f"{what}, reconnecting…", self._now_ms())
        elif isinstance(event, ev.Reconnected):
            self.reconnecting.discard(event.reason)
            if not self.reconnecting:
                self.toasts.add("Reconnected", self._now_ms())
        elif isinstance(event, ev.Disconnected):
            self._on_disconnected(event.reason)
        self.refresh()

    def _on_disconnected(self, reason: str) -> None:
        self.reconnecting.clear()
        for sid in self.people:
            self._drop(sid)
        self.content.detach()
        self._room_left()
        room, self.room = self.room, None
        if reason == "client_initiated":
            return
        problem = disconnected(reason)
        if should_rejoin(reason, hosting=self.hosting):
            plan = self._plan
            if plan is not None and plan.token and room is not None:
                # Rejoin with the tokens the room last held: its refresh token has rotated, and the first one
                # replayed would revoke the whole family.
                self._plan = dataclasses.replace(plan, token=room.access_token, refresh_token=room.refresh_token)
            problem = problem.retrying()
            self._rejoin.start()
        self._screen = problem.screen

    def _drop(self, sid: str) -> None:
        self.people.drop(sid)
        self.highlight.remove(sid)

    def _sync_publication(self, sid: str) -> None:
        """Update the mic/camera state of a participant from its publications."""
        participant = self.room.participants.get(sid) if self.room is not None else None
        if participant is not None:
            self.people.sync(participant)

    # -- scene --------------------------------------------------------------------------------------------------

    def tiles_shown(self, shown: dict[str, tuple[int, int]]) -> None:
        """Take the tile sizes the frame loop just drew (participant sid -> size) and tell the server of changes."""
        if self.adaptive_stream:
            self.tile_sizes.tiles_shown(shown, self.room, self.people)

    def refresh(self) -> None:
        """Rebuild the scene from the current state."""
        if self.adaptive_stream:
            self.tile_sizes.tell(self.room, self.people)
        now_ms = self._now_ms()
        toasts = self.toasts.visible(now_ms)
        pairing = self._pairing_panel()
        if self._screen is not None:
            self.scene = Scene(self._screen, toasts, pairing=pairing)
            self._refreshed()
            return
        tiles = self.people.tile_views(self.highlight.current(now_ms))
        code = self.invite_code if self.invite_visible else None
        other = self.room_server
        hint = (f"On a phone: open {other}" + (f" and enter {code}" if code else "")) if other else self.join_hint(code)
        bar = RoomBar(room=self.room_name, invite_code=code, participants=len(tiles) + 1,
                      join_hint=hint, join_url=self.join_url(code) if code and not other else None,
                      fingerprint=self.fingerprint if code and not other else None, where=self.where(),
                      connection=RECONNECTING_TEXT if self.reconnecting else "")
        content = self.content.view()
        local = self.media.view() if self.media is not None else LocalDevices()
        self.scene = Scene(RoomScreen(bar=bar, tiles=tiles, mode=self.shown_mode(content is not None),
                                      content=content, local=local), toasts, pairing=pairing)
        self._refreshed()

    def shown_mode(self, has_content: bool) -> Mode:
        """Return the layout on screen: the chosen one, or the watch layout while content plays in grid/speaker."""
        if has_content and self.mode not in (Mode.WATCH, Mode.WATCH_FULL):
            return self.watch_mode
        return self.mode

    def _pairing_panel(self) -> PairingPanel | None:
        """Return the pairing card as of now: the desk's view, its expiry counted down by the session's clock."""
        view = self.pairing_view()
        if view is None:
            return None
        left = max(0, math.ceil(view.expires_at - self.clock()))
        return PairingPanel(code=view.code, url=view.url, seconds_left=left, requester=view.requester_name)

    def _refreshed(self) -> None:
        if self.on_refresh is not None:
            try:
                self.on_refresh()
            except Exception:  # a remote's trouble must never stop the screen
                log.exception("tv: state push failed")

    def _room_left(self) -> None:
        self.tile_sizes.close()
        if self.media is not None:
            self.media.detach()
        if self.on_room_left is not None:
            try:
                self.on_room_left()
            except Exception:  # the phone camera's trouble must never stop leaving
                log.exception("tv: the phone camera did not stop")

    def idle_screen(self) -> IdleScreen:
        """Return the idle screen as of now."""
        now = time.localtime(self.clock())
        return IdleScreen(friendly_name=self.friendly_name, clock=time.strftime("%H:%M", now),
                          date=time.strftime("%A %d %B", now),
                          how_to_join=self.how_to_join)

    def _now_ms(self) -> float:
        return time.monotonic() * 1000

    def key_pressed(self, key: str) -> None:
        """Handle a key pressed on the TV itself (the frame loop hands it over to this thread)."""
        if key in ("camera", "mic"):
            media = self.media
            if media is not None:
                which: Literal["camera", "mic"] = "camera" if key == "camera" else "mic"
                on = media.camera_wanted if which == "camera" else media.mic_wanted
                task = asyncio.get_running_loop().create_task(self._key_switch(which, not on))
                self._device_tasks.add(task)
                task.add_done_callback(self._device_tasks.discard)
            return
        if self.on_key is not None:
            self.on_key(key)

    async def _key_switch(self, which: Literal["camera", "mic"], enabled: bool) -> None:
        try:
            await self.set_device(which, enabled)
        except Exception as exc:  # the device did not open: say so on screen, the TV goes on
            self.toasts.add(f"The {'camera' if which == 'camera' else 'microphone'} did not start", self._now_ms())
            log.warning("tv: %s did not switch on: %s", which, exc)
            self.refresh()

    async def set_device(self, which: Literal["camera", "mic"], enabled: bool) -> None:
        """Switch the TV's camera or microphone on or off (SourceError: it cannot open; it stays off)."""
        media = self.media
        if media is None:
            return
        try:
            await media.set_enabled(which, enabled)
        finally:
            self.refresh()

    def status(self) -> tuple[TvStatus, ErrorScreen | None]:
        """Return "idle", "joining", "in_room" or "error", and the error screen when there is one."""
        screen = self._screen
        if isinstance(screen, ErrorScreen):
            return "error", screen
        if isinstance(screen, ConnectingScreen) or (screen is None and self.room is None):
            return "joining", None
        if screen is None:
            return "in_room", None
        return "idle", None

    def advertised_state(self) -> str:
        """Return the state the TV tells the LAN: "room" while in a room, else "idle" (never which room)."""
        return "room" if self.room is not None and self._screen is None else "idle"

    def tile_info(self) -> dict[str, TileInfo]:
        """Return who each tile shows and how, by sid (for the remote control, screenshot sidecars and traces)."""
        return self.people.tile_info(self.highlight.current(self._now_ms()))

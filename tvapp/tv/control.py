"""The TV as the remotes drive it: remote commands become session changes, and the session becomes remote state.

tvapp.tv.remote.endpoints owns the websocket and the pairing; it hands every command that changes the TV to
`TvControl.execute` and asks `tv_state()` for what to push. Everything here runs on the TV's asyncio thread.

Commands set values (never toggle), so a resent one changes nothing: joining the room the TV is already in,
leaving when idle, or setting the volume it already has answers ok and does nothing. A command the TV cannot
carry out raises CommandRefused with a stable code and words for the phone.

Host controls go through the core's REST API with the TV's own access token: when the TV created the room its
token carries the host grant, so removing and muting work; as a guest (joined by invite code) the core refuses
them (`not_host`), exactly as it would refuse any other guest.

A room on another core (`join_server`): the TV redeems the invite on that core first, through the REST client with
the link's pinned fingerprint (tvapp.client.trust) or normal CA checks, and only then leaves its room for the new
one, so a bad code, an unreachable core or a certificate that does not check out changes nothing on screen but a
notice; the phone gets the JoinProblem's code (server_unreachable, tls_failed, fingerprint_mismatch,
invite_not_found, invite_expired, ...). A core joined once is remembered (tvapp.tv.servers) with its pin.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Literal

from tvapp.client import ApiError, RequestError, RestClient, trust
from tvapp.core.codes import format_invite_code, normalize_invite_code
from tvapp.client.sources import SourceError
from tvapp.core.layout import Mode
from tvapp.core.links import InviteLink, server_label
from tvapp.protocol import remote_messages as rp
from tvapp.tv.join import JoinPlan, JoinProblem, problem_for, unreachable
from tvapp.tv.remote.controller import CommandRefused, PairingView
from tvapp.tv.servers import KnownServers
from tvapp.tv.session import TvSession

REDEEM_TIMEOUT = 5.0  # seconds for another core to answer the redemption: the remotes wait 10 s for the answer


class TvControl:
    """Carry out remote commands on a TvSession and describe it as remote State."""

    def __init__(self, session: TvSession, *, server: str | None, api_key: tuple[str, str] | None,
                 default_room: str, pairing_open: Callable[[], bool] = lambda: True,
                 servers: KnownServers | None = None) -> None:
        self.session = session
        self.servers = servers
        self.server = server
        self.api_key = api_key
        self.default_room = default_room
        self.pairing_open = pairing_open

    # -- state ----------------------------------------------------------------------------------------------------

    def tv_state(self) -> rp.State:
        """Return the TV's state as the remotes see it."""
        session = self.session
        status, error = session.status()
        in_room = status == "in_room"
        people = session.tile_info() if in_room else {}
        participants = tuple(
            rp.ParticipantState(sid=sid, identity=info.identity, name=info.name[: rp.MAX_NAME_CHARS],
                                speaking=info.speaking, mic_muted=info.mic_muted, camera_off=info.camera_off)
            for sid, info in people.items() if info.source != "screen")  # the people, not their screens' tiles
        speaker = next((p.sid for p in participants if p.speaking), None)
        media = session.media
        camera, mic = media.states() if media is not None else ("none", "none")
        return rp.State(
            camera=camera, mic=mic,
            tv_name=session.friendly_name[: rp.MAX_NAME_CHARS], status=status,
            room=(session.room_name or None) if in_room else None,
            invite_code=session.invite_code if in_room else None,
            invite_visible=session.invite_visible, participants=participants, active_speaker=speaker,
            volume=round(session.volume, 3), layout=session.mode,
            pairing_open=self.pairing_open(), playback=self._playback_info() if in_room else None,
            error=rp.ErrorInfo(title=error.title, message=error.message) if error is not None else None,
            room_server=session.room_server if status != "idle" else None,
            servers=self.servers.list() if self.servers is not None else ())

    def _playback_info(self) -> rp.PlaybackInfo | None:
        content = self.session.content
        state, position = content.state, content.position()
        if state is None or position is None:
            return None
        if state.live:  # positions are event instants: the remote gets how far behind the live edge it is
            room = self.session.room
            now = room.clock.now() if room is not None else None
            behind = state.behind_at(now) if now is not None else state.delay
            return rp.PlaybackInfo(content=state.content, title=state.title, playing=state.playing,
                                   position=round(max(0.0, behind or 0.0), 3), waiting=bool(state.waiting_for),
                                   live=True, delay=round(state.delay, 3))
        return rp.PlaybackInfo(content=state.content, title=state.title, playing=state.playing,
                               position=round(position, 3), duration=state.duration, waiting=bool(state.waiting_for))

    def show_pairing(self, view: PairingView | None) -> None:
        """Redraw now that the pairing desk shows `view` (the session reads it from the desk, never keeps a copy)."""
        self.session.refresh()

    # -- commands -------------------------------------------------------------------------------------------------

    async def execute(self, command: rp.Command) -> None:
        """Carry out one command; raise CommandRefused when the TV cannot."""
        session = self.session
        if isinstance(command, rp.SetVolume):
            session.volume = float(command.volume)
        elif isinstance(command, rp.SetLayout):
            session.mode = Mode(command.layout)
        elif isinstance(command, rp.ShowInvite):
            session.invite_visible = bool(command.visible)
        elif isinstance(command, rp.CreateRoom):
            await self._create_room(command.name)
        elif isinstance(command, rp.JoinRoom):
            await self._join(command.invite)
        elif isinstance(command, rp.JoinServer):
            await self._join_server(command.target())
        elif isinstance(command, rp.LeaveRoom):
            if session.plan is not None or session.room is not None:
                await session.switch(None)
        elif isinstance(command, rp.RemoveParticipant):
            await self._host_call(command.identity, lambda api, name: api.remove_participant(name, command.identity))
        elif isinstance(command, rp.MuteParticipant):
            await self._mute(command.identity)
        elif isinstance(command, (rp.SetMic, rp.SetCamera)):
            await self._set_device("mic" if isinstance(command, rp.SetMic) else "camera", bool(command.enabled))
        elif isinstance(command, rp.Playback):
            await self._playback(command)
        else:
            raise CommandRefused("unknown_command", f"the TV does not take {command.TYPE} here")
        session.refresh()

    async def _set_device(self, which: Literal["camera", "mic"], enabled: bool) -> None:
        """Switch the TV's own camera or microphone; refuse when it has none or it does not open."""
        media = self.session.media
        present = media is not None and (media.has_camera if which == "camera" else media.has_mic)
        words = "camera" if which == "camera" else "microphone"
        if not present:
            if enabled:
                raise CommandRefused("not_available", f"This TV has no {words}.")
            return
        try:
            await self.session.set_device(which, enabled)
        except SourceError as exc:
            raise CommandRefused("device_failed", f"The TV's {words} did not start: {exc}") from None

    async def _playback(self, command: rp.Playback) -> None:
        """Drive the room's shared content through the TV's own connection (its grants decide)."""
        room = self.session.room
        if room is None:
            raise CommandRefused("not_in_room", "The TV is not in a room.")
        try:
            if command.action == "load":
                assert command.content is not None
                await room.load(command.content, title=command.title, position=command.position or 0.0)
            elif command.action == "play":
                await room.play()
            elif command.action == "pause":
                await room.pause()
            elif command.action == "seek":
                assert command.position is not None
                await room.seek(self._seek_target(command.position))
            elif command.action == "live":
                await room.back_to_live()
            else:
                await room.stop()
        except RequestError as exc:
            if exc.code == "not_allowed":
                raise CommandRefused("not_host", "Only the room's host controls what plays here.") from None
            raise CommandRefused(exc.code, exc.message) from None

    def _seek_target(self, position: float) -> float:
        """Return the room position for a remote's seek: itself for a file; for a live stream the remote says how
        many seconds behind the live edge, and the room wants that instant of the event."""
        state, room = self.session.content.state, self.session.room
        now = room.clock.now() if room is not None else None
        edge = state.live_edge_at(now) if state is not None and now is not None else None
        return position if edge is None else edge - position

    async def _create_room(self, name: str | None) -> None:
        session = self.session
        if self.server is None or self.api_key is None:
            raise CommandRefused("cannot_create", "This TV cannot create rooms: start it with --api-key, or without "
                                                  "--server so it runs its own.")
        if name is None and session.hosting and session.status()[0] == "in_room":
            return  # already hosting a room: that is the one
        room = name or self.default_room
        plan = session.plan
        if plan is not None and plan.room == room and session.status()[0] == "in_room":
            return
        await self._switch(JoinPlan(server=self.server, room=room, api_key=self.api_key,
                                    name=session.friendly_name))

    async def _join(self, invite: str) -> None:
        session = self.session
        if self.server is None:
            raise CommandRefused("no_server", "This TV has no server to join rooms on.")
        code = normalize_invite_code(invite)
        plan = session.plan
        if plan is not None and plan.invite is not None and normalize_invite_code(plan.invite) == code \
                and session.status()[0] == "in_room":
            return
        await self._switch(JoinPlan(server=self.server, invite=code, name=session.friendly_name))

    async def _join_server(self, target: InviteLink) -> None:
        """Redeem the invite on the core `target` names, then move the TV's room there (module docstring)."""
        session = self.session
        if self.server is not None and trust.origin(target.server) == trust.origin(self.server):
            return await self._join(target.code)
        known = self.servers.get(target.server) if self.servers is not None else None
        fingerprint = target.fingerprint or (known.fingerprint if known is not None else None)
        plan = session.plan
        if plan is not None and plan.server == target.server and plan.invite is not None \
                and normalize_invite_code(plan.invite) == target.code \
                and session.status()[0] == "in_room":
            return
        before = trust.pinned(target.server)
        if fingerprint is not None:
            trust.pin(target.server, fingerprint)
        identity = "tv-" + secrets.token_hex(4)
        try:
            api = RestClient(target.server, timeout=REDEEM_TIMEOUT)
            pair = await api.redeem_invite(target.code, identity, name=session.friendly_name)
        except (ApiError, OSError, ValueError) as exc:
            if before is not None:
                trust.pin(target.server, before)
            elif fingerprint is not None:
                trust.unpin(target.server)
            problem = (problem_for(exc.code, exc.message) if isinstance(exc, ApiError) and exc.status
                       else unreachable(target.server, exc))
            screen = problem.screen
            session.toast(f"Could not join on {server_label(target.server)}: {screen.title}")
            code = {"unreachable": "server_unreachable", "": "join_failed"}.get(problem.code, problem.code)
            raise CommandRefused(code, f"{screen.title}: {screen.message}") from None
        if self.servers is not None:
            self.servers.remember(target.server, fingerprint, session.clock())
        await self._switch(JoinPlan(server=target.server, token=pair.access_token, refresh_token=pair.refresh_token,
                                    invite=format_invite_code(target.code), identity=identity,
                                    name=session.friendly_name, fingerprint=fingerprint, keep_trying=False),
                           own_codes=True)

    async def _switch(self, plan: JoinPlan, own_codes: bool = False) -> None:
        try:
            await self.session.switch(plan)
        except JoinProblem as problem:
            screen = problem.screen
            code = "join_failed"
            if own_codes:
                code = {"unreachable": "server_unreachable", "": "join_failed"}.get(problem.code, problem.code)
            raise CommandRefused(code, f"{screen.title}: {screen.message}") from None

    async def _mute(self, identity: str) -> None:
        room = self.session.room
        if room is None:
            raise CommandRefused("not_in_room", "The TV is not in a room.")
        participant = next((p for p in room.participants.values() if p.identity == identity), None)
        if participant is None:
            raise CommandRefused("participant_not_found", f"{identity} is not in the room.")
        audio = [pub for pub in participant.tracks.values() if pub.kind == "audio"]
        if not audio:
            raise CommandRefused("no_audio", f"{identity} has no microphone track to mute.")
        for pub in audio:
            await self._host_call(identity, lambda api, name: api.mute_track(name, identity, pub.sid, True))

    async def _host_call(self, identity: str, call: Callable[[RestClient, str], Awaitable[object]]) -> None:
        room = self.session.room
        if room is None:
            raise CommandRefused("not_in_room", "The TV is not in a room.")
        try:
            await call(RestClient(room.url, bearer=room.access_token), room.name)
        except ApiError as exc:
            if exc.status == 0:
                raise CommandRefused("server_unreachable", "The TV cannot reach its server.") from None
            words = {"not_host": "Only the room's host can do that, and this TV joined as a guest.",
                     "participant_not_found": f"{identity} is not in the room."}
            raise CommandRefused(exc.code, words.get(exc.code, exc.message or exc.code)) from None
        except OSError:
            raise CommandRefused("server_unreachable", "The TV cannot reach its server.") from None

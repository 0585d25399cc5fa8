"""The people on the TV's screen: one tile's worth of state per remote participant, and the pumps that feed it.

`People` follows the SDK room's participants for the session (tvapp.tv.session): who is there in join order
(tvapp.core.stage.TileOrder, so tiles keep their places), whether their mic and camera are on, their network
quality level 0..5 as the SFU measures it (tvapp.core.quality, the `network_quality` message), and their media. It owns the pumps: one task per subscribed track, handing decoded
video to the participant's VideoSlot and decoded audio to the AudioOutput; dropping a participant cancels
theirs. A participant has one tile for their camera (keyed by their sid) and, while they share their screen (a
published, unmuted video track of source "screen"), a second tile right after it keyed `screen_key(sid)`, labelled
"NAME's screen" (tvapp.core.text.screen_label) and showing that track. Everything here runs on the TV's asyncio thread; `tile_views()` and `tile_info()` are read from there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc.mediastreams import MediaStreamError

from tvapp.core.stage import TileOrder, initials
from tvapp.core.text import displayable, screen_label
from tvapp.tv.scene import TileView
from tvapp.tv.video import VideoSlot

if TYPE_CHECKING:
    from tvapp.client.participants import RemoteParticipant, RemoteTrack
    from tvapp.tv.audio import AudioOutput

log = logging.getLogger(__name__)


@dataclass
class Person:
    """What the TV knows about one remote participant."""

    sid: str
    identity: str
    name: str
    video: VideoSlot | None = None
    video_sid: str | None = None
    audio_sid: str | None = None
    camera_off: bool = True
    mic_muted: bool = False
    quality: int | None = None          # network quality 0..5 (5 excellent .. 0 broken); None until measured
    reconnecting: bool = False
    paused: bool = False                # its video switched off by the SFU for this TV's downlink (congestion)
    sharing: bool = False               # a published, unmuted screen share: a tile of its own
    screen: VideoSlot | None = None     # the screen share's frames
    screen_sid: str | None = None
    screen_paused: bool = False
    pumps: dict[str, asyncio.Task[None]] = field(default_factory=dict)


@dataclass(frozen=True)
class TileInfo:
    """Who a tile shows and how (for the remote control's state, screenshot sidecars and traces)."""

    identity: str
    name: str
    speaking: bool
    mic_muted: bool
    camera_off: bool
    quality: int | None
    reconnecting: bool = False
    source: str = "camera"              # "screen": the tile of a shared screen

    def to_json(self) -> dict[str, Any]:
        """Return the tile's fields as the screenshot sidecar writes them."""
        return {"identity": self.identity, "name": self.name, "speaking": self.speaking,
                "mic_muted": self.mic_muted, "camera_off": self.camera_off, "quality": self.quality,
                "reconnecting": self.reconnecting, "source": self.source}


class People:
    """The remote participants on screen, by sid, in join order; the owner of their pumps."""

    def __init__(self, formats: tuple[str, str], audio: AudioOutput | None) -> None:
        self.formats = formats
        self.audio = audio
        self.order = TileOrder()
        self._by_sid: dict[str, Person] = {}

    def __contains__(self, sid: object) -> bool:
        return sid in self._by_sid

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_sid))

    def __len__(self) -> int:
        return len(self._by_sid)

    def get(self, sid: str) -> Person | None:
        """Return the person with participant sid `sid`, or None."""
        return self._by_sid.get(sid)

    def add(self, participant: RemoteParticipant) -> None:
        """Give `participant` a tile (after the ones who joined before them) and sync their mic and camera."""
        if participant.sid in self._by_sid:
            return
        self._by_sid[participant.sid] = Person(participant.sid, participant.identity, display_name(participant),
                                               reconnecting=participant.reconnecting,
                                               quality=participant.network_quality)
        self.order.add(participant.sid, participant.joined_at)  # by join time: tiles keep their places
        self.sync(participant)

    def drop(self, sid: str) -> None:
        """Take the participant `sid` off the screen: cancel their pumps, take their sound out of the mix."""
        person = self._by_sid.pop(sid, None)
        self.order.remove(sid)
        if person is None:
            return
        for task in person.pumps.values():
            task.cancel()
        if self.audio is not None:
            self.audio.remove(sid)

    def sync(self, participant: RemoteParticipant) -> None:
        """Update the mic/camera state of a participant from its publications."""
        person = self._by_sid.get(participant.sid)
        if person is None:
            return
        audio = [p for p in participant.tracks.values() if p.kind == "audio"]
        video = [p for p in participant.tracks.values() if p.kind == "video" and p.source != "screen"]
        screens = [p for p in participant.tracks.values() if p.kind == "video" and p.source == "screen"]
        person.mic_muted = bool(audio) and all(p.muted for p in audio)
        person.camera_off = not video or all(p.muted for p in video)
        person.sharing = any(not p.muted for p in screens)

    def set_reconnecting(self, sid: str, reconnecting: bool) -> None:
        """Mark the participant `sid` as reconnecting (its tile says so) or back."""
        person = self._by_sid.get(sid)
        if person is not None:
            person.reconnecting = reconnecting

    def set_paused(self, sid: str, paused: bool, track_sid: str | None = None) -> None:
        """Mark the participant `sid`'s video (track `track_sid`: camera or screen) as switched off by the SFU."""
        person = self._by_sid.get(sid)
        if person is None:
            return
        if track_sid is not None and track_sid == person.screen_sid:
            person.screen_paused = paused
        else:
            person.paused = paused

    def set_quality(self, sid: str, level: int | None) -> None:
        """Show the participant `sid`'s network quality level (0..5) on their tile's badge."""
        person = self._by_sid.get(sid)
        if person is not None:
            person.quality = level

    def subscribed(self, track: RemoteTrack) -> None:
        """Start pumping a newly subscribed track: video into the person's slot, audio into the output."""
        person = self._by_sid.get(track.participant.sid)
        if person is None or track.sid in person.pumps:
            return
        if track.kind == "video" and track.publication.source == "screen":
            if person.screen_sid is not None and person.screen_sid in person.pumps:
                return  # one shared screen per participant
            slot = VideoSlot(self.formats)
            person.screen, person.screen_sid = slot, track.sid
            person.pumps[track.sid] = asyncio.create_task(_pump_video(track, slot))
        elif track.kind == "video":
            if person.video_sid is not None and person.video_sid in person.pumps:
                return  # one video per tile: the first (the camera)
            slot = VideoSlot(self.formats)
            person.video, person.video_sid = slot, track.sid
            person.pumps[track.sid] = asyncio.create_task(_pump_video(track, slot))
        elif track.kind == "audio" and self.audio is not None:
            person.audio_sid = track.sid
            person.pumps[track.sid] = asyncio.create_task(_pump_audio(track, person.sid, self.audio))
        self.sync(track.participant)

    def unsubscribed(self, track: RemoteTrack) -> None:
        """Stop pumping a track that is no longer subscribed."""
        person = self._by_sid.get(track.participant.sid)
        if person is None:
            return
        task = person.pumps.pop(track.sid, None)
        if task is not None:
            task.cancel()
        if person.video_sid == track.sid:
            person.video, person.video_sid = None, None
        if person.screen_sid == track.sid:
            person.screen, person.screen_sid, person.screen_paused = None, None, False
        if person.audio_sid == track.sid:
            person.audio_sid = None
            if self.audio is not None:
                self.audio.remove(person.sid)

    def tile_views(self, speaking: str | None) -> tuple[TileView, ...]:
        """Return the tiles in join order, the one of sid `speaking` highlighted."""
        tiles = []
        for sid in self.order.order():
            person = self._by_sid.get(sid)
            if person is None:
                continue
            video = None if person.camera_off else person.video
            tiles.append(TileView(sid=sid, name=person.name, initials=initials(person.name), video=video,
                                  mic_muted=person.mic_muted, camera_off=person.camera_off, quality=person.quality,
                                  speaking=sid == speaking, reconnecting=person.reconnecting,
                                  paused=person.paused and not person.camera_off))
            if person.sharing:
                tiles.append(TileView(sid=screen_key(sid), name=screen_label(person.name),
                                      initials=initials(person.name), video=person.screen, quality=person.quality,
                                      reconnecting=person.reconnecting, paused=person.screen_paused, screen=True))
        return tuple(tiles)

    def tile_info(self, speaking: str | None) -> dict[str, TileInfo]:
        """Return who each tile shows and how, by sid, the one of sid `speaking` marked as speaking."""
        info: dict[str, TileInfo] = {}
        for sid, p in list(self._by_sid.items()):
            info[sid] = TileInfo(identity=p.identity, name=p.name, speaking=sid == speaking, mic_muted=p.mic_muted,
                                 camera_off=p.camera_off, quality=p.quality, reconnecting=p.reconnecting)
            if p.sharing:
                info[screen_key(sid)] = TileInfo(identity=p.identity, name=screen_label(p.name), speaking=False,
                                                 mic_muted=False, camera_off=False, quality=p.quality,
                                                 reconnecting=p.reconnecting, source="screen")
        return info

    def owner(self, key: str) -> Person | None:
        """Return the person a tile key (a participant sid, or `screen_key(sid)`) belongs to, or None."""
        return self._by_sid.get(key.removesuffix(SCREEN_SUFFIX))


SCREEN_SUFFIX = "/screen"


def screen_key(sid: str) -> str:
    """Return the key of participant `sid`'s screen-share tile (their camera tile is keyed by `sid` itself)."""
    return sid + SCREEN_SUFFIX


def display_name(participant: RemoteParticipant) -> str:
    """Return the name a participant's tile shows: their display name, else their identity."""
    return displayable(participant.name) or participant.identity


async def _pump_video(track: RemoteTrack, slot: VideoSlot) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            slot.push(frame)  # type: ignore[arg-type]


async def _pump_audio(track: RemoteTrack, sid: str, audio: AudioOutput) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            try:
                audio.push(sid, frame)  # type: ignore[arg-type]
            except Exception:  # one participant's odd audio must not stop the others'
                log.exception("tv: cannot play audio of %s", sid)
                return

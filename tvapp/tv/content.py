"""The room's shared content on the TV: the synced player, its picture in the scene, its sound in the mixer.

`TvContent` is the TV's one view of the room's content timeline: `state` reads the SDK room's `playback` (the
room keeps the timeline the server sends; nothing on the TV keeps a copy), `position()` places it on the room's
clock, and `newly_loaded()` says when to announce new content. The session, the remote control and the traces all
read the timeline here.

It lives as long as the TV is in a room. It owns one `tvapp.client.player.ContentPlayer` attached to the
room (so it follows the room's timeline and reports stalls), a `VideoSlot` for the content's picture, and the
content's place in the audio mix: the audio callback pulls the player's samples for the instant they will be
heard, at `content_volume`, lowered by `[watch] duck_db` while someone in the call speaks (a
`tvapp.core.mixer.Ducker` ramps it so speech comes through without the film dropping out abruptly).

Threads: `attach`/`detach`/`speaking` run on the asyncio thread; `present()` on the frame loop, just before each
draw, picks the frame for the instant the flip will show it; `_pull` on SDL's audio thread. The player is
thread-safe; everything handed between threads here is one reference or a float.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from tvapp.client.player import ContentPlayer, attach, media_opener
from tvapp.core.mixer import Ducker
from tvapp.tv.scene import ContentView
from tvapp.tv.video import VideoSlot

if TYPE_CHECKING:
    from tvapp.client.room import Room
    from tvapp.core.playback import PlaybackState
    from tvapp.tv.audio import AudioOutput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Presented:
    """What one flip showed of the content: for traces and benchmarks."""

    server_time: float      # the room clock instant the frame was chosen for (this TV's estimate)
    pts: float | None       # the content position of the frame shown (None: none yet)
    target: float           # the timeline position at server_time


class TvContent:
    """The shared content of the TV's current room."""

    def __init__(self, formats: tuple[str, str], audio: AudioOutput | None, *, volume: float = 1.0,
                 duck_db: float = -12.0, video_size: tuple[int, int] | None = None, content_proxy: str = "") -> None:
        self.formats = formats
        self.audio = audio
        self.volume = volume
        self.ducker = Ducker(duck_db=duck_db)
        self.video_size = video_size
        self.content_proxy = content_proxy
        self.slot = VideoSlot(formats)
        self.player: ContentPlayer | None = None
        self.room: Room | None = None
        self._detach: Callable[[], None] | None = None
        self._shown_pts: float | None = None
        self._shown_frame: Any = None
        self._speaking = False
        self._last_pull: float | None = None
        self._announced = ""  # the content "Now playing" was last shown for

    # -- asyncio thread ----------------------------------------------------------------------------------------

    def attach(self, room: Room) -> None:
        """Start following `room`'s content."""
        self.detach()
        self.room = room
        self.slot = VideoSlot(self.formats)
        self._shown_pts, self._shown_frame = None, None
        self.player = ContentPlayer(server_now=room.clock.now, audio=self.audio is not None,
                                    open_media=media_opener(room.url),
                                    audio_rate=48000, audio_channels=2, video_size=self.video_size,
                                    content_proxy=self.content_proxy)
        self._detach = attach(room, self.player)
        if self.audio is not None:
            self.audio.content = self._pull

    def detach(self) -> None:
        """Stop: close the player, take its sound out of the mix."""
        if self.audio is not None:
            self.audio.content = None
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self.player is not None:
            self.player.close()
            self.player = None
        self.room = None

    def speaking(self, anyone: bool) -> None:
        """Tell whether someone in the call is speaking now (the content ducks under them)."""
        self._speaking = anyone

    @property
    def state(self) -> PlaybackState | None:
        """Return the room's timeline, or None when not in a room or before the first state."""
        return self.room.playback if self.room is not None else None

    def position(self) -> float | None:
        """Return where the content is now on the room's clock (its last known position before the clock is synced);
        None when nothing is loaded."""
        state, room = self.state, self.room
        if state is None or not state.content or room is None:
            return None
        now = room.clock.now()
        return state.position_at(now) if now is not None else state.position

    def newly_loaded(self) -> str | None:
        """Return the title to announce when the room's content changed to a new one since the last call, else None."""
        state = self.state
        content = state.content if state is not None else ""
        seen, self._announced = self._announced, content
        if state is None or not content or content == seen:
            return None
        return display_title(state)

    def _server_now(self) -> float | None:
        room = self.room
        return room.clock.now() if room is not None else None

    def view(self) -> ContentView | None:
        """Return what the scene shows of the content (None when nothing is loaded)."""
        state = self.state
        if state is None or not state.content:
            return None
        status = ""
        player_status = self.player.status() if self.player is not None else None
        if player_status is not None and player_status.media_error:
            status = f"Cannot play: {player_status.media_error}"
        elif state.waiting_for:
            status = "Waiting for " + ", ".join(state.waiting_for) + "…"
        elif player_status is not None and player_status.stalled:
            status = "Buffering…"
        elif not state.playing:
            status = "Paused"
        badge = live_label(state, self._server_now()) if state.live else ""
        return ContentView(video=self.slot, title=display_title(state), status=status, badge=badge)

    # -- frame loop ---------------------------------------------------------------------------------------------

    def present(self, lead: float) -> Presented | None:
        """Put the frame for the flip `lead` seconds from now into the slot; return what it is (None: no content)."""
        player, room = self.player, self.room
        state = self.state
        if player is None or room is None or state is None or not state.content:
            return None
        now = room.clock.now()
        if now is None:
            return None
        at = now + lead
        picked = player.video_frame(at)
        if picked is not None:
            frame, pts = picked
            if frame is not self._shown_frame:
                self._shown_frame, self._shown_pts = frame, pts
                self.slot.push(frame)
        return Presented(server_time=at, pts=self._shown_pts, target=state.position_at(at))

    # -- audio thread -------------------------------------------------------------------------------------------

    def _pull(self, frames: int, heard_at: float) -> NDArray[np.float32] | None:
        player, room = self.player, self.room
        if player is None or room is None:
            return None
        now_server = room.clock.now()
        if now_server is None:
            return None
        block = player.audio_pull(frames, now_server + (heard_at - time.time()))
        wall = time.monotonic()
        elapsed = 0.0 if self._last_pull is None else (wall - self._last_pull) * 1000
        self._last_pull = wall
        if self.audio is not None:
            self.audio.content_gain = self.volume * self.ducker.gain(self._speaking, elapsed)
        return block


def live_label(state: PlaybackState, server_now: float | None) -> str:
    """Return what the TV says of a live stream: "LIVE" and the room's delay, how far it is time-shifted, and
    whether its timing comes from segment numbers (no program date-time)."""
    label = f"LIVE · {state.delay:.0f} s delay"
    behind = state.behind_at(server_now) if server_now is not None else None
    if behind is not None and behind > state.delay + 1.0:
        label += f" · {behind - state.delay:.0f} s behind live"
    if not state.program_date_time:
        label += " · timed by segment numbers"
    return label


def display_title(state: PlaybackState) -> str:
    """Return the content's title, or the last part of its URL or path when the host gave none."""
    tail = state.content.rstrip("/").rsplit("/", 1)[-1]
    return state.title or tail.split("?", 1)[0] or state.content

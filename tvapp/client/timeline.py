"""What a participant can do to the room's shared content timeline: load, play, pause, seek, back to live, stop,
configure, and report a screen's buffering. Each is one message on the room's request channel
(tvapp.client.requests); the server's rules are tvapp.core.playback's, the state it broadcasts arrives as
``Room.playback`` and PlaybackChanged events. `Room` (tvapp.client.room) inherits these commands.
"""

from __future__ import annotations

from tvapp.client.requests import RequestChannel
from tvapp.protocol import messages as m

__all__ = ["TimelineCommands"]


class TimelineCommands:
    """The shared-content commands of a joined room (mixed into tvapp.client.room.Room, which sets `_requests`)."""

    _requests: RequestChannel

    async def load(self, content: str, *, title: str = "", position: float = 0.0, play: bool = True) -> None:
        """Load `content` (a media URL or an absolute file path every screen can open) for the whole room."""
        await self._requests.request(m.Playback(action="load", content=content, title=title, position=position,
                                                play=play))

    async def play(self) -> None:
        """Play the room's content from where it is (every screen starts at the same instant)."""
        await self._requests.request(m.Playback(action="play"))

    async def pause(self) -> None:
        """Pause the room's content."""
        await self._requests.request(m.Playback(action="pause"))

    async def seek(self, position: float) -> None:
        """Move the room's content to `position` seconds, playing or paused as it was."""
        await self._requests.request(m.Playback(action="seek", position=position))

    async def back_to_live(self) -> None:
        """Live stream: play from the room's live point again (its delay behind the live edge)."""
        await self._requests.request(m.Playback(action="live"))

    async def stop(self) -> None:
        """Unload the room's content."""
        await self._requests.request(m.Playback(action="stop"))

    async def configure_playback(self, *, control: str | None = None, on_stall: str | None = None) -> None:
        """Host only: who may command the content ("host" or "everyone"), what a stall does ("pause"/"continue")."""
        await self._requests.request(m.Playback(action="configure", control=control, on_stall=on_stall))

    async def report_buffering(self, stalled: bool, position: float | None = None,
                               duration: float | None = None, hold: float | None = None) -> None:
        """Tell the room this screen stalled (or is ready again), the content's duration once known, and (live) how
        far behind the live edge this screen can hold."""
        await self._requests.send(m.Buffering(stalled=stalled, position=position, duration=duration, hold=hold))

"""The TV's adaptive stream: it tells the server how big each participant's video is on screen.

The frame loop hands over, whenever they change, the sizes of the tiles it just drew (participant sid -> tile
width and height in screen pixels: the grid's cells, the speaker view's big tile and its row, the watch layout's
sidebar, picture-in-picture tiles; a shared screen's tile is keyed tvapp.tv.people.screen_key(sid)). For every
subscribed video track (the camera in its participant's tile, a shared screen in its own tile), the TV sends
`track_settings` with that size, or ``visible: false`` when the participant has no tile on screen (beyond the
sidebar's or picture-in-picture's room, or no room screen at all), so the SFU stops forwarding it and its publisher
sends no more than the largest tile any screen shows (tvapp.core.adaptive). Only changes are sent; a track
subscribed later is told at the next refresh. The settings are only sent, never awaited as calls: the room's calls
are one at a time, and a mute from the remote control must not queue behind them.
"""

from __future__ import annotations

import asyncio
import logging

from tvapp.client import Room
from tvapp.tv.people import People, screen_key

log = logging.getLogger(__name__)

Told = tuple[int, int, bool]


class TileSizeReporter:
    """What the TV last told the server about each subscribed video track, and the sends in flight (it owns them)."""

    def __init__(self) -> None:
        self.shown: dict[str, tuple[int, int]] = {}  # participant sid -> tile size on screen
        self.told: dict[str, Told] = {}  # video track sid -> (width, height, visible) last sent
        self._tasks: set[asyncio.Task[None]] = set()

    def tiles_shown(self, shown: dict[str, tuple[int, int]], room: Room | None, people: People) -> None:
        """Take the tile sizes the frame loop drew (tile key -> size) and tell the server what changed."""
        self.shown = dict(shown)
        self.tell(room, people)

    def tell(self, room: Room | None, people: People) -> None:
        """Send track_settings for every subscribed video track whose tile changed since last told."""
        if room is None:
            self.told.clear()
            return
        wanted: dict[str, Told] = {}
        for sid in people:
            person = people.get(sid)
            if person is None:
                continue
            for track_sid, key in ((person.video_sid, sid), (person.screen_sid, screen_key(sid))):
                if track_sid is not None:
                    size = self.shown.get(key)
                    wanted[track_sid] = (size[0], size[1], True) if size else (0, 0, False)
        for track_sid, settings in wanted.items():
            if self.told.get(track_sid) != settings:
                self.told[track_sid] = settings
                task = asyncio.get_running_loop().create_task(self._send(room, track_sid, settings))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self.told = {sid: told for sid, told in self.told.items() if sid in wanted}

    async def _send(self, room: Room, track_sid: str, settings: Told) -> None:
        width, height, visible = settings
        try:
            await room.set_track_settings(track_sid, width=width, height=height, visible=visible, wait=False)
        except (ConnectionError, OSError) as exc:  # the room went away meanwhile
            log.debug("tv: track settings for %s not taken: %s", track_sid, exc)

    def close(self) -> None:
        """Cancel the sends in flight (the room is gone)."""
        for task in list(self._tasks):
            task.cancel()
        self.told.clear()

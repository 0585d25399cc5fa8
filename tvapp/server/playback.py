"""The core's side of watching together: one shared content timeline per live room, kept and broadcast.

Each live room gets a `tvapp.core.playback.PlaybackRoom` the first time anyone touches its content. Commands come
from participants over signaling (`playback`, `buffering`) and from API-key or host-token holders over REST; every
change is broadcast as a `playback_state` message (encoded once), and each joiner gets the current state right
after `joined`, so a screen joining mid-film starts at the room's position. A stall that outlives
`[watch] stall_timeout` is given up by a timer, so one broken screen never holds the room for ever.

Loading an http(s) URL ending in .m3u8 reads the playlist first (in a thread, `[watch] content_proxy`): a live
stream (no EXT-X-ENDLIST) is loaded live (tvapp.core.live.LiveInfo: its live edge, window, program date-time or
not); a complete one (ENDLIST) plays as a file; anything that is not HLS, or cannot be fetched, is refused with
``invalid_value`` saying why (the room's state is unchanged). A playlist is read within `READ_DEADLINE` seconds in all
(a far end dripping bytes is cut off), on the watch's own `MAX_READS` threads (never the loop's default executor, which
recordings and webhooks use); a room already reading one, or a core reading `MAX_READS`, refuses another load of
a playlist with ``too_many_requests``.

The rules themselves (who may, what a command does to the timeline) are pure, in tvapp.core.playback; this
module only reads the clock, holds the state and sends it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tvapp.core.live import LiveError, LiveInfo, looks_like_hls
from tvapp.core.playback import (
    CONTROLS,
    MAX_LIVE_DELAY,
    ON_STALL,
    PlaybackError,
    PlaybackRoom,
    PlaybackState,
)
from tvapp.protocol.messages import Buffering, Encoded, Playback, PlaybackStateMsg
from tvapp.web.hls import HlsFetchError, read_playlist, shown

if TYPE_CHECKING:
    from tvapp.config import WatchConfig
    from tvapp.server.live import LiveParticipant, LiveRoom

log = logging.getLogger(__name__)

READ_DEADLINE = 6.0
"""Seconds a load has to read an HLS playlist (and the variant a master playlist names), all fetches included."""
MAX_READS = 4
"""Playlists the core reads at once (one per room)."""


def check_watch_config(cfg: WatchConfig) -> None:
    """Raise ValueError naming the key when the [watch] settings the core uses cannot work."""
    if cfg.control not in CONTROLS:
        raise ValueError(f"[watch] control must be one of {', '.join(CONTROLS)}, got {cfg.control!r}")
    if cfg.on_stall not in ON_STALL:
        raise ValueError(f"[watch] on_stall must be one of {', '.join(ON_STALL)}, got {cfg.on_stall!r}")
    if not 0.0 <= cfg.lead <= 5.0:
        raise ValueError(f"[watch] lead must be between 0 and 5 seconds, got {cfg.lead}")
    if not 0.0 < cfg.live_delay <= MAX_LIVE_DELAY:
        raise ValueError(f"[watch] live_delay must be in (0, {MAX_LIVE_DELAY:g}] seconds, got {cfg.live_delay}")
    if not cfg.stall_timeout > 0:
        raise ValueError(f"[watch] stall_timeout must be positive, got {cfg.stall_timeout}")


class Watch:
    """Every live room's timeline; call from the server's event loop only."""

    def __init__(self, cfg: WatchConfig) -> None:
        check_watch_config(cfg)
        self.cfg = cfg
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._reading: set[int] = set()  # id() of the rooms whose playlist is being read
        self._pool: ThreadPoolExecutor | None = None

    def timeline(self, live: LiveRoom) -> PlaybackRoom:
        """Return `live`'s timeline (kept on the LiveRoom, so it ends with it), made on first use."""
        if live.playback is None:
            live.playback = PlaybackRoom(control=self.cfg.control, on_stall=self.cfg.on_stall,  # type: ignore[arg-type]
                                         lead=self.cfg.lead, stall_timeout=self.cfg.stall_timeout,
                                         live_delay=self.cfg.live_delay)
        return live.playback

    def state(self, live: LiveRoom) -> PlaybackState:
        """Return `live`'s current state (nothing loaded for a room nobody has touched)."""
        room = live.playback
        return room.state if room is not None else PlaybackState(control=self.cfg.control,  # type: ignore[arg-type]
                                                                  on_stall=self.cfg.on_stall)  # type: ignore[arg-type]

    def message(self, live: LiveRoom) -> PlaybackStateMsg:
        """Return the state as the wire message, stamped with the server clock now."""
        return PlaybackStateMsg.of(self.state(live), time.time())

    # -- inputs ----------------------------------------------------------------------------------------------

    def joined(self, live: LiveRoom, participant: LiveParticipant) -> None:
        """Send the joiner the room's current timeline, once anything has happened to it (a joiner of an untouched
        room knows the state already: nothing loaded, the configured settings)."""
        if live.playback is not None and live.playback.state.seq > 0:
            participant.peer.send(self.message(live))

    async def command(self, live: LiveRoom, msg: Playback, *, is_host: bool) -> PlaybackState:
        """Apply a command (raise PlaybackError when refused) and broadcast the new state if it changed."""
        room = self.timeline(live)
        stream: LiveInfo | None = None
        if msg.action == "load" and isinstance(msg.content, str) and looks_like_hls(msg.content):
            if not is_host and room.state.control == "host":
                raise PlaybackError("not_allowed", "only the host controls playback in this room")
            stream = await self._read(live, msg.content)
        before = room.state
        after = room.command(msg.action, time.time(), is_host=is_host, content=msg.content, title=msg.title,
                             position=msg.position, play=msg.play, control=msg.control, on_stall=msg.on_stall,
                             live=stream)
        if after is not before:
            self._changed(live, after)
        return after

    async def _read(self, live: LiveRoom, url: str) -> LiveInfo | None:
        """Read `url`'s playlist on the watch's threads, one at a time per room; raise PlaybackError."""
        key = id(live)
        if key in self._reading:
            raise PlaybackError("too_many_requests", "a playlist is being read for this room already: try again when "
                                                     "that load is answered")
        if len(self._reading) >= MAX_READS:
            raise PlaybackError("too_many_requests", "the server is reading too many playlists: try again shortly")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=MAX_READS, thread_name_prefix="watch-read")
        self._reading.add(key)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._read_live, url)
        finally:
            self._reading.discard(key)

    def _read_live(self, url: str) -> LiveInfo | None:
        """Return what an HLS playlist says of its live stream (None: complete, play it as a file); raise
        PlaybackError("invalid_value") when it is not HLS or cannot be read (thread)."""
        try:
            _, playlist = read_playlist(url, proxy=self.cfg.content_proxy, deadline=READ_DEADLINE,
                                        allow_private=self.cfg.allow_private)
        except HlsFetchError as exc:
            raise PlaybackError("invalid_value", f"cannot read the playlist: {exc}") from None
        except LiveError as exc:
            raise PlaybackError("invalid_value", f"{shown(url)} is {exc.message}") from None
        if playlist.ended:
            return None
        try:
            return LiveInfo.of(playlist, time.time())
        except LiveError as exc:
            raise PlaybackError("invalid_value", exc.message) from None

    def buffering(self, live: LiveRoom, participant: LiveParticipant, msg: Buffering) -> None:
        """Note a screen's stall or recovery."""
        room = self.timeline(live)
        if msg.hold is not None:
            log.info("watch: %s holds %.2f s behind the live edge", participant.identity, msg.hold)
        after = room.buffering(participant.identity, msg.stalled, time.time(), msg.position, msg.duration,
                               hold=msg.hold)
        if after is not None:
            self._changed(live, after)
        elif room.state.live:  # a stall noted without waiting yet (a live start's grace): its timer has to run
            self._arm(live)

    def left(self, live: LiveRoom, participant: LiveParticipant) -> None:
        """Stop waiting for a screen that left."""
        room = live.playback
        if room is None:
            return
        after = room.left(participant.identity, time.time())
        if after is not None:
            self._changed(live, after)

    # -- outputs ---------------------------------------------------------------------------------------------

    def _changed(self, live: LiveRoom, state: PlaybackState) -> None:
        encoded = Encoded.of(PlaybackStateMsg.of(state, time.time()))
        for participant in list(live.participants.values()):
            participant.peer.send(encoded)
        self._arm(live)

    def _arm(self, live: LiveRoom) -> None:
        """(Re)schedule the stall timeout of `live`'s timeline."""
        key = id(live)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        room = live.playback
        deadline = room.next_deadline() if room is not None else None
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(0.0, deadline - time.time()) + 0.01, self._expire, live)

    def _expire(self, live: LiveRoom) -> None:
        self._timers.pop(id(live), None)
        room = live.playback
        if room is None or not live.participants:
            return
        try:
            after = room.tick(time.time())
        except Exception:
            log.exception("watch: the stall timer failed")
            return
        if after is not None:
            self._changed(live, after)
        else:
            self._arm(live)

    def close(self) -> None:
        """Cancel the timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["MAX_READS", "READ_DEADLINE", "PlaybackError", "Watch", "check_watch_config"]

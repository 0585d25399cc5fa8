"""The TV's latency trace (`--trace FILE`): JSON lines written by the frame loop (tvapp.tv.app) after each flip.

Events: "join" (when joining started), "flip" (each newly presented video frame with the stamp it carries,
tvapp.client.stamp, and the flip's wall time), "frames" (the frame loop's pacing once a second), "audio" (when
audio was handed to the sound card), "layout" (the flip that first showed a new screen or layout), "content"
(the shared content's frame at each flip against the room's timeline), "clock" (the server clock estimate's
error) and "decode" (what decoding has cost so far, tvapp.client.decodecost). Benchmarks compute glass-to-glass
and join-to-first-frame latency from it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

from tvapp.client import decodecost
from tvapp.tv.content import Presented
from tvapp.tv.scene import RoomScreen, Scene
from tvapp.tv.session import TvSession


class FlipTrace:
    """JSON lines for latency benchmarks: when joining started, each presented video frame's stamp with its
    flip time, the frame loop's pacing once a second, when audio was handed to the sound card, and the flip
    that first showed each new screen or layout."""

    def __init__(self, path: Path, session: TvSession) -> None:
        self._out: IO[str] = open(path, "a", buffering=1)
        self._session = session
        self._audio_latency: list[float] = []
        self._last: dict[str, int] = {}
        self._join_written = False
        self._layout: tuple[str, str | None] | None = None
        self._second_start: float | None = None
        self._frames = 0
        self._last_flip: float | None = None
        self._longest = 0.0
        self._draw_ms: list[float] = []
        self._lock = threading.Lock()
        self._audio_next = 0.0
        self._clock_next = 0.0

    def audio_pulled(self, frames_total: int, wall: float) -> None:
        """Note (at most every 50 ms) that `frames_total` samples per channel had been handed to SDL at `wall`."""
        if wall < self._audio_next:
            return
        self._audio_next = wall + 0.05
        with self._lock:
            self._out.write(json.dumps({"event": "audio", "t": wall, "frames": frames_total}) + "\n")

    def after_flip(self, scene: Scene, flip_time: float, draw_ms: float, content: Presented | None = None) -> None:
        """Record the frames that became visible with the flip at wall time `flip_time`."""
        from tvapp.client.stamp import read_stamp

        self._pacing(flip_time, draw_ms)
        room = self._session.room
        if room is not None and flip_time >= self._clock_next:
            self._clock_next = flip_time + 1.0
            # What decoding has cost so far (tvapp.client.decodecost), cumulative: benchmarks diff two records.
            self._write({"event": "decode", "t": time.time(), "totals": decodecost.totals(),
                         "tracks": {sid: cost.as_json() for sid, cost in room.decode_costs().items()}})
            estimate = room.clock.estimate
            now = time.time()
            server = room.clock.now()
            if estimate is not None and server is not None:
                # On one machine the server's clock is this one: the estimate's error is measurable.
                self._write({"event": "clock", "t": now, "server": server, "error_ms": (server - now) * 1000,
                             "rtt_ms": estimate.delay * 1000, "skew_ppm": estimate.skew * 1e6,
                             "samples": estimate.samples})
        if content is not None:
            # "truth": the timeline at the flip by the machine's own clock, which is the server's on one machine
            # (a test's injected clock fault shifts only this TV's estimate, "server").
            state = self._session.content.state
            self._write({"event": "content", "t": flip_time, "server": content.server_time, "pts": content.pts,
                         "target": content.target,
                         "truth": state.position_at(flip_time) if state is not None else None,
                         "seq": state.seq if state is not None else None})
        if not self._join_written and self._session.joined_at is not None:
            self._join_written = True
            self._write({"event": "join", "t": self._session.joined_at})
        shown_layout = (type(scene.screen).__name__, getattr(scene.screen, "mode", None))
        if shown_layout != self._layout:  # remote-control benchmarks: when a change reached the glass
            self._layout = shown_layout
            self._write({"event": "layout", "t": flip_time, "screen": shown_layout[0], "mode": shown_layout[1]})
        if not isinstance(scene.screen, RoomScreen):
            return
        for tile in scene.screen.tiles:
            shown = getattr(tile.video, "shown", None)
            if shown is None or self._last.get(tile.sid) == id(shown):
                continue
            self._last[tile.sid] = id(shown)
            band = _stamp_band(shown)
            stamp = read_stamp(band) if band is not None else None
            person = self._session.people.owner(tile.sid)
            self._write({"event": "flip", "t": flip_time, "sid": tile.sid,
                         "identity": person.identity if person else None,
                         "source": "screen" if tile.screen else "camera",
                         "width": getattr(shown, "width", None), "height": getattr(shown, "height", None),
                         "counter": stamp[0] if stamp else None, "capture_ms": stamp[1] if stamp else None})

    def _pacing(self, flip_time: float, draw_ms: float) -> None:
        if self._last_flip is not None:
            self._longest = max(self._longest, flip_time - self._last_flip)
        self._last_flip = flip_time
        self._frames += 1
        self._draw_ms.append(draw_ms)
        audio = self._session.audio
        if audio is not None and self._frames % 10 == 0:
            self._audio_latency.append(audio.added_latency_ms())
        if self._second_start is None:
            self._second_start = flip_time
        elif flip_time - self._second_start >= 1.0:
            draws = sorted(self._draw_ms)
            self._write({"event": "frames", "t": flip_time, "fps": self._frames / (flip_time - self._second_start),
                         "longest_interval_ms": round(self._longest * 1000, 2),
                         "draw_p50_ms": round(draws[len(draws) // 2], 3),
                         "draw_p95_ms": round(draws[int(len(draws) * 0.95)], 3),
                         "audio_added_latency_ms": [round(v, 1) for v in self._audio_latency]})
            self._second_start, self._frames, self._longest, self._draw_ms = flip_time, 0, 0.0, []
            self._audio_latency = []

    def _write(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(obj) + "\n")

    def close(self) -> None:
        """Close the trace file."""
        with self._lock:
            self._out.close()


def _stamp_band(frame: Any) -> Any:
    """Return the rows of a decoded yuv420p frame's luma plane that carry its stamp (a view: nothing copied);
    None for a frame too narrow to carry one (adaptive stream sends small tiles small)."""
    import numpy as np

    from tvapp.client.stamp import MIN_WIDTH, stamp_height

    if frame.width < MIN_WIDTH:
        return None

    plane = frame.planes[0]
    rows = min(frame.height, stamp_height(frame.width))
    return np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[:rows, :frame.width]

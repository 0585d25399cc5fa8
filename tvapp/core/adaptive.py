"""Adaptive stream and publisher constraints (dynacast without simulcast): the one rule, pure.

Every subscriber tells the SFU, per subscribed video track, the size it renders it at and whether it is visible
(`track_settings`). From all of them the SFU works out what the publisher needs to send (`publish_constraints`):

- Paused: no subscriber shows the track (every one said ``visible: false``, or nobody subscribes) and nothing else
  needs it (a recorder: ``keep_running``). A subscriber that said nothing yet counts as visible at full size.
- Size: the largest width and the largest height any visible subscriber renders it at, each rounded *down* to a
  multiple of `SIZE_STEP` (2: encoders want even sizes; coarser steps would cost 16:9 tiles a whole scale step, as
  360 is no multiple of 16). The box is a limit, never a target: the publisher fits its picture into it keeping
  its shape, by the smallest of its `SCALE_STEPS` that fits (`scale_for`), so a 1280x720 camera in a 400x225 tile
  is sent at 320x180, never larger than the tile, and small resizes do not change what it sends. Unknown size (0 x 0 or no settings),
  or a `keep_running` consumer: no size limit.
- Frame rate: `FULL_FRAMERATE` if any visible subscriber shows it larger than a thumbnail (`THUMBNAIL_PIXELS`) or
  with ``priority: high``; otherwise `THUMBNAIL_FRAMERATE`. ``priority: low`` never raises it.
- Bitrate: what that size and frame rate need (`need_bps`: `BITS_PER_PIXEL` per pixel per frame, at least
  `MIN_BITRATE`, at most the server's ``max_video_bitrate``), capped by the bitrate the subscribers' links fit: the
  *largest* any subscriber that receives the track can carry for it. A subscriber's share of its downlink estimate
  for one track (`link_share`): `LINK_HEADROOM` of the estimate (audio, packet overhead, keyframe bursts take the
  rest), split over the video tracks it receives in proportion to what each needs at the size it shows it, so a
  speaker's big tile gets more than a thumbnail. Left out: a subscriber the track is withheld from (switched off by
  congestion control, `Viewer.withheld`) or that is congested (`Viewer.congested`: some of its tracks are switched
  off), so one weak link never drags the others down (congestion control handles the weak one). Only when nobody
  else receives it do those count (the best of them), so the publisher comes down to fit them and switching the
  track back on can succeed. No cap while any subscriber that counts has an unknown link (`link_bps` None: the SFU
  passes only estimates that met loss; a loss-free one is a lower bound, and capping at it would pin the publisher
  to what it sends now).

`ConstraintsGate` keeps a resize storm from becoming a message storm: a change of the bitrate alone by less than
`BITRATE_HYSTERESIS` (15 %) of the bitrate sent is no change (link estimates move every tick); a change that asks for more (unpausing,
a larger size, frame rate or bitrate) goes out at once, but at most one message per `MIN_INTERVAL_MS`; a change
that asks for less goes out only once it has held for `DOWN_HOLD_MS` (each newer wish restarts the wait, but not
one that differs by a small bitrate change: estimates move every tick), so a
shrinking window sends one message when it settles. A publisher starts unconstrained, so a track nobody watches is
paused `DOWN_HOLD_MS` after it is published. Time is an argument (milliseconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

SIZE_STEP: Final = 2
SCALE_STEPS: Final[tuple[float, ...]] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
FULL_FRAMERATE: Final = 30
THUMBNAIL_FRAMERATE: Final = 15
THUMBNAIL_PIXELS: Final = 320 * 180
BITS_PER_PIXEL: Final = 0.08
MIN_BITRATE: Final = 100_000
MIN_INTERVAL_MS: Final = 250.0
DOWN_HOLD_MS: Final = 1000.0
LINK_HEADROOM: Final = 0.85
BITRATE_HYSTERESIS: Final = 0.15


@dataclass(frozen=True, slots=True)
class ViewerSettings:
    """How one subscriber shows a track: rendered size (0 x 0: unknown), visible, priority."""

    width: int = 0
    height: int = 0
    visible: bool = True
    priority: str = "standard"


@dataclass(frozen=True, slots=True)
class Viewer:
    """One subscriber of a track: its settings (None: not told yet), the bitrate its link can carry for this track
    (`link_share`; None: unknown), whether congestion control withholds the track from it (switched off) and whether
    it is congested (some of its tracks switched off)."""

    settings: ViewerSettings | None = None
    link_bps: int | None = None
    withheld: bool = False
    congested: bool = False

    @property
    def visible(self) -> bool:
        """Return whether this subscriber shows the track (one that said nothing does)."""
        return self.settings is None or self.settings.visible


@dataclass(frozen=True, slots=True)
class Constraints:
    """What a publisher sends of one video track; None: no limit."""

    max_width: int | None = None
    max_height: int | None = None
    max_framerate: int | None = None
    max_bitrate: int | None = None
    paused: bool = False


PAUSED: Final = Constraints(paused=True)


def constraints_for(viewers: Sequence[Viewer], *, max_bitrate: int, keep_running: bool = False) -> Constraints:
    """Return what the publisher of a track with these subscribers should send (see the module's rules)."""
    visible = [v for v in viewers if v.visible]
    if not visible and not keep_running:
        return PAUSED
    sizes = [(v.settings.width, v.settings.height) for v in visible
             if v.settings is not None and v.settings.width > 0 and v.settings.height > 0]
    unlimited = keep_running or len(sizes) < len(visible)
    max_w = max_h = None
    if not unlimited:
        max_w = _step_down(max(w for w, _ in sizes))
        max_h = _step_down(max(h for _, h in sizes))
    full = unlimited or any(v.settings is not None and v.settings.priority != "low" and (
        v.settings.priority == "high" or v.settings.width * v.settings.height > THUMBNAIL_PIXELS) for v in visible)
    framerate = FULL_FRAMERATE if full else THUMBNAIL_FRAMERATE
    if max_w is None or max_h is None:
        bitrate = max_bitrate
    else:
        bitrate = min(max_bitrate, max(MIN_BITRATE, int(max_w * max_h * framerate * BITS_PER_PIXEL)))
    receiving = [v for v in visible if not v.withheld and not v.congested]
    judged = receiving or visible  # nobody else receives it: fit the best of the weak ones, so it can come back
    shares = [v.link_bps for v in judged if v.link_bps is not None]
    if judged and not keep_running and len(shares) == len(judged):
        bitrate = max(MIN_BITRATE, min(bitrate, max(shares)))
    return Constraints(max_width=max_w, max_height=max_h, max_framerate=framerate, max_bitrate=bitrate)


def need_bps(settings: ViewerSettings | None, *, max_bitrate: int) -> int:
    """Return the bitrate a video track shown with these settings needs (the size rule; unknown size: the most)."""
    if settings is None or settings.width <= 0 or settings.height <= 0:
        return max_bitrate
    full = settings.priority == "high" or (settings.priority != "low" and
                                           settings.width * settings.height > THUMBNAIL_PIXELS)
    framerate = FULL_FRAMERATE if full else THUMBNAIL_FRAMERATE
    return min(max_bitrate, max(MIN_BITRATE, int(settings.width * settings.height * framerate * BITS_PER_PIXEL)))


def link_share(link_bps: float, need: int, other_needs: Sequence[int]) -> int:
    """Return what a subscriber's link can carry for one track: `LINK_HEADROOM` of its estimate, split over that
    track and the other video tracks it receives in proportion to what each needs."""
    if link_bps < 0 or need < 0 or any(n < 0 for n in other_needs):
        raise ValueError("bitrates are never negative")
    total = need + sum(other_needs)
    return int(LINK_HEADROOM * link_bps * (need / total if total > 0 else 1.0))


def small_bitrate_change(before: Constraints, after: Constraints) -> bool:
    """Return whether `after` differs from `before` only by a bitrate change smaller than `BITRATE_HYSTERESIS`."""
    if before.max_bitrate is None or after.max_bitrate is None or before.max_bitrate == after.max_bitrate:
        return False
    if (before.max_width, before.max_height, before.max_framerate, before.paused) != (
            after.max_width, after.max_height, after.max_framerate, after.paused):
        return False
    return abs(after.max_bitrate - before.max_bitrate) < BITRATE_HYSTERESIS * before.max_bitrate


def _step_down(pixels: int) -> int:
    return max(SIZE_STEP, pixels // SIZE_STEP * SIZE_STEP)


def scale_for(width: int, height: int, constraints: Constraints) -> float:
    """Return the factor a width x height picture is scaled down by to fit the constraints' box (one of SCALE_STEPS,
    the smallest that fits; beyond the last step, exactly what fits)."""
    need = 1.0
    if constraints.max_width is not None and width > 0:
        need = max(need, width / constraints.max_width)
    if constraints.max_height is not None and height > 0:
        need = max(need, height / constraints.max_height)
    for step in SCALE_STEPS:
        if step >= need - 1e-9:
            return step
    return need


def scaled_size(width: int, height: int, constraints: Constraints) -> tuple[int, int]:
    """Return the even size a width x height picture is sent at under the constraints (at least 2 x 2)."""
    scale = scale_for(width, height, constraints)
    return max(2, math.floor(width / scale) // 2 * 2), max(2, math.floor(height / scale) // 2 * 2)


def asks_for_more(before: Constraints, after: Constraints) -> bool:
    """Return whether `after` lets the publisher send more than `before` in any respect."""
    if before.paused != after.paused:
        return before.paused

    def more(old: int | None, new: int | None) -> bool:
        return (old is not None) and (new is None or new > old)

    return any(more(getattr(before, name), getattr(after, name))
               for name in ("max_width", "max_height", "max_framerate", "max_bitrate"))


class ConstraintsGate:
    """When a publisher is told new constraints for one track (the module's debounce and hysteresis rules)."""

    def __init__(self, *, min_interval_ms: float = MIN_INTERVAL_MS, down_hold_ms: float = DOWN_HOLD_MS) -> None:
        self.min_interval_ms = min_interval_ms
        self.down_hold_ms = down_hold_ms
        self.sent = Constraints()  # a publisher starts unconstrained: nothing is sent until that changes
        self._sent_at: float | None = None
        self._wish: Constraints | None = None
        self._wish_since = 0.0

    def offer(self, wanted: Constraints, now_ms: float) -> Constraints | None:
        """Take what the rule wants now; return the constraints to send now, or None (nothing to send yet)."""
        if small_bitrate_change(self.sent, wanted):
            wanted = self.sent
        if wanted == self.sent:
            self._wish = None
            return None
        if wanted != self._wish:
            if self._wish is None or not small_bitrate_change(self._wish, wanted):
                self._wish_since = now_ms  # a new wish waits anew; a link estimate's drift does not restart it
            self._wish = wanted
        if not asks_for_more(self.sent, wanted) and now_ms - self._wish_since < self.down_hold_ms:
            return None
        if self._sent_at is not None and now_ms - self._sent_at < self.min_interval_ms:
            return None
        self.sent, self._sent_at, self._wish = wanted, now_ms, None
        return wanted

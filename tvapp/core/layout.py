"""Where the tiles go on the TV: rectangles for each participant (and the shared content) in a layout mode.

The renderer asks `tiles(count, screen, safe_area, mode)` for a `Layout` and draws participant i's video
letterboxed (`fit`) into `layout.tiles[i]`. Participants come in join order (tvapp.core.stage.TileOrder),
so a tile's place depends only on how many people there are and where they sit in that order, never on
who is speaking: nothing jumps when the active speaker changes.

Everything is laid out inside the overscan-safe area (`safe_area`): TVs crop a few percent off every
edge, so nothing that matters may be drawn there. Tiles never overlap; `gap` pixels separate them
(less when the area is too small for the gaps; an area only a few pixels wide can get empty tiles).

Modes:
- GRID: equal cells, `cols = ceil(sqrt(n))`, `rows = ceil(n / cols)` (1; 2 side by side; 2x2; 3x2; 3x3 ...),
  an incomplete last row centred. Cells fill the area but their shape stays between `MIN_TILE_ASPECT`
  and `MAX_TILE_ASPECT` (width / height); the block of cells is centred.
- SPEAKER: the big tile spans the top `SPEAKER_SHARE` of the area; the others sit in their order in
  one row of equal tiles along the bottom, centred. Which tile is big is `stage_tile()`'s rule: a shared screen
  (its own tile, beside its sharer's camera) when there is one -- the first in tile order -- because a shared
  screen matters more than a face (people read slides, code or a document off it, and a face still reads as a
  face in the row below), else the active speaker's, else the first tile.
- WATCH: the shared content takes the left `WATCH_CONTENT_SHARE` of the width at full height; the first
  `WATCH_SIDEBAR_MAX` participants are stacked in a column on the right, equal tiles, centred vertically.
- WATCH_FULL: the shared content fills the whole screen (the picture may go into the overscan like any TV
  picture); the first `PIP_MAX` participants are picture-in-picture tiles, `PIP_SHARE` of the safe area's width
  each, in a row along the bottom right corner of the safe area. The tiles lie over the content, never over
  each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle in screen pixels: top-left corner (x, y), width w and height h."""

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        if self.w < 0 or self.h < 0:
            raise ValueError(f"a rectangle cannot have a negative size: {self.w}x{self.h}")

    @property
    def right(self) -> int:
        """Return the x just past the right edge."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """Return the y just past the bottom edge."""
        return self.y + self.h

    @property
    def size(self) -> tuple[int, int]:
        """Return (width, height)."""
        return (self.w, self.h)

    @property
    def center(self) -> tuple[int, int]:
        """Return the centre point, rounded down."""
        return (self.x + self.w // 2, self.y + self.h // 2)

    def contains(self, other: Rect) -> bool:
        """Return whether `other` lies wholly inside this rectangle (edges may touch)."""
        return (other.x >= self.x and other.y >= self.y
                and other.right <= self.right and other.bottom <= self.bottom)

    def intersects(self, other: Rect) -> bool:
        """Return whether the two rectangles overlap with positive area (touching edges do not count)."""
        return (min(self.right, other.right) > max(self.x, other.x)
                and min(self.bottom, other.bottom) > max(self.y, other.y))

    def inset(self, d: int) -> Rect:
        """Return this rectangle shrunk by `d` on every side (grown if negative), never below zero size."""
        w = max(0, self.w - 2 * d)
        h = max(0, self.h - 2 * d)
        return Rect(self.x + (self.w - w) // 2, self.y + (self.h - h) // 2, w, h)


class Mode(StrEnum):
    """How the tiles are arranged (a str: the config, the command line and the remote protocol use the values)."""

    GRID = "grid"
    SPEAKER = "speaker"
    WATCH = "watch"
    WATCH_FULL = "watch_full"


WATCH_SIDEBAR_MAX = 6
PIP_MAX = 4
PIP_SHARE = 0.16
WATCH_CONTENT_SHARE = 0.75
SPEAKER_SHARE = 0.78
MIN_TILE_ASPECT = 0.75   # taller tiles get shorter: a portrait sliver wastes the screen
MAX_TILE_ASPECT = 2.0    # wider tiles get narrower: a letterbox band across the TV looks broken
GAP_SHARE = 0.015
MIN_GAP = 4


@dataclass(frozen=True)
class Layout:
    """The rectangles of one layout: tiles[i] is participant i's tile; content is the shared content (watch)."""

    tiles: tuple[Rect, ...]
    content: Rect | None = None


def safe_area(width: int, height: int, margin: float = 0.05) -> Rect:
    """Return the overscan-safe area of a width x height screen: `margin` of each dimension off every side."""
    if width <= 0 or height <= 0:
        raise ValueError(f"the screen must have a positive size, got {width}x{height}")
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"the safe-area margin must be in [0, 0.5), got {margin}")
    mx = min(round(width * margin), (width - 1) // 2)
    my = min(round(height * margin), (height - 1) // 2)
    return Rect(mx, my, width - 2 * mx, height - 2 * my)


def fit(src_w: int, src_h: int, box: Rect) -> Rect:
    """Return the largest rectangle of the src_w:src_h aspect centred in `box` (letterbox or pillarbox)."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"the source must have a positive size, got {src_w}x{src_h}")
    if box.w == 0 or box.h == 0:
        return Rect(box.x + box.w // 2, box.y + box.h // 2, 0, 0)
    if box.w * src_h <= box.h * src_w:
        w = box.w
        h = min(box.h, max(1, round(box.w * src_h / src_w)))
    else:
        h = box.h
        w = min(box.w, max(1, round(box.h * src_w / src_h)))
    return Rect(box.x + (box.w - w) // 2, box.y + (box.h - h) // 2, w, h)


def stage_tile(speaking: int | None, screens: Sequence[bool]) -> int | None:
    """Return the index of the speaker view's big tile: the first shared screen, else `speaking`, else 0."""
    if not screens:
        return None
    if speaking is not None and not 0 <= speaking < len(screens):
        raise ValueError(f"speaker {speaking} is out of range for {len(screens)} tiles")
    first_screen = next((i for i, screen in enumerate(screens) if screen), None)
    if first_screen is not None:
        return first_screen
    return speaking if speaking is not None else 0


def tiles(count: int, screen: Rect, safe_area: Rect, mode: Mode | str = Mode.GRID, *,
          speaker: int | None = None, gap: int | None = None) -> Layout:
    """Lay out `count` participants' tiles (join order) inside `safe_area` on `screen` in `mode`."""
    if count < 0:
        raise ValueError(f"the participant count cannot be negative, got {count}")
    try:
        mode = Mode(mode)
    except ValueError:
        names = ", ".join(m.value for m in Mode)
        raise ValueError(f"unknown layout mode {mode!r}; expected one of {names}") from None
    if safe_area.w <= 0 or safe_area.h <= 0:
        raise ValueError(f"the safe area is empty: {safe_area}")
    if not screen.contains(safe_area):
        raise ValueError(f"the safe area {safe_area} does not lie inside the screen {screen}")
    if speaker is not None and not 0 <= speaker < count:
        raise ValueError(f"speaker {speaker} is out of range for {count} participants")
    if gap is None:
        gap = max(MIN_GAP, round(GAP_SHARE * min(safe_area.w, safe_area.h)))
    elif gap < 0:
        raise ValueError(f"the gap cannot be negative, got {gap}")
    if mode is Mode.WATCH:
        return _watch(count, safe_area, gap)
    if mode is Mode.WATCH_FULL:
        return _watch_full(count, screen, safe_area, gap)
    if count == 0:
        return Layout(())
    if mode is Mode.SPEAKER:
        return _speaker(count, safe_area, gap, speaker or 0)
    return Layout(_grid(count, safe_area, gap))


def _fitting_gap(gap: int, length: int, cells: int) -> int:
    """Return `gap` shrunk so that `cells` cells of at least 1 px still fit in `length` (if they can)."""
    if cells <= 1:
        return gap
    return max(0, min(gap, (length - cells) // (cells - 1)))


def _clamp_aspect(w: int, h: int) -> tuple[int, int]:
    """Return (w, h) trimmed so that w / h stays within MIN_TILE_ASPECT..MAX_TILE_ASPECT."""
    if w > h * MAX_TILE_ASPECT:
        w = math.floor(h * MAX_TILE_ASPECT)
    elif w < h * MIN_TILE_ASPECT:
        h = math.floor(w / MIN_TILE_ASPECT)
    return w, h


def _row(n: int, left: int, width: int, y: int, cell_w: int, cell_h: int, gap: int) -> list[Rect]:
    """Return `n` cells side by side, the row centred in [left, left + width)."""
    row_w = n * cell_w + (n - 1) * gap
    x = left + (width - row_w) // 2
    return [Rect(x + i * (cell_w + gap), y, cell_w, cell_h) for i in range(n)]


def _grid(count: int, area: Rect, gap: int) -> tuple[Rect, ...]:
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    gap = min(_fitting_gap(gap, area.w, cols), _fitting_gap(gap, area.h, rows))
    cell_w = max(0, (area.w - gap * (cols - 1)) // cols)
    cell_h = max(0, (area.h - gap * (rows - 1)) // rows)
    cell_w, cell_h = _clamp_aspect(cell_w, cell_h)
    block_w = cols * cell_w + (cols - 1) * gap
    block_h = rows * cell_h + (rows - 1) * gap
    left = area.x + (area.w - block_w) // 2
    top = area.y + (area.h - block_h) // 2
    out: list[Rect] = []
    for r in range(rows):
        n = min(cols, count - r * cols)
        out += _row(n, left, block_w, top + r * (cell_h + gap), cell_w, cell_h, gap)
    return tuple(out)


def _speaker(count: int, area: Rect, gap: int, speaker: int) -> Layout:
    if count == 1:
        return Layout((area,))
    v_gap = _fitting_gap(gap, area.h, 2)
    usable = area.h - v_gap
    main_h = round(usable * SPEAKER_SHARE)
    strip_h = usable - main_h
    others = count - 1
    h_gap = _fitting_gap(gap, area.w, others)
    tile_w = min(max(0, (area.w - h_gap * (others - 1)) // others), round(strip_h * 16 / 9))
    tile_w, tile_h = _clamp_aspect(tile_w, strip_h)
    strip_y = area.y + main_h + v_gap + (strip_h - tile_h) // 2
    strip = iter(_row(others, area.x, area.w, strip_y, tile_w, tile_h, h_gap))
    main = Rect(area.x, area.y, area.w, main_h)
    return Layout(tuple(main if i == speaker else next(strip) for i in range(count)))


def _watch(count: int, area: Rect, gap: int) -> Layout:
    h_gap = _fitting_gap(gap, area.w, 2)
    content_w = min(round(area.w * WATCH_CONTENT_SHARE), area.w - h_gap)
    content = Rect(area.x, area.y, content_w, area.h)
    shown = min(count, WATCH_SIDEBAR_MAX)
    if shown == 0:
        return Layout((), content)
    side_x = content.right + h_gap
    side_w = area.right - side_x
    v_gap = _fitting_gap(gap, area.h, shown)
    tile_h = min(max(0, (area.h - v_gap * (shown - 1)) // shown), round(side_w * 9 / 16))
    tile_w, tile_h = _clamp_aspect(side_w, tile_h)
    column_h = shown * tile_h + (shown - 1) * v_gap
    x = side_x + (side_w - tile_w) // 2
    y = area.y + (area.h - column_h) // 2
    return Layout(tuple(Rect(x, y + i * (tile_h + v_gap), tile_w, tile_h) for i in range(shown)), content)


def _watch_full(count: int, screen: Rect, area: Rect, gap: int) -> Layout:
    shown = min(count, PIP_MAX)
    if shown == 0:
        return Layout((), screen)
    tile_w = min(round(area.w * PIP_SHARE), (area.w - gap * (shown - 1)) // shown)
    tile_h = max(1, min(area.h, round(tile_w * 9 / 16)))
    tile_w = max(1, min(tile_w, round(tile_h * 16 / 9)))
    y = area.bottom - tile_h
    x0 = area.right - shown * tile_w - (shown - 1) * gap
    return Layout(tuple(Rect(x0 + i * (tile_w + gap), y, tile_w, tile_h) for i in range(shown)), screen)

"""Read what screens showed of the shared content, and measure how far apart they were (tests and benchmarks).

Every screen under test writes one row per display flip: the TV with `--trace` (``{"event": "content", ...}``),
`tvapp bot --watch` (every 1/60 s), the web client in its page. A row says when the flip happened on this
machine's clock (``t``), the timeline position the screen aimed at (``target``, from its own estimate of the
server's clock), the pts of the frame it showed (``pts``) and the timeline position at ``t`` by the machine's own
clock (``truth``) — on one machine the server's clock *is* this clock, so truth is exact, whatever clock fault a
test injected into a screen.

- timeline error = target - truth: how wrong the screen's idea of "now on the timeline" was (clock sync and flip
  prediction). This is what keeps screens together; it has no frame quantisation.
- frame error = pts - truth: what the viewer saw; at best within one frame interval behind truth.
- offset between two screens at an instant = the difference of their timeline errors (the other screen's
  interpolated to the same instant).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Flips:
    """One screen's rows as arrays, sorted by time."""

    t: npt.NDArray[np.float64]
    target: npt.NDArray[np.float64]
    truth: npt.NDArray[np.float64]
    pts: npt.NDArray[np.float64]   # NaN where nothing was shown yet
    seq: npt.NDArray[np.float64]   # NaN where unknown

    def between(self, start: float, end: float) -> Flips:
        """Return the rows with start <= t <= end."""
        keep = (self.t >= start) & (self.t <= end)
        return Flips(self.t[keep], self.target[keep], self.truth[keep], self.pts[keep], self.seq[keep])

    @property
    def timeline_error(self) -> npt.NDArray[np.float64]:
        """Return target - truth per row (seconds)."""
        return self.target - self.truth

    @property
    def frame_error(self) -> npt.NDArray[np.float64]:
        """Return pts - truth per row (seconds; NaN where nothing was shown)."""
        return self.pts - self.truth

    def __len__(self) -> int:
        return len(self.t)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Return the content rows of a TV trace or a bot watch trace (incomplete last lines are skipped)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("event", "content") == "content" and "target" in row:
            rows.append(row)
    return rows


def flips(rows: Iterable[dict[str, Any]]) -> Flips:
    """Return rows (with truth) as arrays sorted by time."""
    usable = sorted((r for r in rows if r.get("truth") is not None and r.get("target") is not None),
                    key=lambda r: r["t"])

    def column(name: str) -> npt.NDArray[np.float64]:
        return np.array([np.nan if r.get(name) is None else float(r[name]) for r in usable], dtype=np.float64)

    return Flips(column("t"), column("target"), column("truth"), column("pts"), column("seq"))


def read_flips(path: str | Path) -> Flips:
    """Return one screen's trace file as Flips."""
    return flips(read_rows(path))


def offsets(a: Flips, b: Flips) -> npt.NDArray[np.float64]:
    """Return a's timeline error minus b's (interpolated to a's instants) wherever both have rows around."""
    if len(a) == 0 or len(b) < 2:
        return np.array([], dtype=np.float64)
    inside = (a.t >= b.t[0]) & (a.t <= b.t[-1])
    return a.timeline_error[inside] - np.interp(a.t[inside], b.t, b.timeline_error)


def percentile_ms(values: Sequence[float] | npt.NDArray[np.float64], q: float) -> float:
    """Return the q-th percentile of |values| in milliseconds (NaN for no values)."""
    data = np.abs(np.asarray(values, dtype=np.float64))
    data = data[np.isfinite(data)]
    return float(np.percentile(data, q) * 1000) if len(data) else float("nan")


def settle_time(screens: Sequence[Flips], since: float, tolerance: float, hold: float = 0.5) -> float | None:
    """Return how long after `since` every screen's frame error stayed within `tolerance` for `hold` seconds
    (measured to the start of that run), or None if they never did."""
    starts = []
    for screen in screens:
        after = screen.between(since, float("inf"))
        good = np.isfinite(after.frame_error) & (np.abs(after.frame_error) <= tolerance)
        start = None
        for i, ok in enumerate(good):
            if not ok:
                start = None
                continue
            if start is None:
                start = after.t[i]
            if after.t[i] - start >= hold:
                break
        else:
            return None
        starts.append(start)
    return max(starts) - since if starts else None

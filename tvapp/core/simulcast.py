"""Simulcast by two tracks: which rendition of each video track a congested subscriber gets (pure).

A publisher may publish, next to a video track, a second low-resolution encode of the same source (160x90@15, about
105 kb/s with headers): a *rendition* of the main track (its publication names the main track's sid in
`rendition_of`, layer "low"). For each subscriber the SFU then sends, per video track, one of three layers:

- `MAIN`: the main track (what every subscriber gets while its link carries it);
- `LOW`: the low rendition, on the same m-line, spliced in at one of its keyframes (one continuous stream to the
  subscriber's decoder, one tile);
- `OFF`: nothing (`track_switched_off`, as before simulcast).

The order of the steps down (`steps`): first every track that has a rendition steps from main to low, least
important first; only then are tracks switched off, least important first (a track without a rendition has no
low step: switching it off is its only step, taken in the second round, with the others' off steps). Audio is
never touched. Back up it is the reverse: switched-off tracks come back first (most important first, at low where
there is a rendition), then tracks go from low back to main.

`allocate` is that rule for a known budget. At the SFU the budget is not known but probed, so the steps are fed to
tvapp.core.congestion's `DownlinkController` as its "tracks" (`units`): a track with a rendition is two units,
the main step (sid: the track's sid, its rank: the track's priority) and the low step (`low_unit(sid)`, ranked
above every main step, `priority + STEP_RANK`), a track without one is one unit ranked like a low step. The
controller sheds its least important units first and probes its most important first, so it takes the steps in
this order, and `layers` reads each track's layer back from the set of units it switched off. A main step is
`gated`: probed only when the downlink estimate has room for it (the subscriber sees the rendition meanwhile, and a
blind probe every back-off would burst a main keyframe onto a link already carrying the renditions, and flash
the big picture for a moment); switched-off tracks are probed as before (after the back-off), so they still come
back within the rule's 5 s.

Pure: rates are arguments; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal

from tvapp.core.congestion import VideoTrack

Layer = Literal["main", "low", "off"]
MAIN: Final = "main"
LOW: Final = "low"
OFF: Final = "off"

LOW_BPS: Final = 105_000.0  # a 160x90@15 VP8 rendition with RTP/UDP/IP headers (bench/README, issue 18)
STEP_RANK: Final = 1000  # added to a low (or only) step's priority: every main step is shed before any of them
_LOW_TAG: Final = "/low"


@dataclass(frozen=True, slots=True)
class SimulcastTrack:
    """One video track a subscriber receives, as the SFU sees it over the last interval."""

    sid: str
    priority: int  # higher: more important (pinned, active speaker, others)
    main_bps: float  # the SFU's send rate of the main track to this subscriber (0 while not sent)
    low_bps: float = 0.0  # its send rate of the low rendition to this subscriber (0 while not sent)
    has_low: bool = False  # the publisher publishes a low rendition of this track
    main_rate_bps: float | None = None  # what the main track costs where it flows (to other subscribers); None: unknown


def low_unit(sid: str) -> str:
    """Return the controller unit's sid of a track's low step (switched off: the track is off)."""
    return sid + _LOW_TAG


def steps(tracks: Collection[SimulcastTrack]) -> list[tuple[str, Layer]]:
    """Return the steps down in the order they are taken: (track sid, the layer it steps down to)."""
    down = sorted((t for t in tracks if t.has_low), key=lambda t: (t.priority, t.sid))
    off = sorted(tracks, key=lambda t: (t.priority, t.sid))
    return [(t.sid, LOW) for t in down] + [(t.sid, OFF) for t in off]


def allocate(estimate_bps: float, audio_bps: float, tracks: Collection[SimulcastTrack], *,
             fit_share: float = 0.9, low_bps: float = LOW_BPS,
             main_bps: dict[str, float] | None = None) -> dict[str, Layer]:
    """Return each track's layer for a downlink estimate: audio first, then steps down until the video fits.

    The video budget is `fit_share` of the estimate less the audio (tvapp.core.congestion's `fit_share`). A
    track's main rate is `main_bps[sid]` if given, else its `main_bps`; a low rendition costs `low_bps`.
    """
    budget_bps = fit_share * estimate_bps - audio_bps
    rate = {t.sid: (main_bps or {}).get(t.sid, t.main_bps) for t in tracks}
    layer: dict[str, Layer] = {t.sid: MAIN for t in tracks}
    total = sum(rate.values())
    for sid, down in steps(tracks):
        if total <= budget_bps:
            break
        total -= rate[sid] if layer[sid] == MAIN else low_bps
        if down == LOW:
            total += low_bps
        layer[sid] = down
    return layer


def units(tracks: Collection[SimulcastTrack], *, low_bps: float = LOW_BPS) -> list[VideoTrack]:
    """Return the congestion controller's units for these tracks (see the module docstring).

    Their rates add up to what the SFU sends: while the main track flows its main step carries the main rate less
    the low rendition's (`low_bps`, what stepping down would still cost) and its low step that reserve; while the
    low rendition flows the low step carries its rate. A flowing step never shows 0 (the controller reads 0 as
    "not flowing yet" when it judges a probe).
    """
    out: list[VideoTrack] = []
    for t in tracks:
        if not t.has_low:
            out.append(VideoTrack(t.sid, t.priority + STEP_RANK, t.main_bps))
            continue
        main = max(t.main_bps - low_bps, 1.0) if t.main_bps > 0 else 0.0
        low = low_bps if t.main_bps > 0 else t.low_bps
        resume = None if t.main_rate_bps is None else max(t.main_rate_bps - low_bps, 1.0)
        out.append(VideoTrack(t.sid, t.priority, main, gated=True, resume_bps=resume))
        out.append(VideoTrack(low_unit(t.sid), t.priority + STEP_RANK, low))
    return out


def layers(off: Collection[str], tracks: Collection[SimulcastTrack]) -> dict[str, Layer]:
    """Return each track's layer given the controller units switched off, least important track first.

    The order is the rule's (`steps`): the SFU applies and announces the changes in it, so when one tick switches
    several tracks off, the active speaker's is announced after the others', as the rule chose them.
    """
    out: dict[str, Layer] = {}
    for t in sorted(tracks, key=lambda t: (t.priority, t.sid)):
        if not t.has_low:
            out[t.sid] = OFF if t.sid in off else MAIN
        elif low_unit(t.sid) in off:
            out[t.sid] = OFF
        else:
            out[t.sid] = LOW if t.sid in off else MAIN
    return out

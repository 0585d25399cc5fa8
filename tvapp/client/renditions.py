"""Simulcast by two tracks, the publisher's side: a video track's low rendition (tvapp.core.simulcast).

`publish_track(video, simulcast=True)` (or `set_camera_enabled(True, simulcast=True)`) publishes, next to the
main track, a second encode of the same source (read through its own MediaRelay copy, so the two encoders never
share frames) at 160x90@15 and about 100 kb/s, announced with `rendition_of` (the main track's sid) and `layer`
"low". The server never shows it to the room as a track; its SFU sends it, on the same m-line, to a subscriber
whose link cannot carry the main track. It starts paused (publish_constraints `paused`), and the SFU unpauses it
only while some subscriber needs it, so a room of good links does not pay its uplink and encode CPU. It follows
its main track's mute; unpublishing the main track drops it (the server drops it too); after a full rejoin it is
announced again once the main track has its new sid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tvapp.core.adaptive import Constraints

RENDITION_FORMAT: tuple[int, int, float] = (160, 90, 15.0)  # bench/README, issue 18: ~99 kb/s of VP8
RENDITION_BITRATE = 100_000


class NoFormat:
    """A rendition's format target: its size is its own; the shared source is never asked to change."""


class Rendered(Protocol):
    """What this module reads and sets of a publication (tvapp.client.participants.LocalTrackPublication)."""

    kind: Any
    sid: str | None
    cid: str
    low: Any
    rendition_of: Any
    layer: Any
    video_format: tuple[int, int, float] | None
    bitrate: int
    constraints: Constraints

    def stop(self) -> None: ...


P = TypeVar("P", bound=Rendered)


def low_rendition(main: P, make: Callable[[], P]) -> P:
    """Return `main`'s low rendition made by `make` (not announced yet), paused until the SFU asks for it."""
    if main.kind != "video" or main.sid is None or main.low is not None or main.rendition_of is not None:
        raise ValueError("a rendition needs a published video track without one")
    low = make()
    low.rendition_of, low.layer, main.low = main, "low", low
    low.video_format = RENDITION_FORMAT
    low.bitrate = RENDITION_BITRATE
    low.constraints = Constraints(paused=True)
    return low


def forget(publications: dict[str, P], publication: P) -> None:
    """Unlink a publication being unpublished from its rendition (stopped: the server drops it) or main track."""
    if publication.low is not None:
        low, publication.low = publication.low, None
        publications.pop(low.cid, None)
        low.sid = None
        low.stop()
    if publication.rendition_of is not None:
        publication.rendition_of.low = None

"""What the REST client knows of compositions: their paths under /v1 and the `Composition` record.

`tvapp.client.rest.RestClient` calls them (create_composition, get_composition, list_compositions,
download_composition, delete_composition); `tvapp compose --server` polls `get_composition` for its progress bar.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote, urlencode

COMPOSITION_FIELDS = ("sid", "room", "session", "layout", "resolution", "format", "status", "percent", "eta",
                      "duration", "size", "created_at", "started_at", "completed_at", "reason")


@dataclasses.dataclass(frozen=True)
class Composition:
    """One composition (GET /v1/compositions/{sid}): status enqueued | processing | completed | failed | deleted."""

    sid: str
    room: str
    session: str
    layout: str  # grid | speaker | single
    resolution: str  # "WxH"
    format: str  # mp4 | webm
    status: str
    percent: float  # 0..100
    eta: float | None  # seconds left while processing (None: not known yet)
    duration: float  # seconds of output
    size: int  # bytes of the file
    created_at: float
    started_at: float | None
    completed_at: float | None
    reason: str | None  # why it failed

    @property
    def finished(self) -> bool:
        """Tell whether the render is over (completed, failed or deleted)."""
        return self.status in ("completed", "failed", "deleted")


def compositions_path(**query: str | int | None) -> str:
    """Return the path that creates or lists compositions (list filters: session, status, limit)."""
    given = {key: str(value) for key, value in query.items() if value is not None}
    return "/v1/compositions" + ("?" + urlencode(given) if given else "")


def composition_path(sid: str) -> str:
    """Return the path of one composition (get, delete)."""
    return "/v1/compositions/" + quote(sid, safe="")


def composition_media_path(sid: str) -> str:
    """Return the path that downloads a completed composition (Range requests allowed)."""
    return composition_path(sid) + "/media"

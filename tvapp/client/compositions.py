"""Typed REST calls for compositions: `CompositionClient`, a `RestClient` that also composes recordings.

    api = CompositionClient(url, api_key=(key_id, secret))
    job = await api.create_composition(session, layout="grid", format="mp4")
    while not (job := await api.get_composition(job.sid)).finished:
        print(job.percent, job.eta)
    data = await api.download_composition(job.sid)

The paths are built in tvapp.client.rest (`compositions_path`, `composition_path`) like every other /v1 path;
this module keeps the `Composition` record and the calls (rest.py is full). `tvapp compose --server` uses it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from tvapp.client.rest import ApiError, RestClient, composition_path, compositions_path


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


def _composition(answer: object) -> Composition:
    if not isinstance(answer, dict):
        raise ApiError(0, "bad_answer", "the server's answer was not a JSON object")
    names = [field.name for field in dataclasses.fields(Composition)]
    missing = [name for name in names if name not in answer]
    if missing:
        raise ApiError(0, "bad_answer", f"the server's answer lacks {', '.join(missing)}")
    return Composition(**{name: answer[name] for name in names})


class CompositionClient(RestClient):
    """A RestClient with the /v1/compositions calls (they need the API key)."""

    async def create_composition(self, session: str, *, layout: str = "grid", resolution: str = "640x360",
                                 format: str = "mp4", fps: int = 15, audio_sources: list[str] | None = None,
                                 video_sources: list[str] | None = None,
                                 trim: tuple[float, float | None] | None = None) -> Composition:
        """Queue a composition of a room session's recordings (sources: identities or track sids; None: all)."""
        body: dict[str, Any] = {"session": session, "layout": layout, "resolution": resolution, "format": format,
                                "fps": fps, "audio_sources": audio_sources or "all",
                                "video_sources": video_sources or "all"}
        if trim is not None:
            body["trim"] = {"start": trim[0], "end": trim[1]}
        return _composition(await self._call("POST", compositions_path(), body))

    async def get_composition(self, sid: str) -> Composition:
        """Return one composition (status, percent, eta)."""
        return _composition(await self._call("GET", composition_path(sid)))

    async def list_compositions(self, *, session: str | None = None, status: str | None = None,
                                limit: int | None = None) -> list[Composition]:
        """Return compositions newest first."""
        answer = await self._call("GET", compositions_path(session=session, status=status, limit=limit))
        if not isinstance(answer, list):
            raise ApiError(0, "bad_answer", "the server's answer was not a JSON array")
        return [_composition(item) for item in answer]

    async def download_composition(self, sid: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return a completed composition's file, or its bytes `start` to `end` (inclusive)."""
        byte_range = None if start is None and end is None else f"bytes={start or 0}-{'' if end is None else end}"
        return await asyncio.to_thread(self._fetch_blocking, self.server_url + composition_path(sid, "media"),
                                       byte_range)

    async def delete_composition(self, sid: str) -> None:
        """Delete a finished composition's file (it stays listed with status deleted)."""
        await self._call("DELETE", composition_path(sid))


__all__ = ["Composition", "CompositionClient"]

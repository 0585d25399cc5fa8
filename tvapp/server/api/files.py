"""Serving a stored media file over HTTP: the whole file, or the one byte range a Range header asks for.

Recordings (/v1/recordings/{sid}/media) and compositions (/v1/compositions/{sid}/media) both answer through
`file_response`: 200 with the whole file or 206 with Content-Range (tvapp.core.recordings.parse_range), 416 with
``Content-Range: bytes */SIZE`` when the range holds no byte of the file, 404 media_not_found when the file is gone.
The file is read in CHUNK-sized pieces off the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from tvapp.core.recordings import ByteRange, RangeError, parse_range
from tvapp.server.errors import ApiError, NotFound

CHUNK = 256 * 1024


async def _chunks(path: os.PathLike[str], part: ByteRange) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(handle.seek, part.start)
        left = part.length
        while left > 0:
            data = await asyncio.to_thread(handle.read, min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data
    finally:
        await asyncio.to_thread(handle.close)


async def file_response(path: Path, request: Request, media_type: str, filename: str) -> Response:
    """Answer with the file at `path` (or the byte range the request's Range header asks for)."""
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
    except OSError:
        raise NotFound("the file is gone", code="media_not_found") from None
    try:
        part = parse_range(request.headers.get("range"), size)
    except RangeError as exc:
        raise ApiError(exc.message, code=exc.code, status=416,
                       headers={"Content-Range": f"bytes */{size}"}) from None
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'attachment; filename="{filename}"',
               "Cache-Control": "private, no-store"}
    status = 200
    if part is None:
        part = ByteRange(0, size - 1, size) if size else ByteRange(0, -1, 0)
    else:
        status = 206
        headers["Content-Range"] = part.content_range()
    headers["Content-Length"] = str(part.length)
    return StreamingResponse(_chunks(path, part), status_code=status, headers=headers, media_type=media_type)

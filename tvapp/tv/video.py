"""One tile's video: the newest decoded frame, converted at most once per frame to the size the tile needs.

The decoder side (asyncio thread) calls `VideoSlot.push` with every decoded `av.VideoFrame`; only the newest
is kept. The frame loop calls `VideoSlot.surface(w, h)` each displayed frame: when a new frame arrived (or the
tile changed size) it is scaled and converted once, straight into the display's pixel layout, and wrapped as a
pygame surface without a copy; otherwise the cached surface is returned, so a blit is all a frame costs.

Ask for an even width: libswscale's vectorised paths need one, and an odd width makes a scaled
conversion 2-3x slower (bench/tv_compositor.py).
"""

from __future__ import annotations

import sys
import threading
from typing import Literal, cast

import av
import pygame
from av.video.reformatter import VideoReformatter

_DISPLAY_BGRX = (0xFF0000, 0xFF00, 0xFF)
_DISPLAY_RGBX = (0xFF, 0xFF00, 0xFF0000)

BufferFormat = Literal["P", "RGB", "BGR", "BGRA", "RGBX", "RGBA", "ARGB"]


def pixel_formats(surface: pygame.Surface) -> tuple[str, str]:
    """Return the (av format, pygame frombuffer format) whose bytes match `surface`'s pixels, for plain-copy blits."""
    if surface.get_bytesize() == 4 and sys.byteorder == "little":
        masks = tuple(surface.get_masks()[:3])
        if masks == _DISPLAY_BGRX:
            return ("bgra", "BGRA")
        if masks == _DISPLAY_RGBX:
            return ("rgba", "RGBX")
    return ("rgb24", "RGB")


class VideoSlot:
    """The newest decoded frame of one video track and its surface at the size last asked for.

    `push` may be called from any thread while the frame loop calls `surface`: a lock guards only the
    hand-over of the pending frame; the conversion runs outside it.
    """

    def __init__(self, formats: tuple[str, str] = ("bgra", "BGRA")) -> None:
        self.av_format = formats[0]
        self.surface_format = cast(BufferFormat, formats[1])
        self._lock = threading.Lock()
        self._reformatter = VideoReformatter()  # keeps its scaler context while the sizes stay the same
        self._pending: av.VideoFrame | None = None
        self._latest: av.VideoFrame | None = None   # newest frame taken by the render thread
        self._converted: av.VideoFrame | None = None  # owns the pixels `_surface` points into
        self._surface: pygame.Surface | None = None
        self._size: tuple[int, int] | None = None
        self.shown: av.VideoFrame | None = None
        self._received = 0
        self._converted_count = 0
        self._skipped = 0

    def push(self, frame: av.VideoFrame) -> None:
        """Offer a newly decoded frame (any thread); it replaces a pending frame nobody converted yet."""
        with self._lock:
            if self._pending is not None:
                self._skipped += 1
            self._pending = frame
            self._received += 1

    def frame_size(self) -> tuple[int, int] | None:
        """Return the newest frame's (width, height), or None before the first frame."""
        with self._lock:
            frame = self._pending if self._pending is not None else self._latest
        return None if frame is None else (frame.width, frame.height)

    def surface(self, width: int, height: int) -> pygame.Surface | None:
        """Return the newest frame as a `width` x `height` surface, converting only when it or the size changed."""
        if width <= 0 or height <= 0:
            return None
        with self._lock:
            fresh, self._pending = self._pending, None
        if fresh is not None:
            self._latest = fresh
        elif self._surface is not None and self._size == (width, height):
            return self._surface
        frame = self._latest
        if frame is None:
            return None
        # One thread: the frame loop's own; a scaler thread pool per tile would compete with the decoders.
        converted = self._reformatter.reformat(frame, width, height, format=self.av_format,
                                               interpolation="BILINEAR", threads=1)
        plane = converted.planes[0]
        surface = pygame.image.frombuffer(plane, (width, height), self.surface_format, pitch=plane.line_size)
        surface.set_alpha(None)  # the alpha byte is padding: blit as a plain copy, not a blend
        self._converted, self._surface, self._size = converted, surface, (width, height)
        self.shown = frame
        self._converted_count += 1
        return surface

    @property
    def stats(self) -> tuple[int, int, int]:
        """Return (received, converted, skipped): skipped frames were replaced before anyone converted them."""
        with self._lock:
            return (self._received, self._converted_count, self._skipped)

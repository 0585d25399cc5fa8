"""What a local publication's sender reads from its source, one chain per peer connection (tvapp.client.participants).

`LocalFeed` passes a source's frames while the publication sends, scaled and thinned to the publication's video
format and to the server's publish_constraints (tvapp.core.adaptive: fit the box by a scale step, at most the frame
rate, nothing while paused), before the encoder; `EncodedFeed` passes an already encoded source's packets (only
muting and pausing apply). Stopping a feed never stops the source.
"""

from __future__ import annotations

from typing import Any, Protocol

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tvapp.core.adaptive import Constraints, scaled_size


class Feeding(Protocol):
    """What a feed reads of its publication (tvapp.client.participants.LocalTrackPublication)."""

    @property
    def kind(self) -> str: ...

    @property
    def track(self) -> MediaStreamTrack: ...

    @property
    def video_format(self) -> tuple[int, int, float] | None: ...

    @property
    def constraints(self) -> Constraints: ...

    @property
    def sending(self) -> bool: ...


class LocalFeed(MediaStreamTrack):
    """What a sender reads from a local source: frames pass only while the publication sends; video may be
    scaled and thinned to the publication's format. Stopping it never stops the source."""

    def __init__(self, publication: Feeding) -> None:
        super().__init__()
        self.kind = publication.kind
        self.publication = publication
        self._last_time: float | None = None

    async def recv(self) -> av.AudioFrame | av.VideoFrame:
        """Return the next frame to send."""
        pub = self.publication
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await pub.track.recv()
            if not pub.sending or not isinstance(frame, (av.AudioFrame, av.VideoFrame)):
                continue
            if isinstance(frame, av.VideoFrame):
                if pub.constraints.paused:
                    continue
                width, height, fps = pub.video_format or (frame.width, frame.height, 0.0)
                # The server's publish_constraints: fit its box by a scale step, no more than its frame rate.
                width, height = scaled_size(width, height, pub.constraints)
                limit = pub.constraints.max_framerate
                fps = min(fps, limit) if fps and limit else fps or float(limit or 0)
                if frame.time is not None and fps:
                    if self._last_time is not None and 0 <= frame.time - self._last_time < 0.9 / fps:
                        continue
                    self._last_time = frame.time
                if (frame.width, frame.height) != (width, height):
                    scaled = frame.reformat(width=width, height=height)
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    frame = scaled
            return frame


def is_encoded(track: MediaStreamTrack) -> bool:
    """Return whether a source hands out encoded av.Packets (and takes request_keyframe()) instead of frames."""
    return getattr(track, "encoded", False) is True


class EncodedFeed(MediaStreamTrack):
    """What a sender reads from a source that is already encoded (`source.encoded` is True: it returns av.Packets
    of the negotiated codec, e.g. a phone's VP8 forwarded by the TV): packets pass untouched while the publication
    sends, so nothing is decoded or re-encoded. Stopping it never stops the source."""

    def __init__(self, publication: Feeding) -> None:
        super().__init__()
        self.kind = publication.kind
        self.publication = publication

    async def recv(self) -> av.Packet[Any]:
        """Return the next encoded packet to send."""
        pub = self.publication
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            packet = await pub.track.recv()
            if pub.sending and not pub.constraints.paused and isinstance(packet, av.Packet):
                return packet

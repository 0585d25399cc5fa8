"""Which frames of a publication one subscriber's m-line carries, and at what RTP timestamp (pure).

An SFU subscription joins a publication mid-stream, may fall behind, and may later carry another
publication on the same m-line. `StreamSplice` decides, frame by frame:

- video starts at a keyframe: after `restart()` (a new or re-pointed subscription) and after
  `resync()` (the sender fell behind and its backlog was dropped), delta frames are refused until one comes;
- a re-pointed m-line continues its own timeline: the first frame after `restart()` is placed one frame
  step after the last timestamp this m-line sent, so the subscriber sees one continuous stream.

Timestamps are 32-bit RTP timestamps and wrap.
"""

UINT32 = 1 << 32


class StreamSplice:
    """The frame gate and timestamp mapping of one subscription m-line."""

    def __init__(self, *, video: bool, frame_step: int) -> None:
        self.video = video
        self.frame_step = frame_step
        self.waiting_for_keyframe = video
        self._rebase = False
        self._offset = 0
        self._last: int | None = None

    def restart(self) -> None:
        """Carry a (new) publication from its next keyframe, continuing this m-line's timeline."""
        self.waiting_for_keyframe = self.video
        self._rebase = True

    def resync(self) -> None:
        """Frames were dropped: wait for the next keyframe (video) before sending again."""
        self.waiting_for_keyframe = self.video

    def admit(self, timestamp: int, keyframe: bool) -> int | None:
        """Return the timestamp to send a frame with, or None when this frame must not be sent."""
        if self.waiting_for_keyframe:
            if not keyframe:
                return None
            self.waiting_for_keyframe = False
        if self._rebase:
            self._rebase = False
            self._offset = 0 if self._last is None else (self._last + self.frame_step - timestamp) % UINT32
        out = (timestamp + self._offset) % UINT32
        self._last = out
        return out

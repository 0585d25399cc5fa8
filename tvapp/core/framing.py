"""Reassembly of RTP payloads into whole frames for the SFU, without a jitter buffer's delay.

The SFU forwards encoded frames, so it must know where a frame begins and ends, but it need not smooth
arrival times (each subscriber's receiver does that). `FrameAssembler.add()` takes one RTP packet and
returns the frames it completed; `poll(now_ms)` gives up on gaps that waited too long. Both return an
`AssemblyResult`; when its `lost` is True the caller asks the publisher for a keyframe (PLI).

Audio: every packet is a frame, emitted at once; a duplicate or a packet older than the newest one is dropped.

Video: a frame is a run of consecutive sequence numbers with one timestamp whose last packet carries the
marker bit. The assembler keeps a cursor: the first sequence number not yet emitted or given up. When the
cursor is known to start a frame (the packet before it ended a frame, or the packet says `frame_start`, or
its timestamp differs from the packet before it) the assembler walks forward and emits the frame as soon as
its marker packet arrives with nothing missing before it, so frames come out in order and only once. A
missing packet blocks the cursor; once a later packet has shown the gap, the gap waits at most `max_wait_ms`
(time for a NACK retransmission) and is then given up: the frames touching it are dropped, `lost` is reported
once, and the cursor moves past the gap to where a frame start can be proved again. A run that meets the
next frame without a marker is dropped too. The first packet received is where the stream begins: packets
older than it are dropped, and it is only emitted from if it is known to start a frame.

Sequence numbers are unwrapped to a growing integer (16-bit wraparound); timestamps are only compared for
equality, so their 32-bit wraparound needs nothing. A packet more than `capacity` sequence numbers away from
the newest one means the stream restarted: the state is reset and `lost` reported. Time is in milliseconds.
"""

from dataclasses import dataclass, field
from typing import Literal

SEQ_MODULO = 1 << 16
TIMESTAMP_MODULO = 1 << 32


@dataclass(frozen=True, slots=True)
class AssembledFrame:
    """One whole frame: its RTP timestamp, its payloads joined, and the sequence numbers it spans."""

    timestamp: int
    data: bytes
    first_seq: int
    last_seq: int


@dataclass(slots=True)
class AssemblyResult:
    """Frames completed by one call, oldest first, and whether media was given up (send a PLI)."""

    frames: list[AssembledFrame] = field(default_factory=list)
    lost: bool = False


@dataclass(slots=True)
class _Packet:
    timestamp: int
    marker: bool
    payload: bytes
    frame_start: bool | None
    arrived_ms: float


class FrameAssembler:
    """Turns one RTP stream's packets (any order, with loss) into whole frames, in order, each once."""

    def __init__(self, kind: Literal["audio", "video"], *, max_wait_ms: float = 150.0, capacity: int = 512) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {max_wait_ms}")
        if not 1 <= capacity < SEQ_MODULO // 2:
            raise ValueError(f"capacity must be between 1 and {SEQ_MODULO // 2 - 1}, got {capacity}")
        self.kind = kind
        self.max_wait_ms = max_wait_ms
        self.capacity = capacity
        self._highest: int | None = None  # newest unwrapped sequence number seen
        self._buffer: dict[int, _Packet] = {}
        self._cursor: int | None = None  # first sequence number not yet emitted or given up
        self._scan = 0  # the frame at the cursor is present, without marker or frame start, up to here
        self._start_known = False
        self._loss_reported = False
        self._prev_timestamp: int | None = None  # of the packet just before the cursor, when it was consumed
        self._gap: tuple[int, float | None] | None = None  # (missing seq, since when a later packet shows it)
        self._deadline: float | None = None

    def add(self, seq: int, timestamp: int, marker: bool, payload: bytes, now_ms: float,
            frame_start: bool | None = None) -> AssemblyResult:
        """Take one RTP packet that arrived at `now_ms`; return the frames it completed."""
        if not 0 <= seq < SEQ_MODULO:
            raise ValueError(f"seq must be a 16-bit sequence number, got {seq}")
        if not 0 <= timestamp < TIMESTAMP_MODULO:
            raise ValueError(f"timestamp must be a 32-bit RTP timestamp, got {timestamp}")
        result = AssemblyResult()
        ext = self._unwrap(seq)
        if self._highest is not None and abs(ext - self._highest) > self.capacity:
            self._highest = None
            self._reset_video()
            result.lost = True
            ext = seq
        if self.kind == "audio":
            if self._highest is None or ext > self._highest:
                self._highest = ext
                result.frames.append(AssembledFrame(timestamp, bytes(payload), seq, seq))
            return result
        if (self._cursor is not None and ext < self._cursor) or ext in self._buffer:
            return result
        self._buffer[ext] = _Packet(timestamp, marker, bytes(payload), frame_start, now_ms)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        if self._cursor is None:
            self._cursor = self._scan = ext
        self._advance(now_ms, result)
        return result

    def poll(self, now_ms: float) -> AssemblyResult:
        """Give up on gaps that have waited `max_wait_ms` by `now_ms`; return the frames that unblocks."""
        result = AssemblyResult()
        if self.kind == "video" and self._cursor is not None:
            self._advance(now_ms, result)
        return result

    def next_deadline(self) -> float | None:
        """Return when a waiting gap will be given up (call `poll` then), or None when none waits."""
        return self._deadline

    def __len__(self) -> int:
        """Return how many packets are held, waiting to complete a frame."""
        return len(self._buffer)

    def _reset_video(self) -> None:
        self._buffer = {}
        self._cursor = None
        self._scan = 0
        self._start_known = False
        self._loss_reported = False
        self._prev_timestamp = None
        self._gap = None
        self._deadline = None

    def _unwrap(self, seq: int) -> int:
        if self._highest is None:
            return seq
        delta = (seq - self._highest + SEQ_MODULO // 2) % SEQ_MODULO - SEQ_MODULO // 2
        return self._highest + delta

    def _advance(self, now_ms: float, result: AssemblyResult) -> None:
        """Emit every frame the cursor can reach; give up on gaps that are due; note the next deadline."""
        self._deadline = None
        while True:
            assert self._cursor is not None
            if not self._start_known and not self._find_start(result):
                missing = self._cursor
            else:
                walked = self._walk_frame(result)
                if walked is None:
                    continue
                missing = walked
            if not self._give_up_if_due(missing, now_ms, result):
                return

    def _find_start(self, result: AssemblyResult) -> bool:
        """Drop packets at the cursor until one is known to start a frame; False when one is missing."""
        assert self._cursor is not None
        while (packet := self._buffer.get(self._cursor)) is not None:
            if packet.frame_start or (self._prev_timestamp is not None and packet.timestamp != self._prev_timestamp):
                self._start_known = True
                self._scan = self._cursor
                return True
            del self._buffer[self._cursor]
            if not self._loss_reported:
                self._loss_reported = result.lost = True
            self._prev_timestamp = packet.timestamp
            self._cursor += 1
            if packet.marker:
                self._start_known = True
                self._scan = self._cursor
                return True
        return False

    def _walk_frame(self, result: AssemblyResult) -> int | None:
        """Walk the frame at the cursor; emit or drop it and return None, or return the seq it waits for."""
        assert self._cursor is not None
        start = self._cursor
        seq = self._scan
        while (packet := self._buffer.get(seq)) is not None:
            if seq > start and (packet.frame_start or packet.timestamp != self._buffer[seq - 1].timestamp):
                self._consume(start, seq - 1, result, emit=False)
                return None
            if packet.marker:
                self._consume(start, seq, result, emit=True)
                return None
            seq += 1
        self._scan = seq
        return seq

    def _consume(self, first: int, last: int, result: AssemblyResult, *, emit: bool) -> None:
        packets = [self._buffer.pop(seq) for seq in range(first, last + 1)]
        if emit:
            data = b"".join(p.payload for p in packets)
            result.frames.append(AssembledFrame(packets[0].timestamp, data, first % SEQ_MODULO, last % SEQ_MODULO))
        else:
            result.lost = True
        self._prev_timestamp = packets[-1].timestamp
        self._cursor = self._scan = last + 1
        self._start_known = True

    def _give_up_if_due(self, missing: int, now_ms: float, result: AssemblyResult) -> bool:
        """Give up on the frames touching the gap at `missing` when it waited long enough; say whether it did."""
        assert self._cursor is not None and self._highest is not None
        if self._gap is None or self._gap[0] != missing or self._gap[1] is None:
            if self._highest < missing:
                self._gap = (missing, None)
            else:
                self._gap = (missing, min(p.arrived_ms for seq, p in self._buffer.items() if seq > missing))
        since = self._gap[1]
        overfull = self._highest - self._cursor >= self.capacity
        if since is None and not overfull:
            return False
        if since is not None and now_ms - since < self.max_wait_ms and not overfull:
            self._deadline = since + self.max_wait_ms
            return False
        for seq in range(self._cursor, missing):
            del self._buffer[seq]
        later_seqs = [seq for seq in self._buffer if seq > missing]
        self._cursor = min(later_seqs) if later_seqs else missing
        self._start_known = False
        self._prev_timestamp = None
        self._loss_reported = result.lost = True
        self._gap = None
        return True

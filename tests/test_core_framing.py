"""Tests for tvapp.core.framing: RTP payloads in (any order, with loss), whole frames out, in order, once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvapp.core.framing import AssembledFrame, AssemblyResult, FrameAssembler


@dataclass(frozen=True)
class Pkt:
    seq: int
    timestamp: int
    marker: bool
    payload: bytes
    frame_start: bool
    frame: int  # index of its frame in the stream


def stream(sizes: list[int], seq0: int = 1000, ts0: int = 90_000, ts_step: int = 3000) -> list[Pkt]:
    """Build a video packet stream: frame i has sizes[i] packets; seqs and timestamps wrap around."""
    out = []
    n = 0
    for i, size in enumerate(sizes):
        ts = (ts0 + i * ts_step) % (1 << 32)
        for j in range(size):
            payload = f"f{i}p{j};".encode()
            out.append(Pkt((seq0 + n) % 65536, ts, j == size - 1, payload, j == 0, i))
            n += 1
    return out


def frame_of(packets: list[Pkt], i: int) -> AssembledFrame:
    """Return the frame that frame i of the stream should come out as."""
    mine = [p for p in packets if p.frame == i]
    return AssembledFrame(mine[0].timestamp, b"".join(p.payload for p in mine), mine[0].seq, mine[-1].seq)


def feed(asm: FrameAssembler, p: Pkt, now: float, *, start_known: bool = True) -> AssemblyResult:
    return asm.add(p.seq, p.timestamp, p.marker, p.payload, now, p.frame_start if start_known else None)


# --- audio -------------------------------------------------------------------------------------------------

def test_audio_every_packet_is_a_frame_at_once() -> None:
    asm = FrameAssembler("audio")
    r = asm.add(7, 960, False, b"a", 0.0)
    assert r.frames == [AssembledFrame(960, b"a", 7, 7)] and not r.lost
    assert asm.add(9, 2880, True, b"c", 1.0).frames == [AssembledFrame(2880, b"c", 9, 9)]  # 8 skipped: no wait
    assert asm.add(8, 1920, False, b"b", 2.0).frames == []  # older than the newest: dropped
    assert asm.add(9, 2880, True, b"c", 3.0).frames == []  # duplicate
    assert asm.poll(1e9) == AssemblyResult()


def test_audio_wraps_around_sequence_and_timestamp() -> None:
    asm = FrameAssembler("audio")
    got = []
    for i, seq in enumerate((65534, 65535, 0, 1)):
        ts = (2**32 - 960 + i * 960) % 2**32
        got += asm.add(seq, ts, False, bytes([i]), float(i)).frames
    assert [(f.first_seq, f.timestamp) for f in got] == [(65534, 2**32 - 960), (65535, 0), (0, 960), (1, 1920)]
    assert asm.add(65535, 0, False, b"x", 9.0).frames == []


def test_audio_huge_jump_resets_and_reports_loss() -> None:
    asm = FrameAssembler("audio", capacity=100)
    asm.add(10, 0, False, b"a", 0.0)
    r = asm.add(500, 0, False, b"b", 1.0)
    assert r.lost and r.frames == [AssembledFrame(0, b"b", 500, 500)]
    r = asm.add(20, 0, False, b"c", 2.0)  # far behind the new stream: a restart again, not "old"
    assert r.lost and len(r.frames) == 1
    assert asm.add(21, 0, False, b"d", 3.0) == AssemblyResult([AssembledFrame(0, b"d", 21, 21)], False)


# --- video: the happy paths --------------------------------------------------------------------------------

def test_video_frame_comes_out_when_its_marker_arrives() -> None:
    pkts = stream([3, 1, 2])
    asm = FrameAssembler("video")
    emitted = []
    for p in pkts:
        r = feed(asm, p, 0.0)
        assert not r.lost
        emitted += r.frames
        if p.marker:
            assert r.frames == [frame_of(pkts, p.frame)]
        else:
            assert r.frames == []
    assert emitted == [frame_of(pkts, i) for i in range(3)]
    assert len(asm) == 0 and asm.next_deadline() is None


def test_video_reordered_frames_come_out_in_order_once_complete() -> None:
    pkts = stream([2, 2])
    asm = FrameAssembler("video")
    assert feed(asm, pkts[0], 0).frames == []
    assert feed(asm, pkts[3], 1).frames == []  # frame 1's end, before frame 0 is complete
    assert feed(asm, pkts[2], 2).frames == []
    r = feed(asm, pkts[1], 3)
    assert r.frames == [frame_of(pkts, 0), frame_of(pkts, 1)] and not r.lost


def test_video_frame_start_lets_the_first_frame_out_without_a_previous_marker() -> None:
    pkts = stream([2, 2])
    asm = FrameAssembler("video")
    assert feed(asm, pkts[1], 0).frames == []
    r = feed(asm, pkts[0], 1)  # older than the first packet: the stream began at pkts[1]
    assert r.frames == []
    asm = FrameAssembler("video")
    got = [f for p in pkts for f in feed(asm, p, 0).frames]
    assert got == [frame_of(pkts, 0), frame_of(pkts, 1)]


def test_video_without_frame_start_begins_after_the_first_marker_and_reports_the_dropped_frame() -> None:
    pkts = stream([2, 2, 1])
    asm = FrameAssembler("video")
    results = [feed(asm, p, 0, start_known=False) for p in pkts]
    assert [r.lost for r in results] == [True, False, False, False, False]
    assert [f for r in results for f in r.frames] == [frame_of(pkts, 1), frame_of(pkts, 2)]


def test_video_timestamp_change_proves_a_frame_start() -> None:
    pkts = stream([2, 2])
    asm = FrameAssembler("video")
    asm.add(pkts[0].seq, pkts[0].timestamp, False, b"?", 0.0)  # unknown start: dropped
    got = [f for p in pkts[1:] for f in feed(asm, p, 0, start_known=False).frames]
    assert got == [frame_of(pkts, 1)]  # pkts[2] has a new timestamp, so it starts a frame


def test_video_wraps_sequence_and_timestamp() -> None:
    pkts = stream([3, 3, 3], seq0=65532, ts0=2**32 - 3000)
    assert pkts[-1].seq < pkts[0].seq and pkts[4].timestamp == 0
    asm = FrameAssembler("video")
    order = [0, 2, 1, 5, 4, 3, 8, 6, 7]
    got = [f for i in order for f in feed(asm, pkts[i], 0).frames]
    assert got == [frame_of(pkts, i) for i in range(3)]


# --- video: loss, retransmission, give-up ------------------------------------------------------------------

def test_video_gap_waits_for_a_retransmission() -> None:
    pkts = stream([3, 2])
    asm = FrameAssembler("video", max_wait_ms=150)
    for p in (pkts[0], pkts[2], pkts[3], pkts[4]):
        assert feed(asm, p, 100.0).frames == []
    assert asm.next_deadline() == 250.0
    assert asm.poll(249.0) == AssemblyResult()
    r = feed(asm, pkts[1], 240.0)  # the NACKed packet, in time
    assert r.frames == [frame_of(pkts, 0), frame_of(pkts, 1)] and not r.lost
    assert asm.next_deadline() is None


def test_video_gap_given_up_drops_the_frames_touching_it_and_reports_loss_once() -> None:
    pkts = stream([2, 3, 2, 1])
    asm = FrameAssembler("video", max_wait_ms=150)
    lost_seq = pkts[3].seq  # middle of frame 1
    for p in pkts:
        if p.seq != lost_seq:
            r = feed(asm, p, 10.0 * p.frame)
            assert not r.lost
    assert asm.next_deadline() == 10.0 + 150.0  # the first packet after the gap came with frame 1
    r = asm.poll(160.0)
    assert r.lost and r.frames == [frame_of(pkts, 2), frame_of(pkts, 3)]
    assert asm.poll(1000.0) == AssemblyResult()
    late = feed(asm, pkts[3], 1000.0)  # the retransmission came too late
    assert late == AssemblyResult()


def test_video_lost_marker_packet_loses_its_frame_only() -> None:
    pkts = stream([2, 2, 2])
    asm = FrameAssembler("video", max_wait_ms=50)
    got: list[AssembledFrame] = []
    lost = 0
    for i, p in enumerate(pkts):
        if i == 3:
            continue
        r = feed(asm, p, 20.0 * i)
        got += r.frames
        lost += r.lost
    r = asm.poll(1000.0)
    got += r.frames
    lost += r.lost
    assert got == [frame_of(pkts, 0), frame_of(pkts, 2)] and lost == 1


def test_video_give_up_happens_on_add_too() -> None:
    pkts = stream([1, 1, 1, 1])
    asm = FrameAssembler("video", max_wait_ms=100)
    feed(asm, pkts[0], 0.0)
    feed(asm, pkts[2], 10.0)
    r = feed(asm, pkts[3], 120.0)
    assert r.lost and r.frames == [frame_of(pkts, 2), frame_of(pkts, 3)]


def test_video_run_without_marker_met_by_next_frame_is_dropped() -> None:
    asm = FrameAssembler("video")
    asm.add(1, 100, False, b"a", 0.0, True)
    asm.add(2, 100, False, b"b", 0.0, False)  # the sender forgot the marker
    r = asm.add(3, 200, True, b"c", 0.0, True)
    assert r.lost and r.frames == [AssembledFrame(200, b"c", 3, 3)]


def test_video_huge_jump_resets_the_stream() -> None:
    asm = FrameAssembler("video", capacity=64)
    asm.add(10, 100, False, b"a", 0.0, True)
    r = asm.add(1000, 900, True, b"z", 1.0, True)
    assert r.lost and r.frames == [AssembledFrame(900, b"z", 1000, 1000)]
    assert asm.add(11, 100, True, b"b", 2.0) .lost  # far behind the new stream: another reset
    assert len(asm) == 0


def test_video_frame_bigger_than_capacity_is_dropped() -> None:
    asm = FrameAssembler("video", capacity=8)
    lost = False
    for seq in range(20):
        r = asm.add(seq, 100, False, b"x", 0.0, seq == 0)
        assert r.frames == []
        lost |= r.lost
    assert lost and len(asm) <= 8
    r = asm.add(20, 100, True, b"x", 0.0)
    assert r.frames == []
    r = asm.add(21, 200, True, b"y", 0.0, True)
    assert r.frames == [AssembledFrame(200, b"y", 21, 21)]


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        FrameAssembler("data")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FrameAssembler("video", capacity=0)
    with pytest.raises(ValueError):
        FrameAssembler("video", max_wait_ms=-1)
    asm = FrameAssembler("video")
    with pytest.raises(ValueError):
        asm.add(65536, 0, True, b"", 0.0)
    with pytest.raises(ValueError):
        asm.add(0, 2**32, True, b"", 0.0)


# --- properties --------------------------------------------------------------------------------------------

frame_sizes = st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=25)
seq_starts = st.one_of(st.integers(min_value=0, max_value=65535), st.integers(min_value=65500, max_value=65535))
ts_starts = st.one_of(st.integers(min_value=0, max_value=2**32 - 1), st.just(2**32 - 4000))


def complete_frames(pkts: list[Pkt], delivered: set[int]) -> list[AssembledFrame]:
    """Return the frames all of whose packets (by index in pkts) were delivered, in stream order."""
    frames = sorted({p.frame for p in pkts})
    return [frame_of(pkts, f) for f in frames
            if all(i in delivered for i, p in enumerate(pkts) if p.frame == f)]


@settings(max_examples=300, deadline=None)
@given(st.data(), frame_sizes, seq_starts, ts_starts, st.booleans())
def test_any_order_loss_and_timing_emits_only_complete_frames_in_order_once(
        data: st.DataObject, sizes: list[int], seq0: int, ts0: int, start_known: bool) -> None:
    pkts = stream(sizes, seq0, ts0)
    n = len(pkts)
    order = data.draw(st.lists(st.integers(min_value=0, max_value=n - 1), max_size=2 * n), label="order")
    steps = data.draw(st.lists(st.sampled_from([0.0, 5.0, 40.0, 200.0]), min_size=len(order),
                               max_size=len(order)), label="steps")
    asm = FrameAssembler("video", max_wait_ms=100)
    now = 0.0
    got: list[AssembledFrame] = []
    for i, step in zip(order, steps):
        now += step
        got += feed(asm, pkts[i], now, start_known=start_known).frames
        if step == 200.0:
            got += asm.poll(now).frames
    got += asm.poll(now + 1000).frames
    expected = complete_frames(pkts, set(order))
    positions = [expected.index(f) for f in got]  # ValueError if an emitted frame is not a complete one
    assert positions == sorted(set(positions))


@settings(max_examples=300, deadline=None)
@given(st.data(), frame_sizes, seq_starts, ts_starts)
def test_every_complete_frame_comes_out_when_gaps_resolve_before_giving_up(
        data: st.DataObject, sizes: list[int], seq0: int, ts0: int) -> None:
    """The stream's first packet arrives first; the rest in any order, some lost, all within max_wait."""
    pkts = stream(sizes, seq0, ts0)
    rest = data.draw(st.permutations(range(1, len(pkts))), label="order")
    kept = [i for i in rest if data.draw(st.integers(0, 4), label=f"keep {i}")]
    asm = FrameAssembler("video", max_wait_ms=150)
    got: list[AssembledFrame] = []
    lost = False
    for k, i in enumerate([0, *kept]):
        r = feed(asm, pkts[i], float(k))
        got += r.frames
        lost |= r.lost
    r = asm.poll(10_000.0)
    got += r.frames
    lost |= r.lost
    delivered = {0, *kept}
    assert got == complete_frames(pkts, delivered)
    newest = max(delivered)
    assert lost == any(i not in delivered for i in range(newest))
    assert asm.poll(20_000.0) == AssemblyResult()


@settings(max_examples=200, deadline=None)
@given(st.data(), frame_sizes, seq_starts)
def test_in_order_delivery_with_loss_and_real_timing_emits_every_complete_frame(
        data: st.DataObject, sizes: list[int], seq0: int) -> None:
    """Packets 10 ms apart, lost ones never come back, polls every 30 ms: the SFU's normal life."""
    pkts = stream(sizes, seq0)
    delivered = {i for i in range(len(pkts)) if i == 0 or data.draw(st.integers(0, 5), label=f"keep {i}")}
    asm = FrameAssembler("video", max_wait_ms=150)
    got: list[AssembledFrame] = []
    for i in range(len(pkts)):
        now = 10.0 * i
        if i in delivered:
            got += feed(asm, pkts[i], now).frames
        if i % 3 == 0:
            got += asm.poll(now).frames
    got += asm.poll(10.0 * len(pkts) + 1000).frames
    assert got == complete_frames(pkts, delivered)

"""Per-subscriber congestion handling over real links: a real server, three bot publishers, two measuring members.

The good member receives on loopback; the weak member runs inside a userspace netem namespace whose downlink is
shaped to 600 kb/s (token bucket with a 100 ms queue). Three publishers send 500 kb/s of video each and a tone
(only one of them talks: the active speaker). The weak member's video tracks are switched off with
track_switched_off events, the speaker's last; its audio keeps arriving (loss < 1 %); the good member's frame
and packet rates are those it had before the weak member joined (measured first, in this test); when the link
goes to 10 Mb/s every track is back (track_switched_on, as the member records it) within the issue's 5 s, and
decodes steadily from its first second on (no gap over MAX_GAP_S, at least half the good member's frames): before
issue 18's fix a switched-on track could decode one picture, or none, for 3-4.5 s while its packets arrived.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tvapp.testing.congestion import (
    NetemRoom,
    audio_loss,
    flowing,
    noise_video,
    shaped_link,
    stats_at,
    subscriptions,
    window,
)
from tvapp.testing.netem import NetemLink

PUBLISHERS = {"pa": [], "pb": ["--talk", "999998/1000000@1"], "pc": ["--talk", "999999/1000000@1"]}
WEAK_KBPS = 600.0
MEASURE_S = 8.0
AFTER_ON_S = 4.0  # how long after the last switch-on every track must have been decoding
FIRST_FRAME_S = 1.0  # a switched-on track's first frame: the keyframe asked of its publisher, and its way here
# The longest a switched-on track may go without a new frame after that: stats come every 0.5 s, a loaded machine
# hitches ~1 s, the stall of issue 18 was 3-4.5 s.
MAX_GAP_S = 1.6


@pytest.fixture
def weak_link() -> Iterator[NetemLink]:
    with shaped_link("cg", down_kbps=WEAK_KBPS, seed=7) as link:
        yield link


def test_a_weak_subscriber_loses_video_in_priority_order_keeps_audio_and_does_not_drag_the_room(
        weak_link: NetemLink, tmp_path: Path) -> None:
    with NetemRoom(tmp_path, weak_link, "cg") as room:
        server = room.server
        # Noise video: the pattern compresses to almost nothing, noise does not.
        room.publish(PUBLISHERS, noise_video(tmp_path / "noise.mp4"))
        good = room.member("good")
        good.wait("6 subscriptions with frames", lambda rs: flowing(rs, 6), timeout=30)
        start = good.records()[-1]["t"]
        good.wait("a measuring window", lambda rs: rs[-1]["t"] >= start + MEASURE_S, timeout=MEASURE_S + 10)
        alone = window(good.records(), start, start + MEASURE_S)

        weak = room.member("weak", behind_link=True)
        weak.wait("6 subscriptions", lambda rs: len(subscriptions(rs)) >= 6, timeout=30)
        kinds = subscriptions(weak.records())
        videos = {sid for sid, kind in kinds.items() if kind == "video"}
        # 3 x (500 kb/s video) + 3 tones on a 600 kb/s link: video must go, the speaker's last.
        offs = weak.wait("every video track switched off",
                         lambda rs: _first_offs(rs) if set(_first_offs(rs)) >= videos else None, timeout=25)
        records = weak.records()
        owner = {r["sid"]: r["participant"] for r in records if r.get("event") == "subscribed"}
        sids = {p["identity"]: p["sid"] for p in server.http.get("/v1/rooms/cg/participants").json()}
        assert owner[offs[-1]] == sids["pa"], (offs, owner, sids)  # the only one talking: the active speaker
        assert all(r["reason"] == "congestion" for r in records if r.get("event") == "track_switched_off")

        # Steady state on the weak link: audio arrives; the good member gets what it got before the weak one came.
        settled = weak.records()[-1]["t"] + 2.0
        weak.wait("a measuring window", lambda rs: rs[-1]["t"] >= settled + MEASURE_S, timeout=MEASURE_S + 15)
        good.wait("a measuring window", lambda rs: rs[-1]["t"] >= settled + MEASURE_S, timeout=10)
        loss = audio_loss(weak.records(), settled, settled + MEASURE_S)
        together = window(good.records(), settled, settled + MEASURE_S)
        print(f"weak member's audio loss {loss:.4f}; good member alone {alone}\nwith the weak one {together}")
        # A failed probe (every ~2 s on this link) costs one 250 ms tick of overload: the subscriber NACKs the
        # probe's first lost packets at once (receiver reports alone came 0.5-1.5 s late: 0.4-1.4 % loss).
        assert loss < 0.01, loss
        # Compared in all (one publisher's frame rate wobbles with the shared CPU, the sum less so); the good member
        # loses nothing. Without congestion handling the weak member's sends do not reach the good one's link either,
        # so this guards against the SFU itself (its loop, keyframe requests, caps) dragging the room down.
        for kind, share in (("audio", 0.9), ("video", 0.7)):
            for rate in ("pps", "fps"):
                before = sum(v[rate] for v in alone.values() if v["kind"] == kind)
                after = sum(v[rate] for v in together.values() if v["kind"] == kind)
                assert after >= share * before, (kind, rate, before, after)
        lost = sum(v["lost"] for v in together.values())
        assert lost <= 0.01 * sum(v["received"] for v in together.values()), together

        # The link comes back: every track is switched on again within 5 s.
        restored = time.monotonic()  # the member's clock too (CLOCK_MONOTONIC is the machine's)
        weak_link.set(down_kbps=10_000.0)
        back = weak.wait("every video track back on", lambda rs: _ons_after(rs, restored, videos), timeout=15)
        print(f"back on after {[round(t - restored, 2) for t in back.values()]} s")
        # The rule's worst case is ~4 s (a probe failed just before the restore: 2 s back-off, then 0.75 s per
        # track, from its first bytes; tests/test_core_congestion.py sweeps every phase); the rest is the keyframe
        # and the event's way to the member.
        assert max(back.values()) - restored <= 5.0, back
        # Switched on means pictures, not only packets: every track decodes steadily after its switch-on, at no less
        # than half the good member's frame rate over the same window, up to the last second of it.
        end = max(back.values()) + AFTER_ON_S
        weak.wait("a window after the last switch-on", lambda rs: rs[-1]["t"] >= end, timeout=AFTER_ON_S + 10)
        good.wait("a window after the last switch-on", lambda rs: rs[-1]["t"] >= end, timeout=10)
        decoded = {sid: _frames(weak.records(), sid, on, end) for sid, on in back.items()}
        recent = window(weak.records(), end - 1.0, end)
        rates = window(good.records(), end - 1.0, end)
        print(f"decoded after switch-on {decoded}; last second weak {[round(recent[s]['fps'], 1) for s in back]} "
              f"good {[round(rates[s]['fps'], 1) for s in back]} fps")
        stalls = {sid: _longest_stall(weak.records(), sid, on + FIRST_FRAME_S, end) for sid, on in back.items()}
        print(f"longest gap between decoded frames from {FIRST_FRAME_S} s after switch-on: {stalls}")
        for sid, on in back.items():
            wanted = 0.5 * _frames(good.records(), sid, on, end)
            assert decoded[sid] >= wanted, (sid, decoded, wanted)
            assert recent[sid]["fps"] >= 0.5 * rates[sid]["fps"] > 0, (sid, recent[sid], rates[sid])
            # The media SSRC's packets keep counting once retransmissions (another SSRC) have arrived.
            assert recent[sid]["pps"] >= 0.5 * rates[sid]["pps"], (sid, recent[sid], rates[sid])
            assert stalls[sid] <= MAX_GAP_S, (sid, stalls)
        assert not [line for line in server.output if "congestion handling" in line and "failed" in line]


def _frames(records: list[dict[str, Any]], sid: str, start: float, end: float) -> int:
    """Return how many frames of track `sid` were decoded over [start, end] (from the cumulative stats)."""
    before, after = stats_at(records, start).get(sid), stats_at(records, end).get(sid)
    return int(after["frames"]) - (int(before["frames"]) if before else 0) if after else 0


def _longest_stall(records: list[dict[str, Any]], sid: str, start: float, end: float) -> float:
    """Return the longest time over [start, end] in which track `sid` decoded no new frame (from the stats)."""
    last_change, longest, count = start, 0.0, None
    for r in records:
        if "stats" not in r or sid not in r["stats"] or r["t"] > end:
            continue
        frames = r["stats"][sid]["frames"]
        if r["t"] >= start and count is not None and frames != count:
            longest = max(longest, r["t"] - last_change)
            last_change = r["t"]
        count = frames
    return max(longest, end - last_change)


def _first_offs(records: list[dict[str, object]]) -> list[str]:
    seen: list[str] = []
    for r in records:
        if r.get("event") == "track_switched_off" and r["sid"] not in seen:
            seen.append(str(r["sid"]))
    return seen


def _ons_after(records: list[dict[str, object]], t: float, videos: set[str]) -> dict[str, float] | None:
    state: dict[str, tuple[bool, float]] = {}
    for r in records:
        if r.get("event") in ("track_switched_off", "track_switched_on"):
            state[str(r["sid"])] = (r["event"] == "track_switched_on", float(r["t"]))  # type: ignore[arg-type]
    if all(state.get(sid, (True, 0.0))[0] for sid in videos):
        return {sid: max(t, state[sid][1]) for sid in videos if sid in state}
    return None

"""tvapp.server.forwarding: a subscription moving between a track and its low rendition at a keyframe.

Real aiortc transceivers (an offline peer connection) and the SFU's own Publication/Subscription; frames are handed
to the publications as the receiver tap would after reassembly, and what the subscription's sender would packetize
is read from its PacketTrack.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from tvapp.core.framing import AssembledFrame
from tvapp.server.forwarding import Publication, Subscription
from tvapp.testing.aio import runner

run = runner(deadline=30)
KEY, DELTA = b"\x10main-key", b"\x11main-delta"
LOW_KEY, LOW_DELTA = b"\x10low-key", b"\x11low-delta"


def publication(pc: RTCPeerConnection, sid: str, rendition_of: str | None = None) -> Publication:
    pub = Publication(sid, "PA_1", "c-" + sid, "video", pc.addTransceiver("video", direction="recvonly"),
                      keyframe_interval_ms=0.0)
    pub.set_codec("VP8", None)
    pub.rendition_of = rendition_of
    return pub


def frame(pub: Publication, timestamp: int, data: bytes) -> None:
    pub._forward(AssembledFrame(timestamp, data, 0, 0), 0.0)  # what _handle does per frame


async def sent(sub: Subscription) -> list[tuple[int, bytes]]:
    """Return (pts, data) of every packet queued for the subscriber's sender."""
    out = []
    while sub.track.backlog:
        packet = await sub.track.recv()
        out.append((int(packet.pts or 0), bytes(packet)))
    return out


def test_a_subscription_moves_to_the_rendition_at_its_keyframe_and_back_on_one_timeline() -> None:
    async def scenario() -> None:
        pc = RTCPeerConnection()
        main, low = publication(pc, "TR_main"), publication(pc, "TR_low", rendition_of="TR_main")
        sub = Subscription(pc.addTransceiver("video", direction="sendonly"), "video", "VP8")
        sub.attach(main)
        frame(main, 90_000, KEY)
        frame(main, 93_000, DELTA)
        assert await sent(sub) == [(90_000, KEY), (93_000, DELTA)]
        assert not sub.low

        sub.switch_source(low)
        assert sub.low and sub.source is main and sub.target is low
        frame(low, 5_000_000, LOW_DELTA)  # not a keyframe: the main track goes on meanwhile
        frame(main, 96_000, DELTA)
        assert await sent(sub) == [(96_000, DELTA)]
        frame(low, 5_006_000, LOW_KEY)  # its keyframe: from here the rendition, one frame step after the last pts
        frame(main, 99_000, DELTA)
        frame(low, 5_012_000, LOW_DELTA)
        assert await sent(sub) == [(99_000, LOW_KEY), (105_000, LOW_DELTA)]
        assert sub.source is low and sub.target is None
        assert sub not in main.subscriptions and sub in low.subscriptions

        sub.switch_source(main)  # back up: at the main track's next keyframe
        frame(main, 102_000, DELTA)
        frame(low, 5_018_000, LOW_DELTA)
        frame(main, 105_000, KEY)
        frame(low, 5_024_000, LOW_DELTA)
        assert await sent(sub) == [(111_000, LOW_DELTA), (114_000, KEY)]
        assert sub.source is main and not sub.low and sub not in low.subscriptions

        # The rendition goes away while carried: the subscription falls back to its track, from a keyframe.
        sub.switch_source(low)
        frame(low, 5_030_000, LOW_KEY)
        assert sub.source is low
        low.close()
        assert sub.source is main and sub.publication is main and sub in main.subscriptions
        frame(low, 5_033_000, LOW_DELTA)  # a straggler of the closed rendition: not sent
        frame(main, 108_000, DELTA)  # not a keyframe: not sent either
        frame(main, 111_000, KEY)
        assert await sent(sub) == [(117_000, LOW_KEY), (120_000, KEY)]
        await pc.close()

    run(scenario())


def test_a_withheld_subscription_changes_source_at_once_and_resumes_at_its_keyframe() -> None:
    async def scenario() -> None:
        pc = RTCPeerConnection()
        main, low = publication(pc, "TR_main"), publication(pc, "TR_low", rendition_of="TR_main")
        sub = Subscription(pc.addTransceiver("video", direction="sendonly"), "video", "VP8")
        sub.attach(main)
        frame(main, 90_000, KEY)
        sub.switch(on=False)  # switched off for congestion, then back on at the low layer
        sub.switch_source(low)
        assert sub.source is low and sub.target is None
        frame(low, 7_000, LOW_DELTA)
        sub.switch(on=True)
        frame(main, 93_000, DELTA)
        frame(low, 10_000, LOW_DELTA)
        frame(low, 13_000, LOW_KEY)
        assert await sent(sub) == [(93_000, LOW_KEY)]  # what was queued went at the switch-off
        await pc.close()

    run(scenario())


def test_unsubscribing_or_attaching_anew_leaves_no_trace_of_a_move() -> None:
    async def scenario() -> None:
        pc = RTCPeerConnection()
        main, low = publication(pc, "TR_main"), publication(pc, "TR_low", rendition_of="TR_main")
        sub = Subscription(pc.addTransceiver("video", direction="sendonly"), "video", "VP8")
        sub.attach(main)
        sub.switch_source(low)  # pending: in both sets
        assert sub in main.subscriptions and sub in low.subscriptions
        sub.detach()
        assert not main.subscriptions and not low.subscriptions
        # Attached anew while moving (a media restart of the publisher): the main track, from its keyframe.
        sub.attach(main)
        sub.switch_source(low)
        sub.attach(main)
        assert sub.source is main and sub.target is None and not sub.low and sub not in low.subscriptions
        await asyncio.sleep(0)
        await pc.close()

    run(scenario())

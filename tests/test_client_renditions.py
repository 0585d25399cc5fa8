"""tvapp.client.renditions: a video track's low rendition at the publisher (simulcast by two tracks), no server.

The rendition's own feed reads a real test pattern through a MediaRelay copy, as publish_track(simulcast=True)
makes it; what its sender would encode is read from that feed.
"""

from __future__ import annotations

import asyncio

import av
import pytest
from aiortc.contrib.media import MediaRelay

from tvapp.client.feeds import LocalFeed
from tvapp.client.participants import LocalParticipant, LocalTrackPublication
from tvapp.client.renditions import NoFormat, low_rendition
from tvapp.client.sources import TestPatternTrack
from tvapp.protocol import messages as m
from tvapp.testing.aio import runner

run = runner(deadline=30)


def test_a_rendition_names_its_main_track_starts_paused_and_sends_160x90_only_when_unpaused() -> None:
    async def scenario() -> None:
        local = LocalParticipant(link=None)  # type: ignore[arg-type]  # acknowledge() never sends on a first ack
        source = TestPatternTrack(640, 360, 30)
        relay = MediaRelay()
        camera = LocalTrackPublication(local, None, relay.subscribe(source, buffered=False),  # type: ignore[arg-type]
                                       "camera", "", format_target=source)
        local.publications[camera.cid] = camera
        local.acknowledge(camera.cid, "TR_main")
        low = low_rendition(camera, lambda: LocalTrackPublication(
            local, None, relay.subscribe(source, buffered=False), "camera", "", format_target=NoFormat()))  # type: ignore[arg-type]
        local.publications[low.cid] = low
        assert camera.low is low and low.rendition_of is camera
        msg = low.publish_message()
        assert (msg.rendition_of, msg.layer, msg.kind, msg.source) == ("TR_main", "low", "video", "camera")
        assert camera.publish_message().rendition_of is None
        local.acknowledge(low.cid, "TR_low")
        assert low.constraints.paused  # nobody needs it yet: its first constraints are paused, not none

        main_feed, low_feed = LocalFeed(camera), LocalFeed(low)
        frame = await asyncio.wait_for(main_feed.recv(), 5)
        assert isinstance(frame, av.VideoFrame) and (frame.width, frame.height) == (640, 360)
        with_nothing = asyncio.ensure_future(low_feed.recv())
        for _ in range(5):  # the main track goes on while its paused rendition passes nothing
            await asyncio.wait_for(main_feed.recv(), 5)
        assert not with_nothing.done()
        low.apply_constraints(m.PublishConstraints(sid="TR_low"))  # the SFU asks for it
        frame = await asyncio.wait_for(with_nothing, 5)
        assert isinstance(frame, av.VideoFrame) and (frame.width, frame.height) == (160, 90)
        assert low.video_format == (160, 90, 15.0)

        # It follows its main track's mute (by the server here) and its publish message names the main's new sid
        # after a full rejoin (the main track is announced first; the rendition when that one is acknowledged).
        camera.set_server_muted(True)
        assert not low.sending
        camera.set_server_muted(False)
        assert low.sending
        assert [p.cid for p in local.rejoin_messages()] == [camera.cid]
        camera.sid = "TR_main2"
        assert low.publish_message().rendition_of == "TR_main2"
        main_feed.stop()
        low_feed.stop()
        source.stop()

    run(scenario())


def test_only_a_published_video_track_without_rendition_gets_one() -> None:
    async def scenario() -> None:
        local = LocalParticipant(link=None)  # type: ignore[arg-type]
        camera = LocalTrackPublication(local, None, TestPatternTrack(320, 240, 15), "camera", "")  # type: ignore[arg-type]
        with pytest.raises(ValueError):  # not acknowledged yet: no sid to name
            low_rendition(camera, lambda: LocalTrackPublication(local, None, TestPatternTrack(320, 240, 15), "camera", ""))  # type: ignore[arg-type]
        camera.sid = "TR_1"
        low_rendition(camera, lambda: LocalTrackPublication(local, None, TestPatternTrack(320, 240, 15), "camera", ""))  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            low_rendition(camera, lambda: LocalTrackPublication(local, None, TestPatternTrack(320, 240, 15), "camera", ""))  # type: ignore[arg-type]
        camera.track.stop()

    run(scenario())

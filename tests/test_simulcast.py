"""Simulcast by two tracks through a real `tvapp serve` and its SFU, with Python SDK rooms on loopback.

A publisher publishes a camera with its low rendition (publish_track(simulcast=True)); the room sees one track
(REST, the roster, one subscription), the rendition stays paused at the publisher while nobody needs it, and the
server refuses renditions that name nothing, audio, or a second low one. Moving a subscriber to the rendition
needs a weak link: tests/test_simulcast_netem.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tvapp.client import RequestError, Room, TrackSubscribed
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.protocol import messages as m
from tvapp.testing.aio import runner
from tvapp.testing.recorder import disconnecting, join_recorded
from tvapp.testing.rest import new_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async


run = runner(deadline=90)


def test_a_rendition_is_part_of_its_track_for_the_room_and_paused_while_nobody_needs_it(
        media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = new_room(media_server, "simul")
        alice, _ = await join_recorded(media_server, name, "alice")
        async with disconnecting(alice):
            camera = await alice.local_participant.publish_track(TestPatternTrack(640, 360, 30), source="camera",
                                                                 simulcast=True)
            low = camera.low
            assert low is not None and low.sid is not None and low.sid != camera.sid
            low_sid = low.sid

            bob, b_log = await join_recorded(media_server, name, "bob")
            async with disconnecting(bob):
                subscribed = await b_log.wait(TrackSubscribed, timeout=20)
                assert subscribed.track.sid == camera.sid
                # One tile: bob's roster and subscriptions know the camera only.
                remote = next(iter(bob.participants.values()))
                assert set(remote.tracks) == {camera.sid}

                def rest() -> Any:
                    return media_server.http.get(f"/v1/rooms/{name}/participants/alice").json()

                # REST: the rendition is part of the camera; bob's good link never needs it: paused at alice.
                await wait_until_async(lambda: rest()["tracks"][0]["renditions"][0]["constraints"]["paused"] is True,
                                       timeout=10, what="the rendition paused in REST")
                tracks = rest()["tracks"]
                assert [t["sid"] for t in tracks] == [camera.sid]
                assert tracks[0]["renditions"][0]["sid"] == low.sid
                assert tracks[0]["renditions"][0]["layer"] == "low"
                assert low.constraints.paused and not camera.constraints.paused
                await wait_until_async(lambda: bob_frames(bob) >= 10, timeout=20, what="bob decoding the camera")

                # Refused: a rendition of nothing, of audio, a second low one.
                link = alice.local_participant._link  # raw messages the SDK would never send
                with pytest.raises(RequestError) as nothing:
                    await link.request(m.Publish(cid="x1", kind="video", source="camera", rendition_of="TR_nope"))
                assert nothing.value.code == "track_not_found"
                mic = await alice.local_participant.publish_track(ToneTrack())
                with pytest.raises(RequestError) as audio:
                    await link.request(m.Publish(cid="x2", kind="video", source="camera", rendition_of=mic.sid))
                assert audio.value.code == "not_video"
                with pytest.raises(RequestError) as twice:
                    await link.request(m.Publish(cid="x3", kind="video", source="camera", rendition_of=camera.sid))
                assert twice.value.code == "rendition_exists"

                # Unpublishing the camera takes its rendition with it.
                await alice.local_participant.unpublish_track(camera)
                assert camera.low is None and low.cid not in alice.local_participant.publications
                await wait_until_async(lambda: [t["kind"] for t in rest()["tracks"]] == ["audio"], timeout=10,
                                       what="only the microphone left")
                with pytest.raises(RequestError) as gone:
                    await link.request(m.Unpublish(track_sid=low_sid))
                assert gone.value.code == "track_not_found"

    run(scenario())


def bob_frames(bob: Room) -> int:
    """Return how many frames bob decoded of the one video track he receives."""
    for participant in bob.participants.values():
        for pub in participant.tracks.values():
            if pub.kind == "video" and pub.track is not None:
                return int(pub.track.frames_received)
    return 0

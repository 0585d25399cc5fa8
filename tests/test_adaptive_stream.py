"""Adaptive stream and publisher constraints through a real `tvapp serve` and its SFU, with Python SDK rooms.

A 1280x720 synthetic camera is published by the SDK; subscribers tell the server how they show it
(`Room.set_track_settings`). What they decode, what the publisher is told (`publish_constraints`) and what the
subscribers' peer connections count are read from the real parts; nothing here is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import av
import pytest

from tvapp.client import RemoteTrack, RequestError, Room, TrackSubscribed
from tvapp.client.participants import LocalParticipant, LocalTrackPublication
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.core.adaptive import Constraints
from tvapp.protocol import messages as m
from tvapp.testing.aio import runner
from tvapp.testing.recorder import disconnecting, join_recorded
from tvapp.testing.rest import new_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async

run = runner(deadline=90)


class Viewer:
    """A subscriber that reads every decoded frame of one video track, noting its size and arrival time."""

    def __init__(self, room: Room, track: RemoteTrack) -> None:
        self.room = room
        self.track = track
        self.frames: list[tuple[float, int, int]] = []
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await self.track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.frames.append((time.monotonic(), frame.width, frame.height))

    def since(self, t: float) -> list[tuple[float, int, int]]:
        return [f for f in self.frames if f[0] >= t]

    async def packets(self) -> int:
        stats = await self.room.receive_stats()
        return stats[self.track.sid].packets_received


def test_a_publisher_is_paused_alone_scaled_to_the_largest_tile_and_an_invisible_track_is_not_forwarded(
        media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = new_room(media_server, "adapt")
        alice, _ = await join_recorded(media_server, name, "alice")
        async with disconnecting(alice):
            camera = await alice.local_participant.publish_track(TestPatternTrack(1280, 720, 30), source="camera")
            # Nobody subscribes: paused once that has held a second.
            await wait_until_async(lambda: camera.constraints.paused, timeout=10, what="alice's camera paused")

            bob, b_log = await join_recorded(media_server, name, "bob")
            carol, c_log = await join_recorded(media_server, name, "carol")
            async with disconnecting(bob, carol):
                bob_view = Viewer(bob, (await b_log.wait(TrackSubscribed, timeout=20)).track)
                carol_view = Viewer(carol, (await c_log.wait(TrackSubscribed, timeout=20)).track)
                await wait_until_async(lambda: not camera.constraints.paused, what="alice's camera resumed")
                # No settings yet: both get the full size.
                await wait_until_async(lambda: any(w == 1280 for _, w, _ in bob_view.frames), timeout=20,
                                       what="bob decoding 1280x720")

                # Both show it small: alice sends no more than the larger tile (fit by a scale step).
                await bob.set_track_settings(camera.sid, width=400, height=225)
                await carol.set_track_settings(camera.sid, width=200, height=120)
                asked = time.monotonic()
                await wait_until_async(lambda: any(w <= 400 for _, w, _ in bob_view.since(asked)), timeout=10,
                                       what="bob decoding the scaled picture")
                assert camera.constraints.max_width == 400 and camera.constraints.max_height == 224
                info = media_server.http.get(f"/v1/rooms/{name}/participants/alice").json()
                assert info["tracks"][0]["constraints"] == {"max_width": 400, "max_height": 224, "max_framerate": 30,
                                                            "max_bitrate": int(400 * 224 * 30 * 0.08), "paused": False}
                settled = time.monotonic()
                await wait_until_async(lambda: len(carol_view.since(settled)) >= 20, what="20 more frames")
                sizes = {(w, h) for _, w, h in carol_view.since(settled)}
                assert sizes == {(320, 180)}, sizes

                # Bob hides it: nothing is forwarded to him while carol goes on receiving.
                await bob.set_track_settings(camera.sid, width=400, height=225, visible=False)
                hidden = time.monotonic()
                await wait_until_async(lambda: len(carol_view.since(hidden)) >= 10, what="carol's frames")
                before = await bob_view.packets()
                mark = time.monotonic()
                await wait_until_async(lambda: len(carol_view.since(mark)) >= 30, what="30 more frames at carol")
                assert await bob_view.packets() == before
                # Only carol's small tile is left to show: alice shrinks to it (once that has held a second).
                await wait_until_async(lambda: (camera.constraints.max_width, camera.constraints.max_height) == (
                    200, 120), what="alice's box shrinking to carol's tile")
                shrunk = time.monotonic()
                await wait_until_async(lambda: (160, 90) in {(w, h) for _, w, h in carol_view.since(shrunk)},
                                       what="carol decoding 160x90")

                # Visible again: the picture is back at once (the SFU asks alice for a keyframe).
                shown = time.monotonic()
                await bob.set_track_settings(camera.sid, width=400, height=225, visible=True)
                await wait_until_async(lambda: bob_view.since(shown), timeout=5, what="bob's picture back")
                assert bob_view.since(shown)[0][0] - shown < 1.0

    run(scenario())


def test_track_settings_for_an_unknown_or_audio_track_are_refused_with_a_code(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = new_room(media_server, "adapt")
        alice, _ = await join_recorded(media_server, name, "alice")
        bob, b_log = await join_recorded(media_server, name, "bob")
        async with disconnecting(alice, bob):
            mic = await alice.local_participant.publish_track(ToneTrack(440.0), source="microphone")
            own = await bob.local_participant.publish_track(TestPatternTrack(320, 240, 15), source="camera")
            await b_log.wait(TrackSubscribed, timeout=20)
            for sid, code in (("TR_nope", "track_not_found"), (mic.sid, "not_video"), (own.sid, "track_not_found")):
                with pytest.raises(RequestError) as refused:
                    await bob.set_track_settings(sid or "", width=320, height=180)
                assert refused.value.code == code

    run(scenario())


def test_a_publication_announced_anew_forgets_the_old_sids_constraints() -> None:
    async def scenario() -> None:
        local = LocalParticipant(link=None)  # type: ignore[arg-type]  # acknowledge() never sends
        camera = LocalTrackPublication(local, None, TestPatternTrack(320, 240, 15), "camera", "")  # type: ignore[arg-type]
        local.publications[camera.cid] = camera
        local.acknowledge(camera.cid, "TR_old")
        camera.apply_constraints(m.PublishConstraints(sid="TR_old", paused=True))
        local.acknowledge(camera.cid, "TR_old")  # the same sid again (a resumed session): kept
        assert camera.constraints.paused
        local.acknowledge(camera.cid, "TR_new")  # a full rejoin: the server's gate for TR_new starts unconstrained
        assert camera.constraints == Constraints()
        camera.track.stop()

    run(scenario())


def test_a_paused_publisher_is_not_taken_for_a_broken_link(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = new_room(media_server, "adapt")
        alice, _ = await join_recorded(media_server, name, "alice")
        async with disconnecting(alice):
            camera = await alice.local_participant.publish_track(TestPatternTrack(320, 240, 15), source="camera")
            await wait_until_async(lambda: camera.constraints.paused, timeout=10, what="alice's camera paused")
            # Her only track sends nothing on purpose: over more than the 3 s that mean "broken", she is not 0
            # (unknown is right: nothing flows either way).
            levels = []
            paused_at = time.monotonic()
            while time.monotonic() - paused_at < 5.0:
                levels.append(media_server.http.get(f"/v1/rooms/{name}/participants/alice").json()["network_quality"])
                await asyncio.sleep(0.25)
            assert 0 not in levels, levels

    run(scenario())

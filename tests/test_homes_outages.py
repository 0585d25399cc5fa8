"""Outages across homes, with real parts: a core in the cloud, SDK participants in two homes behind real NATs.

A participant ("victim", home A, endpoint-independent NAT) and an observer (home B, symmetric NAT) each publish a
test pattern of their own colour and decode the other's (tvapp.testing.reach.Follower). Then home A's network fails:

- a 5 s cut of its uplink (shorter than `[signal] reconnect_grace`): the observer never sees the victim leave; the
  cut is longer than the dead-path threshold, so the protocol promises participant_reconnecting and then
  participant_reconnected (as many of one as of the other); media comes back both ways; the victim keeps its sid
  and its track sids; its own SDK says reconnecting, then reconnected with resumed=True;
- a cut longer than the grace window (grace 6 s by config to keep the suite short; the rule is the same at 20 s):
  the observer sees a clean participant_left with reason "reconnect_timeout", no sooner than the window after the
  cut; once the link is back the victim's SDK rejoins as a new participant (Reconnected resumed=False, a new sid and
  new track sids, the observer sees it again and decodes its video);
- an address change mid-call (`Home.move`): no leave, media back both ways, sids kept; the victim's SDK notices
  the change itself (the address its sockets are bound to is gone) sooner than any silence threshold;
- the same change just after a cut was repaired (the server refuses a second fresh peer connection within a
  second, media_restart_too_soon; the SDK asks again after that second): media back within issue 14's 3 s;
- a blackout of 0.8 s (this kernel has no sch_netem for a real jitter spike): nobody notices, nothing restarts;
- a TV (`tvapp tv`, home A) whose address changes: it stays in the room (same sid, no leave) and shows the
  observer's video as sent after the change (the observer turns its pattern from blue to green at the change).

Every wait is on a condition (events logged by the Followers, decoded frames), never a sleep.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from tvapp.core.reconnect import MEDIA_SILENCE_S
from tvapp.testing.homes import Homes, built_homes
from tvapp.testing.reach import Follower, close_to
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import TvProcess, region_color
from tvapp.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(150)

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
GRACE_S = 6.0


@pytest.fixture
def homes() -> Iterator[Homes]:
    with built_homes("ho") as made:
        yield made


class Call:
    """A core in the cloud; the victim in home A and the observer in home B, each decoding the other's video."""

    def __init__(self, homes: Homes, data: Path, grace: float = 20.0) -> None:
        self.homes = homes
        self.core = ServerProcess(data, env={"TVAPP_MEDIA_HOST_ADDRESSES": homes.core_ip, "TVAPP_SERVER_TLS": "off",
                                             "TVAPP_SIGNAL_RECONNECT_GRACE": str(grace)},
                                  host=homes.core_ip, prefix=homes.cloud_prefix)
        self.victim, self.observer = Follower(RED), Follower(BLUE)
        self.pool = concurrent.futures.ThreadPoolExecutor(2)
        self.runs: list[concurrent.futures.Future[None]] = []

    def __enter__(self) -> Self:
        self.core.__enter__()
        self.room = "outage-" + str(int(time.time() * 1000))[-8:]
        self.core.http.post("/v1/rooms", json={"name": self.room}).raise_for_status()
        for letter, who, name, other in (("a", self.victim, "victim", "observer"),
                                         ("b", self.observer, "observer", "victim")):
            token = self.core.token(self.room, name)["access_token"]
            self.runs.append(self.pool.submit(self.homes[letter].run_in_namespace, asyncio.run,
                                              who.follow(self.core.url, token, other)))
        for who in (self.victim, self.observer):
            assert who.first.wait(40), [r.exception(0) for r in self.runs if r.done()]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.homes["a"].is_cut:
                self.homes["a"].restore()
            self.victim.stop.set()
            self.observer.stop.set()
            for run in self.runs:
                run.result(20)
            self.pool.shutdown()
        finally:
            self.core.__exit__(*exc)

    def victim_seen(self) -> tuple[str, set[str]]:
        """Return the victim's sid and track sids as the observer's room knows them ("" when it is not there)."""
        room = self.observer.room
        assert room is not None
        for participant in list(room.participants.values()):
            if participant.identity == "victim":
                return participant.sid, set(participant.tracks)
        return "", set()

    def server_sid(self) -> str:
        """Return the victim's sid as the core's REST API lists it."""
        listed = self.core.http.get(f"/v1/rooms/{self.room}/participants").json()
        return next((p["sid"] for p in listed if p["identity"] == "victim"), "")


def back(follower: Follower, moment: float, timeout: float) -> float:
    """Wait for a decoded frame captured after `moment`; return how long after it it was decoded."""
    took: float = wait_until(lambda: follower.back_after(moment) or 0.0, timeout,
                             lambda: f"a frame captured after the moment: {follower.events}")
    return took


def wait_event(follower: Follower, name: str, who: str = "", timeout: float = 20.0,
               count: int = 1) -> list[tuple[str, str, str, float]]:
    """Wait until `follower` has logged `count` events `name` (about `who`); return them."""
    def enough() -> list[tuple[str, str, str, float]]:
        seen = follower.saw(name, who)
        return seen if len(seen) >= count else []

    return wait_until(enough, timeout, lambda: f"{count} x {name} {who}: {follower.events}")


def no_leave_and_balanced(call: Call) -> None:
    """The observer saw no leave of the victim, and a participant_reconnected for each participant_reconnecting."""
    observer = call.observer
    assert not observer.saw("participant_left", "victim"), observer.events
    reconnecting = observer.saw("participant_reconnecting", "victim")
    wait_event(observer, "participant_reconnected", "victim", count=len(reconnecting))
    assert len(observer.saw("participant_reconnected", "victim")) == len(reconnecting), observer.events


def test_a_5_s_cut_is_reconnecting_then_reconnected_never_a_leave_with_media_back_and_sids_kept(
        homes: Homes, tmp_path: Path) -> None:
    home_a = homes["a"]
    with Call(homes, tmp_path / "core") as call:
        sid, tracks = call.victim_seen()
        assert sid and len(tracks) == 1 and call.server_sid() == sid
        home_a.cut()
        cut_at = time.time()
        # the observer is told the victim is reconnecting (5 s > the 1.5 s dead-path threshold) ...
        wait_event(call.observer, "participant_reconnecting", "victim", timeout=5)
        # ... and the victim's own SDK notices too; the outage lasts 5 s in all (measured on the victim's clock)
        wait_event(call.victim, "reconnecting", timeout=5)
        wait_until(lambda: time.time() - cut_at >= 5.0 or None, 6, "five seconds of outage")  # (a wait on the clock)
        assert home_a.cut_dropped() > 0
        home_a.restore()
        restored = time.time()
        to_observer, to_victim = back(call.observer, restored, 10), back(call.victim, restored, 10)
        no_leave_and_balanced(call)
        assert call.victim_seen() == (sid, tracks)
        assert call.server_sid() == sid
        wait_until(lambda: not any(e[2] == "rejoined" for e in call.victim.saw("reconnected"))
                   and {e[1] for e in call.victim.saw("reconnected")} >= {r[2] for r in call.victim.saw("reconnecting")}
                   or None, 10, lambda: f"the victim reconnected each cause, resumed: {call.victim.events}")
        assert not call.victim.saw("disconnected")
    print(f"5 s cut: media back to the observer {to_observer:.2f} s, to the victim {to_victim:.2f} s after restore")


def test_a_cut_past_the_grace_window_is_a_clean_leave_and_the_sdk_rejoins_as_a_new_participant(
        homes: Homes, tmp_path: Path) -> None:
    home_a = homes["a"]
    with Call(homes, tmp_path / "core", grace=GRACE_S) as call:
        sid, tracks = call.victim_seen()
        home_a.cut()
        cut_at = time.time()
        reconnecting = wait_event(call.observer, "participant_reconnecting", "victim", timeout=5)
        left = wait_event(call.observer, "participant_left", "victim", timeout=GRACE_S + 10)
        # one clean leave, for the timeout, no sooner than the window after the cut began
        assert [e[2] for e in left] == ["reconnect_timeout"], call.observer.events
        assert left[0][3] - cut_at >= GRACE_S and left[0][3] - reconnecting[0][3] >= GRACE_S - 0.5, (cut_at, left)
        assert call.server_sid() == ""
        assert call.victim.ended.is_set() is False  # the SDK is still trying (its reconnect window is 30 s)
        home_a.restore()
        restored = time.time()
        # the SDK's resume is refused (the server let it go); it rejoins as a new participant
        wait_until(lambda: any(e[2] == "rejoined" for e in call.victim.saw("reconnected")) or None, 20,
                   lambda: f"the victim to rejoin: {call.victim.events}")
        assert not call.victim.saw("disconnected"), call.victim.events
        def seen_again() -> tuple[str, set[str]] | None:
            seen = call.victim_seen()
            return seen if seen[0] and seen[1] else None

        again = wait_until(seen_again, 10, "the observer to see the victim again, with its track")
        assert again is not None
        new_sid, new_tracks = again
        assert new_sid != sid and not (new_tracks & tracks), (sid, tracks, new_sid, new_tracks)
        assert call.server_sid() == new_sid
        wait_event(call.observer, "participant_left", "victim", count=1)
        assert len(call.observer.saw("participant_left", "victim")) == 1  # (the rejoin is no second leave)
        to_observer, to_victim = back(call.observer, restored, 15), back(call.victim, restored, 15)
    print(f"cut past a {GRACE_S:g} s window: left after {left[0][3] - cut_at:.2f} s; rejoined, media back to the "
          f"observer {to_observer:.2f} s, to the victim {to_victim:.2f} s after restore")


def test_an_address_change_mid_call_is_no_leave_with_media_back_and_sids_kept(homes: Homes, tmp_path: Path) -> None:
    home_a = homes["a"]
    with Call(homes, tmp_path / "core") as call:
        sid, tracks = call.victim_seen()
        home_a.move("192.168.1.77")
        moved = time.time()
        to_observer, to_victim = back(call.observer, moved, 15), back(call.victim, moved, 15)
        # the victim's SDK noticed the change itself (its socket's address is gone), not by a link falling silent:
        # sooner than the 1.5 s dead-path threshold and the 3 s signaling silence
        noticed = wait_event(call.victim, "reconnecting")[0][3] - moved
        assert noticed < MEDIA_SILENCE_S, (noticed, call.victim.events)
        no_leave_and_balanced(call)
        assert call.victim_seen() == (sid, tracks)
        assert call.server_sid() == sid
        assert not call.victim.saw("disconnected")
        assert not any(e[2] == "rejoined" for e in call.victim.saw("reconnected")), call.victim.events
        room: Any = call.victim.room
        assert room is not None and room.local_participant.sid == sid
    print(f"address change: noticed after {noticed:.2f} s; media back to the observer {to_observer:.2f} s, "
          f"to the victim {to_victim:.2f} s")


def test_an_address_change_right_after_a_cut_recovered_is_repaired_within_the_goal(
        homes: Homes, tmp_path: Path) -> None:
    # the SDK asked for a fresh peer connection a moment ago (the cut); the server refuses another within a second
    # (media_restart_too_soon): the SDK asks again once the second has passed, not after its 6 s patience
    home_a = homes["a"]
    with Call(homes, tmp_path / "core") as call:
        sid, tracks = call.victim_seen()
        home_a.cut()
        wait_event(call.victim, "reconnecting", timeout=5)
        wait_event(call.observer, "participant_reconnecting", "victim", timeout=5)
        home_a.restore()
        restored = time.time()
        back(call.victim, restored, 10)
        home_a.move("192.168.1.78")
        moved = time.time()
        to_observer, to_victim = back(call.observer, moved, 15), back(call.victim, moved, 15)
        assert max(to_observer, to_victim) <= 3.0, (to_observer, to_victim, call.victim.events)  # issue 14's goal
        no_leave_and_balanced(call)
        assert call.victim_seen() == (sid, tracks) and call.server_sid() == sid
    print(f"address change just after a cut: media back to the observer {to_observer:.2f} s, "
          f"to the victim {to_victim:.2f} s")

def test_a_blip_shorter_than_the_dead_path_threshold_restarts_nothing_and_announces_nothing(
        homes: Homes, tmp_path: Path) -> None:
    # (this kernel has no sch_netem to delay packets; a 0.8 s blackout of the uplink is a harsher spike than any
    # jitter: every packet in it is lost, not late)
    home_a = homes["a"]
    with Call(homes, tmp_path / "core") as call:
        sid, tracks = call.victim_seen()
        home_a.cut()
        cut_at = time.monotonic()
        wait_until(lambda: time.monotonic() - cut_at >= 0.8 or None, 2, "0.8 s of blackout", interval=0.005)
        home_a.restore()
        lasted = time.monotonic() - cut_at
        restored = time.time()
        back(call.observer, restored, 5), back(call.victim, restored, 5)
        assert lasted < 1.0, lasted  # (the blip really was shorter than the threshold minus one read)
        # nobody noticed a thing: no reconnecting on either side, no fresh peer connection, the same sids
        assert not call.victim.saw("reconnecting"), call.victim.events
        assert not call.observer.saw("participant_reconnecting", "victim"), call.observer.events
        assert not call.observer.saw("participant_left", "victim"), call.observer.events
        assert call.victim_seen() == (sid, tracks)


def test_a_tv_whose_address_changes_mid_call_stays_in_the_room_and_shows_what_is_sent_after_the_change(
        homes: Homes, tmp_path: Path) -> None:
    home_a, home_b = homes["a"], homes["b"]
    with ServerProcess(tmp_path / "core", env={"TVAPP_MEDIA_HOST_ADDRESSES": homes.core_ip, "TVAPP_SERVER_TLS": "off"},
                       host=homes.core_ip, prefix=homes.cloud_prefix) as core:
        room = "tvmove-" + str(int(time.time() * 1000))[-8:]
        core.http.post("/v1/rooms", json={"name": room}).raise_for_status()
        key_id, secret = core.key
        # (TVAPP_MEDIA_HOST_ADDRESSES empty: the TV offers whatever address its home gives it, as a real one does)
        tv = TvProcess(tmp_path / "tv", ["--server", core.url, "--room", room, "--api-key", f"{key_id}:{secret}",
                                         "--no-audio", "--name", "Home A TV"], size="960x540",
                       env={"TVAPP_MEDIA_HOST_ADDRESSES": ""}, prefix=home_a.exec_prefix)
        observer = Follower(BLUE)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            run = pool.submit(home_b.run_in_namespace, asyncio.run,
                              observer.follow(core.url, core.token(room, "observer")["access_token"], ""))
            try:
                assert observer.first.wait(40), run.exception(0) if run.done() else "the observer did not join"
                wait_until(lambda: shows(tv, "observer", BLUE), 60, lambda: f"the observer's blue video: {tv.output}",
                           interval=0.1)
                room_sdk: Any = observer.room
                tv_sid = wait_until(lambda: next((p.sid for p in list(room_sdk.participants.values())), ""), 10,
                                    "the observer to see the TV")
                home_a.move("192.168.1.88")
                moved = time.monotonic()
                observer.recolor(GREEN)  # what the TV shows from now on was sent after the change
                wait_until(lambda: shows(tv, "observer", GREEN), 20, lambda: f"the observer's green video: {tv.output}",
                           interval=0.1)
                took = time.monotonic() - moved
                assert took <= 3.0, took  # issue 14's goal for an address change, a screenshot's time included
                assert [p.sid for p in room_sdk.participants.values()] == [tv_sid]
                wait_event(observer, "participant_reconnected", count=len(observer.saw("participant_reconnecting")))
                assert not observer.saw("participant_left"), observer.events
            finally:
                observer.stop.set()
                status = tv.stop()
                run.result(20)
    assert status == 0, tv.output
    print(f"TV address change: the TV shows what was sent after it within {took:.2f} s (screenshots included)")


def shows(tv: TvProcess, identity: str, color: tuple[int, int, int]) -> bool:
    """Tell whether a screenshot of the TV now shows `identity`'s video in `color` (its tile not reconnecting)."""
    pixels, sidecar = tv.screenshot()
    tile = next((t for t in sidecar["tiles"] if t.get("identity") == identity), None)
    if tile is None or not tile.get("video_rect") or tile.get("reconnecting"):
        return False
    return close_to(tuple(int(v) for v in region_color(pixels, tile["video_rect"])), color)

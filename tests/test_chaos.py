"""Chaos: real processes killed and networks vanishing under a live room, and the room (and the TV) recovering.

- the TV killed with SIGKILL mid-call and started again the way systemd/tvapp.service restarts it (the same
  command line, the same state directory): it comes back into the same room and shows the participant again;
- a participant's network vanishes without a FIN or RST (tvapp.testing.netem black-holes its link): the others
  see it leave within the configured idle timeout, and the room goes on meanwhile (someone joins, data flows);
- the core killed with SIGKILL under a TV and started again on the same port and data directory: the TV says
  so on screen, and rejoins by itself once the core is back, even after an outage longer than the SDK's
  reconnect window (a core upgrade or a server reboot takes that long);
- a TV started while its core is down (a kiosk booting faster than its server) says so and joins once it is up.

Everything is a real process: `tvapp serve` (tvapp.testing.server), `tvapp tv` (tvapp.testing.tv, read back
through its screenshot sidecar), `tvapp bot` publishers and SDK Rooms in this process.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tvapp.client import events as ev
from tvapp.client.room import Room
from tvapp.testing.netem import NetemLink, netem_link
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess

pytestmark = pytest.mark.timeout(180)

MEDIA_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now (the restarted core must come back on the same one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_room(server: ServerProcess) -> str:
    name = "chaos-" + uuid.uuid4().hex[:8]
    server.http.post("/v1/rooms", json={"name": name}).raise_for_status()
    return name


def publisher(server: ServerProcess, workdir: Path, room: str, identity: str) -> BotProcess:
    token = server.token(room, identity, name=identity.title())["access_token"]
    return BotProcess(workdir, identity, ["--server", server.url, "--token", token, "--video", "pattern:320x240@15",
                                          "--audio", "tone:440"])


def tv_command(server: ServerProcess, room: str) -> list[str]:
    """The TV's command line: host `room` on the separate core `server` with its API key (as a kiosk would)."""
    key_id, secret = server.key
    return ["--server", server.url, "--room", room, "--api-key", f"{key_id}:{secret}", "--no-audio",
            "--name", "Chaos TV"]


def showing(identity: str) -> Callable[[dict[str, Any]], bool]:
    """Return a sidecar predicate: the room screen with `identity`'s video in a tile."""
    def check(sidecar: dict[str, Any]) -> bool:
        tiles = {tile.get("identity"): tile for tile in sidecar["tiles"]}
        return sidecar["screen"] == "RoomScreen" and bool(tiles.get(identity, {}).get("video_rect"))
    return check


# --- the TV killed mid-call ---------------------------------------------------------------------------------------


def test_tv_killed_mid_call_and_restarted_like_systemd_comes_back_into_the_room(tmp_path: Path) -> None:
    state = tmp_path / "var-lib-tvapp"  # StateDirectory=tvapp: TVAPP_DATA, kept across restarts
    with ServerProcess(tmp_path / "server", env=MEDIA_ENV) as server:
        room = new_room(server)
        bot = publisher(server, tmp_path, room, "alice")
        env = {"TVAPP_DATA": str(state)}
        command = tv_command(server, room)
        tv = TvProcess(tmp_path / "tv", command, size="960x540", env=env)
        try:
            bot.wait_published(2)
            tv.wait_for(showing("alice"), timeout=45, what="alice's video in the room")
            assert (state / "tv.sqlite3").exists(), "the TV keeps no state in TVAPP_DATA?"

            tv.proc.kill()  # SIGKILL: no leave, no clean-up; the kernel closes its sockets
            assert tv.proc.wait(10) == -9
            tv.stop()
            # Restart=always: systemd runs the same ExecStart= with the same environment and state directory.
            shutil.rmtree(tv.shots)  # (a kiosk has no screenshots; here the old ones must not be read as new)
            started = time.monotonic()
            tv = TvProcess(tmp_path / "tv", command, size="960x540", env=env)
            _, sidecar = tv.wait_for(showing("alice"), timeout=45, what="alice again after the restart")
            took = time.monotonic() - started
            assert [t["identity"] for t in sidecar["tiles"]] == ["alice"], sidecar["tiles"]
            # The room still holds alice and exactly one TV: the killed TV's session was not left behind.
            people = server.http.get(f"/v1/rooms/{room}/participants").json()
            identities = sorted(p["identity"] for p in people)
            assert identities[0] == "alice" and len(identities) == 2, identities
            assert "Traceback" not in tv.output, tv.output
            print(f"the TV was back in the room showing alice {took:.1f} s after its restart")
        finally:
            assert tv.stop() == 0, tv.output
            bot.stop()


# --- a participant's network vanishes -----------------------------------------------------------------------------


@pytest.fixture
def link() -> Iterator[NetemLink]:
    with netem_link("ch") as made:
        yield made


IDLE_TIMEOUT = 4.0
GRACE = 4.0  # [signal] reconnect_grace: a vanished participant is reconnecting this long before it leaves


def test_a_participant_whose_network_vanishes_leaves_after_the_grace_window_and_the_room_goes_on(
        link: NetemLink, tmp_path: Path) -> None:
    env = {"TVAPP_MEDIA_HOST_ADDRESSES": link.host_ip, "TVAPP_SIGNAL_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
           "TVAPP_SIGNAL_PING_INTERVAL": "1", "TVAPP_SIGNAL_RECONNECT_GRACE": str(GRACE)}
    with ServerProcess(tmp_path / "server", env=env, host=link.host_ip) as server:
        room = new_room(server)
        # The victim: a publishing bot whose every packet crosses the link (it runs in the link's namespace).
        victim_token = server.token(room, "victim", name="Victim")["access_token"]
        victim = BotProcess(tmp_path, "victim", ["--server", server.url, "--token", victim_token],
                            env={"TVAPP_MEDIA_HOST_ADDRESSES": link.ns_ip}, prefix=link.exec_prefix)
        try:
            asyncio.run(asyncio.wait_for(_vanish(server, room, link, victim), 90))
        finally:
            victim.stop()
    assert link.stats.to_host_dropped + link.stats.to_ns_dropped > 0, "nothing was black-holed"


async def _vanish(server: ServerProcess, room: str, link: NetemLink, victim: BotProcess) -> None:
    grants = {"publish_data": True}
    observer = await Room.connect(server.url, server.token(room, "observer", **grants)["access_token"],
                                  host_addresses=[link.host_ip])
    late: Room | None = None
    try:
        if not any(p.identity == "victim" for p in observer.participants.values()):
            await observer.wait_for(ev.ParticipantJoined, lambda e: e.participant.identity == "victim", timeout=30)
        await asyncio.to_thread(victim.wait_published, 2)
        left = asyncio.ensure_future(observer.wait_for(
            ev.ParticipantLeft, lambda e: e.participant.identity == "victim", timeout=IDLE_TIMEOUT + 20))
        data = asyncio.ensure_future(observer.wait_for(ev.DataReceived, lambda e: e.identity == "late", timeout=30))
        joined = asyncio.ensure_future(observer.wait_for(
            ev.ParticipantJoined, lambda e: e.participant.identity == "late", timeout=30))

        link.cut()  # every packet either way is dropped from now on: no FIN, no RST, no close frame
        cut_at = time.monotonic()
        # Meanwhile the room goes on: someone joins and sends data, and the observer gets both, before the
        # server has even noticed the victim is gone.
        late = await Room.connect(server.url, server.token(room, "late", **grants)["access_token"],
                                  host_addresses=[link.host_ip])
        late_saw_it = asyncio.ensure_future(late.wait_for(
            ev.ParticipantLeft, lambda e: e.participant.identity == "victim", timeout=IDLE_TIMEOUT + 20))
        await late.send_data("still here", topic="chaos")
        await joined
        assert (await data).payload == "still here"
        assert not left.done(), "the victim left before the room was even tested"
        went_on = time.monotonic() - cut_at

        gone = await left
        took = time.monotonic() - cut_at
        # Its media went silent (~1.5 s) first: reconnecting from then, gone when the grace window passed.
        assert GRACE <= took <= GRACE + 1.5 + 3.0, took
        assert gone.reason == "reconnect_timeout", gone.reason
        # The late participant sees the same, and data still flows after the victim has gone.
        await late_saw_it
        assert "victim" not in {p.identity for p in late.participants.values()}
        again = asyncio.ensure_future(observer.wait_for(ev.DataReceived, lambda e: e.payload == "after", timeout=10))
        await late.send_data("after", topic="chaos")
        await again
        print(f"the room went on {went_on:.2f} s after the cut; the victim left after {took:.2f} s "
              f"(grace {GRACE:g} s, reason {gone.reason!r})")
    finally:
        if late is not None:
            await late.disconnect()
        await observer.disconnect()


# --- the core restarts under a TV ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def core_outage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Play one core outage with two TVs and return what they showed (both tests below read it).

    A TV in a call when the core is SIGKILLed, and a second TV started while the core is down (a kiosk booting
    faster than its server, or during an upgrade): the SDK's ~30 s reconnect window the first TV waits out is
    played once for both (it was two scenes, ~10 s more of suite time). Every wait is on the TVs' screens.
    """
    tmp_path = tmp_path_factory.mktemp("core-outage")
    port = free_port()
    server = ServerProcess(tmp_path / "server", env=MEDIA_ENV, port=port).start()
    bots: list[BotProcess] = []
    tv: TvProcess | None = None
    booting: TvProcess | None = None
    seen: dict[str, Any] = {}
    try:
        room = new_room(server)
        bots.append(publisher(server, tmp_path, room, "alice"))
        tv = TvProcess(tmp_path / "tv", tv_command(server, room), size="960x540")
        bots[0].wait_published(2)
        tv.wait_for(showing("alice"), timeout=45, what="alice's video in the room")

        server.kill()  # SIGKILL: the TV's websocket and media die with it
        killed = time.monotonic()
        tv.wait_for(lambda s: any("reconnecting" in t.lower() for t in s["toasts"]), timeout=15,
                    what="that its connection was lost")
        # The second TV boots now, with the core down (its data directory holds the API key the TV uses).
        booting = TvProcess(tmp_path / "boot", tv_command(server, "boot"), size="960x540")
        _, seen["boot_error"] = booting.wait_for(lambda s: s["screen"] == "ErrorScreen", timeout=30,
                                                 what="the core unreachable")
        # The outage outlasts the SDK's reconnect window (a core upgrade, a reboot): the TV must say so in
        # words and keep trying, not ask for a restart.
        _, seen["error"] = tv.wait_for(lambda s: s["screen"] == "ErrorScreen", timeout=60, what="the outage in words")
        down_for = time.monotonic() - killed

        server.stop()
        server = ServerProcess(tmp_path / "server", env=MEDIA_ENV, port=port).start()
        back = time.monotonic()
        bots[0].stop()  # its SDK gave up too; a new publisher joins the room on the restarted core
        bots.append(publisher(server, tmp_path, room, "bob"))
        booting.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=45, what="the room once the core is up")
        print(f"the booting TV was in its room {time.monotonic() - back:.1f} s after the core came up")
        tv.wait_for(showing("bob"), timeout=45, what="the room again, with bob, after the core came back")
        rejoined = time.monotonic() - back
        print(f"the core was down {down_for:.1f} s; the TV was back in the room {rejoined:.1f} s after it returned")
    finally:
        for name, process in (("tv", tv), ("boot", booting)):
            if process is not None:
                seen[f"{name}_status"] = process.stop()
                seen[f"{name}_output"] = process.output
        for bot in bots:
            bot.stop()
        server.stop()
    return seen


def test_core_killed_under_a_tv_the_tv_says_so_and_rejoins_by_itself_when_the_core_is_back(
        core_outage: dict[str, Any]) -> None:
    sidecar = core_outage["error"]
    words = " ".join([*sidecar["error"].values(), *sidecar["toasts"]]).lower()
    assert "restart" not in words and "by itself" in words, sidecar
    assert "Traceback" not in core_outage["tv_output"], core_outage["tv_output"]
    assert core_outage["tv_status"] == 0, core_outage["tv_output"]


def test_tv_started_before_its_core_says_so_and_joins_once_the_core_is_up(core_outage: dict[str, Any]) -> None:
    # A kiosk boots faster than the server it uses (or the server is being upgraded): the TV says so and waits.
    sidecar = core_outage["boot_error"]
    assert sidecar["error"]["title"] == "Server unreachable" and "by itself" in sidecar["error"]["hint"], sidecar
    assert "Traceback" not in core_outage["boot_output"], core_outage["boot_output"]
    assert core_outage["boot_status"] == 0, core_outage["boot_output"]

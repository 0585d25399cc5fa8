"""A real core in the cloud reached from homes behind real NATs (tvapp.testing.homes), with real media both ways.

- An SDK participant in home A (endpoint-independent NAT) and one in home B (symmetric NAT) join one room on the
  core in the cloud; each publishes its own colour and decodes the other's. Their media goes to the SFU's public
  address from their private one (NAT in between; the SFU learns the mapped address as a peer-reflexive candidate).
- A participant in home C, where no UDP leaves, reaches the core only through coturn over TCP, with the TURN REST
  credentials the core made for it from `[media] turn_secret` (username "expiry:participant sid"): its nominated
  candidate is a relay, and coturn logs the allocation under that username and the bytes it relayed.
- Home A's uplink cut for 5 s under a participant: nobody sees it leave, it keeps its sid, and a frame captured
  after the restore reaches it (the figure is in bench/reach.py --outages).
- A TV (`tvapp tv`) in home B shows a `tvapp bot` from home A and the relayed participant from home C, each in its
  own colour.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tvapp.client.sources.synthetic import parse_color
from tvapp.testing.coturn import Coturn
from tvapp.testing.homes import Home, Homes
from tvapp.testing.reach import Follower, Reach, close_to, take_part
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess, region_color
from tvapp.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
TURN_SECRET = "homes-turn-secret-9fQ2"
PEER_USAGE_LINE = re.compile(r"session (\d+): peer usage: .*, rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


def cloud_core(homes: Homes, data: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """A `tvapp serve` in the cloud namespace on its public address (offered as the SFU's only host candidate).

    Plain http (`[server] tls = "off"`): these tests are about the media path; TLS has its own tests.
    """
    return ServerProcess(data, env={"TVAPP_MEDIA_HOST_ADDRESSES": homes.core_ip, "TVAPP_SERVER_TLS": "off",
                                    **(env or {})}, host=homes.core_ip, prefix=homes.cloud_prefix)


def new_room(core: ServerProcess) -> str:
    name = "reach-" + uuid.uuid4().hex[:8]
    core.http.post("/v1/rooms", json={"name": name}).raise_for_status()
    return name


def call(pool: concurrent.futures.Executor, home: Home, url: str, token: str, **kwargs: object
         ) -> concurrent.futures.Future[Reach]:
    """Run `take_part` on `home`'s LAN in a worker thread."""
    return pool.submit(home.run_in_namespace, asyncio.run, take_part(url, token, **kwargs))  # type: ignore[arg-type]


def test_a_participant_behind_each_nat_decodes_the_others_video_through_the_public_sfu(
        homes: Homes, tmp_path: Path) -> None:
    with cloud_core(homes, tmp_path / "core") as core:
        room = new_room(core)
        done_a, done_b, hold = threading.Event(), threading.Event(), threading.Event()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = call(pool, homes["a"], core.url, core.token(room, "alice")["access_token"], watch="bob",
                     color=RED, done=done_a, hold=hold)
            b = call(pool, homes["b"], core.url, core.token(room, "bob")["access_token"], watch="alice",
                     color=BLUE, done=done_b, hold=hold)
            try:
                wait_all((done_a, done_b), (a, b))
            finally:
                hold.set()
            alice, bob = a.result(), b.result()
    assert close_to(alice.rgb, BLUE), alice  # alice decoded bob's video ...
    assert close_to(bob.rgb, RED), bob  # ... and bob alice's
    for reach, home in ((alice, homes["a"]), (bob, homes["b"])):
        # host candidate on the private LAN -> the SFU's public address: only the NAT joins the two
        assert reach.local_type == "host" and reach.local_addr[0] == home.lan_ip, reach
        assert reach.remote_addr[0] == homes.core_ip, reach
    print(f"alice (EIM NAT) first frame {alice.first_frame_s:.2f} s, bob (symmetric NAT) {bob.first_frame_s:.2f} s")


def turn_env(homes: Homes, coturn: Coturn, transport: str) -> dict[str, str]:
    """The core's env handing every participant `coturn`'s `transport` URL with its own TURN REST credentials."""
    return {"TVAPP_MEDIA_TURN_URLS": coturn.url(transport, host=homes.alt_ip), "TVAPP_MEDIA_TURN_SECRET": coturn.secret}


def cloud_turn(homes: Homes, **kwargs: object) -> Coturn:
    """Debian's coturn in the cloud on the second public address (so rules and logs tell it from the core)."""
    return Coturn(secret=TURN_SECRET, listening_ips=[homes.alt_ip], relay_ip=homes.alt_ip, min_port=49300,
                  max_port=49400, prefix=homes.cloud_prefix, **kwargs)  # type: ignore[arg-type]


def test_a_participant_in_a_home_without_udp_reaches_the_core_only_through_turn_over_tcp(
        homes: Homes, tmp_path: Path) -> None:
    home_c = homes["c"]
    with cloud_turn(homes) as coturn, \
            cloud_core(homes, tmp_path / "core", turn_env(homes, coturn, "tcp")) as core:
        room = new_room(core)
        done_a, done_c, hold = threading.Event(), threading.Event(), threading.Event()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = call(pool, homes["a"], core.url, core.token(room, "alice")["access_token"], watch="carol",
                     color=RED, done=done_a, hold=hold, frames=30)
            c = call(pool, home_c, core.url, core.token(room, "carol")["access_token"], watch="alice",
                     color=GREEN, done=done_c, hold=hold, frames=30)
            try:
                wait_all((done_a, done_c), (a, c))
            finally:
                hold.set()
            alice, carol = a.result(), c.result()
        # carol has left: coturn closes her TCP session and logs whom it served and what it relayed
        relayed = wait_until(lambda: relayed_for(coturn, home_c.wan_ip), 10,
                             lambda: f"coturn to close home C's session: {coturn.log_tail(30)}")
        log = coturn.log()
    assert close_to(alice.rgb, GREEN), alice
    assert close_to(carol.rgb, RED), carol
    # carol's media went through a relay: her nominated candidate is coturn's relayed address ...
    assert carol.local_type == "relay" and carol.local_addr[0] == homes.alt_ip, carol
    assert carol.remote_addr[0] == homes.core_ip, carol  # (the SFU itself does not use TURN: sfu_uses_turn)
    # ... which coturn allocated for home C's public address (over TCP: no UDP leaves home C, the router dropped
    # her UDP tries) and through which it relayed her media both ways: 30 frames each way are ~14 kB, the DTLS
    # handshake alone ~2 kB
    assert relayed is not None and relayed["allocated"], relayed
    assert coturn_allocations_for(carol.sid, log) >= 1  # with the credentials the core made for her
    assert relayed["to_peers"] > 8_000 and relayed["from_peers"] > 8_000, relayed
    assert home_c.udp_dropped() >= 1
    print(f"carol (TURN/TCP) first frame {carol.first_frame_s:.2f} s; alice {alice.first_frame_s:.2f} s; "
          f"coturn {relayed}")


def wait_all(events: tuple[threading.Event, ...], futures: tuple[concurrent.futures.Future[Reach], ...]) -> None:
    """Wait until every participant has decoded; raise at once what a failed one raised."""
    for done in events:
        while not done.wait(0.5):
            for future in futures:
                if future.done():
                    future.result()


def coturn_allocations_for(identity: str, log: str) -> int:
    """Return how many allocations coturn's log shows for the TURN REST username "expiry:identity"."""
    return len(re.findall(rf"user <\d+:{re.escape(identity)}>: incoming packet ALLOCATE processed, success", log))


def relayed_for(coturn: Coturn, address: str) -> dict[str, int] | None:
    """Sum what coturn's closed TCP sessions from a client at `address` allocated and relayed (None: none closed).

    Its verbose log names a session's client only when it closes ("closed (2nd stage), ... remote IP:PORT"); the
    session's "ALLOCATE processed, success" and "peer usage: ... rp, rb, sp, sb" lines carry the same session id.
    """
    log = coturn.log().splitlines()
    ours = {m.group(1) for m in (re.search(r"session (\d+): closed .* remote ([\d.]+):\d+", line) for line in log)
            if m and m.group(2) == address}
    if not ours:
        return None
    allocated = sum(1 for line in log if "ALLOCATE processed, success" in line
                    and (m := re.search(r"session (\d+):", line)) and m.group(1) in ours)
    usage = {m.group(1): (int(m.group(3)), int(m.group(5))) for m in (PEER_USAGE_LINE.search(line) for line in log)
             if m and m.group(1) in ours}  # (each line is the session's running total: keep the last)
    return {"sessions": len(ours), "allocated": allocated, "to_peers": sum(sent for sent, _ in usage.values()),
            "from_peers": sum(received for _, received in usage.values())}


def test_a_tv_behind_the_symmetric_nat_shows_a_bot_from_home_a_and_a_relayed_participant_from_home_c(
        homes: Homes, tmp_path: Path) -> None:
    home_a, home_b, home_c = homes["a"], homes["b"], homes["c"]
    with cloud_turn(homes) as coturn, \
            cloud_core(homes, tmp_path / "core", turn_env(homes, coturn, "tcp")) as core:
        room = new_room(core)
        bot = BotProcess(tmp_path, "alice", [
            "--server", core.url, "--token", core.token(room, "alice", name="Alice")["access_token"],
            "--video", "pattern:320x240@15", "--color", "red", "--audio", "none"],
            env={"TVAPP_MEDIA_HOST_ADDRESSES": home_a.lan_ip}, prefix=home_a.exec_prefix)
        key_id, secret = core.key
        tv = TvProcess(tmp_path / "tv", ["--server", core.url, "--room", room, "--api-key", f"{key_id}:{secret}",
                                         "--no-audio", "--name", "Home B TV"], size="960x540",
                       env={"TVAPP_MEDIA_HOST_ADDRESSES": home_b.lan_ip}, prefix=home_b.exec_prefix)
        done, hold = threading.Event(), threading.Event()
        try:
            bot.wait_published(1)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                c = call(pool, home_c, core.url, core.token(room, "carol", name="Carol")["access_token"],
                         watch="alice", color=GREEN, done=done, hold=hold, frames=15)
                try:
                    wait_all((done,), (c,))

                    def both_showing(sidecar: dict[str, Any]) -> bool:
                        tiles = {tile.get("identity"): tile for tile in sidecar["tiles"]}
                        return all(tiles.get(who, {}).get("video_rect") for who in ("alice", "carol"))

                    pixels, sidecar = tv.wait_for(both_showing, timeout=60, what="alice's and carol's video")
                finally:
                    hold.set()
                carol = c.result()
        finally:
            tv_status = tv.stop()
            bot.stop()
    tiles = {tile["identity"]: tile for tile in sidecar["tiles"]}
    # the TV decoded each one's own colour: alice's from home A direct, carol's relayed by coturn
    bot_red = parse_color("red")  # (the bot's named colour)
    assert close_to(tuple(int(v) for v in region_color(pixels, tiles["alice"]["video_rect"])), bot_red), tiles
    assert close_to(tuple(int(v) for v in region_color(pixels, tiles["carol"]["video_rect"])), GREEN), tiles
    assert close_to(carol.rgb, bot_red) and carol.local_type == "relay", carol
    assert tv_status == 0, tv.output


def test_a_5_s_cut_of_a_homes_uplink_is_no_leave_and_its_media_comes_back(homes: Homes, tmp_path: Path) -> None:
    home_a, home_b = homes["a"], homes["b"]
    with cloud_core(homes, tmp_path / "core") as core:
        room = new_room(core)
        bot = BotProcess(tmp_path, "pub", [
            "--server", core.url, "--token", core.token(room, "pub")["access_token"],
            "--video", "pattern:320x240@15", "--audio", "none"],
            env={"TVAPP_MEDIA_HOST_ADDRESSES": homes.core_ip}, prefix=homes.cloud_prefix)
        victim, observer = Follower(), Follower()
        try:
            bot.wait_published(1)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                runs = [pool.submit(home.run_in_namespace, asyncio.run,
                                    who.follow(core.url, core.token(room, name)["access_token"], "pub"))
                        for home, who, name in ((home_a, victim, "victim"), (home_b, observer, "observer"))]
                try:
                    for who in (victim, observer):
                        assert who.first.wait(30), [r.exception(0) for r in runs if r.done()]
                    assert victim.room is not None
                    sid = victim.room.local_participant.sid
                    home_a.cut()
                    cut_at = time.time()
                    # five seconds of outage: wait on the victim's own decoded frames (none arrive)
                    assert not wait_for_frame(victim, cut_at + 0.5, 5.0)
                    assert home_a.cut_dropped() > 0
                    home_a.restore()
                    restored = time.time()
                    back = wait_for_frame(victim, restored, 10.0)
                    assert back is not None, "no frame captured after the restore was decoded"
                    assert victim.room.local_participant.sid == sid
                    participants = {p["identity"]: p["sid"] for p in
                                    core.http.get(f"/v1/rooms/{room}/participants").json()}
                    assert participants.get("victim") == sid, participants
                    left_meanwhile = list(observer.left)
                finally:
                    victim.stop.set()
                    observer.stop.set()
                for run in runs:
                    run.result(20)
        finally:
            bot.stop()
    # the observer (home B) never saw the victim leave, through the outage and until its media was back
    assert "victim" not in left_meanwhile, left_meanwhile
    print(f"media back {back:.2f} s after a 5 s outage ended")


def wait_for_frame(follower: Follower, moment: float, timeout: float) -> float | None:
    """Wait up to `timeout` for a decoded frame captured after `moment`; return how long after it, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        took = follower.back_after(moment)
        if took is not None:
            return took
        time.sleep(0.02)
    return None

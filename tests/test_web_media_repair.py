"""The phone web client repairs a dead media path with a fresh peer connection (`media_restart`), with real parts.

A real core in the cloud namespace of tvapp.testing.homes (https with its self-signed certificate, as the phone
page needs a secure context for its camera), an SDK bot in the root namespace (it reaches the cloud directly) that
publishes a test pattern and counts the frames it decodes of the page's camera, and real Chromium (the phone page,
fake camera and microphone) in home C's LAN namespace. Home C's router drops all UDP except what `allow_udp_to()`
opens: the test opens the core's media ports (`[media] udp_port_range`), so the page's media goes straight to the
SFU over UDP while its signaling websocket is TCP. Then the router drops every UDP packet it forwards, both ways
(a rule in home C's outage chain; `forbid_udp()` alone would drop only what leaves, and the SFU's packets would
still arrive): the page's media path dies and only it, the websocket lives on. The page must notice (ICE
"disconnected" for 2 s, or no inbound RTP for 2 s), show "Reconnecting…", close that peer connection, send
`media_restart{generation: 1}` and answer the new offer; once the test sees the restart asked for it lets UDP through
again (`restore()`: the path is back), and the video must flow both ways on the new peer connection, the call header
clear, and the bot have seen the same participant and track sids throughout (no participant_left). Every wait is on a condition (page state, decoded frame counts), never a sleep.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc.mediastreams import MediaStreamError
from cryptography import x509
from test_homes_reach import cloud_core
from web_helpers import new_room

from tvapp.client import trust
from tvapp.testing.browser import (
    Browser,
    page_url,
    stats_grow,
    wait_for_js,
    wait_for_state,
)
from tvapp.testing.homes import Home, Homes, _nft
from tvapp.testing.reach import Follower, _first_video_frame
from tvapp.testing.waiting import wait_until
from tvapp.web.tls import spki_sha256

pytestmark = pytest.mark.timeout(180)

PORTS = (47310, 47329)  # the core's media ports: the only UDP home C lets out while its media path is alive
BLUE = (40, 60, 220)
CALL_STATE_SHOWN = "() => !document.getElementById('call-state').hidden"


class CountingBot(Follower):
    """A Follower that counts every decoded video frame of the page (Chromium's fake camera has no stamp)."""

    def __init__(self) -> None:
        super().__init__(BLUE)
        self.decoded: list[float] = []  # wall clock of each decoded frame of the page's camera

    async def _read(self, track: Any) -> None:
        while True:
            try:
                await _first_video_frame(track)
            except MediaStreamError:  # the page's old peer connection's track ended
                return
            self.decoded.append(time.time())
            self.first.set()

    def frames_after(self, moment: float) -> int:
        """Return how many frames of the page's camera were decoded after `moment` (wall clock)."""
        return sum(1 for t in list(self.decoded) if t > moment)

    def seen(self, identity: str) -> tuple[str, frozenset[str]] | None:
        """Return (sid, track sids) of the participant `identity` as the bot's room knows it now."""
        room = self.room
        for p in list(room.participants.values()) if room else []:
            if p.identity == identity:
                return p.sid, frozenset(p.tracks)
        return None


def open_udp(home: Home, ip: str) -> None:
    for port in range(PORTS[0], PORTS[1] + 1):
        home.allow_udp_to(ip, port)


DIAGNOSIS_JS = """() => { const t = window.tvapp; return {state: t.state, generation: t.generation,
  restarts: t.mediaRestarts, reason: t.lastMediaRestart, down: t.mediaDown, repairing: t.mediaRepairing,
  pc: t.pc && t.pc.connectionState, offers: t.offersAnswered, errors: t.errors}; }"""


def page_side(home: Home, url: str, spki: str, code: str, bot: CountingBot) -> dict[str, Any]:
    """In home C: join as Carol, kill the media path, watch the page repair it; return what was seen."""
    with Browser(extra_args=[f"--ignore-certificate-errors-spki-list={spki}"]) as browser:
        page = browser.new_page()
        try:
            return repair(home, browser, page, url, code, bot)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; page: {page.evaluate(DIAGNOSIS_JS)}; bot: {bot.events}; "
                                 f"console: {browser.errors[page]}") from exc


def repair(home: Home, browser: Browser, page: Any, url: str, code: str, bot: CountingBot) -> dict[str, Any]:
    """Join, cut UDP both ways, wait for the repair, restore; return what was seen."""
    seen: dict[str, Any] = {}
    page.goto(page_url(url, code=code, name="Carol", autojoin="1"), wait_until="load")
    wait_for_state(page, "joined", timeout=30)
    stats_grow(page, {"video": ("inbound", "video", "framesDecoded")}, timeout=40)
    identity = page.evaluate("() => window.tvapp.identity")
    wait_until(lambda: bot.frames_after(0) >= 10, 40, "the bot to decode the page's camera")
    local = wait_for_js(page, "() => window.tvapp.localTracks", lambda ts: ts and all(t["sid"] for t in ts))
    seen["before"] = {"self": page.evaluate("() => window.tvapp.self.sid"),
                      "tracks": sorted(t["sid"] for t in local), "bot": bot.seen(identity)}
    assert page.evaluate(CALL_STATE_SHOWN) is False
    page.evaluate("() => { window.firstPc = window.tvapp.pc; }")

    _nft(home.router_ns, "add rule inet outage cutfwd meta l4proto udp counter drop\n")  # media dies, TCP lives
    cut = time.time()
    wait_for_js(page, f"() => ({CALL_STATE_SHOWN})() && window.tvapp.mediaRestarts >= 1", timeout=20,
                what="the page to show Reconnecting… and ask for a media_restart")
    seen["restart_after_s"] = time.time() - cut
    seen["reason"] = page.evaluate("() => window.tvapp.lastMediaRestart")
    seen["text"] = page.evaluate("() => document.getElementById('call-state').textContent")
    seen["state_during"] = page.evaluate("() => window.tvapp.state")
    seen["udp_dropped"] = home.cut_dropped()
    home.restore()  # the path is back (the old peer connection is closed: only the fresh one can use it)
    restored = time.time()
    wait_for_js(page, f"() => !({CALL_STATE_SHOWN})() && !window.tvapp.mediaDown", timeout=30,
                what="the page to clear Reconnecting…")
    stats_grow(page, {"video": ("inbound", "video", "framesDecoded")}, timeout=30)  # bot -> page, new pc
    wait_until(lambda: bot.frames_after(restored) >= 10, 30, "the bot to decode the page's camera again")
    seen["after"] = {"self": page.evaluate("() => window.tvapp.self.sid"),
                     "tracks": sorted(t["sid"] for t in page.evaluate("() => window.tvapp.localTracks")),
                     "bot": bot.seen(identity)}
    seen["new_pc"] = page.evaluate("() => window.firstPc !== window.tvapp.pc"
                                   " && window.firstPc.connectionState === 'closed'")
    seen["generation"] = page.evaluate("() => window.tvapp.generation")
    seen["participants"] = page.evaluate("() => window.tvapp.participants.map((p) => p.identity)")
    seen["errors"] = page.evaluate("() => window.tvapp.errors")
    seen["console"] = list(browser.errors[page])
    seen["bot_events"] = list(bot.events)  # before the browser closes (then Carol leaves, "disconnected")
    return seen


def test_the_phone_page_repairs_a_dead_media_path_with_media_restart_keeping_its_participant_and_tracks(
        homes: Homes, tmp_path: Path) -> None:
    home_c = homes["c"]
    open_udp(home_c, homes.core_ip)
    with cloud_core(homes, tmp_path / "core", {"TVAPP_SERVER_TLS": "auto", "TVAPP_INVITES_REDEEM_FAILURES": "1000",
                                               "TVAPP_MEDIA_UDP_PORT_RANGE": f"{PORTS[0]}-{PORTS[1]}"}) as core:
        pem = core.data_dir / "tls" / "core-cert.pem"
        trust.trust_certificate(core.url, pem)
        spki = spki_sha256(x509.load_pem_x509_certificate(pem.read_bytes()))
        room, code = new_room(core, "repair")
        bot = CountingBot()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            follow = pool.submit(asyncio.run, bot.follow(core.url, core.token(room, "bot")["access_token"], "Carol",
                                                         timeout=60, host_addresses=[homes.root_ip]))
            try:
                page = pool.submit(home_c.run_in_namespace, page_side, home_c, core.url, spki, code, bot)
                try:
                    seen = page.result(timeout=170)
                except AssertionError as exc:  # the core's own account of what went wrong goes with the failure
                    raise AssertionError(f"{exc}\ncore log:\n{''.join(list(core.output)[-60:])}") from exc
            finally:
                bot.stop.set()
            follow.result(timeout=20)
    print(f"repair: {seen}; bot events {bot.events}")
    # the page noticed within seconds, said so, and kept its signaling (state "joined" all along)
    assert seen["restart_after_s"] < 10 and seen["reason"] in ("ice_disconnected", "ice_failed", "no_inbound_rtp")
    assert seen["text"] == "Reconnecting…" and seen["state_during"] == "joined", seen
    assert seen["new_pc"] is True and seen["generation"] == 1, seen
    # the same participant with the same track sids, as the page and the bot see it; nobody left
    assert seen["after"] == seen["before"] and seen["before"]["bot"] is not None, seen
    assert seen["before"]["bot"][1] == frozenset(seen["before"]["tracks"]) and len(seen["before"]["tracks"]) == 2
    assert [e[0] for e in seen["bot_events"] if e[0] not in ("participant_reconnecting", "participant_reconnected")
            ] == [], seen["bot_events"]  # no participant_left, and the bot itself never had to reconnect
    assert seen["participants"] == ["bot"] and seen["errors"] == [] and seen["console"] == [], seen
    assert seen["udp_dropped"] >= 1  # the cut really dropped the page's media

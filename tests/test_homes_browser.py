"""Real Chromium (the phone web client) in home C, where no UDP leaves: it reaches the cloud core through coturn
over TCP, decodes an SDK participant's video from home A, and that participant decodes Chromium's fake camera;
with a TV (`tvapp tv`) in home B as well, the TV shows both.

Chromium runs inside home C's LAN namespace: Playwright's driver and the browser are started from a thread that
entered the namespace (tvapp.testing.homes `run_in_namespace`), and processes inherit the namespace of the thread
that starts them. The core serves https with the self-signed certificate it made on first run (its host is not a
loopback address); Chromium is made to trust exactly that key (`--ignore-certificate-errors-spki-list`, as a phone
that followed the fingerprint in the invite link), the SDK participant that certificate (tvapp.client.trust). Its
nominated pair, read from getStats(), is a relay over TCP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from test_homes_reach import (
    RED,
    cloud_core,
    cloud_turn,
    relayed_for,
    turn_env,
    wait_all,
)
from web_helpers import new_room

from tvapp.client import trust
from tvapp.testing.browser import Browser, page_url, stats_grow, wait_for_state
from tvapp.testing.homes import Homes
from tvapp.testing.reach import Reach, close_to, take_part
from tvapp.testing.tv import TvProcess, region_color
from tvapp.testing.waiting import wait_until
from tvapp.web.tls import spki_sha256

pytestmark = pytest.mark.timeout(180)

SELECTED_PAIR_JS = """
async (pc) => {
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = report.get(pair.localCandidateId), remote = report.get(pair.remoteCandidateId);
  return {local: {type: local.candidateType, relayProtocol: local.relayProtocol || null, address: local.address},
          remote: {type: remote.candidateType, address: remote.address}, bytesReceived: pair.bytesReceived};
}
"""


def browser_in_home(url: str, spki: str, code: str, decoded: threading.Event, hold: threading.Event
                    ) -> dict[str, Any]:
    """Join as "Carol" from Chromium, wait until its video decodes and `hold` is set; return the selected pair."""
    with Browser(extra_args=[f"--ignore-certificate-errors-spki-list={spki}"]) as browser:
        page = browser.new_page()
        page.goto(page_url(url, code=code, name="Carol", autojoin="1"), wait_until="load")
        assert page.evaluate("() => window.isSecureContext && typeof navigator.mediaDevices") == "object"
        wait_for_state(page, "joined", timeout=30)
        stats_grow(page, {"video": ("inbound", "video", "framesDecoded"),
                          "sent": ("outbound", "video", "framesEncoded")}, timeout=40)
        pair: dict[str, Any] = page.evaluate(f"async () => ({SELECTED_PAIR_JS})(window.tvapp.pc)")
        decoded.set()
        if not hold.wait(60):
            raise TimeoutError("alice did not decode Carol's video in time")
        assert browser.errors[page] == [], browser.errors[page]
        return pair


def test_chromium_in_a_home_without_udp_joins_over_https_and_turn_over_tcp_and_media_flows_both_ways(
        homes: Homes, tmp_path: Path) -> None:
    home_c = homes["c"]
    with cloud_turn(homes) as coturn, cloud_core(homes, tmp_path / "core", {
            **turn_env(homes, coturn, "tcp"), "TVAPP_INVITES_REDEEM_FAILURES": "1000", "TVAPP_SERVER_TLS": "auto"}
            ) as core:
        assert core.url.startswith("https://"), core.url
        pem = core.data_dir / "tls" / "core-cert.pem"
        trust.trust_certificate(core.url, pem)  # alice (the SDK, this process) trusts exactly the core's certificate
        spki = spki_sha256(x509.load_pem_x509_certificate(pem.read_bytes()))
        room, code = new_room(core, "homes")
        done_a, done_c, hold = threading.Event(), threading.Event(), threading.Event()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a: concurrent.futures.Future[Reach] = pool.submit(
                homes["a"].run_in_namespace, asyncio.run,
                take_part(core.url, core.token(room, "alice")["access_token"], watch="Carol", color=RED,
                          frames=30, done=done_a, hold=hold, timeout=60))
            c = pool.submit(home_c.run_in_namespace, browser_in_home, core.url, spki, code, done_c, hold)
            try:
                wait_all((done_a, done_c), (a, c))  # type: ignore[arg-type]
            finally:
                hold.set()
            alice, pair = a.result(), c.result()
        relayed = wait_until(lambda: relayed_for(coturn, home_c.wan_ip), 10,
                             lambda: f"coturn to close home C's session: {coturn.log_tail(30)}")
    # alice decoded 30 frames of Chromium's fake camera (not her own red), and Chromium alice's video (stats_grow)
    assert alice.first_frame_s > 0 and not close_to(alice.rgb, RED), alice
    # Chromium's media went through coturn over TCP
    assert pair["local"]["type"] == "relay" and pair["local"]["relayProtocol"] == "tcp", pair
    assert pair["local"]["address"] == homes.alt_ip, pair
    assert relayed is not None and relayed["allocated"] and relayed["from_peers"] > 8_000, relayed
    assert home_c.udp_dropped() >= 1
    print(f"alice decoded Chromium's camera (median colour {alice.rgb}); Chromium's pair {pair}; coturn {relayed}")


def test_an_sdk_participant_in_a_a_tv_in_b_and_chromium_in_c_each_decode_the_others_on_the_https_cloud_core(
        homes: Homes, tmp_path: Path) -> None:
    home_a, home_b, home_c = homes["a"], homes["b"], homes["c"]
    with cloud_turn(homes) as coturn, cloud_core(homes, tmp_path / "core", {
            **turn_env(homes, coturn, "tcp"), "TVAPP_INVITES_REDEEM_FAILURES": "1000", "TVAPP_SERVER_TLS": "auto"}
            ) as core:
        pem = core.data_dir / "tls" / "core-cert.pem"
        trust.trust_certificate(core.url, pem)
        spki = spki_sha256(x509.load_pem_x509_certificate(pem.read_bytes()))
        room, code = new_room(core, "homes")
        key_id, secret = core.key
        # the TV trusts the core's certificate as a CA file ($SSL_CERT_FILE: the default verification paths)
        tv = TvProcess(tmp_path / "tv", ["--server", core.url, "--room", room, "--api-key", f"{key_id}:{secret}",
                                         "--no-audio", "--name", "Home B TV"], size="960x540",
                       env={"TVAPP_MEDIA_HOST_ADDRESSES": home_b.lan_ip, "SSL_CERT_FILE": str(pem)},
                       prefix=home_b.exec_prefix)
        done_a, done_c, hold = threading.Event(), threading.Event(), threading.Event()
        try:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                a: concurrent.futures.Future[Reach] = pool.submit(
                    home_a.run_in_namespace, asyncio.run,
                    take_part(core.url, core.token(room, "alice", name="Alice")["access_token"], watch="Carol",
                              color=RED, frames=30, done=done_a, hold=hold, timeout=60))
                c = pool.submit(home_c.run_in_namespace, browser_in_home, core.url, spki, code, done_c, hold)
                try:
                    wait_all((done_a, done_c), (a, c))  # type: ignore[arg-type]

                    def both_showing(sidecar: dict[str, Any]) -> bool:
                        tiles = {tile.get("name"): tile for tile in sidecar["tiles"]}
                        return all(tiles.get(who, {}).get("video_rect") for who in ("Alice", "Carol"))

                    pixels, sidecar = tv.wait_for(both_showing, timeout=60, what="Alice's and Carol's video")
                finally:
                    hold.set()
                alice, pair = a.result(), c.result()
        finally:
            tv_status = tv.stop()
    tiles = {tile["name"]: tile for tile in sidecar["tiles"]}
    assert close_to(tuple(int(v) for v in region_color(pixels, tiles["Alice"]["video_rect"])), RED), tiles
    assert not close_to(alice.rgb, RED), alice  # alice decoded Chromium's camera
    assert pair["local"]["type"] == "relay" and pair["local"]["relayProtocol"] == "tcp", pair
    assert tv_status == 0, tv.output

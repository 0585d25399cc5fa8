"""Simulcast by two tracks from a web page: the phone page (on tvapp.js) publishes its camera with a low rendition.

A real core (tvapp.testing.congestion.server_behind: members reach it through a userspace netem link, the page on
loopback), one real Chromium phone page with Chromium's fake 640x480 camera, and measuring Python SDK members
(tvapp.testing.member subprocesses). The room sees one camera track carrying its rendition (REST), never two; with
only a good subscriber the rendition's RTCRtpSender is inactive and sends no frame while the camera flows; a member
behind a 400 kb/s link (the same least-artificial way as tests/test_simulcast_netem.py: its link cannot carry the
camera, so the SFU moves it to the rendition) makes the SFU unpause it: the page sends it at ~160x90 worth of pixels
(about 138x104 for 4:3) and that member decodes frames of exactly that size; once it leaves, the rendition is paused
at the page again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from web_helpers import new_room

from tvapp.testing.browser import (
    Browser,
    app_state,
    page_url,
    wait_for_js,
    wait_for_state,
    wait_until,
)
from tvapp.testing.congestion import (
    MemberProcess,
    server_behind,
    shaped_link,
    subscriptions,
)
from tvapp.testing.netem import NetemLink

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_pages")]
WEAK_KBPS = 400.0

# Per video sender of the page: its mid, encoding (active, scale) and outbound-rtp counters.
SENDERS = """async () => {
  const pc = window.tvapp.pc, out = {};
  for (const t of pc.getTransceivers()) {
    if (!t.mid || !t.sender.track || t.sender.track.kind !== "video") continue;
    const e = (t.sender.getParameters().encodings || [{}])[0] || {};
    const s = { active: e.active !== false, scale: e.scaleResolutionDownBy || 1, framesSent: 0, frameWidth: 0,
      frameHeight: 0 };
    (await t.sender.getStats()).forEach((r) => {
      if (r.type !== "outbound-rtp") return;
      s.framesSent += r.framesSent || 0;
      s.frameWidth = r.frameWidth || s.frameWidth;
      s.frameHeight = r.frameHeight || s.frameHeight;
    });
    out[t.mid] = s;
  }
  return out;
}"""


@pytest.fixture
def weak_link() -> Iterator[NetemLink]:
    with shaped_link("wsim", down_kbps=WEAK_KBPS, seed=7) as link:
        yield link


def camera(page: Page) -> dict[str, Any]:
    return next(t for t in app_state(page)["localTracks"] if t["source"] == "camera")


def decoded_size(member: MemberProcess, sid: str) -> tuple[int, int] | None:
    """Return the size of the member's last decoded frame of track `sid` (None: none yet)."""
    stats = [r["stats"] for r in member.records() if "stats" in r]
    size = (stats[-1].get(sid) or {}).get("size") if stats else None
    return (int(size[0]), int(size[1])) if size else None


def history(member: MemberProcess, sid: str) -> list[tuple[Any, ...]]:
    """Return (time, packets, lost, frames, size) of track `sid` in each of the member's stats lines (a failure's
    message)."""
    return [(r["t"], *(r["stats"][sid][k] for k in ("packets", "lost", "frames", "size"))) for r in member.records()
            if sid in r.get("stats", {})]


def test_a_page_publishes_its_camera_with_a_rendition_sent_only_while_a_weak_member_is_carried_on_it(
        browser: Browser, weak_link: NetemLink, tmp_path: Path) -> None:
    server, port = server_behind(tmp_path / "server", weak_link, "unused")
    members: list[MemberProcess] = []
    try:
        room, code = new_room(server, "wsim")
        page = browser.new_page()
        page.goto(page_url(f"http://127.0.0.1:{port}", code=code, name="Web", autojoin="1"))  # (a secure context)
        wait_for_state(page, "joined")
        wait_for_js(page, "() => window.tvapp.localTracks.find((t) => t.source === 'camera')",
                    lambda t: t and t["sid"] and t["mid"] and t.get("low") and t["low"]["sid"] and t["low"]["mid"],
                    what="the camera and its rendition published")
        cam = camera(page)
        low = cam["low"]

        # (a) The room sees one camera track carrying its rendition, not two tracks.
        def me() -> dict[str, Any]:
            listed = server.http.get(f"/v1/rooms/{room}/participants").json()
            return next(p for p in listed if p["name"] == "Web")

        tracks = me()["tracks"]
        assert sorted(t["source"] for t in tracks) == ["camera", "microphone"], tracks
        video = next(t for t in tracks if t["source"] == "camera")
        assert video["sid"] == cam["sid"]
        assert [(r["sid"], r["layer"]) for r in video["renditions"]] == [(low["sid"], "low")]

        def senders() -> dict[str, Any]:
            return page.evaluate(SENDERS)  # type: ignore[no-any-return]

        def rendition_paused_in_rest() -> bool:
            info = next(t for t in me()["tracks"] if t["sid"] == cam["sid"])
            return bool((info["renditions"][0]["constraints"] or {}).get("paused"))

        # (b) A good subscriber gets the camera; the rendition stays inactive at the page, no frame sent.
        good = MemberProcess(tmp_path, "good", f"http://127.0.0.1:{port}", server.token(room, "good")["access_token"],
                             host_address="127.0.0.1")
        members.append(good)
        good.wait("the camera decoded", lambda rs: (decoded_size(good, cam["sid"]) or (0, 0))[0] >= 320, timeout=30)
        wait_until(lambda: senders()[cam["mid"]]["framesSent"] >= 60, 20, 0.2, "the camera sending (60 frames)")
        quiet = senders()[low["mid"]]
        assert quiet["active"] is False and quiet["framesSent"] == 0, quiet
        assert rendition_paused_in_rest()

        # A member behind 400 kb/s is moved to the rendition: the page sends it at ~160x90, that member decodes it.
        weak = MemberProcess(tmp_path, "weak", f"http://{weak_link.host_ip}:{port}",
                             server.token(room, "weak")["access_token"], host_address=weak_link.ns_ip, link=weak_link)
        members.append(weak)
        weak.wait("its camera subscription", lambda rs: cam["sid"] in subscriptions(rs), timeout=30)
        sending = wait_until(lambda: (s := senders()[low["mid"]])["active"] and s["framesSent"] >= 15 and s, 30, 0.2,
                             "the rendition sending (15 frames)")
        width, height = sending["frameWidth"], sending["frameHeight"]
        assert 0.7 * 160 * 90 <= width * height <= 1.1 * 160 * 90, sending  # 160x90 worth of pixels (138x104)
        assert sending["scale"] == pytest.approx(4.62), sending
        assert not rendition_paused_in_rest()
        try:
            weak.wait(f"the rendition decoded at {width}x{height}",
                      lambda rs: decoded_size(weak, cam["sid"]) == (width, height), timeout=20)
            not_decoded = None
        except AssertionError as failed:  # judged below, after the page's side has been seen through
            events = [r for r in weak.records() if r.get("event", "").startswith("track_switched")]
            not_decoded = f"{failed}; (t, packets, lost, frames, size): {history(weak, cam['sid'])}; {events}"
        assert (decoded_size(good, cam["sid"]) or (0, 0))[0] >= 320  # the good member keeps the camera

        # Nobody carried on it any more: paused at the page again.
        weak.stop()
        members.remove(weak)
        wait_until(lambda: senders()[low["mid"]]["active"] is False, 20, 0.2, "the rendition inactive again")
        assert browser.errors[page] == []
        assert not_decoded is None, not_decoded
    finally:
        for member in members:
            member.stop()
        server.stop()

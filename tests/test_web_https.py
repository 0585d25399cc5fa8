"""Phones on the LAN publish camera and microphone over https to the TV's built-in core (self-signed certificate).

A real `tvapp tv` starts its built-in core on 0.0.0.0 with no certificate configured, so the core makes a
self-signed one; the TV shows a "scan to join" QR code whose link is the phone client's https URL on the LAN
address with the invite code and the certificate's fingerprint. A real Chromium opens exactly that link at the
machine's non-loopback address, trusting that one certificate by its public key
(`--ignore-certificate-errors-spki-list`, pinning, not ignoring every error), and publishes its fake camera and
microphone; the TV (an SDK subscriber) decodes the video and draws it in the phone's tile.
Without the pin, Chromium refuses the certificate (what a phone shows first); over plain http to a LAN address
the page has no navigator.mediaDevices at all.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from tvapp.server.run import lan_addresses
from tvapp.testing.browser import Browser, app_state, stats_grow, wait_for_state
from tvapp.testing.tv import TvProcess
from tvapp.web.tls import fingerprint, spki_sha256

SENDS_AUDIO_AND_VIDEO = {"video": ("outbound", "video", "framesEncoded"), "audio": ("outbound", "audio", "packets")}


def lan_address() -> str:
    found = lan_addresses()
    assert found, "this test needs a non-loopback IPv4 address on the machine"
    return found[0]


def core_cert(data: Path) -> tuple[str, str]:
    """Return the (fingerprint, base64 SPKI sha256) of the core's self-signed certificate in `data`."""
    from cryptography import x509

    pem = (data / "tls" / "core-cert.pem").read_bytes()
    return fingerprint(ssl.PEM_cert_to_DER_cert(pem.decode())), spki_sha256(x509.load_pem_x509_certificate(pem))


def test_phone_scans_the_tvs_code_and_publishes_camera_and_mic_over_https(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tv = TvProcess(tmp_path, ["--port", "0", "--room", "family", "--data", str(data), "--no-audio"],
                   size="1280x720")
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"] and s["join_qr"],
                                 timeout=60, what="the room with its invite code and QR code")
        code = sidecar["invite_code"]
        fp, spki = core_cert(data)
        link = sidecar["join_qr"]["url"]
        base, fragment = link.split("#", 1)
        assert fragment == f"fp={fp}"
        assert base.startswith(f"https://{lan_address()}:") and base.endswith(f"/?code={code}")
        assert f"phones join at https://{lan_address()}:" in tv.output and f"fingerprint {fp}" in tv.output
        with Browser(extra_args=[f"--ignore-certificate-errors-spki-list={spki}"]) as browser:
            page = browser.new_page()
            page.goto(f"{base}&name=Phone&autojoin=1#{fragment}", wait_until="load")
            assert page.evaluate("() => window.isSecureContext && typeof navigator.mediaDevices") == "object"
            wait_for_state(page, "joined", timeout=30)
            stats_grow(page, SENDS_AUDIO_AND_VIDEO, timeout=30)
            assert {t["source"] for t in app_state(page)["localTracks"]} == {"camera", "microphone"}
            tv.wait_for(lambda s: any(t.get("name") == "Phone" and t["video_rect"] for t in s["tiles"]),
                                   timeout=40, what="the phone's camera decoded in its tile")
            assert browser.errors[page] == []
    finally:
        assert tv.stop() == 0, tv.output


def test_without_the_pin_the_certificate_is_refused_and_plain_http_has_no_camera(tmp_path: Path) -> None:
    address = lan_address()
    tls = subprocess.Popen([sys.executable, "-m", "tvapp", "serve", "--host", "0.0.0.0", "--port", "0", "--data",
                            str(tmp_path / "tls")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    plain = subprocess.Popen([sys.executable, "-m", "tvapp", "serve", "--host", "0.0.0.0", "--port", "0", "--data",
                              str(tmp_path / "plain")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "TVAPP_SERVER_TLS": "off"})
    try:
        urls = []
        for proc in (tls, plain):
            assert proc.stdout is not None
            line = next(line for line in proc.stdout if "listening on " in line)
            urls.append(line.split("listening on ", 1)[1].split()[0].replace("0.0.0.0", address))
        with Browser() as browser:
            page = browser.new_page()
            with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                page.goto(urls[0] + "/", wait_until="load")
            page = browser.new_page()
            page.goto(urls[1] + "/", wait_until="load")
            assert page.evaluate("() => [window.isSecureContext, typeof navigator.mediaDevices]") == [False,
                                                                                                      "undefined"]
    finally:
        for proc in (tls, plain):
            proc.terminate()
            proc.wait(10)

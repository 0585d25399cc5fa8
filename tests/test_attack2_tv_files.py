"""What a real TV leaves in its data directory is not readable by other users of the box.

A `tvapp tv` started under umask 022 with a fresh data directory (as on first boot: it makes the folder itself),
serving its remote over https (its self-signed key in <data>/tv-tls), with a phone paired: afterwards the folder is
0700 and no file in it (API keys, databases, the TV's identity, the TLS key, paired devices) grants any permission to
group or others, except what is public on purpose: the media folder the core serves, the TLS certificate.
And the phone's Remote page cannot be framed by another site (clickjacking a paired phone's buttons), and the
pairing answers (the device credential) say Cache-Control: no-store.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
from test_tv_remote import Loop, pair, start_tv


def test_a_tv_first_run_leaves_nothing_readable_by_others(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        tv = start_tv(tmp_path, env={"TVAPP_TV_TLS": "true"})
    finally:
        os.umask(old)
    loop = Loop()
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the default room")
        assert tv.remote_url().startswith("https://")
        pair(tv, loop)
    finally:
        assert tv.stop() == 0, tv.output
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    names = {p.relative_to(data).as_posix() for p in data.rglob("*")}
    assert {"keys.json", "tv-identity", "tv.sqlite3"} <= names and any(n.startswith("tv-tls/") for n in names), names
    loose = {p.relative_to(data).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in data.rglob("*")
             if p.relative_to(data).parts[0] != "media" and not p.name.endswith("-cert.pem")
             and stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert not loose, loose


def test_the_remote_page_refuses_framing_and_pairing_answers_are_not_cached(tmp_path: Path) -> None:
    tv = start_tv(tmp_path)
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the default room")
        base = tv.remote_url()
        started = httpx.post(base + "/v1/pairings", json={"name": "Phone"}, timeout=10)
        assert started.status_code == 201 and started.headers["cache-control"] == "no-store"
        _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
        paired = httpx.post(f"{base}/v1/pairings/{started.json()['pairing_id']}/confirm", timeout=10,
                            json={"code": sidecar["pairing"]["code"].replace(" ", "")})
        assert paired.status_code == 201 and paired.json()["credential"], paired.text
        assert paired.headers["cache-control"] == "no-store"  # the device credential is in it
        for path in ("/remote", "/remote/assets/remote.js"):
            response = httpx.get(base + path, timeout=10)
            assert response.status_code == 200, response.text
            assert response.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    finally:
        assert tv.stop() == 0, tv.output

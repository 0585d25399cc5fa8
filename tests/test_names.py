"""One text rule for every human-readable name (tvapp.core.text), wired through REST, tokens, signaling and the TV.

A display name with a NUL byte used to be accepted by the REST API and then crash the TV's text renderer. Now REST
refuses such a name (400 `invalid_name`), building a token refuses it, signaling refuses a track name that breaks
the rule, a token minted elsewhere with such a name is accepted with the name cleaned, and the TV draws every text
through the rule: a real TV in a room with such a participant keeps running and shows its tile.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pygame
import pytest

from tvapp.core.claims import ACCESS, Grants, build_claims, check_claims
from tvapp.protocol.fields import ProtocolError
from tvapp.protocol.messages import Playback, Publish, decode, parse_client_message
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess
from tvapp.tv.painter import Painter
from tvapp.tv.render import Renderer
from tvapp.tv.scene import RoomBar, RoomScreen, Scene, TileView

BAD_NAMES = ["Eve\x00", "\x1b[31mred", "line\nbreak", "rtl\u202eevil", "a" * 65]


def raw_token(server: ServerProcess, room: str, identity: str, name: str, **grants: Any) -> str:
    """Sign an access token with the server's key directly: what a customer's own auth server could mint."""
    key_id, secret = server.key
    now = int(time.time())
    claims = {"iss": key_id, "sub": identity, "aud": "tvapp", "iat": now, "nbf": now, "exp": now + 600,
              "jti": secrets.token_urlsafe(12), "typ": "access", "name": name,
              "grants": {"room": room, **grants}}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_id})


def new_room(server: ServerProcess) -> str:
    name = "names-" + uuid.uuid4().hex[:8]
    server.http.post("/v1/rooms", json={"name": name}).raise_for_status()
    return name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_rest_refuses_a_bad_name_for_a_token_a_guest_and_a_title(server: ServerProcess, name: str) -> None:
    room = new_room(server)
    answer = server.http.post("/v1/tokens", json={"room": room, "identity": "ann", "name": name})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_name"
    assert name not in answer.json()["error"]["message"]  # the message says what is wrong without repeating it
    code = server.http.post(f"/v1/rooms/{room}/invites", json={}).json()["code"]
    answer = server.http.post(f"/v1/invites/{code}/redeem", json={"identity": "guest", "name": name}, auth=None)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_name", answer.text
    answer = server.http.post(f"/v1/rooms/{room}/playback",
                              json={"action": "load", "content": "http://x/y.mp4", "title": name + "\x07"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_name", answer.text


def test_rest_accepts_names_people_write(server: ServerProcess) -> None:
    room = new_room(server)
    for name in ("Zoë Müller", "李小龍", "👨\u200d👩\u200d👧 family", "a" * 64, ""):
        answer = server.http.post("/v1/tokens", json={"room": room, "identity": "ann", "name": name})
        assert answer.status_code == 201, (name, answer.text)
    code = server.http.post(f"/v1/rooms/{room}/invites", json={}).json()["code"]
    answer = server.http.post(f"/v1/invites/{code}/redeem", json={"identity": "zoe", "name": "Zoë"}, auth=None)
    assert answer.status_code == 200, answer.text


def test_building_a_token_refuses_a_bad_name_and_checking_one_cleans_it() -> None:
    grants = Grants(room="r")
    with pytest.raises(ValueError, match="control or invisible"):
        build_claims(issuer="k", identity="a", audience="tvapp", grants=grants, now=0, ttl=60, typ=ACCESS,
                     jti="j", name="Eve\x00")
    claims = build_claims(issuer="k", identity="a", audience="tvapp", grants=grants, now=0, ttl=60, typ=ACCESS,
                          jti="j", name="ok")
    claims["name"] = "E\x00ve\x1b"
    checked = check_claims(claims, typ=ACCESS, audience="tvapp", issuer="k", now=1, leeway=0)
    assert checked.name == "Eve"


def test_the_token_command_refuses_a_bad_name(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tvapp", "token", "--data", str(tmp_path), "--room", "r",
                           "--identity", "ann", "--name", "Eve\x1b"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "name must not contain control or invisible characters" in done.stderr
    assert done.stdout == ""


def test_signaling_refuses_a_bad_track_name_or_title_with_invalid_name() -> None:
    for text in (json.dumps({"type": "publish", "v": 1, "cid": "c1", "kind": "audio", "source": "microphone",
                             "name": "mic\x00"}),
                 json.dumps({"type": "playback", "v": 1, "action": "load", "content": "x", "title": "t\u202e"})):
        with pytest.raises(ProtocolError) as caught:
            parse_client_message(decode(text))
        assert caught.value.code == "invalid_name"
    with pytest.raises(ProtocolError):
        Publish(cid="c", kind="audio", source="microphone", name="\x00")
    assert Playback(action="load", content="x", title="Zoë's film").title == "Zoë's film"


def test_the_painter_draws_any_text_without_raising(full_hd: pygame.Surface) -> None:
    painter = Painter(full_hd, 1.0)
    for text in ("Eve\x00", "\x00", "a\x1b[2Jb", "x" * 5000):
        painter.rendered(text, 48, (255, 255, 255), (0, 0, 0))
        painter.fit(text, 48, 300)
        painter.wrap(text, 48, 300)
    renderer = Renderer(full_hd)
    renderer.draw(Scene(RoomScreen(RoomBar(room="r\x00", invite_code="", participants=1, join_hint=""),
                                   (TileView("s1", "Eve\x00Null", "E\x00", video=None),), "grid")))
    assert renderer.tile_rects["s1"].w > 0


@pytest.mark.timeout(180)
def test_the_tv_keeps_running_and_shows_a_participant_whose_token_name_has_a_nul(
        media_server: ServerProcess, tmp_path: Path) -> None:
    room = new_room(media_server)
    tv_token = media_server.token(room, "tv", name="Den TV")["access_token"]
    tv = TvProcess(tmp_path / "tv", ["--server", media_server.url, "--token", tv_token, "--no-audio"],
                   size="1280x720")
    guest: BotProcess | None = None
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the room screen")
        token = raw_token(media_server, room, "eve", "Eve\x00\x1b[2J\u202eNull")
        (tmp_path / "bot").mkdir()
        guest = BotProcess(tmp_path / "bot", "eve", ["--server", media_server.url, "--token", token,
                                                     "--video", "pattern:160x120@10"])
        _, sidecar = tv.wait_for(lambda s: [t["identity"] for t in s["tiles"]] == ["eve"], timeout=60,
                                 what="a tile for the participant with the NUL name")
        assert sidecar["tiles"][0]["name"] == "Eve[2JNull"
        tv.wait_for(lambda s: bool(s["tiles"] and s["tiles"][0]["video_rect"]), timeout=60,
                    what="its video drawn in its tile")
        assert tv.proc.poll() is None, tv.output
        assert "null character" not in tv.output.lower()
    finally:
        if guest is not None:
            guest.stop()
        tv.stop()

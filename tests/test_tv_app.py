"""The real TV (`tvapp tv` as a subprocess, SDL dummy screen + disk audio) in a room with real bots.

What the TV shows is read back from its screenshots (pixels) with the sidecar saying where it put each tile;
what it played is read from SDL's disk-audio file. Bots are real `tvapp bot` processes publishing a solid
colour and a tone; the server is a real `tvapp serve`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tvapp.client.sources import parse_color
from tvapp.testing.rest import new_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess, region_color, tone_level_db
from tvapp.tv.render import Renderer

pytestmark = pytest.mark.timeout(240)

HIGHLIGHT = np.array(Renderer.highlight_color)
TURN = 5.0


def bot(server: ServerProcess, workdir: Path, room: str, name: str, *args: str) -> BotProcess:
    token = server.token(room, name.lower(), name=name)["access_token"]
    return BotProcess(workdir, name, ["--server", server.url, "--token", token, "--video", "pattern:320x240@15",
                                      *args])


def by_identity(sidecar: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tile["identity"]: tile for tile in sidecar["tiles"]}


def colour_close(measured: np.ndarray, expected: tuple[int, int, int], tolerance: float = 40) -> bool:
    return bool(np.abs(measured - np.array(expected)).max() <= tolerance)


def highlight_pixels(pixels: np.ndarray, rect: list[int] | None = None) -> int:
    region = pixels if rect is None else pixels[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]]
    return int((np.abs(region.astype(int) - HIGHLIGHT).max(axis=2) <= 12).sum())


def current_talker(now: float, talkers: list[str]) -> str | None:
    """Whose turn it is at wall time `now`, or None near a turn change (the highlight may be moving)."""
    phase = now % TURN
    if phase < 1.5 or phase > TURN - 0.3:
        return None
    return talkers[int(now // TURN) % len(talkers)]


def test_tv_shows_each_bot_in_its_tile_highlights_the_talker_and_plays_their_tones(
        media_server: ServerProcess, tmp_path: Path) -> None:
    room = new_room(media_server, "tv")
    colours = {"Red": parse_color("red"), "Green": parse_color("green"), "Blue": parse_color("blue")}
    bots = [
        bot(media_server, tmp_path, room, "Red", "--color", "red", "--audio", "tone:440", "--talk", f"0/2@{TURN:g}"),
        bot(media_server, tmp_path, room, "Green", "--color", "green", "--audio", "tone:660",
            "--talk", f"1/2@{TURN:g}"),
        bot(media_server, tmp_path, room, "Blue", "--color", "blue", "--audio", "tone:1230", "--mute", "audio"),
    ]
    token = media_server.token(room, "the-tv", name="Living room")["access_token"]
    tv = TvProcess(tmp_path, ["--server", media_server.url, "--token", token])
    try:
        for b in bots:
            b.wait_published(2)

        def all_showing(sidecar: dict[str, Any]) -> bool:
            tiles = by_identity(sidecar)
            return set(tiles) == {"red", "green", "blue"} and all(t["video_rect"] for t in tiles.values())

        tv.wait_for(all_showing, timeout=60, what="three video tiles")
        started = time.monotonic()
        seen_talkers: set[str] = set()
        deadline = time.monotonic() + 3 * TURN
        while time.monotonic() < deadline and len(seen_talkers) < 2:
            pixels, sidecar = tv.screenshot()
            talker = current_talker(sidecar["time"], ["red", "green"])
            tiles = by_identity(sidecar)
            safe = sidecar["safe"]
            # Each bot's colour fills the middle of its own tile.
            for identity, tile in tiles.items():
                measured = region_color(pixels, tile["video_rect"])
                assert colour_close(measured, colours[identity.title()]), (identity, measured, tile)
            # Labels and every other text lie inside the overscan-safe area.
            for x, y, w, h in sidecar["text_rects"]:
                assert safe[0] <= x and safe[1] <= y and x + w <= safe[0] + safe[2] and y + h <= safe[1] + safe[3]
            assert tiles["blue"]["mic_muted"] and not tiles["red"]["mic_muted"]
            speaking = [i for i, t in tiles.items() if t["speaking"]]
            if talker is not None and speaking == [talker]:
                seen_talkers.add(talker)
                rect = tiles[talker]["rect"]
                outline = highlight_pixels(pixels, rect)
                assert outline > 2 * (rect[2] + rect[3]) * 4, outline  # a thick outline round the tile
                assert highlight_pixels(pixels) == outline  # ... and highlight colour nowhere else
            time.sleep(0.7)
        assert seen_talkers == {"red", "green"}, "the highlight did not follow the talker"
        # The badges show the SFU's network quality levels (0..5, the same as REST participant info); on
        # loopback every connection is fair or better.
        def same_as_the_sfu(sidecar: dict[str, Any]) -> bool:
            levels = {p["identity"]: p["network_quality"]
                      for p in media_server.http.get(f"/v1/rooms/{room}/participants").json()}
            tiles = by_identity(sidecar).items()
            return all(t["quality"] is not None and t["quality"] == levels.get(i) for i, t in tiles)

        _, sidecar = tv.wait_for(same_as_the_sfu, timeout=10, what="quality badges showing the SFU's levels")
        assert all(t["quality"] >= 3 for t in sidecar["tiles"]), sidecar["tiles"]
        time.sleep(max(0.0, started + 2.5 * TURN - time.monotonic()))  # enough sound for both to be heard
    finally:
        status = tv.stop()
        for b in bots:
            b.stop()
    assert status == 0, tv.output
    played = tv.audio()
    assert len(played) > 48000 * 5, "the TV played less than 5 s of audio"
    assert np.abs(played).max() < 32767 / 32768, "a sample clipped"
    mono = played[-48000 * 12:].mean(axis=1)
    blocks = [mono[i:i + 24000] for i in range(0, len(mono) - 24000, 24000)]
    # The level of each tone while its bot talks: the loudest half-second blocks.
    red, green, blue = (max(tone_level_db(block, hz) for block in blocks) for hz in (440, 660, 1230))
    # The noise floor: the loudest of several frequencies nobody sends (no harmonic of 440 or 660 either).
    control = max(tone_level_db(block, hz) for block in blocks for hz in (1010, 1130, 1450, 1560))
    # Both talkers send the same amplitude, heard at the same level: 0.3 (-10.5 dBFS) in mono becomes
    # -13.5 dBFS per channel when the sender's Opus encoder spreads it over two channels.
    assert -16 < red < -11 and -16 < green < -11, (red, green)
    assert abs(red - green) < 1.5, (red, green)
    # The muted bot's tone (1230 Hz: no harmonic of the others) is no louder than the frequencies nobody sends
    # (the clicks of skips are broadband, and one control frequency alone was 6.1 dB under it once in CI).
    assert blue < min(red, green) - 30 and blue < control + 6, (red, green, blue, control)


def test_tv_with_the_built_in_core_hosts_a_room_shows_its_code_and_a_guest_joins_with_it(tmp_path: Path) -> None:
    tv = TvProcess(tmp_path, ["--host", "127.0.0.1", "--port", "0", "--room", "family", "--data",
                              str(tmp_path / "data"), "--no-audio"], size="1280x720")
    guest = None
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60,
                                 what="the room with its invite code")
        url = next(line.split(" at ")[1].split(";")[0] for line in tv.output.splitlines() if "built-in core at" in line)
        guest = BotProcess(tmp_path, "guest", ["--server", url, "--invite", sidecar["invite_code"],
                                               "--name", "Guest", "--video", "pattern:320x240@15",
                                               "--color", "magenta", "--audio", "none"])
        tv.wait_for(lambda s: "Guest joined" in s["toasts"], timeout=30, what="a toast for the guest")
        guest.wait_published(1)
        pixels, sidecar = tv.wait_for(lambda s: len(s["tiles"]) == 1 and s["tiles"][0]["video_rect"], timeout=40,
                                      what="the guest's tile")
        tile = sidecar["tiles"][0]
        assert tile["name"] == "Guest"
        assert colour_close(region_color(pixels, tile["video_rect"]), parse_color("magenta"))
    finally:
        if guest is not None:
            guest.stop()
        assert tv.stop() == 0, tv.output


@pytest.mark.parametrize("case", ["unreachable", "expired", "full"])
def test_tv_says_what_is_wrong_in_words(media_server: ServerProcess, tmp_path: Path, case: str) -> None:
    bots: list[BotProcess] = []
    if case == "unreachable":
        args = ["--server", "http://127.0.0.1:9", "--invite", "ABCD-EFGH"]
        title = "Server unreachable"
    elif case == "expired":
        room = new_room(media_server, "tv")
        code = media_server.http.post(f"/v1/rooms/{room}/invites", json={"ttl": 1}).json()["code"]
        time.sleep(2.1)
        args = ["--server", media_server.url, "--invite", code]
        title = "Invite expired"
    else:
        room = new_room(media_server, "tv", max_participants=2)
        bots = [bot(media_server, tmp_path, room, name, "--audio", "none") for name in ("One", "Two")]
        for b in bots:
            b.wait_published(1)
        args = ["--server", media_server.url, "--token", media_server.token(room, "tv")["access_token"]]
        title = "Room full"
    tv = TvProcess(tmp_path, [*args, "--no-audio"], size="1280x720")
    try:
        pixels, sidecar = tv.wait_for(lambda s: s["screen"] == "ErrorScreen", timeout=30, what="the error screen")
        assert sidecar["error"]["title"] == title, sidecar["error"]
        assert sidecar["text_rects"], "the error screen drew no text"
        x, y, w, h = sidecar["text_rects"][0]
        assert pixels[y:y + h, x:x + w].std() > 10, "the title's area is blank"
    finally:
        assert tv.stop() == 0, tv.output
        for b in bots:
            b.stop()


def test_tv_without_a_room_shows_the_idle_screen(media_server: ServerProcess, tmp_path: Path) -> None:
    tv = TvProcess(tmp_path, ["--server", media_server.url, "--name", "Den TV", "--no-audio"], size="1280x720")
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "IdleScreen", timeout=30, what="the idle screen")
        assert len(sidecar["text_rects"]) >= 3
    finally:
        assert tv.stop() == 0, tv.output


def test_demo_runs_core_tv_and_talking_bots_and_writes_screenshots(tmp_path: Path) -> None:
    tv = TvProcess(tmp_path, ["--bots", "3", "--host", "127.0.0.1", "--port", "0", "--data", str(tmp_path / "data")],
                   command="demo", size="1280x720")
    try:
        pixels, sidecar = tv.wait_for(lambda s: len(s["tiles"]) == 3 and all(t["video_rect"] for t in s["tiles"]),
                                      timeout=90, what="three bots on screen")
        assert sidecar["invite_code"]
        names = {t["name"] for t in sidecar["tiles"]}
        assert names == {"Ada", "Grace", "Alan"}
        colours = {parse_color(c) for c in ("red", "green", "blue")}
        seen = {tuple(min(colours, key=lambda c: np.abs(np.array(c) - region_color(pixels, t["video_rect"])).max()))
                for t in sidecar["tiles"]}
        assert seen == colours, "each bot shows its own colour"
        speakers: set[str] = set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(speakers) < 2:
            _, sidecar = tv.screenshot()
            speakers |= {t["name"] for t in sidecar["tiles"] if t["speaking"]}
            time.sleep(0.5)
        assert len(speakers) >= 2, f"the highlight never moved: {speakers}"
        out = tv.output
        assert "screenshots go to" in out and "join from a phone at http://127.0.0.1:" in out, out
    finally:
        assert tv.stop() == 0, tv.output


def test_tv_without_any_video_driver_says_which_it_tried_and_why(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "tvapp", "tv", "--server", "http://127.0.0.1:9", "--no-audio"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    message = proc.stderr
    assert "cannot open a screen" in message and "Traceback" not in message, message
    for driver in ("kmsdrm", "x11", "wayland"):
        assert driver in message, message


def test_list_audio_devices_names_the_sdl_outputs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tvapp.testing.tv import tv_env

    proc = subprocess.run([sys.executable, "-m", "tvapp", "tv", "--list-audio-devices"], env=tv_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "no device listed"


def test_offscreen_tv_without_a_screen_writes_screenshots_to_a_printed_folder(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tvapp", "tv", "--offscreen", "--server", "http://127.0.0.1:9",
                           "--no-audio", "--duration", "4", "--screenshot-interval", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "drawing offscreen" in proc.stdout, proc.stdout
    found = re.search(r"screenshots go to (\S+latest\.png)", proc.stdout)
    assert found, proc.stdout
    shot = Path(found.group(1))
    assert shot.parent.parent == tmp_path and shot.exists()
    assert json.loads((shot.parent / "latest.json").read_text())["screen"] == "IdleScreen"  # --server, no room

"""Compositions with real parts: a real core records two real `tvapp bot` SDK participants (red pattern + 440 Hz,
blue pattern + 660 Hz); a grid composition of that session is rendered by the worker process; ffprobe reads the
file; sampled frames show each bot's colour in the tile tvapp.core.layout puts it in; each tone is heard from its
bot's recording offset on (energy per window); progress reaches 100; a composition_completed webhook arrives.
Bad requests are refused with clear 4xx."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tvapp.client.compositions import CompositionClient
from tvapp.client.webhooks import verify
from tvapp.core.compositions import picture_rect, tile_rects
from tvapp.testing.bots import BotProcess as Bot
from tvapp.testing.rest import create_room, recordings, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until
from tvapp.testing.webhook_receiver import WebhookReceiver

MEDIA_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
RED, BLUE = (0xE0, 0x30, 0x30), (0x30, 0x50, 0xE0)


@pytest.fixture
def bots() -> Iterator[list[Bot]]:
    started: list[Bot] = []
    yield started
    for bot in started:
        bot.stop()


def frames_at(path: Path, times: list[float]) -> list[np.ndarray]:
    """Return the RGB frames shown at each of `times` (seconds of the file)."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        wanted = iter(sorted(times))
        target = next(wanted, None)
        for frame in container.decode(video=0):
            while target is not None and (frame.time or 0.0) >= target:
                out.append(frame.to_ndarray(format="rgb24"))
                target = next(wanted, None)
            if target is None:
                break
    assert len(out) == len(times)
    return out


def tone_energy(path: Path, hz: float, window: float = 0.25) -> list[float]:
    """Return the share of each window's energy at `hz` (+-30 Hz) of the file's audio."""
    with av.open(str(path)) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        rate = container.streams.audio[0].rate
    step = int(rate * window)
    shares: list[float] = []
    for k in range(len(pcm) // step):
        chunk = pcm[k * step:(k + 1) * step].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(chunk)) ** 2
        freqs = np.fft.rfftfreq(len(chunk), 1 / rate)
        total = spectrum.sum()
        band = spectrum[(freqs > hz - 30) & (freqs < hz + 30)].sum()
        shares.append(float(band / total) if total > 1e-6 else 0.0)
    return shares


def test_a_grid_composition_of_two_recorded_bots_shows_each_colour_in_its_tile_and_plays_each_tone(
        make_server: Callable[..., ServerProcess], bots: list[Bot]) -> None:
    hooks = WebhookReceiver().__enter__()
    try:
        server = make_server(**MEDIA_ENV, TVAPP_WEBHOOKS_URLS=hooks.url, TVAPP_WEBHOOKS_BASE_DELAY="0.05")
        name = room_name("compose")
        room = create_room(server, name, record=True)
        bots.append(Bot(server, name, "red-bot", "red", 440))
        wait_until(lambda: bots[0].published() == 2, 30, "the red bot publishing")
        wait_until(lambda: len(recordings(server, session=room["sid"])) == 2, 30, "the red bot recorded")
        bots.append(Bot(server, name, "blue-bot", "blue", 660))
        wait_until(lambda: len(rows := recordings(server, session=room["sid"])) == 4
                   and all(r["duration"] >= 3.0 for r in rows), 40, "four recordings of 3 s")
        server.http.post(f"/v1/rooms/{name}/recording", json={"action": "stop"}).raise_for_status()
        wait_until(lambda: all(r["status"] == "completed" for r in recordings(server, room=name)), 20, "completed")
        rows = recordings(server, room=name)

        answer = server.http.post("/v1/compositions", json={
            "session": room["sid"], "layout": "grid", "resolution": "640x360", "format": "mp4"})
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert created["status"] == "enqueued" and created["sid"].startswith("CJ_")
        # While it waits or renders (the worker process alone takes about a second to start) it cannot be
        # downloaded or deleted.
        early = server.http.get(f"/v1/compositions/{created['sid']}/media")
        assert early.status_code == 409 and early.json()["error"]["code"] == "composition_not_ready"
        early = server.http.delete(f"/v1/compositions/{created['sid']}")
        assert early.status_code == 409 and early.json()["error"]["code"] == "composition_in_progress"
        seen: list[dict[str, Any]] = []

        def finished() -> bool:
            seen.append(server.http.get(f"/v1/compositions/{created['sid']}").json())
            return seen[-1]["status"] in ("completed", "failed")

        wait_until(finished, 60, "the composition finished", interval=0.05)
        final = seen[-1]
        assert final["status"] == "completed", final
        assert final["percent"] == 100.0 and final["eta"] == 0.0
        percents = [s["percent"] for s in seen]
        assert percents == sorted(percents)
        listed = server.http.get("/v1/compositions", params={"session": room["sid"]}).json()
        assert [c["sid"] for c in listed] == [created["sid"]]

        media = server.http.get(f"/v1/compositions/{created['sid']}/media")
        assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
        assert len(media.content) == final["size"] > 0
        part = server.http.get(f"/v1/compositions/{created['sid']}/media", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == media.content[:100]
        path = server.data_dir / "download.mp4"
        path.write_bytes(media.content)
        probe = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration", "-of",
             "json", str(path)], capture_output=True, text=True, timeout=30, check=True).stdout)
        assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
        video_stream = next(s for s in probe["streams"] if s["codec_name"] == "h264")
        assert (video_stream["width"], video_stream["height"]) == (640, 360)
        end = max(r["offset"] + r["duration"] for r in rows)
        assert abs(float(probe["format"]["duration"]) - end) < 0.5, (probe, end)

        # Join order = the earliest recording offset: red first, blue second; tiles from the layout math.
        offset = {who: min(r["offset"] for r in rows if r["participant"] == who) for who in ("red-bot", "blue-bot")}
        ends = {who: max(r["offset"] + r["duration"] for r in rows if r["participant"] == who)
                for who in ("red-bot", "blue-bot")}
        assert offset["red-bot"] < offset["blue-bot"]
        layout = tile_rects(2, 640, 360, "grid").tiles
        boxes = [picture_rect(320, 240, tile) for tile in layout]
        both = (offset["blue-bot"] + 0.5, min(ends.values()) - 0.5)
        assert both[1] - both[0] >= 1.0, (offset, ends)
        times = [both[0], (both[0] + both[1]) / 2, both[1]]
        if offset["blue-bot"] - offset["red-bot"] >= 0.6:
            times.append(offset["red-bot"] + (offset["blue-bot"] - offset["red-bot"]) / 2)  # red alone
        for t, image in zip(sorted(times), frames_at(path, sorted(times)), strict=True):
            for box, colour, who in zip(boxes, (RED, BLUE), ("red-bot", "blue-bot"), strict=True):
                # the bottom half of the picture: the pattern's colour (the stamp and the moving box are above)
                region = image[box.y + box.h * 3 // 4:box.bottom - 4, box.x + 4:box.right - 4].reshape(-1, 3)
                mean = np.median(region, axis=0)
                if t >= offset[who] + 0.3:
                    assert np.abs(mean - colour).max() < 40, (t, who, mean)
                else:
                    assert mean.max() < 30, (t, who, mean)  # not yet joined: a black tile
            outside = image[2, 320]  # between and above the tiles: black
            assert max(outside) < 30

        # Tones: each bot's tone holds most of its window's energy from its own audio offset on.
        audio_offset = {who: next(r["offset"] for r in rows if r["participant"] == who and r["type"] == "audio")
                        for who in ("red-bot", "blue-bot")}
        for who, hz in (("red-bot", 440), ("blue-bot", 660)):
            shares = tone_energy(path, hz)
            after = [s for k, s in enumerate(shares) if audio_offset[who] + 0.5 <= k * 0.25 <= end - 1.0]
            before = [s for k, s in enumerate(shares) if (k + 1) * 0.25 <= audio_offset[who] - 0.2]
            assert after and min(after) > 0.2, (who, audio_offset, shares)
            assert all(s < 0.05 for s in before), (who, audio_offset, shares)

        # The composition_completed webhook, signed, with the composition.
        def completed_hooks() -> list[Any]:
            return [h for h in hooks.delivered() if h.data["event"] == "composition_completed"]

        wait_until(lambda: len(completed_hooks()) == 1, 20, "the composition_completed webhook")
        (hook,) = completed_hooks()
        key, secret = server.key
        verify(hook.body, hook.authorization, key, secret)
        assert hook.data["composition"]["sid"] == created["sid"]
        assert hook.data["composition"]["room_sid"] == room["sid"] and hook.data["room"]["sid"] == room["sid"]

        # `tvapp compose` does the same from the command line: locally from the data dir, and through the REST API.
        key_env = {**os.environ, "TVAPP_API_KEY": f"{key}:{secret}"}
        local = server.data_dir / "cli-local.webm"
        done = subprocess.run([sys.executable, "-m", "tvapp", "compose", room["sid"], "--data", str(server.data_dir),
                               "--layout", "speaker", "-o", str(local)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "100.0%" in done.stderr and "ETA" in done.stderr and done.stdout.strip() == str(local)
        assert sorted(s["codec_name"] for s in json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(local)],
            capture_output=True, text=True, timeout=30, check=True).stdout)["streams"]) == ["opus", "vp8"]
        remote = server.data_dir / "cli-remote.mp4"
        done = subprocess.run([sys.executable, "-m", "tvapp", "compose", room["sid"], "--server", server.url,
                               "-o", str(remote)],
                              capture_output=True, text=True, timeout=120, env=key_env, check=False)
        assert done.returncode == 0, done.stderr
        assert "100.0%" in done.stderr and remote.stat().st_size > 0
        # The SDK's typed calls (tvapp.client.compositions) see the same.
        api = CompositionClient(server.url, api_key=(key, secret))
        mine = asyncio.run(api.list_compositions(session=room["sid"]))
        assert len(mine) == 2 and all(c.status == "completed" and c.finished for c in mine)
        assert asyncio.run(api.get_composition(created["sid"])) == next(c for c in mine if c.sid == created["sid"])
        assert asyncio.run(api.download_composition(created["sid"], start=0, end=99)) == media.content[:100]
        bad = subprocess.run([sys.executable, "-m", "tvapp", "compose", "RM_nosuchsession", "--server", server.url,
                              "-o", str(remote)], capture_output=True, text=True, timeout=60, env=key_env, check=False)
        assert bad.returncode == 1 and "session_not_found" in bad.stderr

        # Sources that pick nothing are refused; a deleted composition's file is gone.
        none = server.http.post("/v1/compositions", json={"session": room["sid"], "video_sources": ["nobody"],
                                                          "audio_sources": ["nobody"]})
        assert none.status_code == 400 and none.json()["error"]["code"] == "no_sources"
        asyncio.run(api.delete_composition(created["sid"]))
        assert asyncio.run(api.get_composition(created["sid"])).status == "deleted"
        gone = server.http.get(f"/v1/compositions/{created['sid']}/media")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "composition_deleted"
        assert not (server.data_dir / "compositions" / f"{created['sid']}.mp4").exists()
    finally:
        hooks.__exit__(None, None, None)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"session": "RM_doesnotexist"}, 404, "session_not_found"),
    ({"session": "nope"}, 400, "invalid_session"),
    ({"session": "RM_x", "layout": "mosaic"}, 400, "invalid_layout"),
    ({"session": "RM_x", "resolution": "640*360"}, 400, "invalid_resolution"),
    ({"session": "RM_x", "resolution": "641x360"}, 400, "invalid_resolution"),
    ({"session": "RM_x", "resolution": "4000x3000"}, 400, "invalid_resolution"),
    ({"session": "RM_x", "format": "avi"}, 400, "invalid_format"),
    ({"session": "RM_x", "fps": 1000}, 400, "invalid_fps"),
    ({"session": "RM_x", "trim": {"start": 5, "end": 2}}, 400, "invalid_trim"),
    ({"session": "RM_x", "video_sources": []}, 400, "invalid_sources"),
    ({"session": "RM_x", "colour": "red"}, 400, "invalid_request"),
])
def test_bad_composition_requests_are_refused_with_a_clear_4xx(
        server: ServerProcess, body: dict[str, Any], status: int, code: str) -> None:
    answer = server.http.post("/v1/compositions", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_session_without_recordings_and_unknown_compositions_are_refused(server: ServerProcess) -> None:
    room = create_room(server)
    empty = server.http.post("/v1/compositions", json={"session": room["sid"]})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "no_recordings"
    for method, path in (("get", "/v1/compositions/CJ_nothing"), ("get", "/v1/compositions/CJ_nothing/media"),
                         ("delete", "/v1/compositions/CJ_nothing"), ("get", "/v1/compositions/../x")):
        answer = server.http.request(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
    assert server.http.get("/v1/compositions", params={"status": "done"}).status_code == 400
    anonymous = server.http.get("/v1/compositions", auth=None, headers={"Authorization": ""})
    assert anonymous.status_code == 401

"""The content's sound on the TV: played through SDL (disk driver) with the call, and ducked while someone speaks.

A real TV plays a clip whose sound is a 440 Hz tone while a real bot takes turns talking (a 660 Hz tone, 4 s of
every 8). The test reads the TV's audio file: the content tone is there, and about `[watch] duck_db` quieter
while the bot talks than while it is silent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tvapp.testing.clip import make_clip
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess, tone_level_db

RATE = 48000


def test_content_sound_plays_with_the_call_and_ducks_under_a_talker(media_server: ServerProcess,
                                                                      tmp_path: Path, clip_cache: Path) -> None:
    clip = make_clip(clip_cache, seconds=40, fps=30, size=(640, 360), codec="h264", audio_hz=440.0)
    media_server.http.post("/v1/rooms", json={"name": "watch-audio"}).raise_for_status()
    talker = BotProcess(tmp_path, "talker", ["--server", media_server.url, "--token",
                                             media_server.token("watch-audio", "talker")["access_token"],
                                             "--video", "none", "--audio", "tone:660", "--talk", "0/2@4"])
    token = media_server.token("watch-audio", "tv")["access_token"]
    tv = TvProcess(tmp_path / "tv", ["--server", media_server.url, "--token", token], size="960x540",
                   env={"TVAPP_WATCH_DUCK_DB": "-12"})
    try:
        talker.wait_published(1)
        tv.wait_for(lambda s: s["screen"] == "RoomScreen" and len(s["tiles"]) == 1, timeout=45, what="the talker")
        response = media_server.http.post("/v1/rooms/watch-audio/playback",
                                          json={"action": "load", "content": str(clip)})
        assert response.status_code == 200, response.text
        tv.wait_for(lambda s: bool(s.get("content") and s["content"]["video_rect"]), timeout=30, what="the clip")
        time.sleep(17.0)  # two talking turns and two silent ones
    finally:
        status = tv.stop()
        talker.stop()
    assert status == 0, tv.output
    played = tv.audio()
    mono = played[-RATE * 16:].mean(axis=1)
    blocks = [mono[i:i + RATE // 2] for i in range(0, len(mono) - RATE // 2, RATE // 2)]
    content = np.array([tone_level_db(b, 440) for b in blocks])
    speech = np.array([tone_level_db(b, 660) for b in blocks])
    talking, silent = speech > -30, speech < -50
    assert talking.sum() >= 4 and silent.sum() >= 4, (speech.round(1), content.round(1))
    # The clip's tone (0.5 in mono) is heard at full level while nobody speaks...
    quiet_level = float(np.median(content[silent]))
    assert -9 < quiet_level < -3, content.round(1)
    # ... and about 12 dB lower under the talker (the ducker ramps, so the middle of each turn is compared).
    ducked = float(np.median(content[talking]))
    assert 8 < quiet_level - ducked < 16, (quiet_level, ducked, speech.round(1), content.round(1))

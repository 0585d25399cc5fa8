"""Watch together over a bad network and a bad clock: the screens converge on the room's timeline and stay there.

Two TVs run in a network namespace behind tvapp.testing.netem (delay 50 ms ± 20 ms each way, 1% loss); one of
them also has a clock 3.7 s fast that drifts 100 ppm (TVAPP_CLOCK_FAULT). An SDK player on the server's side of the
link is the reference. The kernel here has no sch_netem, so the faults are applied by netem's userspace forwarder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tvapp.testing.clip import make_clip
from tvapp.testing.netem import NetemLink, netem_link
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess
from tvapp.testing.watch import offsets, percentile_ms, read_flips

PROFILE = {"delay_ms": 50.0, "jitter_ms": 20.0, "loss": 0.01}
CLOCK_FAULT = "+3.7s,100ppm"


@pytest.fixture
def link() -> NetemLink:
    with netem_link("w6", seed=6, **PROFILE) as made:
        yield made


def test_screens_behind_a_lossy_jittery_link_with_a_wrong_drifting_clock_converge_and_stay_in_sync(
        link: NetemLink, tmp_path: Path, clip_cache: Path) -> None:
    clip = make_clip(clip_cache, seconds=40, fps=30, size=(640, 360), codec="h264")
    with ServerProcess(tmp_path / "server", host=link.host_ip) as server:
        server.http.post("/v1/rooms", json={"name": "netem"})
        tvs = {}
        for name, fault in (("skewed", CLOCK_FAULT), ("honest", "")):
            token = server.token("netem", name)["access_token"]
            env = {"TVAPP_TV_FPS": "30", "TVAPP_MEDIA_HOST_ADDRESSES": link.ns_ip, "TVAPP_CLOCK_FAULT": fault}
            tvs[name] = TvProcess(tmp_path / name, ["--server", server.url, "--token", token, "--no-audio",
                                                    "--trace", str(tmp_path / name / "trace.jsonl")],
                                  size="960x540", env=env, prefix=link.exec_prefix)
        bot_trace = tmp_path / "reference.jsonl"
        bot = BotProcess(tmp_path, "reference", ["--server", server.url, "--token",
                                                 server.token("netem", "reference")["access_token"],
                                                 "--watch", str(bot_trace)])
        try:
            for tv in tvs.values():
                tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=45, what="the room over the slow link")
            loaded = time.time()
            response = server.http.post("/v1/rooms/netem/playback", json={"action": "load", "content": str(clip)})
            assert response.status_code == 200, response.text
            time.sleep(22.0)
        finally:
            statuses = {name: tv.stop() for name, tv in tvs.items()}
            bot.stop()
    assert statuses == {"skewed": 0, "honest": 0}, {name: tv.output for name, tv in tvs.items()}
    assert link.stats.to_ns_dropped + link.stats.to_host_dropped > 0, "the link lost nothing: no fault injected?"

    screens = {name: read_flips(tmp_path / name / "trace.jsonl") for name in tvs}
    reference = read_flips(bot_trace)
    # The skewed TV's clock estimate converged from 3.7 s off to within a few ms (its trace logs the error).
    import json
    clock = [json.loads(line) for line in (tmp_path / "skewed" / "trace.jsonl").read_text().splitlines()
             if '"event": "clock"' in line]
    late_errors = [abs(row["error_ms"]) for row in clock if row["t"] > loaded + 8]
    assert late_errors and max(late_errors) < 10, late_errors
    # Steady state: from 8 s after the load to the end, every screen aims at the true timeline ...
    start, end = loaded + 8.0, loaded + 21.0
    for name, flips in {**screens, "reference": reference}.items():
        window = flips.between(start, end)
        assert len(window) > 200, (name, len(window))
        assert percentile_ms(window.timeline_error, 95) < 25, (name, percentile_ms(window.timeline_error, 95))
        shown = window.frame_error[np.isfinite(window.frame_error)]
        assert np.mean((shown > -0.075) & (shown < 0.005)) > 0.9, name
    # ... and the screens agree with each other.
    for a, b in (("skewed", "honest"), ("skewed", "reference"), ("honest", "reference")):
        flips_b = screens[b] if b in screens else reference
        between = offsets(screens[a].between(start, end), flips_b.between(start, end))
        assert percentile_ms(between, 95) < 30, (a, b, percentile_ms(between, 95))

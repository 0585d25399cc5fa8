"""Echo cancellation: ERLE, convergence and the near-end talker's survival in a simulated living room (issue 15).

The TV's real audio path plays a friend's voice (a call participant) and a film (the content) with SDL's disk
driver; the output tap's blocks are the far-end reference. The microphone hears them through a room (RT60 0.3 s),
late by each delay in --delays (unknown to the timestamps), on a clock --ppm fast, with someone on the sofa
talking as loud as the echo during the last part (tvapp.testing.living_room has the whole scenario). The canceller
(tvapp.tv.echo.EchoCanceller: WebRTC AEC3 from the livekit wheel) runs with AGC on (as shipped) and off.

Baseline in the same run: the raw microphone (ERLE 0 dB by definition; its near-end correlation is reported as
near_corr_raw_mic), and the near-end talker alone through the same processing (near_corr_without_echo: what the
processing itself keeps of a voice's waveform). CPU: process time of feeding the canceller per second of audio
(cpu_core_fraction: a fraction of one core).

Goals: ERLE >= 25 dB (far-end speech and film) after convergence, convergence <= 2 s, near_corr >= 0.8. ERLE is
on the echo path: with AGC on, the same canceller with AGC off runs on the same input and each 10 ms frame's gain
(the AGC runs after AEC3) is divided out (erle_echo_path_*; agc_fit_residual_db says how exact that is); the near
end is judged against the talker through the same 80 Hz high-pass (near_corr_hpf).
Run: python -m bench.echo [--quick] [--delays 40,120,250] [--ppm 5]. Prints one JSON line (~40 s; --quick: 40 ms,
AGC on, ~20 s: the TV's 12 s run is the same).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.common import parser
from tvapp.testing import living_room
from tvapp.tv.echo import EchoCanceller

GOALS = {"erle_db": 25.0, "convergence_s": 2.0, "near_corr": 0.8}


def main() -> None:
    """Run the living room once through the TV, then the canceller at each delay; print the JSON line."""
    p = parser(__doc__ or "")
    p.add_argument("--delays", default="40,120,250", help="echo path delays in ms, comma-separated")
    p.add_argument("--ppm", type=float, default=5.0, help="how fast the microphone's clock runs")
    args = p.parse_args()
    delays = [int(value) for value in args.delays.split(",")] if not args.quick else [40]
    voice, film, near = living_room.living_room_signals()
    with tempfile.TemporaryDirectory() as workdir:
        _, tapped, report = living_room.play_through_tv(Path(workdir), voice=voice, film=film,
                                                        film_start_s=living_room.FILM[0],
                                                        seconds=living_room.SECONDS)
    runs: list[dict[str, Any]] = []
    for agc in ((True,) if args.quick else (True, False)):
        for delay in delays:
            make = functools.partial(EchoCanceller, auto_gain_control=agc)
            twin = functools.partial(EchoCanceller, auto_gain_control=False) if agc else None
            figures = living_room.living_room_figures(tapped, near, make, delay_s=delay / 1000, ppm=args.ppm,
                                                      without_gain=twin)
            figures["agc"] = agc
            # ERLE on the echo path (the AGC's per-frame gain divided out; with AGC off it is the plain ERLE),
            # the near end against the talker through the same 80 Hz high-pass (bench/README.md, "echo").
            speech = figures.get("erle_echo_path_far_speech_db", figures["erle_far_speech_db"])
            film = figures.get("erle_echo_path_film_db", figures["erle_film_db"])
            convergence = figures.get("convergence_echo_path_s", figures["convergence_s"])
            figures["meets_goals"] = (
                min(speech, film) >= GOALS["erle_db"]
                and convergence is not None and convergence <= GOALS["convergence_s"]
                and figures["near_corr_hpf"] >= GOALS["near_corr"])
            runs.append(figures)
    print(json.dumps({"benchmark": "echo", "cores": os.cpu_count(), "pinned": False, "goals": GOALS,
                      "library": "livekit WebRTC APM (AEC3)",
                      "tv_output": {"callbacks": report["stats"]["callbacks"],
                                    "seconds": round(tapped.shape[0] / living_room.RATE, 2)},
                      "baseline": "raw microphone: ERLE 0 dB", "runs": runs,
                      "goal_met": all(run["meets_goals"] for run in runs)}))


if __name__ == "__main__":
    main()

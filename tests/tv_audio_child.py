"""Child process for tests/test_tv_audio.py: play a scenario through tvapp.tv.audio and print figures as JSON.

Run with SDL_AUDIODRIVER=disk and SDL_DISKAUDIOFILE set (the environment must be in place before SDL starts,
hence a process per case). argv[1] is a JSON scenario:
  {"duration": s, "volume": v, "device": name,
   "sources": [{"name", "freq", "amplitude", "pan": [left, right] | "dc": [left, right], "gain", "rate",
                "layout", "format", "stop_at", "remove_at"}]}
or {"list": true} to print list_devices_text(), or {"open_and_close": cycles} to start and close a device
again and again while other threads push audio.
Every source pushes 20 ms av.AudioFrames of a sine tone paced in real time on its own thread. The last stdout
line is JSON: the AudioOutput's stats, `latency` samples of added_latency_ms, `timeline` (when each removal
happened, in seconds since start, and how many frames the device had pulled by then) and `handed` (every
on_pulled call).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import av
import numpy as np

from tvapp.tv.audio import AudioError, AudioOutput, list_devices_text

FRAME_S = 0.02


def tone_frame(spec: dict[str, Any], index: int) -> av.AudioFrame:
    """Return frame `index` (20 ms) of `spec`'s continuous sine tone (or constant "dc" per channel)."""
    rate, layout, fmt = spec.get("rate", 48000), spec.get("layout", "stereo"), spec.get("format", "s16")
    count = round(rate * FRAME_S)
    channels = 1 if layout == "mono" else 2
    if "dc" in spec:
        waves = np.array(spec["dc"], dtype=np.float64).reshape(channels, 1) * np.ones((channels, count))
    else:
        t = (np.arange(count) + index * count) / rate
        wave = spec.get("amplitude", 0.25) * np.sin(2 * np.pi * spec["freq"] * t)
        waves = np.tile(wave, (channels, 1)) * np.array(spec.get("pan", [1.0] * channels)).reshape(channels, 1)
    if fmt == "s16":
        array = np.round(waves * 32767).astype(np.int16).T.reshape(1, -1)
    elif fmt == "fltp":
        array = waves.astype(np.float32)
    else:
        raise ValueError(fmt)
    frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


def run_source(output: AudioOutput, spec: dict[str, Any], start: float, duration: float,
               timeline: dict[str, float]) -> None:
    """Push `spec`'s tone in real time until its stop time, removing it at remove_at if asked."""
    stop_at = min(spec.get("stop_at", duration), duration)
    remove_at = spec.get("remove_at")
    index = 0
    while True:
        due = start + index * FRAME_S
        if due - start >= stop_at:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        output.push(spec["name"], tone_frame(spec, index))
        index += 1
    if remove_at is not None:
        time.sleep(max(0.0, start + remove_at - time.monotonic()))
        output.remove(spec["name"])
        timeline[f"removed.{spec['name']}"] = time.monotonic() - start
        timeline[f"removed_at_frame.{spec['name']}"] = output.stats()["pulled_frames"]


def open_and_close(cycles: int) -> None:
    """Start and close an AudioOutput `cycles` times while two threads push and this one keeps the GIL busy."""
    for cycle in range(cycles):
        output = AudioOutput()
        output.start()
        stop = threading.Event()

        def pusher(name: str) -> None:
            index = 0
            while not stop.is_set():
                output.push(name, tone_frame({"freq": 440}, index))
                index += 1
                time.sleep(0.005)

        threads = [threading.Thread(target=pusher, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 0.03 + 0.01 * (cycle % 5)
        while time.monotonic() < deadline:
            sum(range(1000))  # pure Python: holds the GIL most of the time, as a busy frame loop does
        output.close()
        stop.set()
        for thread in threads:
            thread.join()


def main() -> None:
    scenario = json.loads(sys.argv[1])
    if scenario.get("list"):
        print(json.dumps({"text": list_devices_text()}))
        return
    if "open_and_close" in scenario:
        start = time.monotonic()
        open_and_close(scenario["open_and_close"])
        print(json.dumps({"seconds": time.monotonic() - start}))
        return
    output = AudioOutput(scenario.get("device", ""), volume=scenario.get("volume", 1.0))
    for spec in scenario["sources"]:
        if "gain" in spec:
            output.set_gain(spec["name"], spec["gain"])
    handed: list[tuple[int, float]] = []
    output.on_pulled = lambda frames, wall: handed.append((frames, wall))
    try:
        output.start()
    except AudioError as exc:
        print(json.dumps({"error": str(exc)}))
        return
    start = time.monotonic()
    duration = scenario["duration"]
    timeline: dict[str, float] = {}
    threads = [threading.Thread(target=run_source, args=(output, spec, start, duration, timeline))
               for spec in scenario["sources"]]
    for thread in threads:
        thread.start()
    latency = []
    while time.monotonic() - start < duration + 0.15:
        time.sleep(0.05)
        latency.append(output.added_latency_ms())
    for thread in threads:
        thread.join()
    output.close()  # first: a callback running between stats() and close() would count in one but not the other
    stats = output.stats()
    print(json.dumps({"stats": stats, "latency": latency, "timeline": timeline, "device": output.device_name,
                      "handed": handed}))


if __name__ == "__main__":
    main()

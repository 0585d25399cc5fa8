"""Child of tests/test_tv_capture.py: stop the TV's microphone while SDL's audio thread is inside its callback.

SDL's audio thread holds the device's lock while our callback runs, and the callback needs the GIL. The child
parks the callback (through the capture filter) until the main thread is about to stop the track, so the stop
always meets a callback in progress that wants the GIL back: what a TV under load meets on SIGTERM. Prints one
JSON line with how long the stop took; a stop that waits for SDL holding the GIL never returns (the parent's
timeout says so). With `no-sdl-library` the ctypes lookup of SDL's library is forced to fail (pygame's own close
runs, holding the GIL).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import numpy as np

from tvapp.tv import audio
from tvapp.tv.capture import SwitchedSource
from tvapp.tv.microphone import MicrophoneTrack, list_microphones


async def main() -> None:
    inside, stopping = threading.Event(), threading.Event()
    parked: list[float] = []

    def park(block: np.ndarray, captured_at: float) -> np.ndarray:
        if not inside.is_set():
            inside.set()
            stopping.wait(10)       # lets go of the GIL, holding SDL's device lock, until the stop starts
            time.sleep(0.05)        # and still wants the GIL while the stop runs
            parked.append(time.monotonic())
        return block

    mic = SwitchedSource("audio", lambda: MicrophoneTrack(list_microphones()[0], lambda: park))
    mic.switch_on()
    while not inside.wait(0.01):
        await asyncio.sleep(0)
    stopping.set()
    started = time.monotonic()
    mic.stop()                      # what LocalMedia.detach does when the TV leaves on SIGTERM
    took = time.monotonic() - started
    library = audio._loaded_sdl()
    print(json.dumps({"stop_s": took, "callback_finished_first": bool(parked) and parked[0] <= started + took,
                      "sdl_library": library._name if library is not None else None}))


if "no-sdl-library" in sys.argv[1:]:
    audio._sdl_library = False
asyncio.run(main())

"""Child of tests/test_tv_exit.py: a real TV frame loop (`run_tv`, SDL dummy screen, SDL disk capture) whose
network side opens the microphone and then gets stuck when told to stop: its leave waits forever on a blocking
call in the default executor (the interpreter joins that executor's threads at exit, so exiting normally hangs).

Once the network side is stuck its capture filter takes 0.5 s a block with the GIL let go (an echo canceller
under load), so SDL's audio thread is almost always inside our callback holding the device's lock, about to want
the GIL back: whoever closes the device holding the GIL then deadlocks. Prints {"capturing": true} once the
microphone captures; the parent sends SIGTERM and times the exit. With `no-sdl-library` the ctypes lookup of
SDL's library is forced to fail.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import numpy as np

from tvapp.tv import audio
from tvapp.tv.app import TvOptions, run_tv
from tvapp.tv.microphone import MicrophoneTrack, list_microphones
from tvapp.tv.session import TvSession

stuck = threading.Event()


def slow_once_stuck(block: np.ndarray, captured_at: float) -> np.ndarray:
    if stuck.is_set():
        time.sleep(0.5)
    return block


async def stuck_network(session: TvSession) -> None:
    mic = MicrophoneTrack(list_microphones()[0], lambda: slow_once_stuck)
    while mic.frames_read < 5:
        await asyncio.sleep(0.01)
    print(json.dumps({"capturing": True}), flush=True)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        stuck.set()
        # The leave waits on a blocking call that never returns (a DNS lookup, a read from a hung device) in the
        # loop's default executor, whose threads the interpreter joins at exit.
        await asyncio.get_running_loop().run_in_executor(None, threading.Event().wait)


if "no-sdl-library" in sys.argv[1:]:
    audio._sdl_library = False
sys.exit(run_tv(TvOptions("exit test", windowed=True, size=(320, 180), drivers=("dummy",), fps=15, audio=False),
                stuck_network))

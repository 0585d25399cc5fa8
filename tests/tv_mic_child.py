"""Child of tests/test_tv_capture.py: the TV's microphone track over SDL's disk capture, in a fresh process.

SDL picks its audio driver when audio starts, so the parent sets SDL_AUDIODRIVER=disk and SDL_DISKAUDIOFILEIN
(raw s16 mono 48 kHz) for this process only. Prints one JSON line: what was captured and the counters.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import numpy as np

from tvapp.tv.capture import SwitchedSource
from tvapp.tv.microphone import MicrophoneTrack, list_microphones


async def main() -> None:
    names = list_microphones()
    filtered: list[int] = []

    stamps: list[tuple[float, float]] = []  # (the block's capture time, when the filter ran)

    def halve(block: np.ndarray, captured_at: float) -> np.ndarray:
        filtered.append(len(block))
        stamps.append((captured_at, time.time()))
        return (block // 2).astype(np.int16)

    mic = SwitchedSource("audio", lambda: MicrophoneTrack(names[0], lambda: halve))
    mic.switch_on()
    frames = [await mic.recv() for _ in range(25)]                    # half a second of 20 ms frames
    captured = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    mic.switch_off()
    after_off = mic.frames_read
    waited = asyncio.ensure_future(mic.recv())
    done, _ = await asyncio.wait([waited], timeout=0.5)               # a reader waits: nothing is captured
    still = mic.frames_read
    mic.switch_on()
    again = await asyncio.wait_for(waited, 5)
    mic.stop()
    print(json.dumps({"names": names, "samples": captured.tolist()[:24000], "frame_samples": frames[0].samples,
                      "pts": [f.pts for f in frames[:3]], "filtered_block": filtered[0] if filtered else None,
                      "stamps_increasing": all(b[0] > a[0] for a, b in itertools.pairwise(stamps)),
                      "stamp_lead_s": min(ran - at for at, ran in stamps) if stamps else None,
                      "read_at_off": after_off, "read_while_off": still, "got_while_off": bool(done),
                      "read_after_on": mic.frames_read, "frame_after_on": again.samples}))


asyncio.run(main())

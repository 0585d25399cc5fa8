"""Child of tests/test_tv_capture.py: a camera that stalls mid-stream, then stopped, then the process exits.

The camera is a real av capture (`capture_track`, the class a V4L2 device is read by) of an MJPEG stream through a
named pipe whose writer sends 30 frames and then keeps the pipe open without writing: the next read blocks, as on
a stalled USB camera. Prints one JSON line (frames read, how long `stop()` took); the parent's timeout says when
the stop or the process's exit waits for the stuck read.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tvapp.client.sources.devices import capture_track


def main(fifo: Path) -> None:
    os.mkfifo(fifo)
    stream = subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15",
                             "-frames:v", "30", "-c:v", "mjpeg", "-f", "mjpeg", "-"],
                            capture_output=True, check=True, timeout=60).stdout
    writer: list[int] = []

    def write() -> None:  # the write end stays open: the reader waits for more, forever
        writer.append(os.open(fifo, os.O_WRONLY))
        os.write(writer[0], stream)

    threading.Thread(target=write, daemon=True).start()

    async def run() -> dict[str, float]:
        track = capture_track(str(fifo), "stalling camera", fmt="mjpeg",
                              options={"probesize": "32", "analyzeduration": "0"})
        frames = 0
        stalled = asyncio.Event()

        async def read() -> None:
            nonlocal frames
            while True:
                await track.recv()
                frames += 1
                if frames == 29:       # the last whole frame: the read after the next one blocks on the pipe
                    stalled.set()

        reader = asyncio.ensure_future(read())
        await asyncio.wait_for(stalled.wait(), 30)
        started = time.monotonic()
        track.stop()                   # what switching the camera off or leaving does
        took = time.monotonic() - started
        reader.cancel()
        return {"frames": frames, "stop_s": took}

    print(json.dumps(asyncio.run(run())), flush=True)


main(Path(sys.argv[1]))

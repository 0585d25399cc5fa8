"""A living room around a real TV process: its speakers (SDL's disk output) heard by its microphone (SDL's disk
capture), through a room, late, with someone on the sofa talking; the bridge is the TV's sound card.

`LivingRoomBridge` runs on a thread of the test process while the TV runs. Both of the TV's SDL disk files are FIFOs
(`SDL_DISKAUDIOFILE`, s16 stereo 48 kHz, and `SDL_DISKAUDIOFILEIN`, s16 mono 48 kHz) and the TV runs with
`SDL_DISKAUDIODELAY=0` (`tv_env()`), so SDL's disk driver no longer paces itself with sleeps (which run slow, by
a different amount for each device: thousands of ppm apart): a read blocks until the bridge has written, a write
until the bridge has read. The bridge plays the two clocks of a real sound card and microphone:
- the speakers: it takes the TV's output at exactly 48 kHz of wall time from its start (sample m is heard at
  t_out + m / 48000; the FIFO is kept small, so SDL's callback runs at most ~170 ms ahead, a device buffer that rides out a loaded machine);
- the microphone: it hands the TV mic sample n once it has been "captured", at t_in + n / (48000 (1 + ppm)): a
  clock `ppm` fast (the issue's few ppm of drift between the phone's or USB mic's clock and the TV's);
- what it hears: mic sample n holds the speakers' sound heard `delay_s` before it was captured (read between
  output samples by linear interpolation: the room is tied to wall time, like a real one) through the room's
  impulse response, plus the near-end talker (`near`, on the microphone's clock, from `start_talker()` on).
Everything the microphone got is kept apart (`echo`, `near`, one value per microphone sample) to measure what the
SFU forwards against.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tvapp.testing.living_room import RATE, Signal, room_impulse_response

BLOCK = 480
POLL_S = 0.002
CAPACITY_S = 120.0      # the longest run a bridge records
F_SETPIPE_SZ = 1031     # fcntl: a pipe's capacity (Linux)
UNDERRUN_AFTER = 2400    # the speakers wait this long (50 ms) for late sound before playing silence
OUTPUT_PIPE = 32768      # bytes (170 ms) the TV may hand over ahead of the speakers: its device buffer
MAX_BACKLOG = 25 * BLOCK * 2  # bytes waiting in the microphone FIFO beyond which the TV is not reading it


def tv_env(speakers: Path, microphone: Path) -> dict[str, str]:
    """Return the environment a TV needs to play into `speakers` and capture from `microphone` (the FIFOs)."""
    return {"SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": str(speakers), "SDL_DISKAUDIOFILEIN": str(microphone),
            "SDL_DISKAUDIODELAY": "0"}


class LivingRoomBridge:
    """The TV's speakers -> a room -> its microphone, on a thread (module docstring)."""

    def __init__(self, speakers: Path, microphone: Path, *, near: Signal, delay_s: float, ppm: float = 5.0,
                 response: Signal | None = None) -> None:
        self.talker = near
        self.delay_s = delay_s
        self.ppm = ppm
        self.response = room_impulse_response() if response is None else response
        self._far = np.zeros(round(CAPACITY_S * RATE))   # the speakers' sound (mono), as heard
        self._far_count = 0
        self._echo = np.zeros(self._far.size)            # the speakers' sound through the room ...
        self._echo_count = 0                             # ... as far as computed
        self.echo: list[npt.NDArray[np.float64]] = []
        self.near: list[npt.NDArray[np.float64]] = []
        self._written = 0
        self._talker_from: int | None = None             # the microphone sample the talker starts at
        self.late_blocks = 0      # microphone blocks that needed sound the TV had not played yet
        self.underrun_samples = 0  # silence the speakers played because the TV had not handed them sound in time
        self.skipped_samples = 0   # the TV's late sound for that time, dropped
        self._debt = 0
        self.unread_blocks = 0    # microphone blocks dropped because the TV was not reading its microphone
        self._pending = b""
        self._stop = threading.Event()
        self._error: BaseException | None = None
        os.mkfifo(speakers)
        os.mkfifo(microphone)
        # Read and write on both: never blocks on open (Linux), and SDL never sees end-of-file while they are open.
        self._out_fd = os.open(speakers, os.O_RDWR | os.O_NONBLOCK)
        self._in_fd = os.open(microphone, os.O_RDWR)
        fcntl.fcntl(self._out_fd, F_SETPIPE_SZ, OUTPUT_PIPE)
        self._thread = threading.Thread(target=self._run, name="living-room", daemon=True)
        self._t_out: float | None = None   # when the speakers' sample 0 is heard (the first data from the TV)
        self._t_in: float | None = None    # when mic sample 0 is captured

    def start(self) -> None:
        """Start hearing and feeding the TV."""
        self._thread.start()

    def start_talker(self) -> int:
        """Let the near-end talker start with the next microphone block; return that block's sample index."""
        self._talker_from = self._written
        return self._written

    @property
    def written(self) -> int:
        """Return how many microphone samples were captured so far (given to the TV, or dropped: unread_blocks)."""
        return self._written

    def stop(self) -> None:
        """Stop the thread (then stop the TV, then `close`)."""
        self._stop.set()
        self._thread.join(10)
        if self._error is not None:
            raise RuntimeError("the living-room bridge failed") from self._error

    def close(self) -> None:
        """Close the FIFOs (after the TV stopped)."""
        os.close(self._out_fd)
        os.close(self._in_fd)

    def recording(self) -> dict[str, Signal]:
        """Return what the microphone got: "mic" (as given to the TV), "echo" and "near" (its parts)."""
        echo = np.concatenate(self.echo) if self.echo else np.zeros(0)
        near = np.concatenate(self.near) if self.near else np.zeros(0)
        mic = np.clip(np.round((echo + near) * 32768), -32768, 32767) / 32768
        return {"mic": mic, "echo": echo, "near": near}

    def _backlog(self) -> int:
        raw = fcntl.ioctl(self._in_fd, termios.FIONREAD, struct.pack("i", 0))
        return int(struct.unpack("i", raw)[0])

    # -- the thread --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.time()
                self._hear(now)
                self._speak(now)
                time.sleep(POLL_S)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._error = exc

    def _hear(self, now: float) -> None:
        """Take from the TV what the speakers play up to `now` (48 kHz from the first sample on)."""
        if self._t_out is None:
            try:
                first = os.read(self._out_fd, 4)
            except BlockingIOError:
                return
            self._t_out, self._pending = now, first
        due = round((now - self._t_out) * RATE) - self._far_count
        want = (due + self._debt) * 4 - len(self._pending)
        data = self._pending
        while want > 0:
            try:
                chunk = os.read(self._out_fd, want)
            except BlockingIOError:
                break
            data += chunk
            want -= len(chunk)
        skip = min(self._debt, len(data) // 4)  # the sound the TV handed over too late: never played
        data = data[skip * 4:]
        self._debt -= skip
        self.skipped_samples += skip
        usable = min(len(data) - len(data) % 4, max(0, due) * 4)
        self._pending = data[usable:]
        stereo = np.frombuffer(data[:usable], dtype=np.int16).reshape(-1, 2)
        mono = stereo.astype(np.float64).mean(axis=1) / 32768
        short = due - mono.size
        if short > UNDERRUN_AFTER:
            # The TV did not keep up (an underrun): the speakers play silence and their clock runs on, and what the
            # TV hands over for that time is dropped when it comes (as a sound card restarting after an underrun
            # plays the next buffer at once): the TV's sound stays as late after its callbacks as before.
            mono = np.concatenate([mono, np.zeros(short)])
            self.underrun_samples += short
            self._debt += short
        if mono.size == 0:
            return
        count = min(mono.size, self._far.size - self._far_count)
        self._far[self._far_count:self._far_count + count] = mono[:count]
        self._far_count += count
        if self._far_count - self._echo_count >= 960:
            self._convolve()

    def _convolve(self) -> None:
        start, end = self._echo_count, self._far_count
        taps = self.response.size
        begin = max(0, start - taps + 1)
        segment = self._far[begin:end]
        size = 1 << (segment.size + taps - 1).bit_length()
        full = np.fft.irfft(np.fft.rfft(segment, size) * np.fft.rfft(self.response, size), size)
        self._echo[start:end] = full[start - begin:end - begin]
        self._echo_count = end

    def _speak(self, now: float) -> None:
        """Hand the TV every microphone block captured by `now`."""
        if self._t_out is None:
            return  # the TV's sound has not started: its microphone is not open yet either
        if self._t_in is None:
            self._t_in = now
        rate = RATE * (1.0 + self.ppm * 1e-6)
        while self._t_in + (self._written + BLOCK) / rate <= now:
            first = self._written
            times = self._t_in + (first + np.arange(BLOCK)) / rate
            positions = (times - self.delay_s - self._t_out) * RATE
            echo = np.zeros(BLOCK)
            ready = self._echo_count
            if positions[-1] >= ready - 1:
                self.late_blocks += 1
            inside = (positions >= 0) & (positions <= ready - 1)
            if inside.any():
                low = int(positions[inside].min())
                high = min(ready, int(positions[inside].max()) + 2)
                echo[inside] = np.interp(positions[inside], np.arange(low, high), self._echo[low:high])
            near = np.zeros(BLOCK)
            if self._talker_from is not None:
                part = self.talker[first - self._talker_from:first - self._talker_from + BLOCK]
                near[:part.size] = part
            block = np.clip(np.round((echo + near) * 32768), -32768, 32767).astype(np.int16)
            if self._backlog() < MAX_BACKLOG:
                os.write(self._in_fd, block.tobytes())
            else:  # the TV's microphone is not open (yet): what it would have captured is gone
                self.unread_blocks += 1
            self._written += BLOCK
            self.echo.append(echo)
            self.near.append(near)

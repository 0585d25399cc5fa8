"""The TV's exit is bounded even where closing SDL's audio devices could deadlock.

Closing an SDL audio device while holding the GIL deadlocks when SDL's audio thread, holding the device's lock,
waits for the GIL inside our callback (tvapp.tv.audio.close_device). Two ways the TV could still do that:
pygame.quit at interpreter exit closes whatever is still open (the network side's microphone when that side did
not stop in time), and pygame's own close() runs when ctypes cannot find SDL's library; and a network side stuck
at exit kept the interpreter's shutdown waiting. Each test runs a child process with SDL's disk driver capturing
from a file, parks or slows the capture callback so that SDL's thread is inside it, and fails if the child does not
end within its bound (both hung for good before the fix).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tvapp.testing.bots import stop_process
from tvapp.tv import audio
from tvapp.tv.app import NETWORK_STOP_S
from tvapp.tv.audio import FALLBACK_CLOSE_BOUND_S, LOCK_WAIT_S

STOP_CHILD = Path(__file__).with_name("tv_mic_stop_child.py")
EXIT_CHILD = Path(__file__).with_name("tv_exit_child.py")
START_SLACK_S = 6.0   # a child's start-up (imports, SDL) on a loaded machine, and its exit


def disk_env(tmp_path: Path) -> dict[str, str]:
    """SDL's disk driver capturing from 10 s of a raw s16 mono 48 kHz file."""
    source = tmp_path / "mic.raw"
    (np.arange(48000 * 10) % 200 * 50).astype(np.int16).tofile(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_")}
    env.update(SDL_AUDIODRIVER="disk", SDL_VIDEODRIVER="dummy", SDL_DISKAUDIOFILEIN=str(source),
               SDL_DISKAUDIOFILE=str(tmp_path / "out.raw"), PYTHONPATH=os.getcwd(), PYTHONUNBUFFERED="1")
    return env


def test_closing_the_microphone_through_pygame_ends_within_a_bound_mid_callback(tmp_path: Path) -> None:
    """ctypes cannot find SDL's library (forced): pygame's close runs holding the GIL while the capture callback
    is mid-way and wants the GIL back. It deadlocks, and the process must end within FALLBACK_CLOSE_BOUND_S
    (every thread's stack on stderr) instead of freezing; or the close returns, if SDL's thread got out first."""
    began = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(STOP_CHILD), "no-sdl-library"], env=disk_env(tmp_path),
                                capture_output=True, text=True, check=False,
                                timeout=FALLBACK_CLOSE_BOUND_S + 2 * START_SLACK_S)
    except subprocess.TimeoutExpired:
        pytest.fail("closing the microphone through pygame mid-callback froze the process for good")
    took = time.monotonic() - began
    assert "SDL's library was not found" in result.stderr, result.stderr[-3000:]
    if result.returncode == 0:
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["stop_s"] < 3
    else:
        assert result.returncode == 1 and "Timeout" in result.stderr, (result.returncode, result.stderr[-3000:])
        assert took < FALLBACK_CLOSE_BOUND_S + START_SLACK_S, took


def test_a_tv_whose_network_side_is_stuck_still_exits_on_sigterm(tmp_path: Path) -> None:
    """The network side hangs in its leave (a blocking call in the default executor) with the microphone open
    and its callback slow: the TV waits NETWORK_STOP_S for it, closes the microphone with the GIL let go and
    leaves with os._exit, not through the interpreter's shutdown, which joins the executor's stuck thread (the
    TV never exited before) and runs pygame.quit on whatever SDL device is still open."""
    proc = subprocess.Popen([sys.executable, str(EXIT_CHILD)], env=disk_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    capturing = threading.Event()
    stderr: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{") and json.loads(line).get("capturing"):
                capturing.set()

    def read_stderr() -> None:
        assert proc.stderr is not None
        stderr.extend(proc.stderr)

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        assert capturing.wait(30), "the TV's microphone never captured"
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        bound = NETWORK_STOP_S + START_SLACK_S
        try:
            status = proc.wait(bound)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the TV did not exit within {bound:g} s of SIGTERM (its network side stuck)")
        took = time.monotonic() - began
        for reader in readers:
            reader.join(5)
        text = "".join(stderr)
        assert status == 1 and "leaving without a clean shutdown" in text, (status, text[-3000:])
        assert took >= NETWORK_STOP_S - 0.5, took    # it did give the network side its time
    finally:
        stop_process(proc, grace=2)


def test_closing_every_device_at_exit_gives_up_when_another_close_is_stuck() -> None:
    """A network side stuck inside a close (SDL's audio thread never ends) holds the device lock: the exit's
    close_open_devices waits LOCK_WAIT_S for it, then says it could not (the TV then leaves with os._exit)."""
    held, release = threading.Event(), threading.Event()

    def stuck_close() -> None:
        with audio._sdl_lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=stuck_close, daemon=True)
    thread.start()
    assert held.wait(5)
    began = time.monotonic()
    try:
        assert audio.close_open_devices() is False
        assert LOCK_WAIT_S - 0.1 <= time.monotonic() - began < LOCK_WAIT_S + 2
    finally:
        release.set()
        thread.join(5)
    assert audio.close_open_devices() is True   # nothing open, nobody stuck

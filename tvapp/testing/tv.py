"""Run the real TV (`tvapp tv` / `tvapp demo`) and real bots as subprocesses, and look at what the TV shows and plays.

The TV draws with SDL's dummy video driver and plays through SDL's disk audio driver, so a test reads the
screen back from the PNG screenshot the TV writes on SIGUSR1 (with its JSON sidecar saying where each tile
is) and the sound from the raw s16 stereo file SDL wrote in real time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tvapp.testing.bots import stop_process

TV_SAMPLE_RATE = 48000


def tv_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a TV under test: dummy screen, disk audio, loopback ICE only."""
    return {
        **os.environ,
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "disk",
        "SDL_DISKAUDIOFILE": str(workdir / "audio.raw"),
        "TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1",
        "TVAPP_TV_REMOTE_HOST": "127.0.0.1",
        "TVAPP_TV_REMOTE_PORT": "0",
        "TVAPP_TV_ZEROCONF_INTERFACES": "127.0.0.1",
        "TVAPP_TV_CAMERA": "none",        # a test that wants the TV's camera or microphone sets them
        "TVAPP_TV_MICROPHONE": "none",
        "TVAPP_TV_TLS": "false",          # plain http remote endpoints unless a test asks for https (the default)
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


class TvProcess:
    """A `tvapp tv` (or `tvapp demo`) subprocess with screenshots in `workdir/shots`."""

    def __init__(self, workdir: Path, args: Sequence[str], *, command: str = "tv", size: str = "1920x1080",
                 env: dict[str, str] | None = None, prefix: Sequence[str] = ()) -> None:
        """Start the TV; `prefix` runs it through another command (["ip", "netns", "exec", NS] for a namespace)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.shots = self.workdir / "shots"
        self.audio_file = self.workdir / "audio.raw"
        self.log_path = self.workdir / f"{command}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "tvapp", command, "--size", size, "--screenshots", str(self.shots),
             "--screenshot-interval", "0", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=tv_env(self.workdir, env), cwd=self.workdir)
        self._seq = 0

    @property
    def output(self) -> str:
        """Return what the TV printed so far."""
        return self.log_path.read_text()

    def remote_url(self, timeout: float = 20.0) -> str:
        """Return the base URL of the TV's pairing and remote endpoints, from what it printed at start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"remote control at (\S+)/remote", self.output)
            if match:
                return match.group(1)
            self._check_alive()
            time.sleep(0.05)
        raise AssertionError(f"the TV never said where its remote control is; its output:\n{self.output}")

    def screenshot(self, timeout: float = 10.0) -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
        """Ask for a screenshot (SIGUSR1) and return (RGB pixels as (height, width, 3), sidecar)."""
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # benchmarks print one JSON line, nothing else
        import pygame

        deadline = time.monotonic() + timeout
        sidecar_path = self.shots / "latest.json"
        while not sidecar_path.exists():  # the first frame's screenshot: the TV is up and handles SIGUSR1
            self._check_alive()
            if time.monotonic() > deadline + 20:
                raise AssertionError(f"the TV never showed a first frame; its output:\n{self.output}")
            time.sleep(0.05)
        self.proc.send_signal(signal.SIGUSR1)
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                sidecar = json.loads(sidecar_path.read_text())
            except (OSError, ValueError):
                sidecar = None
            if sidecar is not None and sidecar["seq"] > self._seq:
                self._seq = sidecar["seq"]
                image = pygame.image.load(str(self.shots / "latest.png"))
                pixels = pygame.surfarray.array3d(image).transpose(1, 0, 2)
                return np.ascontiguousarray(pixels), sidecar
            time.sleep(0.05)
        raise AssertionError(f"the TV wrote no screenshot within {timeout} s; its output:\n{self.output}")

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0,
                 what: str = "the expected screen") -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
        """Take screenshots until one's sidecar satisfies `predicate`; return it."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            pixels, sidecar = self.screenshot()
            if predicate(sidecar):
                return pixels, sidecar
            last = sidecar
            time.sleep(0.2)
        raise AssertionError(f"the TV never showed {what} within {timeout} s; last sidecar: {last}\n"
                             f"output:\n{self.output}")

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the TV exited with {self.proc.returncode}:\n{self.output}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM the TV and wait (SIGKILL after `timeout` s); return its exit status."""
        status = stop_process(self.proc, timeout)
        self._log.close()
        return status

    def audio(self) -> npt.NDArray[np.float64]:
        """Return what the TV played as float samples in [-1, 1), shape (frames, 2)."""
        raw = np.fromfile(self.audio_file, dtype="<i2")
        return raw[: len(raw) // 2 * 2].reshape(-1, 2).astype(np.float64) / 32768.0

    def __enter__(self) -> TvProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BotProcess:
    """A `tvapp bot` subprocess (stdout kept in a file)."""

    def __init__(self, workdir: Path, name: str, args: Sequence[str], *, env: dict[str, str] | None = None,
                 prefix: Sequence[str] = ()) -> None:
        self.log_path = Path(workdir) / f"bot-{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "tvapp", "bot", *args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=tv_env(Path(workdir), env))

    def wait_published(self, kinds: int, timeout: float = 30.0) -> None:
        """Wait until the bot says it published `kinds` tracks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the bot exited: {self.log_path.read_text()}")
            if self.log_path.read_text().count('"local_track_published"') >= kinds:
                return
            time.sleep(0.1)
        raise AssertionError(f"the bot did not publish: {self.log_path.read_text()}")

    def stop(self) -> None:
        """SIGTERM the bot and wait (SIGKILL after 10 s)."""
        stop_process(self.proc, 10)
        self._log.close()


def tone_level_db(samples: npt.NDArray[np.float64], hz: float, rate: int = TV_SAMPLE_RATE,
                  band_hz: float = 25.0) -> float:
    """Return the amplitude of the `hz` sine in mono `samples` in dBFS, from the energy within `band_hz` of it.

    Energy, not the FFT's peak bin: the audio output skips a few ms now and then to keep its latency bounded,
    and a phase jump spreads a tone over neighbouring bins without changing its energy.
    """
    window = np.hanning(len(samples))
    spectrum = np.fft.rfft(samples * window)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = np.abs(freqs - hz) <= band_hz
    energy = float((np.abs(spectrum[band]) ** 2).sum())
    amplitude = np.sqrt(4 * energy / (len(samples) * (window ** 2).sum()))
    return float(20 * np.log10(max(amplitude, 1e-12)))


def region_color(pixels: npt.NDArray[np.uint8], rect: Sequence[int], inset: float = 0.2) -> npt.NDArray[np.float64]:
    """Return the median colour of `rect` (x, y, w, h) with `inset` of each side left out."""
    x, y, w, h = rect
    dx, dy = int(w * inset), int(h * inset)
    region = pixels[y + dy:y + h - dy, x + dx:x + w - dx].reshape(-1, 3)
    return np.median(region, axis=0)  # type: ignore[no-any-return]

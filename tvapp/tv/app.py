"""The TV process: the frame loop on the main thread, the room (and the embedded core) on an asyncio thread.

Threads and who owns what:
- main thread: SDL video (it must be the thread that opened the display). Each turn of the frame loop takes
  the session's newest Scene (one reference read), draws it (`tvapp.tv.render.Renderer`), presents it
  (paced to the display by vsync, or to `fps` without one), feeds the systemd watchdog, and writes
  screenshots when asked (tvapp.tv.screenshots). It never waits on the network.
- network thread: one asyncio loop running `network_main(session)`: the embedded core when there is one,
  the SDK room, the pumps that hand decoded frames to VideoSlots and to the AudioOutput. Decoding itself runs
  in aiortc's decoder threads, so neither side stalls the other beyond the GIL's switch interval.
- SDL's audio thread: pulls mixed audio from the AudioOutput.

A frozen frame loop stops the watchdog pings, and systemd restarts the TV (systemd/tvapp.service).
With `trace` set, every presented video frame's stamp (tvapp.client.stamp) is written as a JSON line with the
flip time (tvapp.tv.fliptrace): benchmarks compute glass-to-glass and join-to-first-frame latency from it. Once a second a "decode"
record holds what decoding remote media has cost so far (tvapp.client.decodecost: decoder-thread CPU ms, wall ms,
pictures, pixels; per kind in "totals", per subscribed track sid in "tracks"; cumulative, numbers only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pygame

from tvapp.core.layout import Mode
from tvapp.core.steering import FlipLead
from tvapp.tv.audio import close_open_devices
from tvapp.tv.display import DisplayError, open_display
from tvapp.tv.fliptrace import FlipTrace
from tvapp.tv.render import Renderer
from tvapp.tv.scene import ErrorScreen, Scene
from tvapp.tv.screenshots import Screenshots
from tvapp.tv.session import TvSession
from tvapp.tv.video import pixel_formats
from tvapp.tv.watchdog import Notifier

log = logging.getLogger(__name__)

NetworkMain = Callable[[TvSession], Coroutine[Any, Any, None]]
NETWORK_STOP_S = 10.0  # at exit, how long the network side has to leave the room before the TV leaves without it


@dataclass(frozen=True)
class TvOptions:
    """How to run the TV (from `tvapp tv` / `tvapp demo` options over the [tv] and [audio] config)."""

    friendly_name: str
    windowed: bool = False
    size: tuple[int, int] | None = None
    offscreen_fallback: bool = False
    margin: float = 0.05
    fps: float = 60.0
    drivers: tuple[str, ...] = ("kmsdrm", "x11", "wayland")
    mode: Mode = Mode.GRID
    screenshots: Path | None = None
    screenshot_interval: float = 5.0
    audio: bool = True
    audio_device: str = ""
    volume: float = 1.0
    chunk_ms: float = 10.0
    max_queue_ms: float = 60.0
    duration: float | None = None
    trace: Path | None = None
    watch_mode: Mode = Mode.WATCH
    content_volume: float = 1.0
    duck_db: float = -12.0
    content_proxy: str = ""
    camera: str = "none"       # [tv] camera: "auto", "none" or a device
    microphone: str = "none"   # [tv] microphone: "auto", "none" or a device
    echo_cancellation: bool = True  # [tv] echo_cancellation, noise_suppression, auto_gain
    noise_suppression: bool = True
    auto_gain: bool = True
    adaptive_stream: bool = True  # [tv] adaptive_stream: false sends no track_settings


# The TV remote's OK button (HDMI-CEC arrives as Enter) or P on a keyboard reopens pairing after a lockout.
_PAIR_KEYS = frozenset({pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_p})
# C switches the TV's own camera off and on, M its microphone (README "The TV's camera and microphone").
_DEVICE_KEYS = {pygame.K_c: "camera", pygame.K_m: "mic"}


class NetworkThread(threading.Thread):
    """Runs `network_main(session)` in its own asyncio loop until `stop()`."""

    def __init__(self, network_main: NetworkMain, session: TvSession) -> None:
        super().__init__(name="tv-network", daemon=True)
        self._main = network_main
        self._session = session
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        """Run `network_main(session)` on a new event loop until it ends or `stop()` cancels it."""
        try:
            import uvloop
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._task = loop.create_task(self._main(self._session))
            self._started.set()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # shown on screen by the frame loop; the TV stays up
            self.failure = exc
            log.exception("tv: the network side failed")
        finally:
            self._started.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run `fn` on the network thread's loop (from the frame loop's thread); dropped before start or after stop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    def stop(self, timeout: float = NETWORK_STOP_S) -> None:
        """Cancel the network side (it leaves the room and stops the core) and wait for it."""
        self._started.wait(5)
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        self.join(timeout)


def run_tv(options: TvOptions, network_main: NetworkMain, *, out: IO[str] | None = None) -> int:
    """Open the screen and audio, start the network thread, and run the frame loop until told to stop."""
    out = out or sys.stdout
    try:
        display = open_display(windowed=options.windowed, size=options.size, drivers=options.drivers,
                               offscreen_fallback=options.offscreen_fallback, fps=options.fps)
    except DisplayError as exc:
        print(f"tvapp tv: cannot open a screen: {exc}", file=sys.stderr)
        return 1
    screenshots = options.screenshots
    if display.offscreen:
        print(f"tvapp tv: no screen available: drawing offscreen ({display.driver}, "
              f"{display.size[0]}x{display.size[1]})", file=out, flush=True)
        if screenshots is None:
            # A fresh private folder (0700): the screen shows codes a stranger on this machine must not read.
            screenshots = Path(tempfile.mkdtemp(prefix="tvapp-screens-"))
    if screenshots is not None:
        every = f"every {options.screenshot_interval:g} s and " if options.screenshot_interval > 0 else ""
        print(f"tvapp tv: screenshots go to {screenshots / 'latest.png'} ({every}on SIGUSR1)", file=out, flush=True)
    audio = _open_audio(options, out)
    renderer = Renderer(display.surface, options.margin)
    media = _local_media(options, display.surface, out)
    session = TvSession(friendly_name=options.friendly_name, mode=options.mode,
                        formats=pixel_formats(display.surface), audio=audio, watch_mode=options.watch_mode,
                        content_volume=options.content_volume, duck_db=options.duck_db,
                        content_proxy=options.content_proxy, media=media,
                        echo=_echo_canceller(options, audio, media, out))
    session.adaptive_stream = options.adaptive_stream
    shots = Screenshots(screenshots, options.screenshot_interval) if screenshots is not None else None
    trace = FlipTrace(options.trace, session) if options.trace else None
    if trace is not None and audio is not None:
        audio.on_pulled = trace.audio_pulled
    notifier = Notifier.from_env()
    flags = {"stop": False, "shot": False}

    def on_stop(signum: int, frame: Any) -> None:
        flags["stop"] = True

    def on_shot(signum: int, frame: Any) -> None:
        flags["shot"] = True

    # The frame loop shares the GIL with the network thread: hand it over every 1 ms instead of 5 ms so a frame
    # never waits long behind packet handling; and keep the start-up objects out of the collector's way.
    sys.setswitchinterval(0.001)
    gc.freeze()
    previous = {signum: signal.signal(signum, on_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_shot)
    network = NetworkThread(network_main, session)
    network.start()
    started = time.monotonic()
    first = True
    shown_tiles: dict[str, tuple[int, int]] | None = None
    flip_lead = FlipLead(options.fps)  # how long from choosing the content frame to its flip (measured)
    try:
        while not flags["stop"]:
            now = time.monotonic()
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    flags["stop"] = True
                elif event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q) and options.windowed:
                    flags["stop"] = True
                elif event.type == pygame.KEYDOWN and event.key in _PAIR_KEYS:
                    network.call_soon(lambda: session.key_pressed("pair"))
                elif event.type == pygame.KEYDOWN and event.key in _DEVICE_KEYS:
                    network.call_soon(functools.partial(session.key_pressed, _DEVICE_KEYS[event.key]))
            if network.failure is not None and not isinstance(session.scene.screen, ErrorScreen):
                session.scene = Scene(ErrorScreen("Something went wrong", str(network.failure) or
                                                  type(network.failure).__name__, "Restart the TV."))
            scene = session.scene
            drawing = time.perf_counter()
            presented = session.content.present(flip_lead.value)
            renderer.draw(scene, time.time())
            tile_sizes = {sid: (rect.w, rect.h) for sid, rect in renderer.tile_rects.items()}
            if tile_sizes != shown_tiles:  # the layout changed: the room side tells the server (track_settings)
                shown_tiles = tile_sizes
                network.call_soon(functools.partial(session.tiles_shown, tile_sizes))
            drawn = time.perf_counter()
            display.present()
            flipped = time.perf_counter()
            flip_lead.update(flipped - drawing)
            if trace is not None:
                trace.after_flip(scene, time.time(), (drawn - drawing) * 1000, presented)
            if first:
                first = False
                notifier.ready(f"showing {type(scene.screen).__name__}")
            notifier.frame(now)
            if shots is not None and (flags["shot"] or shots.due(now)):
                flags["shot"] = False
                shots.take(display, renderer, scene, session, now)
            if options.duration is not None and now - started >= options.duration:
                break
    finally:
        notifier.stopping()
        network.stop(NETWORK_STOP_S)
        if audio is not None:
            audio.close()
        # What the network side left open (its microphone when it did not stop in time) is closed here with the
        # GIL let go: pygame.quit at exit would close it holding the GIL (the deadlock in tvapp.tv.audio).
        closed = close_open_devices()
        if trace is not None:
            trace.close()
        display.close()
        notifier.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if network.is_alive():
            _leave_now(f"the network side did not stop within {NETWORK_STOP_S:g} s")
        if not closed:
            _leave_now("audio devices could not be closed safely")
    return 0


def _leave_now(why: str) -> None:
    """Exit the process at once (status 1), skipping the interpreter's shutdown, which could wait forever.

    Interpreter shutdown runs pygame.quit (closing any SDL device still open, holding the GIL) and joins the
    executor threads a stuck network side may still be using.
    """
    log.error("tv: leaving without a clean shutdown: %s", why)
    print(f"tvapp tv: leaving without a clean shutdown: {why}", file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    logging.shutdown()
    os._exit(1)


def _local_media(options: TvOptions, surface: pygame.Surface, out: IO[str]) -> Any:
    """Choose the TV's camera and microphone ([tv] camera / microphone); say what was chosen or why none."""
    from tvapp.tv.capture import LocalMedia, choose_camera, choose_microphone

    camera, camera_why = choose_camera(options.camera)
    mic, mic_why = choose_microphone(options.microphone) if options.audio else (None, "no sound (--no-audio)")
    for why in (camera_why, mic_why):
        if why:
            log.info("tv: %s", why)
            print(f"tvapp tv: {why}", file=out, flush=True)
    media = LocalMedia(camera, mic, formats=pixel_formats(surface))  # even with neither: a phone may be the camera
    if camera is not None or mic is not None:
        print(f"tvapp tv: publishing {media.describe()} in rooms", file=out, flush=True)
    return media


def _echo_canceller(options: TvOptions, audio: Any, media: Any, out: IO[str]) -> Any:
    """Make the microphone's echo canceller ([tv] echo_cancellation) when the TV plays sound and has a microphone."""
    if audio is None or media is None or not media.has_mic or not options.echo_cancellation:
        return None
    from tvapp.tv.echo import EchoCanceller, EchoError

    try:
        canceller = EchoCanceller(noise_suppression=options.noise_suppression, auto_gain_control=options.auto_gain)
    except EchoError as exc:
        print(f"tvapp tv: no echo cancellation: {exc}", file=sys.stderr, flush=True)
        return None
    print("tvapp tv: the microphone is cleaned of the TV's own sound (echo cancellation"
          f"{', noise suppression' if options.noise_suppression else ''}"
          f"{', gain control' if options.auto_gain else ''})", file=out, flush=True)
    return canceller


def _open_audio(options: TvOptions, out: IO[str]) -> Any:
    """Open the audio output; without one the TV still shows the call (and says why there is no sound)."""
    if not options.audio:
        return None
    from tvapp.tv.audio import AudioError, AudioOutput

    try:
        audio = AudioOutput(options.audio_device, volume=options.volume, chunk_ms=options.chunk_ms,
                            max_queue_ms=options.max_queue_ms)
        audio.start()
    except AudioError as exc:
        print(f"tvapp tv: no sound: {exc}", file=sys.stderr, flush=True)
        return None
    print(f"tvapp tv: sound to {audio.device_name or 'the default audio device'}", file=out, flush=True)
    return audio

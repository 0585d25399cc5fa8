"""The TV process: the frame loop on the main thread, the room (and the embedded core) on an asyncio thread.

Threads and who owns what:
- main thread: SDL video (it must be the thread that opened the display). Each turn of the frame loop takes
  the session's newest Scene (one reference read), draws it (`tvapp.tv.render.Renderer`), presents it
  (paced to the display by vsync, or to `fps` without one), feeds the systemd watchdog, and writes
  screenshots when asked. It never waits on the network.
- network thread: one asyncio loop running `network_main(session)`: the embedded core when there is one,
  the SDK room, the pumps that hand decoded frames to VideoSlots and to the AudioOutput. Decoding itself runs
  in aiortc's decoder threads, so neither side stalls the other beyond the GIL's switch interval.
- SDL's audio thread: pulls mixed audio from the AudioOutput.

A frozen frame loop stops the watchdog pings, and systemd restarts the TV (systemd/tvapp.service).
With `trace` set, every presented video frame's stamp (tvapp.client.stamp) is written as a JSON line with the
flip time: benchmarks compute glass-to-glass and join-to-first-frame latency from it. Once a second a "decode"
record holds what decoding remote media has cost so far (tvapp.client.decodecost: decoder-thread CPU ms, wall ms,
pictures, pixels; per kind in "totals", per subscribed track sid in "tracks"; cumulative, numbers only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
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

from tvapp.client import decodecost
from tvapp.core.layout import Mode
from tvapp.core.steering import FlipLead
from tvapp.tv.content import Presented
from tvapp.tv.display import Display, DisplayError, open_display
from tvapp.tv.render import Renderer
from tvapp.tv.scene import ErrorScreen, RoomScreen, Scene
from tvapp.tv.session import TvSession
from tvapp.tv.video import pixel_formats
from tvapp.tv.watchdog import Notifier

log = logging.getLogger(__name__)

NetworkMain = Callable[[TvSession], Coroutine[Any, Any, None]]


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

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the network side (it leaves the room and stops the core) and wait for it."""
        self._started.wait(5)
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        self.join(timeout)


class Screenshots:
    """PNG screenshots plus a JSON sidecar saying where each tile is: `latest.png` and `latest.json` in a folder.

    Both files are mode 0600 (and a folder created here 0700): a screenshot may show the invite code, the pairing
    code and the QR code's secret, and the sidecar spells them out.
    """

    def __init__(self, folder: Path, interval: float) -> None:
        self.folder = folder
        self.interval = interval
        self.seq = 0
        self._next = 0.0
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def due(self, now: float) -> bool:
        """Return whether a screenshot is due at monotonic time `now` (the first frame's always is)."""
        return self.seq == 0 or (self.interval > 0 and now >= self._next)

    def take(self, display: Display, renderer: Renderer, scene: Scene, session: TvSession, now: float) -> None:
        """Save the screen and its sidecar (the sidecar last: it says the PNG is complete)."""
        self._next = now + self.interval
        self.seq += 1
        display.screenshot(self.folder / "latest.png")
        info = session.tile_info()
        tiles = []
        for sid, rect in renderer.tile_rects.items():
            video = renderer.video_rects.get(sid)
            shown = info.get(sid)
            tiles.append({"sid": sid, **(shown.to_json() if shown is not None else {}), "rect": list(_rect(rect)),
                          "video_rect": list(_rect(video)) if video is not None else None})
        screen = scene.screen
        sidecar = {
            "seq": self.seq, "time": time.time(), "size": list(display.size), "driver": display.driver,
            "safe": list(_rect(renderer.safe)), "screen": type(screen).__name__,
            "mode": screen.mode if isinstance(screen, RoomScreen) else None,
            "invite_code": screen.bar.invite_code if isinstance(screen, RoomScreen) else None,
            "where": screen.bar.where if isinstance(screen, RoomScreen) else None,
            "tiles": tiles, "text_rects": [list(_rect(r)) for r in renderer.text_rects],
            "toasts": list(scene.toasts),
            "error": ({"title": screen.title, "message": screen.message, "hint": screen.hint}
                      if isinstance(screen, ErrorScreen) else None),
            "pairing": renderer.pairing.to_json() if renderer.pairing is not None else None,
            "join_qr": renderer.join_qr.to_json() if renderer.join_qr is not None else None,
            "content": _content_json(renderer, session),
            "local": _local_json(renderer, scene, session),
        }
        partial = self.folder / ".latest.json.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a partial file left over from before keeps its mode otherwise
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(sidecar))
        os.replace(partial, self.folder / "latest.json")


def _content_json(renderer: Renderer, session: TvSession) -> dict[str, Any] | None:
    """Return where the content is on screen and what the player says, for the sidecar (None: no content)."""
    if renderer.content_rect is None:
        return None
    player = session.content.player
    status = player.status() if player is not None else None
    video = renderer.content_video_rect
    return {"rect": list(_rect(renderer.content_rect)), "video_rect": list(_rect(video)) if video else None,
            "pts": status.position if status is not None else None,
            "stalled": status.stalled if status is not None else None,
            "media_error": status.media_error if status is not None else None,
            "status": view.status if (view := session.content.view()) is not None else None,
            "badge": view.badge if view is not None else None,
            "gain": session.audio.content_gain if session.audio is not None else None}


def _local_json(renderer: Renderer, scene: Scene, session: TvSession) -> dict[str, Any] | None:
    """Return the TV's own devices for the sidecar: their states as drawn, frames read so far, where the indicator
    and self-view are."""
    media = session.media
    if media is None:
        return None
    indicator, view = renderer.privacy.indicator_rect, renderer.privacy.self_view_rect
    shown = scene.screen.local if isinstance(scene.screen, RoomScreen) else None
    return {**media.stats(), "camera": shown.camera if shown else None, "mic": shown.mic if shown else None,
            "echo": session.echo_json(),
            "indicator_rect": list(_rect(indicator)) if indicator else None,
            "self_view_rect": list(_rect(view)) if view else None}


def _rect(rect: Any) -> tuple[int, int, int, int]:
    return (rect.x, rect.y, rect.w, rect.h)


class FlipTrace:
    """JSON lines for latency benchmarks: when joining started, each presented video frame's stamp with its
    flip time, the frame loop's pacing once a second, when audio was handed to the sound card, and the flip
    that first showed each new screen or layout."""

    def __init__(self, path: Path, session: TvSession) -> None:
        self._out: IO[str] = open(path, "a", buffering=1)
        self._session = session
        self._audio_latency: list[float] = []
        self._last: dict[str, int] = {}
        self._join_written = False
        self._layout: tuple[str, str | None] | None = None
        self._second_start: float | None = None
        self._frames = 0
        self._last_flip: float | None = None
        self._longest = 0.0
        self._draw_ms: list[float] = []
        self._lock = threading.Lock()
        self._audio_next = 0.0
        self._clock_next = 0.0

    def audio_pulled(self, frames_total: int, wall: float) -> None:
        """Note (at most every 50 ms) that `frames_total` samples per channel had been handed to SDL at `wall`."""
        if wall < self._audio_next:
            return
        self._audio_next = wall + 0.05
        with self._lock:
            self._out.write(json.dumps({"event": "audio", "t": wall, "frames": frames_total}) + "\n")

    def after_flip(self, scene: Scene, flip_time: float, draw_ms: float, content: Presented | None = None) -> None:
        """Record the frames that became visible with the flip at wall time `flip_time`."""
        from tvapp.client.stamp import read_stamp

        self._pacing(flip_time, draw_ms)
        room = self._session.room
        if room is not None and flip_time >= self._clock_next:
            self._clock_next = flip_time + 1.0
            # What decoding has cost so far (tvapp.client.decodecost), cumulative: benchmarks diff two records.
            self._write({"event": "decode", "t": time.time(), "totals": decodecost.totals(),
                         "tracks": {sid: cost.as_json() for sid, cost in room.decode_costs().items()}})
            estimate = room.clock.estimate
            now = time.time()
            server = room.clock.now()
            if estimate is not None and server is not None:
                # On one machine the server's clock is this one: the estimate's error is measurable.
                self._write({"event": "clock", "t": now, "server": server, "error_ms": (server - now) * 1000,
                             "rtt_ms": estimate.delay * 1000, "skew_ppm": estimate.skew * 1e6,
                             "samples": estimate.samples})
        if content is not None:
            # "truth": the timeline at the flip by the machine's own clock, which is the server's on one machine
            # (a test's injected clock fault shifts only this TV's estimate, "server").
            state = self._session.content.state
            self._write({"event": "content", "t": flip_time, "server": content.server_time, "pts": content.pts,
                         "target": content.target,
                         "truth": state.position_at(flip_time) if state is not None else None,
                         "seq": state.seq if state is not None else None})
        if not self._join_written and self._session.joined_at is not None:
            self._join_written = True
            self._write({"event": "join", "t": self._session.joined_at})
        shown_layout = (type(scene.screen).__name__, getattr(scene.screen, "mode", None))
        if shown_layout != self._layout:  # remote-control benchmarks: when a change reached the glass
            self._layout = shown_layout
            self._write({"event": "layout", "t": flip_time, "screen": shown_layout[0], "mode": shown_layout[1]})
        if not isinstance(scene.screen, RoomScreen):
            return
        for tile in scene.screen.tiles:
            shown = getattr(tile.video, "shown", None)
            if shown is None or self._last.get(tile.sid) == id(shown):
                continue
            self._last[tile.sid] = id(shown)
            band = _stamp_band(shown)
            stamp = read_stamp(band) if band is not None else None
            person = self._session.people.owner(tile.sid)
            self._write({"event": "flip", "t": flip_time, "sid": tile.sid,
                         "identity": person.identity if person else None,
                         "source": "screen" if tile.screen else "camera",
                         "width": getattr(shown, "width", None), "height": getattr(shown, "height", None),
                         "counter": stamp[0] if stamp else None, "capture_ms": stamp[1] if stamp else None})

    def _pacing(self, flip_time: float, draw_ms: float) -> None:
        if self._last_flip is not None:
            self._longest = max(self._longest, flip_time - self._last_flip)
        self._last_flip = flip_time
        self._frames += 1
        self._draw_ms.append(draw_ms)
        audio = self._session.audio
        if audio is not None and self._frames % 10 == 0:
            self._audio_latency.append(audio.added_latency_ms())
        if self._second_start is None:
            self._second_start = flip_time
        elif flip_time - self._second_start >= 1.0:
            draws = sorted(self._draw_ms)
            self._write({"event": "frames", "t": flip_time, "fps": self._frames / (flip_time - self._second_start),
                         "longest_interval_ms": round(self._longest * 1000, 2),
                         "draw_p50_ms": round(draws[len(draws) // 2], 3),
                         "draw_p95_ms": round(draws[int(len(draws) * 0.95)], 3),
                         "audio_added_latency_ms": [round(v, 1) for v in self._audio_latency]})
            self._second_start, self._frames, self._longest, self._draw_ms = flip_time, 0, 0.0, []
            self._audio_latency = []

    def _write(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(obj) + "\n")

    def close(self) -> None:
        """Close the trace file."""
        with self._lock:
            self._out.close()


def _stamp_band(frame: Any) -> Any:
    """Return the rows of a decoded yuv420p frame's luma plane that carry its stamp (a view: nothing copied);
    None for a frame too narrow to carry one (adaptive stream sends small tiles small)."""
    import numpy as np

    from tvapp.client.stamp import MIN_WIDTH, stamp_height

    if frame.width < MIN_WIDTH:
        return None

    plane = frame.planes[0]
    rows = min(frame.height, stamp_height(frame.width))
    return np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[:rows, :frame.width]


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
        network.stop()
        if audio is not None:
            audio.close()
        if trace is not None:
            trace.close()
        display.close()
        notifier.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


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

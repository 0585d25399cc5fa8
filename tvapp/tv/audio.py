"""The TV's sound: every remote participant's decoded audio, mixed once, played out of one SDL audio device.

Threads:
- the asyncio side calls `AudioOutput.push(source, frame)` for each decoded frame (any thread may): the frame
  is resampled to the device format (s16, `channels`, `sample_rate`) with an av.AudioResampler kept per source,
  outside the lock, then queued in the `AudioMixer` under the lock;
- SDL's audio thread runs `_callback` whenever the device wants `chunk_ms` more audio: it holds the lock only
  for `AudioMixer.pull`, then copies the block into SDL's buffer.

Device choice (`choose_device`): `[audio] device` names a device exactly or by a unique case-insensitive part of
its name; when it is empty an HDMI device is preferred (a Pi's ALSA names look like
"hdmi:CARD=vc4hdmi0,DEV=0" or "vc4-hdmi-0, MAI PCM i2s-hifi-0"), else SDL's default device.

Added latency (`AudioOutput.added_latency_ms`): audio waits in two places between its decoding and the speaker:
1. the device buffer: SDL double-buffers (its ALSA backend asks for two periods of `chunk_ms`), so a sample
   handed to SDL reaches the speaker after at most DEVICE_PERIODS x chunk_ms (20 ms by default);
2. the mixer's per-source queue: about `prefill_ms` (30 ms) once playing, never more than `max_queue_ms` minus
   the device buffer (the oldest audio is dropped beyond it, so a sender whose clock runs faster than the sound
   card's never builds up lag); the figure is the mean over the sources of what is queued now.
So `max_queue_ms` (60 by default) bounds the whole added latency, and it is about 30 + 20 = 50 ms in steady state.

Output taps (`add_tap`): whoever needs exactly what the speakers play (the echo canceller's far-end reference,
tvapp.tv.echo) subscribes a callable; after each buffer the callback hands every tap a copy of the block as given
to SDL (int16, (frames, channels): the call's mix and the content's sound together) and the wall time its first
sample is heard. With no tap nothing is copied.
"""

from __future__ import annotations

import ctypes
import faulthandler
import glob
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from tvapp.core.mixer import AudioMixer

log = logging.getLogger(__name__)

DEVICE_PERIODS = 2           # buffers of chunk_ms between the callback and the speaker (see the module docstring)
DEFAULT_PREFILL_MS = 30.0    # one and a half 20 ms Opus frames: a frame arriving a little late is not an underrun
MIN_QUEUE_MS = 20.0          # the mixer must hold at least one 20 ms Opus frame
_LAYOUTS = {1: "mono", 2: "stereo"}

_sdl_audio_ready = False
_sdl_lock = threading.RLock()
_sdl_library: ctypes.CDLL | bool | None = None  # False: looked for it and it is not there
_open_devices: dict[int, Any] = {}  # id(device) -> every device open_device opened and nobody closed yet
SDL_INIT_AUDIO = 0x10
FALLBACK_CLOSE_BOUND_S = 5.0  # closing through pygame (GIL held) may deadlock: the process exits after this
LOCK_WAIT_S = 2.0             # close_open_devices waits this long for a close in progress elsewhere


class AudioError(Exception):
    """No sound: the audio device asked for does not exist or cannot be opened (the message says which exist)."""


def _init_sdl_audio() -> None:
    """Start SDL's audio subsystem once (not pygame.mixer, which would open a device of its own)."""
    global _sdl_audio_ready
    with _sdl_lock:
        if _sdl_audio_ready:
            return
        import pygame._sdl2.sdl2 as sdl2

        try:
            sdl2.init_subsystem(sdl2.INIT_AUDIO)
        except Exception as exc:  # pygame.error, raised with SDL's reason
            driver = os.environ.get("SDL_AUDIODRIVER")
            asked = f" (SDL_AUDIODRIVER={driver})" if driver else ""
            raise AudioError(f"no audio driver could start{asked}: {exc}") from exc
        _sdl_audio_ready = True


def output_devices() -> list[str]:
    """Return the names of SDL's playback devices (starting SDL audio if needed)."""
    _init_sdl_audio()
    import pygame._sdl2.audio as sdl_audio

    return list(sdl_audio.get_audio_device_names(False))


def capture_devices() -> list[str]:
    """Return the names of SDL's capture devices, microphones (starting SDL audio if needed)."""
    _init_sdl_audio()
    import pygame._sdl2.audio as sdl_audio

    return list(sdl_audio.get_audio_device_names(True))


def open_device(name: str | None, *, capture: bool, rate: int, channels: int, chunk: int,
                callback: Callable[[object, memoryview], None]) -> Any:
    """Open an SDL device (s16, exactly this format) that runs `callback` on SDL's thread; pygame.error if not."""
    _init_sdl_audio()
    import pygame._sdl2.audio as sdl_audio

    with _sdl_lock:
        device = sdl_audio.AudioDevice(devicename=name, iscapture=capture, frequency=rate,
                                       audioformat=sdl_audio.AUDIO_S16, numchannels=channels, chunksize=chunk,
                                       allowed_changes=0, callback=callback)
        _open_devices[id(device)] = device
        return device


def close_device(device: Any) -> None:
    """Close an SDL device opened by open_device without holding the GIL while SDL joins its thread.

    pygame's close() waits for SDL's audio thread holding the GIL, and that thread may hold the device's lock
    waiting for the GIL to run our callback: a deadlock. So SDL_CloseAudioDevice is called through ctypes, which
    lets go of the GIL. Only when SDL's library cannot be found (`_loaded_sdl`) does pygame close it, and then
    the process exits FALLBACK_CLOSE_BOUND_S later if that deadlocks (faulthandler's watchdog needs no GIL;
    every thread's stack goes to stderr): a restarted TV rather than a frozen one. A device already closed
    (by close_open_devices at exit) is left alone.
    """
    with _sdl_lock:
        if _open_devices.pop(id(device), None) is None:
            return
        sdl = _loaded_sdl()
        if sdl is not None:
            sdl.SDL_CloseAudioDevice(device.deviceid)
            device.close()  # pygame forgets the id (already closed above: SDL ignores it)
            return
        log.warning("tv audio: SDL's library was not found: closing the %s device through pygame, which may "
                    "deadlock with SDL's audio thread; if it does, the process exits in %g s",
                    "capture" if device.iscapture else "playback", FALLBACK_CLOSE_BOUND_S)
        armed = _exit_unless_done_within(FALLBACK_CLOSE_BOUND_S)
        try:
            device.close()
        finally:
            if armed:
                faulthandler.cancel_dump_traceback_later()


def close_open_devices() -> bool:
    """Close every device still open with the GIL let go (before pygame.quit, which holds it); False if it cannot.

    Returns False, leaving them open, when SDL's library cannot be found or another thread stays inside a close
    for LOCK_WAIT_S: the caller must then leave the process with os._exit rather than through pygame.quit.
    """
    if not _sdl_lock.acquire(timeout=LOCK_WAIT_S):
        log.error("tv audio: another thread is stuck closing an audio device; not closing the others")
        return False
    try:
        if not _open_devices:
            return True
        if _loaded_sdl() is None:
            log.error("tv audio: SDL's library was not found: leaving %d audio device(s) open", len(_open_devices))
            return False
        for device in list(_open_devices.values()):
            close_device(device)
        return True
    finally:
        _sdl_lock.release()


def _exit_unless_done_within(seconds: float) -> bool:
    """Arm faulthandler to dump every thread's stack and exit the process in `seconds` (False if it cannot)."""
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    try:
        if stream is None:
            raise ValueError("no stderr")
        faulthandler.dump_traceback_later(seconds, exit=True, file=stream)
    except (ValueError, OSError, AttributeError, RuntimeError):  # no usable stderr
        log.exception("tv audio: cannot arm the exit watchdog")
        return False
    return True


def _listing(available: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in available) if available else "none"


def choose_device(configured: str, available: Sequence[str]) -> str | None:
    """Return the device to open: the configured one, else an HDMI device, else None (SDL's default)."""
    if configured:
        if configured in available:
            return configured
        wanted = configured.casefold()
        matches = [name for name in available if wanted in name.casefold()]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AudioError(f"audio device {configured!r} is ambiguous: it matches {_listing(matches)}; "
                             "set [audio] device to one of them exactly")
        raise AudioError(f"no audio device {configured!r}; the devices are: {_listing(available)}")
    return next((name for name in available if "hdmi" in name.casefold()), None)


def list_devices_text() -> str:
    """Return the playback devices, one per line, the one the TV picks by default marked with '*'."""
    available = output_devices()
    if not available:
        return "# no audio output devices found: the TV plays to SDL's default device\n"
    picked = choose_device("", available)
    lines = [("* " if name == picked else "  ") + name for name in available]
    if picked is None:
        lines.append("# no HDMI device: with [audio] device unset the TV plays to SDL's default device")
    else:
        lines.append("# '*': played to when [audio] device is unset (the first HDMI device)")
    return "\n".join(lines) + "\n"


class AudioOutput:
    """One SDL playback device fed by an AudioMixer of every source pushed to it."""

    def __init__(self, device: str = "", *, volume: float = 1.0, sample_rate: int = 48000, channels: int = 2,
                 chunk_ms: float = 10.0, max_queue_ms: float = 60.0,
                 prefill_ms: float = DEFAULT_PREFILL_MS) -> None:
        """Prepare to play to `device` (a name or part of one; "" = HDMI if any, else the default).

        Settings that cannot work (volume outside 0..1, chunk_ms not positive, max_queue_ms too small for
        chunk_ms) raise AudioError with the reason, like a missing device: the TV then runs without sound.
        """
        if channels not in _LAYOUTS:
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        if not chunk_ms > 0:
            raise AudioError(f"[audio] chunk_ms must be positive, got {chunk_ms}")
        if not 0.0 <= volume <= 1.0:
            raise AudioError(f"[audio] volume must be between 0 and 1, got {volume}")
        self._requested = device
        self._sample_rate = sample_rate
        self._channels = channels
        self._chunk_frames = max(1, round(chunk_ms * sample_rate / 1000.0))
        self._device_chunk = self._chunk_frames
        queue_ms = max_queue_ms - self.device_buffer_ms()
        if queue_ms < MIN_QUEUE_MS:
            raise AudioError(f"[audio] max_queue_ms ({max_queue_ms:g}) leaves {queue_ms:.0f} ms for the mixer after "
                             f"the device buffer of {self.device_buffer_ms():.0f} ms (chunk_ms {chunk_ms:g}); it needs "
                             f"at least {MIN_QUEUE_MS:.0f}: raise max_queue_ms or lower chunk_ms")
        self._mixer = AudioMixer(sample_rate, channels, prefill_ms=min(prefill_ms, 0.75 * queue_ms),
                                 max_queue_ms=queue_ms)
        self._mixer.master = volume
        self._lock = threading.Lock()
        self._resamplers: dict[str, tuple[tuple[str, str, int], av.AudioResampler]] = {}
        self._device: Any = None
        self._callbacks = 0
        self._callback_errors = 0
        self._handed_frames = 0
        self.device_name: str | None = None
        # Called on SDL's audio thread after each buffer with (frames per channel handed to SDL so far,
        # time.time()): lets a trace tie the audio clock to the wall clock. Keep it cheap.
        self.on_pulled: Callable[[int, float], None] | None = None
        # The shared content's audio, pulled in the callback: (frames, wall time the first sample is heard) ->
        # float32 (frames, channels) or None. Its gain (content volume x ducking) is set by the session.
        self.content: Callable[[int, float], NDArray[np.float32] | None] | None = None
        self.content_gain = 1.0
        self._taps: tuple[Callable[[NDArray[np.int16], float], None], ...] = ()

    # -- the device --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the device and start playing (silence until audio is pushed); AudioError if it cannot open."""
        if self._device is not None:
            return
        available = output_devices()
        name = choose_device(self._requested, available)
        _release_pygame_mixer()
        try:
            device = open_device(name, capture=False, rate=self._sample_rate, channels=self._channels,
                                 chunk=self._chunk_frames, callback=self._callback)
        except Exception as exc:  # pygame.error with SDL's reason
            what = repr(name) if name is not None else "the default audio device"
            raise AudioError(f"cannot open {what}: {exc}; the devices are: {_listing(available)}") from exc
        self._device = device
        self._device_chunk = int(device.chunksize) or self._chunk_frames
        self.device_name = name
        device.pause(0)  # safe with the GIL held: a paused device never runs the callback

    def close(self) -> None:
        """Stop playing and close the device; call before pygame.quit(), which would close it holding the GIL."""
        device, self._device = self._device, None
        if device is None:
            return
        close_device(device)

    def _callback(self, device: object, buffer: memoryview) -> None:
        """Fill SDL's buffer (runs on SDL's audio thread, must return quickly)."""
        out = np.asarray(buffer).view(np.int16)
        frames = out.size // self._channels
        # What is handed over now is heard after the buffer SDL already holds (one more device chunk).
        heard_at = time.time() + self._device_chunk / self._sample_rate
        try:
            extra = None
            content = self.content
            if content is not None:
                extra = content(frames, heard_at)
            with self._lock:
                block = self._mixer.pull(frames, extra, self.content_gain)
            out[:] = block.reshape(-1)
        except Exception:  # never leave SDL with garbage: play silence and say so once
            out[:] = 0
            self._callback_errors += 1
            if self._callback_errors == 1:
                log.exception("tv audio: mixing failed; playing silence")
        self._callbacks += 1
        self._handed_frames += frames
        taps = self._taps
        if taps:
            block = out.reshape(frames, self._channels).copy()
            for tap in taps:
                try:
                    tap(block, heard_at)
                except Exception:
                    self.remove_tap(tap)
                    log.exception("tv audio: an output tap failed; not calling it again")
        hook = self.on_pulled
        if hook is not None:
            try:
                hook(self._handed_frames, time.time())
            except Exception:
                self.on_pulled = None
                log.exception("tv audio: on_pulled failed; not calling it again")

    def add_tap(self, tap: Callable[[NDArray[np.int16], float], None]) -> None:
        """Hand `tap` every block played from now on, with the wall time it is heard (see the module docstring)."""
        self._taps = (*self._taps, tap)

    def remove_tap(self, tap: Callable[[NDArray[np.int16], float], None]) -> None:
        """Stop handing blocks to `tap`."""
        self._taps = tuple(known for known in self._taps if known != tap)

    # -- sources -----------------------------------------------------------------------------------------

    def push(self, source: str, frame: av.AudioFrame) -> None:
        """Queue one decoded frame of `source` (any thread), converted to the device's format."""
        blocks = [_samples(converted, self._channels) for converted in self._convert(source, frame)]
        with self._lock:
            for block in blocks:
                self._mixer.push(source, block)

    def _convert(self, source: str, frame: av.AudioFrame) -> list[av.AudioFrame]:
        """Return `frame` as packed s16 at the device rate, in mono (played on every channel) or the device layout."""
        channels = len(frame.layout.channels)
        if frame.format.name == "s16" and frame.sample_rate == self._sample_rate and channels in (1, self._channels):
            return [frame]  # already fits (aiortc's Opus decoder gives s16 stereo 48 kHz): nothing to convert
        signature = (frame.format.name, frame.layout.name, frame.sample_rate)
        with self._lock:
            known = self._resamplers.get(source)
            if known is None or known[0] != signature:
                # A mono voice is copied to both speakers at full level, not upmixed at -3 dB like a centre channel.
                layout = "mono" if channels == 1 else _LAYOUTS[self._channels]
                known = (signature, av.AudioResampler(format="s16", layout=layout, rate=self._sample_rate))
                self._resamplers[source] = known
        return list(known[1].resample(frame))

    def remove(self, source: str) -> None:
        """Stop playing `source` and forget its queued audio, gain and resampler."""
        with self._lock:
            self._mixer.remove(source)
            self._resamplers.pop(source, None)

    def set_gain(self, source: str, gain: float) -> None:
        """Set `source`'s gain (0 mutes it, 1 as received, up to 4)."""
        with self._lock:
            self._mixer.set_gain(source, gain)

    @property
    def volume(self) -> float:
        """Return the master volume, 0..1."""
        return self._mixer.master

    @volume.setter
    def volume(self, value: float) -> None:
        with self._lock:
            self._mixer.master = value

    # -- figures -----------------------------------------------------------------------------------------

    def device_buffer_ms(self) -> float:
        """Return how long a sample handed to SDL waits before it is heard, at most (see the module docstring)."""
        return DEVICE_PERIODS * self._device_chunk * 1000.0 / self._sample_rate

    def added_latency_ms(self) -> float:
        """Return the latency the TV adds to its audio now: the mean mixer queue plus the device buffer."""
        with self._lock:
            queued = [self._mixer.queued_ms(source) for source in self._mixer.sources()]
        return (sum(queued) / len(queued) if queued else 0.0) + self.device_buffer_ms()

    def stats(self) -> dict[str, float]:
        """Return counters and figures: callbacks, underruns, dropped frames, latency, queued_ms per source."""
        with self._lock:
            mixer = self._mixer.stats
            queued = {source: self._mixer.queued_ms(source) for source in self._mixer.sources()}
        figures: dict[str, float] = {
            "callbacks": float(self._callbacks),
            "callback_errors": float(self._callback_errors),
            "handed_frames": float(self._handed_frames),
            "pulled_frames": float(mixer.pulled_frames),
            "underruns": float(mixer.underruns),
            "dropped_frames": float(mixer.dropped_frames),
            "device_buffer_ms": self.device_buffer_ms(),
            "added_latency_ms": (sum(queued.values()) / len(queued) if queued else 0.0) + self.device_buffer_ms(),
        }
        figures.update({f"queued_ms.{source}": ms for source, ms in queued.items()})
        return figures


def _samples(frame: av.AudioFrame, channels: int) -> NDArray[np.int16]:
    """Return a packed s16 frame's samples shaped (frames, channels), a mono frame copied to every channel."""
    own = len(frame.layout.channels)
    samples = np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1, own)
    return np.repeat(samples, channels, axis=1) if own == 1 and channels > 1 else samples


def _loaded_sdl() -> ctypes.CDLL | None:
    """Return, through ctypes, the very SDL2 library pygame runs audio on (None where it cannot be found).

    Looked for in turn: through pygame's audio module (dlsym searches the libraries it was linked against,
    whatever their file names), among the libraries this process mapped (/proc/self/maps), and in pygame's
    package folders (a wheel's bundled copy in pygame_ce.libs or pygame.libs, pygame/.dylibs on macOS). A
    candidate counts only if its audio subsystem is running: another copy of SDL knows nothing of our devices.
    """
    global _sdl_library
    if _sdl_library is None:
        for path in _sdl_candidates():
            library = _audio_running_in(path)
            if library is not None:
                _sdl_library = library
                break
        else:
            log.warning("tv audio: cannot find the SDL library pygame uses; closing a device may hang")
            _sdl_library = False
    return _sdl_library if isinstance(_sdl_library, ctypes.CDLL) else None


def _sdl_candidates() -> list[str]:
    """Return the files that may be pygame's SDL2, the likeliest first (see _loaded_sdl)."""
    import pygame
    import pygame._sdl2.audio as sdl_audio

    candidates = [sdl_audio.__file__] if sdl_audio.__file__ else []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            mapped = {line.split(maxsplit=5)[-1].strip() for line in maps if "libSDL2" in line}
    except OSError:
        mapped = set()
    candidates += sorted(path for path in mapped if _is_sdl2(path))
    package = os.path.dirname(pygame.__file__ or "")
    for folder in (package + ".libs", os.path.join(os.path.dirname(package), "pygame_ce.libs"),
                   os.path.join(package, ".dylibs"), package):
        candidates += sorted(path for path in glob.glob(os.path.join(folder, "libSDL2*")) if _is_sdl2(path))
    return list(dict.fromkeys(candidates))


def _is_sdl2(path: str) -> bool:
    """Return whether a file name is SDL2's core library (not SDL2_mixer, SDL2_image, ...)."""
    return re.match(r"libSDL2-2[.-]", os.path.basename(path)) is not None


def _audio_running_in(path: str) -> ctypes.CDLL | None:
    """Return `path` through ctypes if it has SDL_CloseAudioDevice and its audio subsystem is running."""
    try:
        # Only a library already loaded: dlopen hands back the very instance pygame uses, and loads no other copy.
        library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
        close, was_init = library.SDL_CloseAudioDevice, library.SDL_WasInit
    except (OSError, AttributeError):
        return None
    was_init.argtypes, was_init.restype = [ctypes.c_uint32], ctypes.c_uint32
    if not was_init(SDL_INIT_AUDIO):
        return None
    close.argtypes, close.restype = [ctypes.c_uint32], None
    return library


def _release_pygame_mixer() -> None:
    """Close pygame.mixer if something started it: it holds a device of its own (on ALSA, maybe ours)."""
    import pygame.mixer

    if pygame.mixer.get_init():
        log.warning("tv audio: pygame.mixer was open; closing it so that one device plays all the sound")
        pygame.mixer.quit()

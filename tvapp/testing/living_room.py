"""A simulated living room for the echo canceller: what the TV really plays, the room it plays into, a microphone.

- `play_through_tv(...)` runs the TV's real audio path (tvapp.tv.audio.AudioOutput, SDL_AUDIODRIVER=disk) in a
  child process (`python -m tvapp.testing.living_room`): a friend's voice pushed as a call participant in real
  time, a film's sound pulled as the content (the same `AudioOutput.content` hook TvContent uses), and an output
  tap recording every block handed to SDL. It returns the disk file and the tapped blocks.
- `speech_like`, `film_like`: signals to play: a harmonic voice with a wandering pitch and syllables with
  pauses; music chords with noise (wideband, stationary: the hard case for a canceller's filter).
- `room_impulse_response` (exponentially decaying noise with a given RT60), `resample_ppm` (a microphone whose
  clock runs `ppm` fast) build the microphone signal; `erle_db`, `convergence_s`, `near_correlation` measure.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

RATE = 48000
Signal = npt.NDArray[np.float64]


def speech_like(seconds: float, *, seed: int, f0: float = 120.0, level_dbfs: float = -20.0) -> Signal:
    """Return a voice-like signal: harmonics of a gliding pitch, in syllables of 120-350 ms with short pauses."""
    rng = np.random.default_rng(seed)
    count = round(seconds * RATE)
    t = np.arange(count) / RATE
    pitch = f0 * (1 + 0.15 * np.sin(2 * np.pi * 0.6 * t + rng.uniform(0, 6)) + 0.05 * np.sin(2 * np.pi * 2.3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = np.zeros(count)
    for k in range(1, 30):
        # A slowly moving formant-like weighting, so the spectrum changes from syllable to syllable.
        formant = 1.0 / (1.0 + ((k * f0 - 700 - 400 * np.sin(2 * np.pi * 1.7 * t)) / 500.0) ** 2)
        voice += formant * np.sin(k * phase) / math.sqrt(k)
    voice += 0.05 * rng.standard_normal(count)  # breath and fricatives
    envelope = np.zeros(count)
    at = 0
    while at < count:
        length = int(rng.uniform(0.12, 0.35) * RATE)
        end = min(count, at + length)
        envelope[at:end] = np.sin(np.linspace(0, np.pi, end - at)) ** 0.5
        at = end + int(rng.uniform(0.03, 0.12) * RATE)
    return _at_level(voice * envelope, level_dbfs)


def film_like(seconds: float, *, seed: int, level_dbfs: float = -20.0) -> Signal:
    """Return film-like sound: chords changing every second over a bed of low-passed noise."""
    rng = np.random.default_rng(seed)
    count = round(seconds * RATE)
    t = np.arange(count) / RATE
    music = np.zeros(count)
    for second in range(math.ceil(seconds)):
        part = slice(second * RATE, min(count, (second + 1) * RATE))
        root = rng.choice([110.0, 130.8, 146.8, 164.8, 196.0])
        for ratio in (1.0, 1.25, 1.5, 2.0, 3.0):
            music[part] += np.sin(2 * np.pi * root * ratio * t[part] + rng.uniform(0, 6)) / ratio
    noise = np.convolve(rng.standard_normal(count), np.ones(8) / 8, mode="same")
    return _at_level(music / np.std(music) + 0.7 * noise / np.std(noise), level_dbfs)


def _at_level(signal: Signal, level_dbfs: float) -> Signal:
    rms = float(np.sqrt(np.mean(signal * signal)))
    return signal * (10 ** (level_dbfs / 20) / rms if rms > 0 else 0.0)


def room_impulse_response(*, rt60_s: float = 0.3, seed: int = 7, gain_db: float = -10.0) -> Signal:
    """Return a room's impulse response: a direct path then exponentially decaying noise (60 dB in rt60_s)."""
    rng = np.random.default_rng(seed)
    length = round(rt60_s * RATE)
    t = np.arange(length) / RATE
    response = rng.standard_normal(length) * np.exp(-3 * math.log(10) * t / rt60_s) * 0.3
    response[0] = 1.0
    return response * 10 ** (gain_db / 20) / float(np.sqrt(np.sum(response * response)))


def convolve(signal: Signal, response: Signal) -> Signal:
    """Return `signal` through `response` (FFT convolution), as long as `signal`."""
    size = 1 << (signal.size + response.size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(response, size), size)
    return out[:signal.size]


def delayed(signal: Signal, seconds: float) -> Signal:
    """Return `signal` starting `seconds` later (same length)."""
    shift = round(seconds * RATE)
    return np.concatenate([np.zeros(shift), signal[:signal.size - shift]])


def resample_ppm(signal: Signal, ppm: float) -> Signal:
    """Return `signal` as a microphone whose clock runs `ppm` parts per million fast samples it (linear interp)."""
    step = 1.0 / (1.0 + ppm * 1e-6)
    positions = np.arange(0, signal.size - 1, step)
    resampled: Signal = np.interp(positions, np.arange(signal.size), signal)
    return resampled


def to_int16(signal: Signal) -> npt.NDArray[np.int16]:
    """Return a [-1, 1) float signal as int16 samples (clipped)."""
    return np.clip(np.round(signal * 32768), -32768, 32767).astype(np.int16)


def erle_db(mic: Signal, out: Signal) -> float:
    """Return the echo return loss enhancement: the microphone's energy over what is left of it, in dB."""
    left = float(np.mean(out * out))
    return 10 * math.log10(float(np.mean(mic * mic)) / max(left, 1e-15))


def convergence_s(mic: Signal, out: Signal, start_s: float, end_s: float, goal_db: float, *,
                  window_s: float = 0.5, step_s: float = 0.1) -> float | None:
    """Return how long after start_s the ERLE over every window_s window stays >= goal_db until end_s (None: never)."""
    starts = np.arange(start_s, end_s - window_s + 1e-9, step_s)
    converged: float | None = None
    for begin in starts:
        part = slice(round(begin * RATE), round((begin + window_s) * RATE))
        if erle_db(mic[part], out[part]) >= goal_db:
            if converged is None:
                converged = float(begin + window_s - start_s)
        else:
            converged = None
    return converged


def near_correlation(out: Signal, near: Signal, *, max_lag_s: float = 0.02) -> float:
    """Return the best normalised correlation of `out` with the near-end talker, over processing lags up to max_lag_s."""
    best = 0.0
    for lag in range(0, round(max_lag_s * RATE) + 1):
        size = min(out.size - lag, near.size)
        a, b = out[lag:lag + size], near[:size]
        denominator = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
        if denominator > 0:
            best = max(best, float(np.dot(a, b)) / denominator)
    return best


def high_pass(signal: Signal, hz: float = 80.0) -> Signal:
    """Return `signal` through a 2nd-order Butterworth high-pass at `hz`: what WebRTC's high-pass filter (always on
    with AEC3) does to a voice, so the fair reference for what a canceller keeps of the talker."""
    w = math.tan(math.pi * hz / RATE)
    q = 1 / math.sqrt(2)
    norm = 1 / (1 + w / q + w * w)
    b0, b1, b2 = norm, -2 * norm, norm
    a1, a2 = 2 * (w * w - 1) * norm, (1 - w / q + w * w) * norm
    out = np.zeros_like(signal)
    x1 = x2 = y1 = y2 = 0.0
    for i, x in enumerate(signal.tolist()):
        y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        x2, x1, y2, y1 = x1, x, y1, y
        out[i] = y
    return out


def gain_stage(with_gain: Signal, without: Signal, *, frame: int = 480) -> tuple[Signal, float]:
    """Fit `with_gain` = g_k * `without` per 10 ms frame k (least squares) and return (`with_gain` with each g_k
    divided out, the fit's residual relative to `with_gain` in dB). WebRTC's gain control runs after AEC3 and
    noise suppression: the same canceller with AGC on and off on the same input differ by such a per-frame gain,
    which the residual (well under -20 dB) shows; dividing it out refers the output back to the echo's scale."""
    count = min(with_gain.size, without.size) // frame
    on = with_gain[:count * frame].reshape(count, frame)
    off = without[:count * frame].reshape(count, frame)
    energy = (off * off).sum(axis=1)
    gains = np.where(energy > 1e-12, (on * off).sum(axis=1) / np.maximum(energy, 1e-12), 1.0)
    residual = on - gains[:, None] * off
    safe = np.where(np.abs(gains) > 1e-6, gains, 1.0)
    referred: Signal = (on / safe[:, None]).reshape(-1)
    fit_db = 10 * math.log10(max(float((residual * residual).sum()), 1e-20) / max(float((on * on).sum()), 1e-20))
    return referred, fit_db


def microphone(played: npt.NDArray[np.int16], *, near: Signal, delay_s: float, ppm: float,
               response: Signal) -> dict[str, Signal]:
    """Return what a microphone `ppm` fast hears of the speakers playing `played` ((frames, 2) int16) through
    `response`, `delay_s` late, with the near-end talker `near` (on the played file's timeline) in the room:
    "mic" (what it captures), "echo" and "near" (its two parts), all on the microphone's own clock."""
    far = played.astype(np.float64).mean(axis=1) / 32768
    echo = resample_ppm(delayed(convolve(far, response), delay_s), ppm)
    talker = resample_ppm(np.resize(near, far.size) if near.size != far.size else near, ppm)
    count = min(echo.size, talker.size)
    echo, talker = echo[:count], talker[:count]
    return {"mic": echo + talker, "echo": echo, "near": talker}


def run_canceller(canceller: Any, played: npt.NDArray[np.int16], mic: Signal, *, ppm: float, seed: int = 11,
                  chunk: int = 480) -> Signal:
    """Feed `canceller` (tvapp.tv.echo.EchoCanceller) as the TV would, on a fake clock; return its cleaned output.

    The speakers play `played` from t=0 in SDL callbacks of `chunk` frames, each run 10 ms before it is heard and
    up to 2 ms late (its `played_at` stamp carries the lateness, as time.time() in the callback does). The
    microphone's frame k is captured at 480 k / (48000 (1 + ppm)) s, stamped up to 1 ms late and handed over 10-14 ms
    after capture. Events run in the order they happen, so the canceller only ever sees output already handed to
    the device.
    """
    rng = np.random.default_rng(seed)
    events: list[tuple[float, int, int, float]] = []  # (when it happens, kind 0 far/1 mic, index, its stamp)
    for block in range(played.shape[0] // chunk):
        heard = block * chunk / RATE
        late = float(rng.uniform(0, 0.002))
        events.append((heard - 0.010 + late, 0, block, heard + late))
    frames = mic.size // 480
    for frame in range(frames):
        captured = frame * 480 / (RATE * (1 + ppm * 1e-6))
        events.append((captured + float(rng.uniform(0.010, 0.014)), 1, frame, captured + float(rng.uniform(0, 0.001))))
    events.sort()
    samples = to_int16(mic)
    out = np.zeros(frames * 480, dtype=np.int16)
    for _, kind, index, stamp in events:
        if kind == 0:
            canceller.far_end(played[index * chunk:(index + 1) * chunk], stamp)
        else:
            out[index * 480:(index + 1) * 480] = canceller.process_capture(samples[index * 480:(index + 1) * 480], stamp)
    return out.astype(np.float64) / 32768


# -- the standard living room: what is played when, and where each figure is measured (seconds on the file) ------

SECONDS = 12.0
VOICE_FIRST = (0.0, 4.0)      # the friend talks alone (far-end speech)
FILM = (4.2, 7.8)             # the film plays alone (the content's audio)
VOICE_AGAIN = (8.0, 11.5)     # the friend talks again ...
NEAR = (8.6, 11.2)            # ... while someone on the sofa talks too (double talk)
WINDOWS = {"far_speech": (2.0, 4.0), "film": (4.7, 7.7), "double_talk": (8.7, 11.1)}


def living_room_signals(*, near_dbfs: float = -30.0) -> tuple[Signal, Signal, Signal]:
    """Return (the friend's voice as pushed to the TV, the film's sound, the near-end talker on the file's timeline);
    at -30 dBFS the talker is as loud at the microphone as the TV's echo."""
    gap = np.zeros(round((VOICE_AGAIN[0] - VOICE_FIRST[1]) * RATE))
    voice = np.concatenate([speech_like(VOICE_FIRST[1] - VOICE_FIRST[0], seed=1), gap,
                            speech_like(VOICE_AGAIN[1] - VOICE_AGAIN[0], seed=3)])
    film = film_like(FILM[1] - FILM[0], seed=2)
    near = np.zeros(round(SECONDS * RATE))
    talker = speech_like(NEAR[1] - NEAR[0], seed=5, f0=210.0, level_dbfs=near_dbfs)
    near[round(NEAR[0] * RATE):round(NEAR[0] * RATE) + talker.size] = talker
    return voice, film, near


def _part(signal: Signal, window: tuple[float, float]) -> Signal:
    return signal[round(window[0] * RATE):round(window[1] * RATE)]


def living_room_figures(played: npt.NDArray[np.int16], near: Signal, make_canceller: Any, *, delay_s: float,
                        ppm: float, goal_db: float = 25.0, without_gain: Any = None) -> dict[str, Any]:
    """Return the canceller's figures in the standard living room for the TV's output `played` ((frames, 2)):
    ERLE (dB, the raw microphone being 0 dB) during far-end speech and film, convergence (s), the near-end
    talker's correlation during double talk (raw microphone and cleaned), and the same talker's correlation through
    the same processing with no echo at all (what the processing itself keeps of a voice)."""
    response = room_impulse_response()
    heard = microphone(played, near=near, delay_s=delay_s, ppm=ppm, response=response)
    canceller = make_canceller()
    started = time.process_time()
    out = run_canceller(canceller, played, heard["mic"], ppm=ppm)
    cpu_s = time.process_time() - started
    mic = heard["mic"][:out.size]
    talk = WINDOWS["double_talk"]
    alone = make_canceller()
    silent = np.zeros_like(played)
    near_only = run_canceller(alone, silent, heard["near"], ppm=ppm)
    summary = canceller.summary()
    figures = _figures(mic, out, heard, near_only, talk, delay_s, ppm, goal_db)
    figures.update({
        # CPU of the whole feed (far_end + process_capture + the simulation's slicing) per second of audio.
        "cpu_core_fraction": round(cpu_s / (out.size / RATE), 4),
        "drift_ppm_measured": None if summary.drift_ppm is None else round(summary.drift_ppm, 1),
        "reference": {"dropped": summary.dropped, "inserted": summary.inserted, "resyncs": summary.resyncs,
                      "late_frames": summary.late_reference_frames},
    })
    if without_gain is not None:
        # ERLE on the echo path: the same canceller with the gain control off on the same input is the output
        # before the gain stage; each 10 ms frame's gain divided out of the shipped output gives the residual echo
        # at the echo's own scale (bench/README.md, "echo").
        twin = run_canceller(without_gain(), played, heard["mic"], ppm=ppm)
        referred, fit_db = gain_stage(out, twin)
        figures["agc_fit_residual_db"] = round(fit_db, 1)
        figures["agc_gain_far_speech_db"] = round(erle_db(_part(out, WINDOWS["far_speech"]),
                                                          _part(twin, WINDOWS["far_speech"])), 1)
        for name in ("far_speech", "film"):
            window = WINDOWS[name]
            figures[f"erle_echo_path_{name}_db"] = round(erle_db(_part(mic, window), _part(referred, window)), 1)
        figures["convergence_echo_path_s"] = convergence_s(mic[:referred.size], referred, VOICE_FIRST[0],
                                                           VOICE_FIRST[1], goal_db)
    return figures


def _figures(mic: Signal, out: Signal, heard: dict[str, Signal], near_only: Signal, talk: tuple[float, float],
             delay_s: float, ppm: float, goal_db: float) -> dict[str, Any]:
    return {
        "delay_ms": round(delay_s * 1000), "ppm": ppm,
        "erle_far_speech_db": round(erle_db(_part(mic, WINDOWS["far_speech"]), _part(out, WINDOWS["far_speech"])), 1),
        "erle_film_db": round(erle_db(_part(mic, WINDOWS["film"]), _part(out, WINDOWS["film"])), 1),
        "convergence_s": convergence_s(mic, out, VOICE_FIRST[0], VOICE_FIRST[1], goal_db),
        "echo_to_near_db": round(erle_db(_part(heard["echo"], talk), _part(heard["near"], talk)), 1),
        "near_corr_raw_mic": round(near_correlation(_part(mic, talk), _part(heard["near"], talk)), 3),
        "near_corr": round(near_correlation(_part(out, talk), _part(heard["near"], talk)), 3),
        "near_corr_without_echo": round(near_correlation(_part(near_only, talk), _part(heard["near"], talk)), 3),
        # The talker as the same processing passes it with no echo: what double talk itself costs the talker.
        # How much the processing lifts (AGC) or lowers the talker with no echo: the ERLE above counts that gain
        # against the canceller, as the friends hear it; adding it back gives the echo-to-talker improvement.
        "talker_gain_db": round(-erle_db(_part(heard["near"], talk), _part(near_only, talk)), 1),
        "near_corr_vs_processed": round(near_correlation(_part(out, talk), _part(near_only, talk),
                                                         max_lag_s=0.0), 3),
        # The fair reference: the clean talker through the 80 Hz high-pass WebRTC always runs with AEC3.
        "near_corr_hpf": round(near_correlation(_part(out, talk), high_pass(_part(heard["near"], talk))), 3),
        "near_corr_without_echo_hpf": round(near_correlation(_part(near_only, talk),
                                                             high_pass(_part(heard["near"], talk))), 3),
    }


# -- the TV's real output ------------------------------------------------------------------------------------------

def play_through_tv(workdir: Path, *, voice: Signal, film: Signal, film_start_s: float, seconds: float,
                    timeout: float = 120.0) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], dict[str, Any]]:
    """Play `voice` as a participant and `film` as the content (from film_start_s) through the TV's real audio path
    with SDL's disk driver; return (the disk file, the tapped blocks joined, the child's report), both (frames, 2)."""
    workdir.mkdir(parents=True, exist_ok=True)
    voice_path, film_path = workdir / "voice.f32", workdir / "film.f32"
    voice.astype(np.float32).tofile(voice_path)
    film.astype(np.float32).tofile(film_path)
    played, tapped = workdir / "played.raw", workdir / "tapped.raw"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_")}
    env.update(SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(played))
    scenario = {"voice": str(voice_path), "film": str(film_path), "film_start": film_start_s, "seconds": seconds,
                "tap": str(tapped)}
    result = subprocess.run([sys.executable, "-m", "tvapp.testing.living_room", json.dumps(scenario)], env=env,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"the TV audio child failed: {result.stderr[-3000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    disk = np.fromfile(played, dtype=np.int16).reshape(-1, 2)
    taps = np.fromfile(tapped, dtype=np.int16).reshape(-1, 2)
    return disk, taps, report


def _child(scenario: dict[str, Any]) -> dict[str, Any]:
    """Run in the child: play the scenario through AudioOutput, tap it, write the tapped blocks; return figures."""
    import av

    from tvapp.tv.audio import AudioOutput

    voice = np.fromfile(scenario["voice"], dtype=np.float32)
    film = np.fromfile(scenario["film"], dtype=np.float32)
    seconds = float(scenario["seconds"])
    output = AudioOutput()
    blocks: list[npt.NDArray[np.int16]] = []
    stamps: list[float] = []

    def tap(block: npt.NDArray[np.int16], heard_at: float) -> None:
        blocks.append(block)
        stamps.append(heard_at)

    film_at = [0]
    handed = [0]  # the film starts at a place in the played file, not a wall time (the disk driver runs slow)

    def content(frames: int, heard_at: float) -> npt.NDArray[np.float32] | None:
        handed[0] += frames
        if handed[0] <= scenario["film_start"] * RATE or film_at[0] >= film.size:
            return None
        part = film[film_at[0]:film_at[0] + frames]
        film_at[0] += frames
        block = np.zeros((frames, 2), dtype=np.float32)
        block[:part.size] = part[:, None]
        return block

    output.add_tap(tap)
    output.content = content
    output.start()
    begin = time.monotonic()

    def push_voice() -> None:
        step = RATE // 50
        for index in range(voice.size // step):
            delay = begin + index / 50 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            samples = to_int16(voice[index * step:(index + 1) * step].astype(np.float64)).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = RATE
            output.push("friend", frame)

    pusher = threading.Thread(target=push_voice)
    pusher.start()
    pusher.join()
    # Until the device has played `seconds` (its disk driver runs slower than the wall clock, more so under load).
    while output.stats()["handed_frames"] < seconds * RATE and time.monotonic() - begin < 4 * seconds:
        time.sleep(0.05)
    output.close()
    joined = np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.int16)
    joined.tofile(scenario["tap"])
    stats = output.stats()
    return {"stats": stats, "tapped_blocks": len(blocks), "tapped_frames": int(joined.shape[0]),
            "stamps_sorted": stamps == sorted(stamps)}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))

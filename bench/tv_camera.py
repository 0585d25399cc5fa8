"""What the TV's own camera and microphone cost: CPU of one `tvapp tv` in the 6-tile call of bench/tv_pipeline.py
with and without publishing its camera (640x480@30, VP8) and microphone (Opus), as a share of one core.

Setup, reused from bench/tv_pipeline.py: a real `tvapp serve` holding a room with 5 real `tvapp bot` processes
(640x480@30 pattern + a tone each), the TV at 1920x1080, `tv.fps = 30`, SDL dummy screen and disk audio.
Baseline, same run: that TV exactly as tv_pipeline runs it (no camera, no microphone). Then the same TV with
`[tv] camera` = an MJPEG 640x480@30 file (read through the same av capture class as a V4L2 device, decoded like
an MJPEG USB camera's frames) and `[tv] microphone` = SDL's disk capture of a speech-like file: it captures,
shows the self-view, encodes and sends both (an SDK participant subscribes to its camera: a video nobody views
is paused by the server before the encoder). Each TV is measured once it shows every bot's video and, publishing,
once the server lists its camera (not paused) and microphone: no fixed warm-up. The two TVs run one after the
other, never together; the difference is what publishing costs. Goal (issue 15, with echo cancellation, which is not measured here):
added <= 0.15 of a core.

Phone-camera glass to glass (issue 15 goal p95 <= 150 ms): `--phone-g2g` measures that instead, a paired phone's
stamped camera through the TV (forwarded without re-encoding) and the SFU to a subscriber's decoder, against the
same source published straight to the SFU (bench/phone_g2g.py says how).

Run: python -m bench.tv_camera [--quick] [--seconds S] [--phone-g2g]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import emit, parser, running_server
from bench.tv_pipeline import SERVER_ENV, STREAMS, measure
from tvapp.client.room import Room
from tvapp.testing.tv import BotProcess, tv_env

GOAL_ADDED_CORE_SHARE = 0.15


def camera_file(path: Path, seconds: int) -> Path:
    """Write an MJPEG 640x480@30 clip (a moving test pattern), like a USB camera's MJPEG stream."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30",
                    "-t", str(seconds), "-c:v", "mjpeg", "-q:v", "5", str(path)], check=True, timeout=120)
    return path


def mic_file(path: Path, seconds: int) -> Path:
    """Write raw s16 mono 48 kHz speech-like bursts for SDL's disk capture."""
    t = np.arange(48000 * seconds) / 48000
    voice = np.sin(2 * np.pi * 220 * t) * np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 0.5 * 9000
    voice.astype(np.int16).tofile(path)
    return path


def sidecar(proc: subprocess.Popen[bytes], shots: Path) -> tuple[float, dict[str, Any]]:
    """Ask the TV for a screenshot (SIGUSR1) and return (when, its sidecar); RuntimeError if it writes none."""
    path = shots / "latest.json"
    deadline = time.monotonic() + 10
    while not path.exists():  # the first frame's screenshot: the TV is up and handles SIGUSR1 (before, it kills)
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the TV showed no first frame")
        time.sleep(0.05)
    seq = json.loads(path.read_text())["seq"]
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if data["seq"] > seq:
                return time.monotonic(), data
        time.sleep(0.05)
    raise RuntimeError("the TV wrote no screenshot")


def frames_read(proc: subprocess.Popen[bytes], shots: Path) -> tuple[float, int]:
    """Return (when, camera frames the TV read so far) from a fresh screenshot sidecar."""
    when, data = sidecar(proc, shots)
    return when, int((data.get("local") or {}).get("camera_frames_read", 0))


class CameraViewer:
    """An SDK participant subscribed to one participant's video only, on its own asyncio thread: someone views the
    TV's camera, so the server does not pause it (dynacast pauses a video nobody views, before the encoder) and the
    bench measures it captured and encoded."""

    def __init__(self, url: str, token: str, identity: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="camera-viewer", daemon=True)
        self._thread.start()
        self._room: Room | None = None
        self._future = asyncio.run_coroutine_threadsafe(self._watch(url, token, identity), self._loop)

    async def _watch(self, url: str, token: str, identity: str) -> None:
        self._room = room = await Room.connect(url, token, auto_subscribe=False)
        while True:
            sids = [pub.sid for p in room.participants.values() if p.identity == identity
                    for pub in p.tracks.values() if pub.kind == "video"]
            if sids:
                await room.subscribe(sids[0])
                return
            await asyncio.sleep(0.1)

    def close(self) -> None:
        """Leave the room and stop the thread."""
        async def leave() -> None:
            self._future.cancel()
            if self._room is not None:
                await self._room.disconnect()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(leave(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def published(srv: Any, name: str) -> tuple[list[str], bool]:
    """Return (the kinds of the unmuted tracks participant `name` publishes, whether its video is paused by the
    server), as the server's REST API lists them."""
    answer = srv.http.get("/v1/rooms/pipe/participants")
    answer.raise_for_status()
    tracks = [t for p in answer.json() if p["identity"] == name for t in p.get("tracks", []) if not t.get("muted")]
    paused = any((t.get("constraints") or {}).get("paused") for t in tracks if t["kind"] == "video")
    return sorted(t["kind"] for t in tracks), paused


def wait_ready(srv: Any, proc: subprocess.Popen[bytes], shots: Path, name: str, publishing: bool,
               timeout: float = 60.0) -> None:
    """Wait (instead of a fixed warm-up) until the TV shows every bot's video and, when it publishes, until the
    server lists its camera (not paused: viewed) and microphone and the TV has read camera frames."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the TV exited with {proc.returncode}")
        ready = False
        with contextlib.suppress(RuntimeError):
            data = sidecar(proc, shots)[1]
            shown = sum(1 for tile in data.get("tiles", []) if tile.get("video_rect"))
            read = int((data.get("local") or {}).get("camera_frames_read", 0))
            ready = shown >= STREAMS and (not publishing or (read > 0 and published(srv, name) == (["audio", "video"], False)))
        if ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not ready within {timeout:g} s (bots' video shown, own tracks published)")
        time.sleep(0.2)


def run_tv(srv: Any, work: Path, name: str, extra_env: dict[str, str],
           seconds: float) -> tuple[float, list[str], float]:
    """Run one TV in the room; return its CPU share over the measured window, the kinds it published then, and
    the camera frames it read per second in that window."""
    token = srv.token("pipe", name)["access_token"]
    env = tv_env(work, {"TVAPP_TV_FPS": "30", **extra_env})
    shots = work / f"shots-{name}"
    proc = subprocess.Popen([sys.executable, "-m", "tvapp", "tv", "--server", srv.url, "--token", token,
                             "--size", "1920x1080", "--screenshots", str(shots), "--screenshot-interval", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publishing = "TVAPP_TV_CAMERA" in extra_env
    viewer = CameraViewer(srv.url, srv.token("pipe", f"viewer-{name}")["access_token"], name) if publishing else None
    try:
        wait_ready(srv, proc, shots, name, publishing)
        t0, read0 = frames_read(proc, shots)
        share = measure(proc, 0.0, seconds)
        t1, read1 = frames_read(proc, shots)
        kinds, paused = published(srv, name)
        if paused:
            raise RuntimeError(f"{name}'s camera was paused (nobody viewing it) while measured")
        return share, kinds, (read1 - read0) / (t1 - t0)
    finally:
        if viewer is not None:
            viewer.close()
        proc.terminate()
        proc.wait(20)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="measured seconds per TV (default 20, quick 4)")
    p.add_argument("--phone-g2g", action="store_true", help="measure phone-camera glass to glass instead")
    args = p.parse_args()
    if args.phone_g2g:
        from bench.phone_g2g import measure as phone_g2g

        emit("tv_camera", phone_g2g(rounds=1 if args.quick else 2, warmup=1.0 if args.quick else 2.0,
                                    seconds=args.seconds or (3.0 if args.quick else 10.0)))
        return
    seconds = args.seconds or (4.0 if args.quick else 20.0)
    length = int(seconds + 60)
    with running_server(SERVER_ENV) as srv, tempfile.TemporaryDirectory(prefix="tvapp-bench-camera-") as tmp:
        work = Path(tmp)
        clip, mic = camera_file(work / "camera.mjpeg.avi", length), mic_file(work / "mic.raw", length)
        srv.http.post("/v1/rooms", json={"name": "pipe", "max_participants": STREAMS + 3}).raise_for_status()
        bots = [BotProcess(work, f"bot-{i}", ["--server", srv.url, "--token", srv.token("pipe", f"bot-{i}")["access_token"],
                                               "--video", "pattern:640x480@30", "--audio", f"tone:{300 + 110 * i}"])
                for i in range(STREAMS)]
        try:
            for b in bots:
                b.wait_published(2)
            baseline, plain_kinds, _ = run_tv(srv, work, "tv-plain", {}, seconds)
            publishing, kinds, camera_fps = run_tv(srv, work, "tv-camera", {"TVAPP_TV_CAMERA": str(clip), "TVAPP_TV_MICROPHONE": "auto",
                                                         "SDL_DISKAUDIOFILEIN": str(mic)}, seconds)
        finally:
            for b in bots:
                b.stop()
    if plain_kinds or kinds != ["audio", "video"]:
        raise SystemExit(f"the TVs did not publish as meant: baseline {plain_kinds}, camera TV {kinds}")
    emit("tv_camera", {
        "streams_received": STREAMS, "published": "camera 640x480@30 VP8 (MJPEG source) + microphone Opus",
        "screen": "1920x1080@30", "seconds": seconds,
        "tv_baseline_core_share": round(baseline, 3), "tv_publishing_core_share": round(publishing, 3),
        "added_core_share": round(publishing - baseline, 3), "camera_fps_read": round(camera_fps, 1), "goal_added_core_share": GOAL_ADDED_CORE_SHARE,
    })


if __name__ == "__main__":
    main()

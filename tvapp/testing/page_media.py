"""What a web page shows and plays, measured in the page itself; works in Chromium and Firefox pages alike.

Video: the frames a <video> element presents, counted with requestVideoFrameCallback (getVideoPlaybackQuality is
reported too, but Firefox leaves it at 0 for a MediaStream source). Audio: the level (0..1, RMS) an <audio>
element plays, read as the decoder's audioLevel of the peer connection's inbound stream for that element's mid
(a Web Audio analyser cannot do it on a test machine: with no sound device Firefox keeps every AudioContext
suspended). Pages are anything with `evaluate` (tvapp.testing.browser.ScriptPage).
"""

from __future__ import annotations

import json
from typing import Any

from tvapp.testing.browser import ScriptPage, wait_for_js

AUDIBLE_LEVEL = 0.02  # of full scale: test tones are ~0.2 RMS; silence and comfort noise are far below

_VIDEO_FRAMES_JS = """(selector) => {
  const video = document.querySelector(selector);
  if (!video || !video.srcObject) return null;
  if (!video.tvappFrames) {
    video.tvappFrames = {presented: 0};
    const tick = () => { video.tvappFrames.presented += 1; video.requestVideoFrameCallback(tick); };
    video.requestVideoFrameCallback(tick);
  }
  const quality = video.getVideoPlaybackQuality();
  return {presented: video.tvappFrames.presented, total: quality.totalVideoFrames, width: video.videoWidth,
          height: video.videoHeight, paused: video.paused};
}"""

_AUDIO_LEVEL_JS = """async ([selector, pc]) => {
  const audio = document.querySelector(selector);
  if (!audio || !audio.srcObject || !pc) return null;
  const track = audio.srcObject.getAudioTracks()[0];
  let level = null, energy = null;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio" && s.mid === audio.dataset.mid) {
      level = s.audioLevel ?? null;
      energy = s.totalAudioEnergy ?? null;
    }
  });
  return {level, energy, paused: audio.paused, track: track ? track.readyState : null};
}"""


def camera_size(width: int, height: int) -> bool:
    """Return whether a frame size is a browser's fake camera: 640x480, or 4:3 scaled down by a busy encoder."""
    return 0 < width <= 640 and width * 3 == height * 4


def video_frames(page: ScriptPage, selector: str) -> dict[str, Any] | None:
    """Return {presented, total, width, height, paused} of the <video> at `selector` (None without a stream).

    The first call starts counting presented frames; later calls read the count.
    """
    value: dict[str, Any] | None = page.evaluate(f"() => ({_VIDEO_FRAMES_JS})({json.dumps(selector)})")
    return value


def audio_level(page: ScriptPage, selector: str, pc_expression: str = "window.tvapp.pc") -> dict[str, Any] | None:
    """Return {level, energy, paused, track} of the <audio> at `selector` (its data-mid names its transceiver)."""
    value: dict[str, Any] | None = page.evaluate(
        f"() => ({_AUDIO_LEVEL_JS})([{json.dumps(selector)}, {pc_expression}])")
    return value


def wait_for_video(page: ScriptPage, selector: str, width: int | None = None, frames: int = 20,
                   timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the <video> at `selector` is `width` wide (None: a camera_size) and presents `frames` more."""
    first = wait_for_js(page, f"() => ({_VIDEO_FRAMES_JS})({json.dumps(selector)})",
                        lambda v: v and (v["width"] == width if width else camera_size(v["width"], v["height"])),
                        timeout, f"{selector} showing video {width or 'of a camera'} wide")
    last: dict[str, Any] = wait_for_js(page, f"() => ({_VIDEO_FRAMES_JS})({json.dumps(selector)})",
                                       lambda v: v["presented"] >= first["presented"] + frames and not v["paused"],
                                       timeout, f"{selector} to present {frames} frames")
    return last


def wait_for_audible(page: ScriptPage, selector: str, pc_expression: str = "window.tvapp.pc",
                     timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the <audio> at `selector` plays, live, above AUDIBLE_LEVEL; return the measurement."""
    expression = f"() => ({_AUDIO_LEVEL_JS})([{json.dumps(selector)}, {pc_expression}])"
    level: dict[str, Any] = wait_for_js(
        page, expression,
        lambda v: v and (v["level"] or 0) > AUDIBLE_LEVEL and not v["paused"] and v["track"] == "live",
        timeout, f"{selector} to be audible")
    return level

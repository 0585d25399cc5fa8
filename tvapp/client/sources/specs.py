"""The bot's source specs: "pattern:640x480@30", "tone:440", "camera", "mic", "none" or a media file path."""

from __future__ import annotations

import math
import os

from aiortc import MediaStreamTrack

from tvapp.client.sources.common import SourceError, TrackFactory
from tvapp.client.sources.devices import camera_track, microphone_track
from tvapp.client.sources.files import FileTracks, open_container
from tvapp.client.sources.synthetic import TestPatternTrack, ToneTrack, check_pattern_format, check_tone


def parse_video_spec(spec: str, color: tuple[int, int, int] | None = None) -> TrackFactory | None:
    """Turn a bot's video spec into a track factory, or None for "none".

    Specs: "pattern", "pattern:WIDTHxHEIGHT[@FPS]", "camera[:DEVICE]", "none", or a media file path.
    `color` makes a pattern one solid colour instead of colour bars.
    """
    if spec == "none":
        return None
    if spec == "pattern" or spec.startswith("pattern:"):
        width, height, fps = _parse_pattern_format(spec)
        check_pattern_format(width, height, fps)
        return lambda: TestPatternTrack(width, height, fps, color)
    if spec == "camera" or spec.startswith("camera:"):
        device = spec.partition(":")[2] or "/dev/video0"
        return lambda: camera_track(device)
    return _file_factory(spec, "video", "'pattern', 'pattern:WxH@FPS', 'camera[:DEVICE]', 'none'")


def parse_audio_spec(spec: str) -> TrackFactory | None:
    """Turn a bot's audio spec into a track factory, or None for "none".

    Specs: "tone", "tone:HZ", "mic[:DEVICE]", "none", or a media file path.
    """
    if spec == "none":
        return None
    if spec == "tone" or spec.startswith("tone:"):
        text = spec.partition(":")[2] or "440"
        try:
            hz = float(text)
        except ValueError:
            raise SourceError(f"audio spec {spec!r}: {text!r} is not a frequency in Hz") from None
        if not math.isfinite(hz):
            raise SourceError(f"audio spec {spec!r}: {text!r} is not a frequency in Hz")
        check_tone(hz)
        return lambda: ToneTrack(hz)
    if spec == "mic" or spec.startswith("mic:"):
        device = spec.partition(":")[2] or "default"
        return lambda: microphone_track(device)
    return _file_factory(spec, "audio", "'tone', 'tone:HZ', 'mic[:DEVICE]', 'none'")


def _parse_pattern_format(spec: str) -> tuple[int, int, float]:
    text = spec.partition(":")[2]
    if not text:
        return 640, 480, 30.0
    size, _, rate = text.partition("@")
    try:
        width_text, height_text = size.lower().split("x")
        width, height = int(width_text), int(height_text)
        fps = float(rate) if rate else 30.0
    except ValueError:
        raise SourceError(f"video spec {spec!r}: expected pattern:WIDTHxHEIGHT[@FPS], e.g. pattern:640x480@30") \
            from None
    return width, height, fps


def _file_factory(spec: str, kind: str, alternatives: str) -> TrackFactory:
    if not spec:
        raise SourceError(f"empty {kind} spec: expected {alternatives} or a media file")
    if not os.path.isfile(spec):
        raise SourceError(f"{kind} spec {spec!r} is not {alternatives} nor an existing media file")
    container = open_container(spec)
    try:
        if not any(stream.type == kind for stream in container.streams):
            raise SourceError(f"media file {spec} has no {kind} stream")
    finally:
        container.close()

    def factory() -> MediaStreamTrack:
        tracks = FileTracks(spec)
        track = tracks.audio if kind == "audio" else tracks.video
        other = tracks.video if kind == "audio" else tracks.audio
        if other is not None:
            other.stop()
        if track is None:
            raise SourceError(f"media file {spec} has no {kind} stream")
        return track

    return factory

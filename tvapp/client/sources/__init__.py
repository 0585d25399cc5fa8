"""Local media sources as aiortc tracks: a stamped test pattern, a tone, a looping file, camera and microphone.

Every track here returns raw av frames from recv(); video is paced on the monotonic clock with pts in
1/90000, audio in 20 ms frames with pts counted in samples. The bot CLI picks sources with
parse_video_spec / parse_audio_spec ("pattern", "tone:440", "none", a file path, ...).

One module per kind of source: `synthetic` (pattern, tone, colours), `files`, `devices`, `specs` (the bot's
strings), and `common` (clock rates, pacing, SourceError). Import from here: ``from tvapp.client.sources import
TestPatternTrack``.
"""

from tvapp.client.sources.common import (
    AUDIO_FRAME_SECONDS,
    FILE_AUDIO_RATE,
    MAX_LAG_SECONDS,
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    SourceError,
    TrackFactory,
)
from tvapp.client.sources.devices import (
    camera_track,
    capture_track,
    has_input_format,
    list_cameras,
    microphone_track,
    open_camera,
)
from tvapp.client.sources.files import FileTracks
from tvapp.client.sources.specs import parse_audio_spec, parse_video_spec
from tvapp.client.sources.synthetic import (
    TestPatternTrack,
    ToneTrack,
    check_pattern_format,
    check_tone,
    parse_color,
    rgb_to_yuv,
)

__all__ = [
    "AUDIO_FRAME_SECONDS", "FILE_AUDIO_RATE", "MAX_LAG_SECONDS", "VIDEO_CLOCK_RATE", "VIDEO_TIME_BASE", "FileTracks",
    "SourceError", "TestPatternTrack", "ToneTrack", "TrackFactory", "camera_track", "capture_track", "check_pattern_format",
    "check_tone", "has_input_format", "list_cameras", "microphone_track", "open_camera", "parse_audio_spec", "parse_color", "parse_video_spec", "rgb_to_yuv",
]

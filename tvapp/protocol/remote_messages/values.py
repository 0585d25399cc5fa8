"""Remote protocol v1's shared value types: the records (device, participant, playback, known server, error) in
the TV's `state` and `devices` messages.
"""


import dataclasses

from tvapp.protocol import fields as f
from tvapp.protocol.remote_messages.limits import (
    Content,
    Flag,
    Id,
    Name,
    OptionalPosition,
    OptionalTimestamp,
    Position,
    ServerFingerprint,
    ServerUrl,
    Text,
    Timestamp,
    Title,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceInfo(f.Record):
    """A paired phone, as the remotes list it; times are seconds since 1970."""

    device_id: Id
    name: Name = ""
    paired_at: Timestamp
    last_seen: OptionalTimestamp = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantState(f.Record):
    """One participant of the TV's room, as the remote shows it."""

    sid: Id
    identity: Id
    name: Name = ""
    speaking: Flag = False
    mic_muted: Flag = False
    camera_off: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlaybackInfo(f.Record):
    """The shared content of the TV's room, as the remote shows it.

    ``position`` is seconds into the content when the state was made; while ``playing`` and not ``waiting`` (for a
    stalled screen) it moves on at normal speed from there. ``content`` is "" when nothing is loaded.

    A live stream (``live``): ``position`` is how many seconds the picture is behind the live edge (it stays put
    while playing and grows while paused), ``delay`` the room's live delay (where "live" brings it back to).
    """

    content: Content = ""
    title: Title = ""
    playing: Flag = False
    position: Position = 0.0
    duration: OptionalPosition = None
    waiting: Flag = False
    live: Flag = False
    delay: OptionalPosition = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class KnownServer(f.Record):
    """A core the TV joined a room on before: its base URL, name, pinned fingerprint (https) and when last used."""

    url: ServerUrl
    name: Name = ""
    fingerprint: ServerFingerprint = None
    last_used: Timestamp


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorInfo(f.Record):
    """What the TV's error screen says."""

    title: Text
    message: Text = ""

"""Remote protocol v1's TV -> phone messages: ``authed``, the ``ok`` / ``error`` answers, ``devices``, the pushed
``state`` and the phone-camera answers.
"""

import dataclasses
from typing import Annotated, ClassVar

from tvapp.protocol import fields as f
from tvapp.protocol.remote_messages.limits import (
    STOP_REASONS,
    CommandId,
    DeviceState,
    Flag,
    Id,
    Layout,
    Name,
    OptionalId,
    OptionalName,
    OptionalServerUrl,
    Sdp,
    Status,
    StopReason,
    Text,
    Volume,
)
from tvapp.protocol.remote_messages.values import DeviceInfo, ErrorInfo, KnownServer, ParticipantState, PlaybackInfo


@dataclasses.dataclass(frozen=True, kw_only=True)
class Authed(f.Message):
    """Tell the phone its credential is accepted, which paired device it is, and the TV's name."""

    TYPE: ClassVar[str] = "authed"
    device_id: Id
    tv_name: Name


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ok(f.Message):
    """Tell the phone the command with this id is done."""

    TYPE: ClassVar[str] = "ok"
    id: CommandId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Error(f.Message):
    """Report a refused command (``id`` set when known) or a broken message; ``code`` is stable, ``message`` human."""

    TYPE: ClassVar[str] = "error"
    id: CommandId = None
    code: Id
    message: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Devices(f.Message):
    """List the paired phones; ``id`` is the list_devices command's."""

    TYPE: ClassVar[str] = "devices"
    id: CommandId = None
    devices: Annotated[tuple[DeviceInfo, ...], f.Array(DeviceInfo)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class State(f.Message):
    """The TV's whole state, pushed to every remote on each change; ``active_speaker`` is a participant sid.

    ``room_server`` is the base URL of the core the room lives on when that is not the TV's own (None: on this
    TV's core, or no room); ``servers`` are the other cores the TV remembers, most recently used first."""

    TYPE: ClassVar[str] = "state"
    tv_name: Name
    status: Status
    room: OptionalName = None
    invite_code: OptionalName = None
    invite_visible: Flag = False
    participants: Annotated[tuple[ParticipantState, ...], f.Array(ParticipantState)] = ()
    active_speaker: OptionalId = None
    volume: Volume
    layout: Layout
    pairing_open: Flag = False
    error: Annotated[ErrorInfo | None, f.Object(ErrorInfo, nullable=True)] = None
    playback: Annotated[PlaybackInfo | None, f.Object(PlaybackInfo, nullable=True)] = None
    room_server: OptionalServerUrl = None
    servers: Annotated[tuple[KnownServer, ...], f.Array(KnownServer)] = ()
    camera: DeviceState = "none"   # the TV's own camera: "on", "off", or "none" (it has none)
    mic: DeviceState = "none"      # the TV's own microphone, likewise


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraAnswer(f.Message):
    """The TV's WebRTC answer to a phone_camera_offer with this id (sent just before its ok)."""

    TYPE: ClassVar[str] = "phone_camera_answer"
    id: CommandId = None
    sdp: Sdp = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraStopped(f.Message):
    """This phone is no longer the TV's camera, and why (another phone took over, the TV left its room, ...)."""

    TYPE: ClassVar[str] = "phone_camera_stopped"
    reason: Annotated[StopReason, f.OneOf(STOP_REASONS)]
    message: Text = ""

"""Remote protocol v1's phone -> TV messages: `auth` (the first message) and every command a paired phone sends.

Each command has an optional ``id`` the TV's ``ok`` / ``error`` answer carries back; the registry and codec are
in __init__.py.
"""

import dataclasses
from typing import ClassVar

from tvapp.core.links import (
    InviteLink,
    LinkError,
    join_target,
    parse_code,
    parse_fingerprint,
    parse_link,
    parse_server,
)
from tvapp.protocol import fields as f
from tvapp.protocol.remote_messages.limits import (
    CONTENT_RE,
    CommandId,
    Credential,
    Flag,
    Id,
    Identity,
    InviteCode,
    Layout,
    OptionalCode,
    OptionalContent,
    OptionalFingerprint,
    OptionalLink,
    OptionalPosition,
    OptionalServerUrl,
    PlaybackAction,
    RoomName,
    Sdp,
    Title,
    Volume,
    sdp_problem,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Auth(f.Message):
    """Present the phone's device credential; the first message on every connection, and only once."""

    TYPE: ClassVar[str] = "auth"
    credential: Credential = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Command(f.Message):
    """A phone's command: the TV answers it with ok or error carrying the same optional client `id`."""

    id: CommandId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatusCommand(_Command):
    """Ask for the TV's state now (sent as a state message, then ok)."""

    TYPE: ClassVar[str] = "status"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreateRoom(_Command):
    """Create a room with the TV as its host (a generated name when none is given) and show its invite code."""

    TYPE: ClassVar[str] = "create_room"
    name: RoomName = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class JoinRoom(_Command):
    """Join the room an invite code leads to."""

    TYPE: ClassVar[str] = "join"
    invite: InviteCode


@dataclasses.dataclass(frozen=True, kw_only=True)
class JoinServer(_Command):
    """Join a room on another core: by invite ``link`` ("https://core.example/?code=ABCD-EFGH#fp=sha256:..."), or by
    ``server`` (a URL or host:port) and ``invite``; ``fingerprint`` pins a self-signed https core's certificate.
    Exactly one of link or server + invite. ``target()`` is where to go, checked by tvapp.core.links."""

    TYPE: ClassVar[str] = "join_server"
    link: OptionalLink = None
    server: OptionalServerUrl = None
    invite: OptionalCode = None
    fingerprint: OptionalFingerprint = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.target()

    def target(self) -> InviteLink:
        """Return the core, code and pinned fingerprint to join with; raise invalid_value naming what is wrong."""
        if (self.link is None) == (self.server is None):
            raise f.invalid("join_server", "give either link, or server and invite")
        if self.link is not None and self.invite is not None:
            raise f.invalid("join_server.invite", "not taken with link (the link carries the code)")
        try:
            fingerprint = parse_fingerprint(self.fingerprint) if self.fingerprint is not None else None
        except LinkError as exc:
            raise f.invalid("join_server.fingerprint", str(exc)) from None
        if self.link is not None:
            try:
                found = parse_link(self.link)
            except LinkError as exc:
                raise f.invalid("join_server.link", str(exc)) from None
            if fingerprint is not None and found.fingerprint not in (None, fingerprint):
                raise f.invalid("join_server.fingerprint", "differs from the link's #fp")
            server, code, fingerprint = found.server, found.code, fingerprint or found.fingerprint
        else:
            assert self.server is not None
            if self.invite is None:
                raise f.invalid("join_server.invite", "required with server")
            try:
                server = parse_server(self.server)
            except LinkError as exc:
                raise f.invalid("join_server.server", str(exc)) from None
            try:
                code = parse_code(self.invite)
            except LinkError as exc:
                raise f.invalid("join_server.invite", str(exc)) from None
        try:
            return join_target(server, code, fingerprint)
        except LinkError as exc:
            raise f.invalid("join_server.fingerprint", str(exc)) from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class LeaveRoom(_Command):
    """Leave the room, if the TV is in one."""

    TYPE: ClassVar[str] = "leave"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetVolume(_Command):
    """Set the TV's output volume, from 0 (silent) to 1 (full)."""

    TYPE: ClassVar[str] = "set_volume"
    volume: Volume


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetLayout(_Command):
    """Set how the tiles are arranged."""

    TYPE: ClassVar[str] = "set_layout"
    layout: Layout


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShowInvite(_Command):
    """Show or hide the invite code on the TV screen."""

    TYPE: ClassVar[str] = "show_invite"
    visible: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class RemoveParticipant(_Command):
    """Remove a participant from the room (host only); the invite will not bring them back this session."""

    TYPE: ClassVar[str] = "remove_participant"
    identity: Identity


@dataclasses.dataclass(frozen=True, kw_only=True)
class MuteParticipant(_Command):
    """Mute a participant's audio on the server (host only)."""

    TYPE: ClassVar[str] = "mute_participant"
    identity: Identity


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetMic(_Command):
    """Turn the TV's own microphone on or off (off closes the capture device); refused with not_available when
    the TV has none, device_failed when it does not open."""

    TYPE: ClassVar[str] = "set_mic"
    enabled: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetCamera(_Command):
    """Turn the TV's own camera on or off (off closes the device), refused like set_mic."""

    TYPE: ClassVar[str] = "set_camera"
    enabled: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class Playback(_Command):
    """Drive the room's shared content: load (``content``, from ``position`` or 0, optional ``title``), play, pause,
    seek (to ``position``; live: seconds behind the live edge), live (back to the room's live point) or stop. The TV refuses with not_host when the room lets only its host do that."""

    TYPE: ClassVar[str] = "playback"
    action: PlaybackAction
    position: OptionalPosition = None
    content: OptionalContent = None
    title: Title = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.action == "load":
            if not self.content:
                raise f.invalid("playback.content", "required for load")
            if CONTENT_RE.fullmatch(self.content) is None:
                raise f.invalid("playback.content", "is not a media URL or an absolute path")
            return
        if self.action == "seek" and self.position is None:
            raise f.invalid("playback.position", "required for seek")
        if self.action != "seek" and self.position is not None:
            raise f.invalid("playback.position", f"not taken by {self.action}")
        if self.content is not None or self.title:
            raise f.invalid("playback.content" if self.content is not None else "playback.title",
                           "only taken by load")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListDevices(_Command):
    """Ask for the paired phones (sent as a devices message with the same id, then ok)."""

    TYPE: ClassVar[str] = "list_devices"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ForgetDevice(_Command):
    """Revoke a paired phone's credential; its open remote connections are closed."""

    TYPE: ClassVar[str] = "forget_device"
    device_id: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraOffer(_Command):
    """Offer this phone's camera and microphone to the TV (a WebRTC offer, all candidates in it); the TV answers
    with phone_camera_answer, then ok. A phone that is the camera already is replaced by this one."""

    TYPE: ClassVar[str] = "phone_camera_offer"
    sdp: Sdp = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        problem = sdp_problem(self.sdp)
        if problem is not None:
            raise f.invalid("phone_camera_offer.sdp", problem)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraMute(_Command):
    """Mute or unmute this phone's microphone as the TV's (refused with not_phone_camera when it is not the camera)."""

    TYPE: ClassVar[str] = "phone_camera_mute"
    muted: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraStop(_Command):
    """Stop being the TV's camera (ok even when this phone was not)."""

    TYPE: ClassVar[str] = "phone_camera_stop"

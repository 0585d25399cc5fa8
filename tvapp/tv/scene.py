"""What the TV shows, as plain data: the contract between the session (who is in the room) and the renderer.

The TV's session side (tvapp.tv.session, on the asyncio thread) builds a `Scene` from the room's state;
the frame loop (main thread) hands the latest Scene to `tvapp.tv.render.Renderer.draw`. A Scene is
immutable, so handing it across threads is one reference assignment. Video pixels are not in the Scene:
a tile carries a `VideoSource` (tvapp.tv.video.VideoSlot) that the renderer asks for a surface of the
size it needs, and that converts each new decoded frame at most once for that size.

No pygame here: the session builds Scenes without touching the display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tvapp.core.layout import Mode

if TYPE_CHECKING:
    import pygame


class VideoSource(Protocol):
    """Decoded video for one tile (implemented by tvapp.tv.video.VideoSlot)."""

    def frame_size(self) -> tuple[int, int] | None:
        """Return the newest frame's (width, height), or None before the first frame."""

    def surface(self, width: int, height: int) -> pygame.Surface | None:
        """Return the newest frame as a `width` x `height` surface (converted once per new frame), or None."""


PAUSED_TEXT = "Paused — weak network"  # across a tile whose video the SFU switched off (congestion)
RECONNECTING_TEXT = "Reconnecting…"  # across a reconnecting participant's tile, and in the bar for the TV itself


@dataclass(frozen=True)
class TileView:
    """One participant's tile: their camera, or the screen they share (`screen`)."""

    sid: str
    name: str
    initials: str
    video: VideoSource | None = None    # None: camera off or no video yet -> the initials card
    mic_muted: bool = False
    camera_off: bool = False
    quality: int | None = None          # network quality 0 broken .. 5 excellent (tvapp.core.quality); None: unknown
    speaking: bool = False              # the active speaker: outlined with the highlight
    reconnecting: bool = False          # its connection dropped (the server keeps its place): dimmed, "Reconnecting…"
    paused: bool = False                # its video switched off for this TV's weak downlink: dimmed, PAUSED_TEXT
    screen: bool = False                # a shared screen (its own tile, "NAME's screen"); the speaker view's big tile


@dataclass(frozen=True)
class RoomBar:
    """The strip along the top of the room screen."""

    room: str
    invite_code: str | None = None      # shown large: read from 3 m away
    participants: int = 0
    join_hint: str = ""                 # e.g. "Join at http://192.168.1.20:8800 with the code"
    join_url: str | None = None         # the "scan to join" QR code beside the invite code (with the code in it)
    fingerprint: str | None = None      # the core's self-signed certificate ("sha256:AB:CD:..."), shown to compare
    where: str = ""                     # where the room lives: "on this TV", "on core.example"
    connection: str = ""                # the TV's own link when it is not fine, e.g. "Reconnecting…" (drawn in yellow)


@dataclass(frozen=True)
class ContentView:
    """The room's shared content (watch together): its picture and a line of state."""

    video: VideoSource | None           # the player's current frame (None before the first one)
    title: str = ""
    status: str = ""                    # "" while it plays; else e.g. "Paused", "Waiting for Ann…", "Cannot play …"
    badge: str = ""                     # always shown in a corner while set: "LIVE · 6 s delay" for a live stream


@dataclass(frozen=True)
class LocalDevices:
    """The TV's own camera and microphone: "on", "off" or "none" (no such device), and the camera's self-view."""

    camera: str = "none"
    mic: str = "none"
    self_view: VideoSource | None = None  # the camera's newest frame while it is on


@dataclass(frozen=True)
class RoomScreen:
    """In a room: the tiles in their layout under the room bar (and the shared content, when loaded)."""

    bar: RoomBar
    tiles: tuple[TileView, ...] = ()
    mode: Mode = Mode.GRID              # a layout's name ("grid" too) is taken and kept as its Mode
    waiting_text: str = "Waiting for others to join"
    content: ContentView | None = None  # drawn in the layout's content area (watch, watch_full)
    local: LocalDevices = LocalDevices()  # the privacy indicator (and self-view) in a corner of the safe area

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))


@dataclass(frozen=True)
class IdleScreen:
    """Not in a room: a clock, the TV's name and how to join."""

    friendly_name: str
    clock: str                          # already formatted, e.g. "20:45"
    date: str = ""
    how_to_join: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectingScreen:
    """Joining or rejoining a room."""

    text: str


@dataclass(frozen=True)
class ErrorScreen:
    """Something is wrong; say what in words, and what to do about it."""

    title: str                          # e.g. "Invite expired"
    message: str                        # e.g. "The invite code ABCD-EFGH is no longer valid."
    hint: str = ""                      # e.g. "Ask the host for a new code."


@dataclass(frozen=True)
class PairingPanel:
    """A phone asked to pair: the one-time code and QR code, drawn as a card over whatever screen is showing."""

    code: str                           # e.g. "483920": drawn huge, in digit groups ("483 920")
    url: str                            # what the QR code encodes (it carries a one-time secret)
    seconds_left: int                   # "Code expires in 1:45"
    requester: str = ""                 # e.g. "Ann's phone wants to pair"


@dataclass(frozen=True)
class Scene:
    """Everything on screen at one moment."""

    screen: RoomScreen | IdleScreen | ConnectingScreen | ErrorScreen
    toasts: tuple[str, ...] = field(default=())
    pairing: PairingPanel | None = None

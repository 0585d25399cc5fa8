"""The words of `tvapp remote`: what `send COMMAND ARGS` means as a remote-control command, and the TV's answers
(its state, what it plays, its paired phones) as lines for people.

Only the standard library and tvapp.core.layout (pure) are imported at module level (tvapp.protocol.remote_messages
when a command is built): `tvapp --help` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from tvapp.core.layout import Mode

if TYPE_CHECKING:
    from tvapp.protocol.remote_messages import Command, DeviceInfo, PlaybackInfo, State

SEND_COMMANDS = {
    "status": "print the TV's state",
    "create-room": "[NAME]  create a room with the TV as host and show its invite code",
    "join": "CODE | LINK | SERVER CODE  join a room: a code on the TV's core, or an invite link "
            "(https://core.example/?code=…) or a server (URL or host:port) and code on another core "
            "(--fingerprint FP)",
    "leave": "leave the room",
    "volume": "V  set the volume, 0 to 1",
    "layout": f"{'|'.join(Mode)}  arrange the tiles (watch_full: the content full screen)",
    "invite": "show|hide  show or hide the invite code on the TV",
    "remove": "IDENTITY  remove a participant (host only)",
    "mute": "IDENTITY  mute a participant's audio (host only)",
    "mic": "on|off  the TV's microphone",
    "camera": "on|off  the TV's camera",
    "load": "URL_OR_PATH  play this in the room: a media URL (a live .m3u8 stream too), or an absolute path on the "
            "TV (--title T)",
    "play": "play the room's content",
    "pause": "pause the room's content",
    "seek": "SECONDS  jump to this point of the content (seconds, or M:SS, H:MM:SS; live: this far behind the "
            "live edge)",
    "live": "a live stream: back to the room's live point",
    "stop": "stop the room's content",
    "devices": "list the paired phones",
    "forget-device": "DEVICE_ID  revoke a paired phone",
}

class UsageError(Exception):
    """Bad input on the command line (exit status 2)."""



def _on_off(word: str, what: str) -> bool:
    if word in ("on", "off"):
        return word == "on"
    raise UsageError(f"{what} takes on or off, not {word!r}")


def parse_position(text: str) -> float:
    """Return the seconds that `text` names: "90", "90.5", "1:30" or "1:02:03"; raise UsageError otherwise."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise UsageError(f"seek takes seconds (90) or M:SS / H:MM:SS (1:30), not {text!r}")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise UsageError(f"seek takes seconds (90) or M:SS / H:MM:SS (1:30), not {text!r}") from None
    if any(not (math.isfinite(n) and n >= 0) for n in numbers) or any(n >= 60 for n in numbers[1:]):
        raise UsageError(f"seek takes a point in the content from 0 on, not {text!r}")
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def build_command(name: str, args: list[str], title: str | None = None, fingerprint: str | None = None) -> Command:
    """Return the protocol command for `send NAME ARGS [--title T] [--fingerprint FP]`; UsageError for bad input."""
    from tvapp.protocol.remote_messages import RemoteProtocolError, parse_phone_message

    arity = {"status": (0, 0), "create-room": (0, 1), "join": (1, 2), "leave": (0, 0), "volume": (1, 1),
             "layout": (1, 1), "invite": (1, 1), "remove": (1, 1), "mute": (1, 1), "mic": (1, 1),
             "camera": (1, 1), "load": (1, 1), "play": (0, 0), "pause": (0, 0), "seek": (1, 1), "stop": (0, 0),
             "live": (0, 0),
             "devices": (0, 0), "forget-device": (1, 1)}
    if name not in arity:
        raise UsageError(f"unknown command {name!r}; one of: {', '.join(SEND_COMMANDS)}")
    low, high = arity[name]
    if not low <= len(args) <= high:
        raise UsageError(f"usage: send {name} {SEND_COMMANDS[name].split('  ')[0] if high else ''}".rstrip())
    if title is not None and name != "load":
        raise UsageError("--title goes with load only")
    if fingerprint is not None and name != "join":
        raise UsageError("--fingerprint goes with join only")
    msg: dict[str, Any]
    if name == "status":
        msg = {"type": "status"}
    elif name == "create-room":
        msg = {"type": "create_room", "name": args[0] if args else None}
    elif name == "join" and len(args) == 2:
        msg = {"type": "join_server", "server": args[0], "invite": args[1], "fingerprint": fingerprint}
    elif name == "join" and (fingerprint is not None or any(mark in args[0] for mark in ":/?.")):
        msg = {"type": "join_server", "link": args[0], "fingerprint": fingerprint}
    elif name == "join":
        msg = {"type": "join", "invite": args[0]}
    elif name == "leave":
        msg = {"type": "leave"}
    elif name == "volume":
        try:
            volume = float(args[0])
        except ValueError:
            raise UsageError(f"volume is a number from 0 to 1, not {args[0]!r}") from None
        if not 0.0 <= volume <= 1.0:
            raise UsageError(f"volume is from 0 to 1, not {args[0]}")
        msg = {"type": "set_volume", "volume": volume}
    elif name == "layout":
        msg = {"type": "set_layout", "layout": args[0]}
    elif name == "invite":
        if args[0] not in ("show", "hide"):
            raise UsageError(f"invite takes show or hide, not {args[0]!r}")
        msg = {"type": "show_invite", "visible": args[0] == "show"}
    elif name in ("remove", "mute"):
        msg = {"type": "remove_participant" if name == "remove" else "mute_participant", "identity": args[0]}
    elif name in ("mic", "camera"):
        msg = {"type": "set_mic" if name == "mic" else "set_camera", "enabled": _on_off(args[0], name)}
    elif name in ("play", "pause", "stop", "live"):
        msg = {"type": "playback", "action": name}
    elif name == "seek":
        msg = {"type": "playback", "action": "seek", "position": parse_position(args[0])}
    elif name == "load":
        if not args[0].startswith("/") and "://" not in args[0]:
            raise UsageError(f"load takes a media URL or an absolute path on the TV, not {args[0]!r}")
        msg = {"type": "playback", "action": "load", "content": args[0], "title": title or ""}
    elif name == "devices":
        msg = {"type": "list_devices"}
    else:
        msg = {"type": "forget_device", "device_id": args[0]}
    try:
        command = parse_phone_message(json.dumps({**msg, "v": 1}))
    except RemoteProtocolError as exc:
        detail = exc.message.removeprefix(f"{msg['type']}.").removeprefix("message.")
        raise UsageError(f"{name}: {detail}") from None
    from tvapp.protocol.remote_messages import Auth

    assert not isinstance(command, Auth)
    return command


def describe_state(state: State) -> str:
    """Return the TV's state as a few lines for people."""
    lines = [f"{state.tv_name}: {state.status.replace('_', ' ')}"]
    if state.room is not None:
        invite = state.invite_code or "none"
        lines.append(f"  room {state.room} {where(state)}, invite {invite} "
                     f"({'shown' if state.invite_visible else 'hidden'})")
    for p in state.participants:
        marks = [m for m, on in (("speaking", p.sid == state.active_speaker or p.speaking),
                                 ("mic off", p.mic_muted), ("camera off", p.camera_off)) if on]
        shown = f"{p.name} ({p.identity})" if p.name and p.name != p.identity else p.identity
        lines.append(f"  - {shown}" + (f"  [{', '.join(marks)}]" if marks else ""))
    if state.playback is not None and state.playback.content:
        lines.append(f"  {describe_playback(state.playback)}")
    lines.append(f"  volume {state.volume:.2f}, layout {state.layout}, "
                 f"pairing {'open' if state.pairing_open else 'closed'}")
    if state.camera != "none" or state.mic != "none":
        lines.append(f"  the TV's camera {state.camera}, microphone {state.mic}")
    if state.error is not None:
        lines.append(f"  error: {state.error.title}" + (f": {state.error.message}" if state.error.message else ""))
    if state.servers:
        lines.append("  other servers (tvapp remote send join SERVER CODE):")
        for known in state.servers:
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(known.last_used))
            pinned = f"  pinned {known.fingerprint[:23]}…" if known.fingerprint else ""
            lines.append(f"  - {known.url}  ({known.name}, last used {used}){pinned}")
    return "\n".join(lines)


def where(state: State) -> str:
    """Return where the TV's room lives: "on this TV" or "on core.example"."""
    from tvapp.core.links import server_label

    return f"on {server_label(state.room_server)}" if state.room_server else "on this TV"


def state_line(state: State) -> str:
    """Return the TV's state as one line for people."""
    parts = [state.status.replace("_", " ")]
    if state.room is not None:
        parts.append(f"room {state.room} {where(state)}")
        if state.invite_code:
            parts.append(f"invite {state.invite_code}{'' if state.invite_visible else ' (hidden)'}")
    if state.participants:
        names = [p.identity + ("*" if p.sid == state.active_speaker else "") for p in state.participants]
        parts.append(f"{len(names)} in room: {' '.join(names)}")
    if state.playback is not None and state.playback.content:
        parts.append(describe_playback(state.playback))
    parts.append(f"volume {state.volume:.2f}")
    parts.append(f"layout {state.layout}")
    if state.pairing_open:
        parts.append("pairing open")
    if state.error is not None:
        parts.append(f"error: {state.error.title}")
    return f"{time.strftime('%H:%M:%S')} {state.tv_name}: " + ", ".join(parts)


def clock_text(seconds: float) -> str:
    """Return a position as M:SS, or H:MM:SS from an hour on."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe_playback(playback: PlaybackInfo) -> str:
    """Return what the room plays as a few words: state, title (or content), position of duration."""
    what = "waiting for a screen" if playback.waiting else "playing" if playback.playing else "paused"
    if playback.live:
        delay = playback.delay or 0.0
        where = f"LIVE, {delay:.0f} s delay"
        if playback.position > delay + 1.0:
            where += f", {clock_text(playback.position - delay)} behind live"
        return f"{what} {playback.title or playback.content}: {where}"
    where = clock_text(playback.position)
    if playback.duration is not None:
        where += f" of {clock_text(playback.duration)}"
    return f"{what} {playback.title or playback.content} at {where}"


def describe_devices(devices: tuple[DeviceInfo, ...] | list[DeviceInfo], own: str) -> str:
    """Return the paired phones, one per line, this phone marked."""
    if not devices:
        return "no paired phones"
    lines = []
    for d in devices:
        paired = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.paired_at))
        seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.last_seen)) if d.last_seen else "never"
        mine = "  (this phone)" if d.device_id == own else ""
        lines.append(f"{d.device_id}  {d.name or '(no name)'}  paired {paired}, last seen {seen}{mine}")
    return "\n".join(lines)

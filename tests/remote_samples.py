"""The remote-control messages the protocol tests share: samples of every type, violations and fuzzing strategies."""

import json
from typing import Any

from hypothesis import strategies as st

from tvapp.protocol.remote_messages import (
    BAD_MESSAGE,
    INVALID_VALUE,
    MAX_MESSAGE_BYTES,
    MAX_SDP_BYTES,
    PHONE_MESSAGE_TYPES,
    TOO_BIG,
    UNKNOWN_COMMAND,
    UNSUPPORTED_VERSION,
    Auth,
    Authed,
    CreateRoom,
    DeviceInfo,
    Devices,
    Error,
    ErrorInfo,
    ForgetDevice,
    JoinRoom,
    JoinServer,
    KnownServer,
    LeaveRoom,
    ListDevices,
    MuteParticipant,
    Ok,
    ParticipantState,
    PhoneCameraAnswer,
    PhoneCameraMute,
    PhoneCameraOffer,
    PhoneCameraStop,
    PhoneCameraStopped,
    PhoneMessage,
    Playback,
    PlaybackInfo,
    RemoveParticipant,
    SetCamera,
    SetLayout,
    SetMic,
    SetVolume,
    ShowInvite,
    State,
    StatusCommand,
    TvMessage,
    encode,
)

CREDENTIAL = "dc_0123456789abcdefSECRETCREDENTIALabcdefghijklmnopqrstuvwxyz"

ALICE = ParticipantState(sid="PA_a", identity="alice", name="Alice", speaking=True, mic_muted=False)
BOB = ParticipantState(sid="PA_b", identity="bob@phone", camera_off=True, mic_muted=True)
PHONE = DeviceInfo(device_id="DV_1", name="Ann's phone", paired_at=1700000000.5, last_seen=1700000300.0)
NEW_PHONE = DeviceInfo(device_id="DV_2", paired_at=1700000400.0)
IN_ROOM = State(tv_name="Living room", status="in_room", room="movie-night", invite_code="ABCD-EFGH",
                invite_visible=True, participants=(ALICE, BOB), active_speaker="PA_a", volume=0.8, layout="speaker",
                pairing_open=False)  # fmt: skip
IDLE = State(tv_name="Living room", status="idle", volume=1, layout="grid", pairing_open=True)
FILM = PlaybackInfo(content="http://192.168.1.20:7880/media/film.mp4", title="The film", playing=True,
                    position=754.25, duration=5400.0)
WATCHING = State(tv_name="Living room", status="in_room", room="movie-night", volume=0.8, layout="watch",
                 participants=(ALICE,), playback=FILM)

SDP = ("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
       "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n")



def sdp_of(size: int) -> str:
    """Return a session description of exactly `size` bytes (lines of 100 bytes, CRLF)."""
    head = "v=0\r\n"
    lines, rest = divmod(size - len(head), 100)
    return head + ("a=" + "x" * 96 + "\r\n") * lines + "x" * rest


PHONE_SAMPLES: list[PhoneMessage] = [
    Auth(credential=CREDENTIAL),
    StatusCommand(),
    StatusCommand(id="s-1"),
    CreateRoom(id="c1", name="movie-night"),
    CreateRoom(),
    JoinRoom(id="j", invite="abcd-efgh"),
    JoinRoom(invite="ABCDEFGH"),
    JoinServer(id="js", link="https://core.example/?code=ABCD-EFGH"),
    JoinServer(server="https://192.168.1.9:8800", invite="abcd efgh", fingerprint="sha256:" + ":".join(["AB"] * 32)),
    LeaveRoom(id="l"),
    SetVolume(id="v", volume=0.25),
    SetVolume(volume=0),
    SetVolume(volume=1.0),
    SetLayout(layout="watch"),
    SetLayout(id="x", layout="grid"),
    ShowInvite(visible=False),
    RemoveParticipant(id="r", identity="bob@phone"),
    MuteParticipant(identity="carol"),
    SetMic(enabled=True),
    SetCamera(id="cam", enabled=False),
    Playback(id="p", action="play"),
    Playback(action="pause"),
    Playback(action="stop"),
    Playback(action="seek", position=0),
    Playback(id="s", action="seek", position=754.5),
    Playback(action="load", content="/media/film.mp4"),
    Playback(id="ld", action="load", content="https://example.org/live/stream.m3u8", position=30, title="Live"),
    ListDevices(id="d"),
    ForgetDevice(id="f", device_id="DV_2"),
    PhoneCameraOffer(id="o", sdp=SDP),
    PhoneCameraOffer(sdp=sdp_of(MAX_SDP_BYTES)),  # the limit to the byte
    PhoneCameraMute(id="m", muted=True),
    PhoneCameraStop(),
]
TV_SAMPLES: list[TvMessage] = [
    Authed(device_id="DV_1", tv_name="Living room"),
    Ok(id="v"),
    Ok(),
    Error(id="r", code="not_host", message="only the host can remove participants"),
    Error(code=BAD_MESSAGE),
    Devices(id="d", devices=(PHONE, NEW_PHONE)),
    Devices(),
    IN_ROOM,
    IDLE,
    State(tv_name="TV", status="error", volume=0.5, layout="watch",
          error=ErrorInfo(title="Invite expired", message="Ask the host for a new code.")),  # fmt: skip
    State(tv_name="TV", status="joining", room="movie-night", volume=0.0, layout="grid"),
    State(tv_name="TV", status="in_room", room="family", volume=0.5, layout="grid", room_server="https://core.example",
          servers=(KnownServer(url="https://core.example", name="core.example", last_used=1700000000.0),
                   KnownServer(url="https://192.168.1.9:8800", fingerprint="sha256:" + ":".join(["0F"] * 32),
                               last_used=1690000000.0))),
    WATCHING,
    State(tv_name="TV", status="in_room", room="r", volume=1, layout="grid",
          playback=PlaybackInfo(content="/srv/films/a.mkv", waiting=True)),  # fmt: skip
    State(tv_name="TV", status="in_room", room="r", volume=1, layout="grid", playback=PlaybackInfo()),
    PhoneCameraAnswer(id="o", sdp=SDP),
    PhoneCameraStopped(reason="replaced", message="Another phone is the TV's camera now."),
    PhoneCameraStopped(reason="connection_lost"),
]


def wire(msg: PhoneMessage | TvMessage) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(encode(msg))
    return obj


def text(obj: object) -> str:
    return json.dumps(obj)




V = {"v": 1}
# (received object or raw text, the error code, the command id the error carries back)
VIOLATIONS: list[tuple[str, object, str, str | None]] = [
    ("not json", "{", BAD_MESSAGE, None),
    ("nan", '{"type":"set_volume","v":1,"volume":NaN}', BAD_MESSAGE, None),
    ("array", [1, 2], BAD_MESSAGE, None),
    ("string", "status", BAD_MESSAGE, None),
    ("no version", {"type": "status", "id": "a"}, BAD_MESSAGE, "a"),
    ("version as text", {"type": "status", "v": "1", "id": "a"}, BAD_MESSAGE, "a"),
    ("version 2", {"type": "status", "v": 2, "id": "a"}, UNSUPPORTED_VERSION, "a"),
    ("no type", {"v": 1, "id": "a"}, BAD_MESSAGE, "a"),
    ("type not text", {"type": 5, "v": 1}, BAD_MESSAGE, None),
    ("unknown command", {"type": "reboot", **V, "id": "a"}, UNKNOWN_COMMAND, "a"),
    ("a TV message", {"type": "authed", **V, "device_id": "DV_1", "tv_name": "TV"}, UNKNOWN_COMMAND, None),
    ("id not text", {"type": "status", **V, "id": 7}, BAD_MESSAGE, None),
    ("id too long", {"type": "status", **V, "id": "i" * 65}, BAD_MESSAGE, None),
    ("id empty", {"type": "status", **V, "id": ""}, BAD_MESSAGE, None),
    ("volume missing", {"type": "set_volume", **V, "id": "a"}, BAD_MESSAGE, "a"),
    ("volume text", {"type": "set_volume", **V, "id": "a", "volume": "loud"}, BAD_MESSAGE, "a"),
    ("volume bool", {"type": "set_volume", **V, "volume": True}, BAD_MESSAGE, None),
    ("volume over 1", {"type": "set_volume", **V, "id": "a", "volume": 1.01}, INVALID_VALUE, "a"),
    ("volume negative", {"type": "set_volume", **V, "volume": -0.1}, INVALID_VALUE, None),
    ("volume huge", '{"type":"set_volume","v":1,"volume":1e400}', INVALID_VALUE, None),
    ("volume huge int", {"type": "set_volume", **V, "volume": 10**400}, INVALID_VALUE, None),
    ("layout unknown", {"type": "set_layout", **V, "id": "a", "layout": "mosaic"}, INVALID_VALUE, "a"),
    ("layout number", {"type": "set_layout", **V, "layout": 2}, BAD_MESSAGE, None),
    ("visible text", {"type": "show_invite", **V, "visible": "yes"}, BAD_MESSAGE, None),
    ("visible 1", {"type": "show_invite", **V, "visible": 1}, BAD_MESSAGE, None),
    ("enabled missing", {"type": "set_camera", **V}, BAD_MESSAGE, None),
    ("identity with space", {"type": "remove_participant", **V, "id": "a", "identity": "bob smith"}, INVALID_VALUE,
     "a"),
    ("identity too long", {"type": "mute_participant", **V, "identity": "b" * 65}, INVALID_VALUE, None),
    ("identity null", {"type": "mute_participant", **V, "identity": None}, BAD_MESSAGE, None),
    ("invite too short", {"type": "join", **V, "invite": "ABC"}, INVALID_VALUE, None),
    ("invite confusable", {"type": "join", **V, "invite": "ABCD-EFG0"}, INVALID_VALUE, None),
    ("invite number", {"type": "join", **V, "invite": 12345678}, BAD_MESSAGE, None),
    ("room name", {"type": "create_room", **V, "name": "movie night!"}, INVALID_VALUE, None),
    ("device id empty", {"type": "forget_device", **V, "device_id": ""}, BAD_MESSAGE, None),
    ("device id too long", {"type": "forget_device", **V, "device_id": "d" * 129}, INVALID_VALUE, None),
    ("credential missing", {"type": "auth", **V}, BAD_MESSAGE, None),
    ("credential empty", {"type": "auth", **V, "credential": ""}, BAD_MESSAGE, None),
    ("credential lone surrogate", '{"type":"auth","v":1,"credential":"\\ud800"}', BAD_MESSAGE, None),
    ("action missing", {"type": "playback", **V, "id": "a"}, BAD_MESSAGE, "a"),
    ("action unknown", {"type": "playback", **V, "id": "a", "action": "rewind"}, INVALID_VALUE, "a"),
    ("action number", {"type": "playback", **V, "action": 1}, BAD_MESSAGE, None),
    ("seek without position", {"type": "playback", **V, "id": "a", "action": "seek"}, INVALID_VALUE, "a"),
    ("seek to null", {"type": "playback", **V, "action": "seek", "position": None}, INVALID_VALUE, None),
    ("seek negative", {"type": "playback", **V, "id": "a", "action": "seek", "position": -0.5}, INVALID_VALUE, "a"),
    ("seek a week on", {"type": "playback", **V, "action": "seek", "position": 7 * 86400 + 1}, INVALID_VALUE, None),
    ("seek infinity", '{"type":"playback","v":1,"action":"seek","position":1e400}', INVALID_VALUE, None),
    ("seek text", {"type": "playback", **V, "action": "seek", "position": "1:30"}, BAD_MESSAGE, None),
    ("seek true", {"type": "playback", **V, "action": "seek", "position": True}, BAD_MESSAGE, None),
    ("play with position", {"type": "playback", **V, "action": "play", "position": 3}, INVALID_VALUE, None),
    ("pause with content", {"type": "playback", **V, "action": "pause", "content": "/a.mp4"}, INVALID_VALUE, None),
    ("stop with title", {"type": "playback", **V, "action": "stop", "title": "A"}, INVALID_VALUE, None),
    ("load without content", {"type": "playback", **V, "id": "a", "action": "load"}, INVALID_VALUE, "a"),
    ("load empty content", {"type": "playback", **V, "action": "load", "content": ""}, INVALID_VALUE, None),
    ("load relative path", {"type": "playback", **V, "action": "load", "content": "film.mp4"}, INVALID_VALUE, None),
    ("load newline", {"type": "playback", **V, "action": "load", "content": "/a\n.mp4"}, INVALID_VALUE, None),
    ("load content number", {"type": "playback", **V, "action": "load", "content": 5}, BAD_MESSAGE, None),
    ("load content too long", {"type": "playback", **V, "action": "load", "content": "/" + "a" * 2048},
     INVALID_VALUE, None),
    ("load title too long", {"type": "playback", **V, "action": "load", "content": "/a", "title": "t" * 201},
     INVALID_VALUE, None),
    ("sdp missing", {"type": "phone_camera_offer", **V, "id": "a"}, BAD_MESSAGE, "a"),
    ("sdp empty", {"type": "phone_camera_offer", **V, "sdp": ""}, BAD_MESSAGE, None),
    ("sdp number", {"type": "phone_camera_offer", **V, "sdp": 0}, BAD_MESSAGE, None),
    ("sdp not sdp", {"type": "phone_camera_offer", **V, "id": "a", "sdp": "hello"}, INVALID_VALUE, "a"),
    ("sdp control char", {"type": "phone_camera_offer", **V, "sdp": "v=0\r\na=\x07\r\n"}, INVALID_VALUE, None),
    ("sdp over its limit", {"type": "phone_camera_offer", **V, "id": "a",
                            "sdp": sdp_of(MAX_SDP_BYTES + 1)}, INVALID_VALUE, "a"),
    ("sdp over its limit in bytes", {"type": "phone_camera_offer", **V,
                                     "sdp": "v=0\n" + "é" * (MAX_SDP_BYTES // 2)}, INVALID_VALUE, None),
    ("muted text", {"type": "phone_camera_mute", **V, "muted": "yes"}, BAD_MESSAGE, None),
    ("too big", {"type": "status", **V, "id": "a", "pad": "x" * MAX_MESSAGE_BYTES}, TOO_BIG, None),
    ("too big in bytes", {"type": "status", **V, "pad": "é" * (MAX_MESSAGE_BYTES // 2)}, TOO_BIG, None),
]


def violation_text(raw: object) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["id", "credential", "name", "invite", "volume", "layout", "visible", "identity", "enabled", "device_id",
          "action", "position", "content", "title"]


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    """Return the text of an object shaped like a phone message, with any values in its fields."""
    obj: dict[str, object] = {"type": draw(st.sampled_from([*PHONE_MESSAGE_TYPES, "authed", "state", "x"]))}
    obj["v"] = draw(st.sampled_from([1, 1, 1, 2, "1", None, True]))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        obj[name] = draw(json_values | st.sampled_from(["ABCD-EFGH", "grid", "bob", 0.5, 2, "i" * 65, "seek", "load",
                                                        "/a.mp4", -1]))
    return json.dumps(obj)


any_text = st.text(max_size=60) | json_values.map(json.dumps) | phone_like() | st.sampled_from(
    [encode(m) for m in PHONE_SAMPLES]
)

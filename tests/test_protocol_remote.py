"""Tests for tvapp.protocol.remote: round trips, validation codes, both ends' state machines, and fuzzing."""

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvapp.core.layout import Mode
from tvapp.protocol.messages import ProtocolError
from tvapp.protocol.remote import (
    ALREADY_AUTHENTICATED,
    AUTH_FAILED,
    AUTH_TIMEOUT,
    BAD_MESSAGE,
    COMMAND_TYPES,
    CONNECTION_CLOSED,
    INVALID_VALUE,
    LAYOUTS,
    MAX_MESSAGE_BYTES,
    NOT_AUTHENTICATED,
    PHONE_MESSAGE_TYPES,
    SERVER_RULES,
    TOO_BIG,
    TV_MESSAGE_TYPES,
    UNKNOWN_COMMAND,
    UNSUPPORTED_VERSION,
    Auth,
    Authed,
    AuthRequested,
    CloseCode,
    Command,
    CommandReceived,
    CommandResult,
    ConnectionStateError,
    CreateRoom,
    DeviceInfo,
    Devices,
    Error,
    ErrorInfo,
    ForgetDevice,
    Input,
    JoinRoom,
    LeaveRoom,
    ListDevices,
    MuteParticipant,
    Ok,
    ParticipantState,
    PhoneMessage,
    Playback,
    PlaybackInfo,
    ProtocolViolation,
    RemoteClientConnection,
    RemoteEvent,
    RemoteProtocolError,
    RemoteServerConnection,
    RemoteState,
    RemoveParticipant,
    SetCamera,
    SetLayout,
    SetMic,
    SetVolume,
    ShowInvite,
    State,
    StatusCommand,
    TvMessage,
    UnknownRemoteMessage,
    encode,
    parse_phone_message,
    parse_tv_message,
)

CREDENTIAL = "dc_0123456789abcdefSECRETCREDENTIALabcdefghijklmnopqrstuvwxyz"
W, C, A, X = (RemoteState.AWAITING_AUTH, RemoteState.AUTHENTICATING, RemoteState.AUTHENTICATED,
              RemoteState.CLOSED)  # fmt: skip

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

PHONE_SAMPLES: list[PhoneMessage] = [
    Auth(credential=CREDENTIAL),
    StatusCommand(),
    StatusCommand(id="s-1"),
    CreateRoom(id="c1", name="movie-night"),
    CreateRoom(),
    JoinRoom(id="j", invite="abcd-efgh"),
    JoinRoom(invite="ABCDEFGH"),
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
    WATCHING,
    State(tv_name="TV", status="in_room", room="r", volume=1, layout="grid",
          playback=PlaybackInfo(content="/srv/films/a.mkv", waiting=True)),  # fmt: skip
    State(tv_name="TV", status="in_room", room="r", volume=1, layout="grid", playback=PlaybackInfo()),
]


def wire(msg: PhoneMessage | TvMessage) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(encode(msg))
    return obj


def text(obj: object) -> str:
    return json.dumps(obj)


def phone_error(raw: str) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_phone_message(raw)
    return caught.value


# --- messages ----------------------------------------------------------------------------------------------------


def test_samples_cover_every_message_type() -> None:
    assert {m.TYPE for m in PHONE_SAMPLES} == set(PHONE_MESSAGE_TYPES)
    assert {m.TYPE for m in TV_SAMPLES} == set(TV_MESSAGE_TYPES)
    assert set(PHONE_MESSAGE_TYPES) == {"auth"} | set(COMMAND_TYPES)
    assert set(COMMAND_TYPES) == {
        "status", "create_room", "join", "leave", "set_volume", "set_layout", "show_invite", "remove_participant",
        "mute_participant", "set_mic", "set_camera", "playback", "list_devices", "forget_device",
    }  # fmt: skip


@pytest.mark.parametrize("msg", PHONE_SAMPLES, ids=lambda m: m.TYPE)
def test_phone_message_round_trip(msg: PhoneMessage) -> None:
    assert type(msg).from_json(msg.to_json()) == msg
    assert parse_phone_message(encode(msg)) == msg


@pytest.mark.parametrize("msg", TV_SAMPLES, ids=lambda m: m.TYPE)
def test_tv_message_round_trip(msg: TvMessage) -> None:
    assert type(msg).from_json(json.loads(json.dumps(msg.to_json()))) == msg
    assert parse_tv_message(encode(msg)) == msg


def test_encode_is_compact_json_with_type_and_version() -> None:
    assert encode(SetVolume(id="7", volume=0.5)) == '{"type":"set_volume","v":1,"id":"7","volume":0.5}'
    assert encode(Ok()) == '{"type":"ok","v":1,"id":null}'
    state = wire(IN_ROOM)
    assert state["participants"][1] == {"sid": "PA_b", "identity": "bob@phone", "name": "", "speaking": False,
                                        "mic_muted": True, "camera_off": True}  # fmt: skip
    assert state["error"] is None and wire(TV_SAMPLES[9])["error"] == {"title": "Invite expired",
                                                                      "message": "Ask the host for a new code."}


def test_a_playback_command_and_the_now_playing_state_on_the_wire() -> None:
    assert wire(Playback(id="7", action="seek", position=90)) == {
        "type": "playback", "v": 1, "id": "7", "action": "seek", "position": 90.0, "content": None, "title": ""}
    assert wire(WATCHING)["playback"] == {"content": "http://192.168.1.20:7880/media/film.mp4", "title": "The film",
                                          "playing": True, "position": 754.25, "duration": 5400.0,
                                          "waiting": False}  # fmt: skip
    assert wire(IN_ROOM)["playback"] is None
    assert parse_phone_message(text({"type": "playback", "v": 1, "action": "load", "content": "/a.mp4",
                                     "title": "A", "why": 1})) == Playback(action="load", content="/a.mp4", title="A")
    obj = wire(WATCHING)
    obj["playback"]["rate"] = 1.0
    assert parse_tv_message(text(obj)) == WATCHING
    old_tv = wire(IN_ROOM)
    del old_tv["playback"]
    assert parse_tv_message(text(old_tv)) == IN_ROOM, "a TV without watch-together sends no playback"


def test_the_remote_layouts_are_the_renderers_layout_modes() -> None:
    assert set(LAYOUTS) == {mode.value for mode in Mode}


def test_unknown_extra_fields_are_ignored_and_optional_fields_take_defaults() -> None:
    assert parse_phone_message(text({"type": "set_mic", "v": 1, "enabled": True, "why": [1, 2]})) == SetMic(
        enabled=True
    )
    assert parse_phone_message(text({"type": "create_room", "v": 1, "name": None})) == CreateRoom()
    obj = wire(IN_ROOM)
    obj["participants"][0]["hand_raised"] = True
    obj["content"] = {"position": 12.5}
    assert parse_tv_message(text(obj)) == IN_ROOM
    assert parse_tv_message(text({"type": "devices", "v": 1, "devices": [{"device_id": "DV_9", "paired_at": 5}]})) == (
        Devices(devices=(DeviceInfo(device_id="DV_9", paired_at=5.0),))
    )


def test_the_credential_never_shows_in_a_repr() -> None:
    assert CREDENTIAL not in repr(Auth(credential=CREDENTIAL))
    assert CREDENTIAL not in repr(AuthRequested(CREDENTIAL))


def test_messages_built_in_python_are_checked_like_received_ones() -> None:
    with pytest.raises(ProtocolError) as caught:
        SetVolume(volume=1.5)
    assert caught.value.code == INVALID_VALUE
    with pytest.raises(ValueError):
        State(tv_name="TV", status="asleep", volume=0.5, layout="grid")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Authed(device_id="", tv_name="TV")
    with pytest.raises(ProtocolError) as caught:
        Playback(action="seek")
    assert caught.value.code == INVALID_VALUE
    with pytest.raises(ProtocolError) as caught:
        PlaybackInfo(position=-1)
    assert caught.value.code == INVALID_VALUE


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
    ("too big", {"type": "status", **V, "id": "a", "pad": "x" * MAX_MESSAGE_BYTES}, TOO_BIG, None),
    ("too big in bytes", {"type": "status", **V, "pad": "é" * (MAX_MESSAGE_BYTES // 2)}, TOO_BIG, None),
]


def violation_text(raw: object) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)


@pytest.mark.parametrize(("raw", "code", "cid"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS])
def test_parse_refuses_with_a_specific_code(raw: object, code: str, cid: str | None) -> None:
    error = phone_error(violation_text(raw))
    assert (error.code, error.id) == (code, cid)
    if code == UNKNOWN_COMMAND:
        assert isinstance(error, UnknownRemoteMessage)


def test_error_messages_name_the_field_and_never_repeat_the_value() -> None:
    error = phone_error(text({"type": "set_layout", "v": 1, "layout": "SECRETVALUE"}))
    assert "set_layout.layout" in error.message and "SECRETVALUE" not in error.message
    error = phone_error(text({"type": "auth", "v": 1, "credential": 42}))
    assert error.message == "auth.credential: expected a string"


def test_a_message_at_the_size_limit_is_accepted() -> None:
    obj: dict[str, object] = {"type": "set_mic", "v": 1, "enabled": False, "pad": ""}
    obj["pad"] = "é" * ((MAX_MESSAGE_BYTES - len(text(obj).encode())) // 2)
    raw = json.dumps(obj, ensure_ascii=False)
    raw += " " * (MAX_MESSAGE_BYTES - len(raw.encode()))
    assert len(raw.encode()) == MAX_MESSAGE_BYTES
    assert parse_phone_message(raw) == SetMic(enabled=False)
    assert phone_error(raw + " ").code == TOO_BIG


def test_tv_messages_have_no_size_limit_and_unknown_types_are_their_own_error() -> None:
    many = State(tv_name="TV", status="in_room", volume=1, layout="grid",
                 participants=tuple(ParticipantState(sid=f"PA_{i}", identity=f"p{i}", name="n" * 100)
                                    for i in range(200)))  # fmt: skip
    assert len(encode(many)) > MAX_MESSAGE_BYTES and parse_tv_message(encode(many)) == many
    with pytest.raises(UnknownRemoteMessage):
        parse_tv_message(text({"type": "content_position", "v": 1}))
    with pytest.raises(UnknownRemoteMessage):
        parse_tv_message(encode(StatusCommand()))
    with pytest.raises(RemoteProtocolError) as caught:
        parse_tv_message(text({"type": "state", "v": 1, "tv_name": "TV", "status": "idle", "volume": 3,
                               "layout": "grid"}))  # fmt: skip
    assert caught.value.code == INVALID_VALUE and not isinstance(caught.value, UnknownRemoteMessage)


# --- the TV's end ------------------------------------------------------------------------------------------------


def server_in(state: RemoteState) -> RemoteServerConnection:
    conn = RemoteServerConnection()
    if state is W:
        return conn
    assert conn.receive_text(encode(Auth(credential=CREDENTIAL))) == [AuthRequested(CREDENTIAL)]
    if state is C:
        return conn
    if state is A:
        conn.authenticated("DV_1", "Living room")
    else:
        conn.auth_failed()
    assert conn.state is state
    return conn


def only_violation(events: list[RemoteEvent]) -> Error:
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation), events
    assert events[0].text == encode(events[0].error)
    assert parse_tv_message(events[0].text) == events[0].error
    return events[0].error


def test_a_whole_session_on_the_tv_side() -> None:
    conn = RemoteServerConnection()
    assert (conn.state, conn.closed, conn.close_code) == (W, False, None)
    assert conn.receive_text(encode(Auth(credential=CREDENTIAL))) == [AuthRequested(CREDENTIAL)]
    assert conn.state is C
    assert parse_tv_message(conn.authenticated("DV_1", "Living room")) == Authed(device_id="DV_1",
                                                                                 tv_name="Living room")
    assert (conn.state, conn.device_id) == (A, "DV_1")
    events = conn.receive_text(encode(SetVolume(id="v1", volume=0.3)))
    assert events == [CommandReceived(SetVolume(id="v1", volume=0.3))]
    command = events[0].command if isinstance(events[0], CommandReceived) else StatusCommand()
    assert parse_tv_message(conn.ok(command)) == Ok(id="v1")
    assert parse_tv_message(conn.error(command, "no_audio", "no audio device")) == (
        Error(id="v1", code="no_audio", message="no audio device")
    )
    assert parse_tv_message(conn.send(IN_ROOM)) == IN_ROOM
    assert not conn.closed


@pytest.mark.parametrize(("name", "raw", "code", "cid"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
@pytest.mark.parametrize("state", [W, C, A], ids=lambda s: s.name)
def test_every_violation_is_answered_and_the_connection_stays(
    state: RemoteState, name: str, raw: object, code: str, cid: str | None
) -> None:
    conn = server_in(state)
    error = only_violation(conn.receive_text(violation_text(raw)))
    assert (error.code, error.id) == (code, cid)
    assert (conn.state, conn.closed, conn.close_code) == (state, False, None)


@pytest.mark.parametrize("state", [W, C], ids=lambda s: s.name)
def test_a_command_before_auth_is_not_authenticated_and_stays(state: RemoteState) -> None:
    conn = server_in(state)
    for command in (StatusCommand(id="early"), ListDevices(id="early"), SetLayout(id="early", layout="grid")):
        error = only_violation(conn.receive_text(encode(command)))
        assert (error.code, error.id) == (NOT_AUTHENTICATED, "early")
    assert conn.state is state and only_violation(conn.receive_text(encode(LeaveRoom()))).id is None


@pytest.mark.parametrize("state", [C, A], ids=lambda s: s.name)
def test_a_second_auth_is_already_authenticated_and_stays(state: RemoteState) -> None:
    conn = server_in(state)
    events = conn.receive_text(encode(Auth(credential="another")))
    assert only_violation(events).code == ALREADY_AUTHENTICATED
    assert conn.state is state
    assert "another" not in repr(events) and CREDENTIAL not in only_violation(events).message


def test_a_failed_auth_closes_the_connection() -> None:
    conn = server_in(C)
    error = parse_tv_message(conn.auth_failed())
    assert isinstance(error, Error) and error.code == AUTH_FAILED and error.id is None
    assert (conn.state, conn.closed, conn.close_code) == (X, True, CloseCode.POLICY_VIOLATION)
    assert conn.receive_text(encode(StatusCommand())) == []
    assert conn.receive_text(encode(Auth(credential=CREDENTIAL))) == []
    assert conn.receive_text("{") == [] and conn.receive_bytes(b"x") == []
    with pytest.raises(ConnectionStateError):
        conn.send(IDLE)


@pytest.mark.parametrize("state", [W, C], ids=lambda s: s.name)
def test_no_auth_in_time_closes_the_connection(state: RemoteState) -> None:
    conn = server_in(state)
    error = parse_tv_message(conn.auth_timed_out())
    assert isinstance(error, Error) and error.code == AUTH_TIMEOUT
    assert conn.closed and conn.close_code == CloseCode.POLICY_VIOLATION


def test_the_tv_can_close_a_connection_with_its_own_reason() -> None:
    conn = server_in(A)
    error = parse_tv_message(conn.close("device_forgotten", "this phone was forgotten", CloseCode.POLICY_VIOLATION))
    assert error == Error(code="device_forgotten", message="this phone was forgotten")
    assert conn.closed and conn.close_code == 1008
    assert conn.close("again", "ignored") == ""
    shutting_down = server_in(W)
    shutting_down.close("shutting_down", "the TV is turning off")
    assert shutting_down.close_code == CloseCode.GOING_AWAY
    with pytest.raises(ValueError):
        server_in(A).close("x", "y", close_code=999)


def test_a_binary_frame_is_a_bad_message_and_stays() -> None:
    for state in (W, C, A):
        conn = server_in(state)
        assert only_violation(conn.receive_bytes(b"\x00\x01")).code == BAD_MESSAGE
        assert conn.state is state


@pytest.mark.parametrize(
    ("state", "call"),
    [
        (W, lambda c: c.authenticated("DV_1", "TV")),
        (A, lambda c: c.authenticated("DV_1", "TV")),
        (W, lambda c: c.auth_failed()),
        (A, lambda c: c.auth_failed()),
        (A, lambda c: c.auth_timed_out()),
        (W, lambda c: c.send(IDLE)),
        (C, lambda c: c.send(IDLE)),
        (C, lambda c: c.ok(StatusCommand())),
        (A, lambda c: c.send(Authed(device_id="DV_1", tv_name="TV"))),
    ],
)
def test_the_owner_calling_out_of_turn_is_a_state_error(state: RemoteState, call: Any) -> None:
    conn = server_in(state)
    with pytest.raises(ConnectionStateError):
        call(conn)
    assert conn.state is state


def test_the_rule_table_keeps_every_open_state_open_on_received_input() -> None:
    for (state, kind), rule in SERVER_RULES.items():
        if kind in (Input.AUTH, Input.COMMAND, Input.BAD_MESSAGE):
            assert rule.close is None and rule.next_state is not X, (state, kind)
        else:
            assert rule.close is not None or kind is Input.ACCEPT_AUTH, (state, kind)
    assert (X, Input.AUTH) not in SERVER_RULES


# --- the phone's end ---------------------------------------------------------------------------------------------


def authed_client() -> RemoteClientConnection:
    client = RemoteClientConnection(CREDENTIAL)
    assert client.data_to_send() == [encode(Auth(credential=CREDENTIAL))]
    assert client.receive_text(encode(Authed(device_id="DV_1", tv_name="TV"))) == [Authed(device_id="DV_1",
                                                                                          tv_name="TV")]
    return client


def test_commands_sent_before_authed_wait_for_it_then_go_in_order() -> None:
    client = RemoteClientConnection(CREDENTIAL)
    assert client.state is C
    first = client.send(SetLayout(layout="speaker"))
    second = client.send(ShowInvite(id="mine", visible=True))
    assert (first.id, second.id) == ("1", "mine")
    assert client.data_to_send() == [encode(Auth(credential=CREDENTIAL))]
    client.receive_text(encode(Authed(device_id="DV_1", tv_name="Living room")))
    assert client.state is A and client.authed == Authed(device_id="DV_1", tv_name="Living room")
    assert [parse_phone_message(t) for t in client.data_to_send()] == [first, second]
    third = client.send(SetMic(enabled=True))
    assert third.id == "2" and client.data_to_send() == [encode(third)]
    assert set(client.pending) == {"1", "mine", "2"}


def test_replies_end_their_commands() -> None:
    client = authed_client()
    volume = client.send(SetVolume(volume=0.5))
    devices = client.send(ListDevices())
    remove = client.send(RemoveParticipant(identity="bob"))
    assert volume.id is not None and devices.id is not None and remove.id is not None
    assert client.receive_text(encode(Ok(id=volume.id))) == [CommandResult(volume)]
    assert client.receive_text(encode(Devices(id=devices.id, devices=(PHONE,)))) == []
    assert client.receive_text(encode(Ok(id=devices.id))) == [CommandResult(devices, devices=(PHONE,))]
    refusal = Error(id=remove.id, code="not_host", message="only the host can remove participants")
    [result] = client.receive_text(encode(refusal))
    assert isinstance(result, CommandResult) and not result.ok and result.error == refusal
    assert client.pending == {}


def test_state_pushes_and_unmatched_replies_are_handed_out() -> None:
    client = authed_client()
    assert client.receive_text(encode(IN_ROOM)) == [IN_ROOM] and client.latest_state == IN_ROOM
    assert client.receive_text(encode(IDLE)) == [IDLE] and client.latest_state == IDLE
    violation = Error(code=BAD_MESSAGE, message="message: not valid JSON")
    assert client.receive_text(encode(violation)) == [violation]
    assert client.receive_text(encode(Ok(id="nobody"))) == [Ok(id="nobody")]
    assert client.receive_text(encode(Devices(devices=(PHONE,)))) == [Devices(devices=(PHONE,))]
    assert client.receive_text(text({"type": "content_position", "v": 1, "t": 3})) == []


def test_a_refused_credential_closes_and_ends_waiting_commands() -> None:
    client = RemoteClientConnection(CREDENTIAL)
    waiting = client.send(StatusCommand())
    refusal = Error(code=AUTH_FAILED, message="pair again")
    assert client.receive_text(encode(refusal)) == [refusal, CommandResult(waiting, error=refusal)]
    assert client.closed and client.data_to_send() == [] and client.pending == {}
    assert client.receive_text(encode(Authed(device_id="DV_1", tv_name="TV"))) == []
    with pytest.raises(ConnectionStateError):
        client.send(StatusCommand())


def test_the_tv_breaking_the_protocol_raises_and_changes_nothing() -> None:
    client = RemoteClientConnection(CREDENTIAL)
    for bad in (encode(IDLE), encode(Ok(id="1")), "{", text({"type": "state", "v": 1})):
        with pytest.raises(RemoteProtocolError):
            client.receive_text(bad)
        assert client.state is C
    client = authed_client()
    with pytest.raises(RemoteProtocolError):
        client.receive_text(encode(Authed(device_id="DV_1", tv_name="TV")))
    assert client.state is A


def test_closing_ends_unanswered_commands() -> None:
    client = authed_client()
    pending = client.send(JoinRoom(invite="ABCD-EFGH"))
    [result] = client.close()
    assert result.command == pending and result.error is not None and result.error.code == CONNECTION_CLOSED
    assert client.closed and client.pending == {} and client.close() == []


def test_a_pending_id_cannot_be_reused() -> None:
    client = authed_client()
    client.send(StatusCommand(id="1"))
    assert client.send(StatusCommand()).id == "2"  # the counter skips an id the caller took
    with pytest.raises(ValueError):
        client.send(LeaveRoom(id="1"))


# --- both ends together: a tiny TV that carries commands out ------------------------------------------------------


class FakeTv:
    """Pure stand-in for the TV's remote API: one device credential, a state, host-only removal."""

    def __init__(self) -> None:
        self.state = IDLE
        self.devices = [PHONE, NEW_PHONE]

    def handle(self, conn: RemoteServerConnection, event: RemoteEvent) -> list[str]:
        if isinstance(event, ProtocolViolation):
            return [event.text]
        if isinstance(event, AuthRequested):
            if event.credential != CREDENTIAL:
                return [conn.auth_failed()]
            return [conn.authenticated("DV_1", self.state.tv_name), conn.send(self.state)]
        return self.carry_out(conn, event.command)

    def carry_out(self, conn: RemoteServerConnection, command: Command) -> list[str]:
        if isinstance(command, SetVolume):
            return self.change(conn, command, volume=command.volume)
        if isinstance(command, SetLayout):
            return self.change(conn, command, layout=command.layout)
        if isinstance(command, ListDevices):
            return [conn.send(Devices(id=command.id, devices=tuple(self.devices))), conn.ok(command)]
        if isinstance(command, RemoveParticipant):
            return [conn.error(command, "not_in_room", "the TV is not in a room")]
        return [conn.error(command, "not_supported", f"{command.TYPE} is not supported here")]

    def change(self, conn: RemoteServerConnection, command: Command, **values: Any) -> list[str]:
        new = dataclasses.replace(self.state, **values)
        pushes = [conn.send(new)] if new != self.state else []
        self.state = new
        return [*pushes, conn.ok(command)]


def pump(client: RemoteClientConnection, conn: RemoteServerConnection, tv: FakeTv) -> list[Any]:
    """Carry texts both ways until both ends are quiet; return what the phone was handed."""
    handed: list[Any] = []
    while outgoing := client.data_to_send():
        replies = [reply for t in outgoing for event in conn.receive_text(t) for reply in tv.handle(conn, event)]
        for reply in replies:
            handed.extend(client.receive_text(reply))
    return handed


def test_a_phone_drives_the_tv_through_both_machines() -> None:
    tv, conn, client = FakeTv(), RemoteServerConnection(), RemoteClientConnection(CREDENTIAL)
    volume = client.send(SetVolume(volume=0.4))
    handed = pump(client, conn, tv)
    assert handed[:2] == [Authed(device_id="DV_1", tv_name="Living room"), IDLE]
    quieter = dataclasses.replace(IDLE, volume=0.4)
    assert handed[2:] == [quieter, CommandResult(volume)]
    assert tv.state == quieter == client.latest_state

    again = client.send(SetVolume(volume=0.4))
    assert pump(client, conn, tv) == [CommandResult(again)], "setting the same value again changes nothing"
    listing, removal = client.send(ListDevices()), client.send(RemoveParticipant(identity="bob"))
    results = pump(client, conn, tv)
    assert results[0] == CommandResult(listing, devices=(PHONE, NEW_PHONE))
    assert isinstance(results[1], CommandResult) and results[1].error is not None
    assert results[1].error.code == "not_in_room" and results[1].command == removal
    assert conn.state is A and client.pending == {}


def test_a_wrong_credential_closes_both_ends() -> None:
    tv, conn, client = FakeTv(), RemoteServerConnection(), RemoteClientConnection("not-the-credential")
    waiting = client.send(SetLayout(layout="watch"))
    handed = pump(client, conn, tv)
    assert [type(h) for h in handed] == [Error, CommandResult]
    assert isinstance(handed[1], CommandResult) and handed[1].command == waiting and not handed[1].ok
    assert conn.closed and client.closed and tv.state == IDLE


# --- fuzzing: whatever the phone sends, the TV's end answers and never raises -----------------------------------

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


@settings(max_examples=400, deadline=None)
@given(state=st.sampled_from([W, C, A, X]), texts=st.lists(any_text, min_size=1, max_size=6))
def test_whatever_the_phone_sends_never_raises_out_of_receive_text(state: RemoteState, texts: list[str]) -> None:
    conn = server_in(state)
    for raw in texts:
        before = conn.state
        events = conn.receive_text(raw)
        if before is X:
            assert events == []
            continue
        assert len(events) == 1
        event = events[0]
        if isinstance(event, ProtocolViolation):
            assert not event.close and conn.state is before and not conn.closed
            assert isinstance(parse_tv_message(event.text), Error)
        elif isinstance(event, AuthRequested):
            assert (before, conn.state) == (W, C)
        else:
            assert isinstance(event, CommandReceived) and before is A and conn.state is A
            assert parse_phone_message(encode(event.command)) == event.command


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(any_text | st.sampled_from([encode(m) for m in TV_SAMPLES]), min_size=1, max_size=6))
def test_the_phone_end_raises_only_protocol_errors(texts: list[str]) -> None:
    client = RemoteClientConnection(CREDENTIAL)
    client.send(StatusCommand(id="v"))
    for raw in texts:
        before = client.state
        try:
            client.receive_text(raw)
        except RemoteProtocolError:
            assert client.state is before


@settings(max_examples=200, deadline=None)
@given(volume=st.floats(min_value=0, max_value=1),
       cid=st.text(st.characters(codec="utf-8"), min_size=1, max_size=64),
       layout=st.sampled_from(LAYOUTS))  # fmt: skip
def test_any_valid_command_survives_the_wire(volume: float, cid: str, layout: str) -> None:
    for command in (SetVolume(id=cid, volume=volume), SetLayout(id=cid, layout=layout)):  # type: ignore[arg-type]
        assert parse_phone_message(encode(command)) == command


@settings(max_examples=200, deadline=None)
@given(position=st.floats(min_value=0, max_value=7 * 86400),
       content=st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=100),
       title=st.text(st.characters(codec="utf-8"), max_size=200))  # fmt: skip
def test_any_valid_playback_command_survives_the_wire(position: float, content: str, title: str) -> None:
    for command in (Playback(action="seek", position=position),
                    Playback(action="load", content="/" + content, position=position, title=title),
                    Playback(action="load", content="https://tv.example/" + content)):  # fmt: skip
        assert parse_phone_message(encode(command)) == command

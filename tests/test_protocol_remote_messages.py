"""Tests for tvapp.protocol.remote_messages: round trips, validation codes, size limits, and fuzzing the codec."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remote_samples import (
    CREDENTIAL,
    IN_ROOM,
    PHONE_SAMPLES,
    TV_SAMPLES,
    VIOLATIONS,
    WATCHING,
    text,
    violation_text,
    wire,
)

from tvapp.core.layout import Mode
from tvapp.protocol.fields import ProtocolError
from tvapp.protocol.remote import AuthRequested
from tvapp.protocol.remote_messages import (
    COMMAND_TYPES,
    INVALID_VALUE,
    JoinServer,
    LAYOUTS,
    MAX_MESSAGE_BYTES,
    PHONE_MESSAGE_TYPES,
    TOO_BIG,
    TV_MESSAGE_TYPES,
    UNKNOWN_COMMAND,
    Auth,
    Authed,
    CreateRoom,
    DeviceInfo,
    Devices,
    Ok,
    ParticipantState,
    PhoneMessage,
    Playback,
    PlaybackInfo,
    RemoteProtocolError,
    SetLayout,
    SetMic,
    SetVolume,
    State,
    StatusCommand,
    TvMessage,
    UnknownRemoteMessage,
    encode,
    parse_phone_message,
    parse_tv_message,
)


def phone_error(raw: str) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_phone_message(raw)
    return caught.value


def test_samples_cover_every_message_type() -> None:
    assert {m.TYPE for m in PHONE_SAMPLES} == set(PHONE_MESSAGE_TYPES)
    assert {m.TYPE for m in TV_SAMPLES} == set(TV_MESSAGE_TYPES)
    assert set(PHONE_MESSAGE_TYPES) == {"auth"} | set(COMMAND_TYPES)
    assert set(COMMAND_TYPES) == {
        "status", "create_room", "join", "join_server", "leave", "set_volume", "set_layout", "show_invite",
        "remove_participant",
        "mute_participant", "set_mic", "set_camera", "playback", "list_devices", "forget_device",
        "phone_camera_offer", "phone_camera_mute", "phone_camera_stop",
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
                                          "waiting": False, "live": False, "delay": None}  # fmt: skip
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


@settings(max_examples=200, deadline=None)
@given(volume=st.floats(min_value=0, max_value=1),
       cid=st.text(st.characters(codec="utf-8"), min_size=1, max_size=64),
       layout=st.sampled_from(LAYOUTS))  # fmt: skip
def test_any_valid_command_survives_the_wire(volume: float, cid: str, layout: str) -> None:
    for command in (SetVolume(id=cid, volume=volume), SetLayout(id=cid, layout=layout)):
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


# --- join_server: a room on another core ---------------------------------------------------------------------

FP = "sha256:" + ":".join(["AB"] * 32)


def join_server(**fields: object) -> str:
    return json.dumps({"type": "join_server", "v": 1, "id": "j1", **fields})


@pytest.mark.parametrize(("fields", "server", "fingerprint"), [
    ({"link": "https://core.example/?code=ABCD-EFGH"}, "https://core.example", None),
    ({"link": "HTTPS://Core.Example:443/?code=abcdefgh"}, "https://core.example:443", None),
    ({"link": "http://192.168.1.9:8800/?code=ABCD-EFGH"}, "http://192.168.1.9:8800", None),
    ({"link": "192.168.1.9:8800/?code=ABCD-EFGH"}, "http://192.168.1.9:8800", None),
    ({"link": "https://192.168.1.9:8800/?code=ABCD-EFGH#fp=sha256:" + "ab" * 32},
     "https://192.168.1.9:8800", FP),
    ({"link": "https://core.example/tvapp/?code=ABCD-EFGH", "fingerprint": FP}, "https://core.example/tvapp", FP),
    ({"server": "core.example:8800", "invite": "abcd efgh"}, "http://core.example:8800", None),
    ({"server": "https://[::1]:8443", "invite": "ABCDEFGH", "fingerprint": FP}, "https://[::1]:8443", FP),
])  # fmt: skip
def test_join_server_takes_links_and_server_plus_code(fields: dict[str, object], server: str,
                                                      fingerprint: str | None) -> None:
    msg = parse_phone_message(join_server(**fields))
    assert isinstance(msg, JoinServer)
    assert msg.target() == (server, "ABCDEFGH", fingerprint)


SECRET = "hunter2pass"


@pytest.mark.parametrize(("fields", "problem"), [
    ({"link": "ftp://core.example/?code=ABCD-EFGH"}, "only http:// and https://"),
    ({"link": "javascript:alert(1)//?code=ABCD-EFGH"}, "host:port"),
    ({"link": "file:///etc/passwd?code=ABCD-EFGH"}, "only http:// and https://"),
    ({"server": "wss://core.example", "invite": "ABCDEFGH"}, "only http:// and https://"),
    ({"link": f"https://ann:{SECRET}@core.example/?code=ABCD-EFGH"}, "user name or password"),
    ({"server": f"https://{SECRET}@core.example", "invite": "ABCDEFGH"}, "user name or password"),
    ({"link": "https://core.example/?code=0000-OOOO"}, "not a code"),
    ({"link": "https://core.example/?code=ABCD-EFGH&code=ABCD-EFGH"}, "no ?code="),
    ({"link": "https://core.example/"}, "no ?code="),
    ({"link": "https://core.example:99999/?code=ABCD-EFGH"}, "port"),
    ({"link": "https:///?code=ABCD-EFGH"}, "host"),
    ({"link": "https://core example/?code=ABCD-EFGH"}, "spaces"),
    ({"link": "http://core.example/?code=ABCD-EFGH#fp=" + FP}, "https only"),
    ({"link": "https://core.example/?code=ABCD-EFGH#fp=sha1:AB"}, "sha256"),
    ({"link": "https://core.example/?code=ABCD-EFGH#fp=" + FP, "fingerprint": "sha256:" + "CD" * 32}, "differs"),
    ({"server": "https://core.example/?code=ABCD-EFGH", "invite": "ABCDEFGH"}, "no ?query"),
    ({"server": "https://core.example"}, "required with server"),
    ({"link": "https://core.example/?code=ABCD-EFGH", "invite": "ABCDEFGH"}, "not taken with link"),
    ({"link": "https://core.example/?code=ABCD-EFGH", "server": "https://core.example"}, "either link"),
    ({}, "either link"),
    ({"server": "https://core.example", "invite": "ABCD-EFG"}, "not a code"),
])  # fmt: skip
def test_join_server_refuses_bad_links_with_a_reason_that_never_repeats_them(fields: dict[str, object],
                                                                             problem: str) -> None:
    error = phone_error(join_server(**fields))
    assert error.code == INVALID_VALUE and error.id == "j1"
    assert error.message.startswith("join_server") and problem in error.message, error.message
    assert SECRET not in error.message and "core.example" not in error.message


@pytest.mark.parametrize(("field", "limit"), [("link", 1024), ("server", 512), ("fingerprint", 128)])
def test_join_server_fields_have_length_limits(field: str, limit: int) -> None:
    base = {"link": "https://core.example/?code=ABCD-EFGH"} if field != "link" else {}
    if field == "server":
        base = {"invite": "ABCDEFGH"}
    fill = {"link": "https://core.example/?code=ABCD-EFGH&x=", "server": "https://core.example/",
            "fingerprint": "sha256:"}[field]
    at_limit = fill + "a" * (limit - len(fill))
    over = at_limit + "a"
    too_long = phone_error(join_server(**base, **{field: over}))
    assert too_long.message == f"join_server.{field}: longer than {limit} characters"
    if field == "fingerprint":  # exactly at the limit is read, then judged on its content
        assert "longer than" not in phone_error(join_server(**base, **{field: at_limit})).message
    else:
        msg = parse_phone_message(join_server(**base, **{field: at_limit}))
        assert isinstance(msg, JoinServer) and msg.target().code == "ABCDEFGH"

"""Tests for tvapp.protocol.messages: round trips, validation rules, and never raising anything but ProtocolError."""

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvapp.core.playback import PlaybackState
from tvapp.protocol.messages import (
    CLIENT_MESSAGE_TYPES,
    MAX_MESSAGE_BYTES,
    MAX_SDP_BYTES,
    MAX_TOKEN_BYTES,
    MAX_DATA_BYTES,
    MAX_MEDIA_GENERATION,
    MAX_RESUME_TOKEN_CHARS,
    SERVER_MESSAGE_TYPES,
    ActiveSpeakers,
    LinkQuality,
    NetworkQuality,
    TrackSwitchedOff,
    TrackSwitchedOn,
    NetworkQualityInfo,
    Answer,
    Candidate,
    ClientMessage,
    Data,
    Error,
    GrantsInfo,
    IceServer,
    Join,
    Joined,
    Leave,
    MediaRestart,
    PublishConstraints,
    TrackSettings,
    Mute,
    Offer,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnected,
    ParticipantReconnecting,
    Ping,
    Playback,
    PlaybackStateMsg,
    Buffering,
    Pong,
    ProtocolError,
    Publish,
    Removed,
    RoomCompleted,
    RoomInfo,
    SendData,
    ServerMessage,
    SpeakerInfo,
    Subscribe,
    TrackInfo,
    TrackMuted,
    TrackPublished,
    TrackUnmuted,
    UnmuteRequest,
    TrackUnpublished,
    TransceiverInfo,
    UnknownMessageType,
    Unpublish,
    Unsubscribe,
    decode,
    encode,
    parse_client_message,
    parse_server_message,
)

SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWNsYWltcw.SECRETSIGNATURE"

TRACK = TrackInfo(sid="TR_cam", kind="video", source="camera", name="front", muted=False)
MIC = TrackInfo(sid="TR_mic", kind="audio", source="microphone", muted=True)
ALICE = ParticipantInfo(sid="PA_a", identity="alice", name="Alice", joined_at=1700000000.25, tracks=(TRACK, MIC))
BOB = ParticipantInfo(sid="PA_b", identity="bob", joined_at=1700000001.0, network_quality=3)
ROOM = RoomInfo(sid="RM_1", name="living-room", status="in-progress", max_participants=6)
GRANTS = GrantsInfo(room="living-room", join=True, publish=True, subscribe=True, publish_data=False, host=True,
                    hidden=False)  # fmt: skip
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

PUBLISH_SLOT = TransceiverInfo(mid="0", direction="publish", track_sid="TR_cam", participant_sid="PA_a",
                               kind="video", cid="local-cam")  # fmt: skip
SUBSCRIBE_SLOT = TransceiverInfo(mid="1", direction="subscribe", track_sid="TR_x", participant_sid="PA_b",
                                 kind="audio")  # fmt: skip

CLIENT_SAMPLES: list[ClientMessage] = [
    Join(token=SECRET),
    Join(token=SECRET, auto_subscribe=False),
    Offer(sdp=SDP),
    Answer(sdp=SDP),
    Candidate(candidate="candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", sdp_mid="0", sdp_mline_index=0),
    Candidate(candidate=""),
    Publish(cid="local-cam", kind="video", source="screen", name="slides", muted=True),
    Publish(cid="local-mic", kind="audio", source="microphone"),
    Unpublish(track_sid="TR_cam"),
    Subscribe(track_sid="TR_cam"),
    Unsubscribe(track_sid="TR_cam"),
    Mute(track_sid="TR_mic", muted=True),
    Leave(),
    Ping(t0=12.5),
    Ping(),
    Ping(id="r7"),
    SendData(payload='{"chat": "hi"}', topic="chat", to=("bob", "carol")),
    SendData(payload="x" * MAX_DATA_BYTES),
    Playback(action="load", content="http://192.168.1.20:8800/media/film.mp4", title="Film", position=12.5, play=False),
    Playback(action="seek", position=0.0),
    Playback(action="configure", control="everyone", on_stall="continue"),
    Buffering(stalled=True, position=3.25),
    Buffering(stalled=False, duration=5400.0),
    Join(token=SECRET, resume_token="rt-" + "x" * 40),
    MediaRestart(generation=1),
    TrackSettings(sid="TR_v", width=640, height=360, visible=False, priority="low"),
]
SERVER_SAMPLES: list[ServerMessage] = [
    Joined(room=ROOM, participant=ALICE, grants=GRANTS, participants=(ALICE, BOB), server_time=1700000002.5,
           ping_interval=10.0, idle_timeout=30.0),  # fmt: skip
    Joined(room=ROOM, participant=ALICE, grants=GRANTS, server_time=1.0, ping_interval=10.0, idle_timeout=30.0,
           ice_servers=(IceServer(urls="turn:turn.example:3478", username="u", credential="c"),
                        IceServer(urls="stun:stun.example:3478"))),  # fmt: skip
    ParticipantJoined(participant=BOB),
    ParticipantLeft(participant_sid="PA_b", identity="bob", reason="left"),
    ParticipantLeft(participant_sid="PA_b", identity="bob", reason="reconnect_timeout"),
    ParticipantReconnecting(participant_sid="PA_b", identity="bob", cause="signal"),
    ParticipantReconnected(participant_sid="PA_b", identity="bob"),
    Joined(room=ROOM, participant=ALICE, grants=GRANTS, server_time=1.0, ping_interval=10.0, idle_timeout=30.0,
           resume_token="opaque-resume", resumed=True,
           participants=(dataclasses.replace(BOB, reconnecting=True),)),  # fmt: skip
    Offer(sdp=SDP, generation=3),
    TrackPublished(participant_sid="PA_a", track=TRACK, cid="local-cam"),
    TrackPublished(participant_sid="PA_a", track=MIC),
    TrackUnpublished(participant_sid="PA_a", track_sid="TR_cam"),
    TrackMuted(participant_sid="PA_a", track_sid="TR_mic", by_server=True),
    TrackUnmuted(participant_sid="PA_a", track_sid="TR_mic"),
    UnmuteRequest(track_sid="TR_mic"),
    Removed(reason="removed by host"),
    RoomCompleted(room_sid="RM_1"),
    Error(code="room_full", message="the room is full"),
    Pong(t0=12.5, t1=100.0, t2=100.25),
    Pong(t0=None, t1=100.0, t2=100.0),
    Pong(t1=100.0, t2=100.0, id="r7"),
    Offer(sdp=SDP),
    Offer(sdp=SDP, transceivers=(PUBLISH_SLOT, SUBSCRIBE_SLOT)),
    Answer(sdp=SDP),
    Candidate(candidate="", sdp_mid=None, sdp_mline_index=None),
    ActiveSpeakers(speakers=(SpeakerInfo(participant_sid="PA_a", identity="alice", level=0.75),), dominant_sid="PA_a"),
    ActiveSpeakers(),
    NetworkQuality(levels=(
        NetworkQualityInfo(participant_sid="PA_a", level=4,
                           uplink=LinkQuality(level=5, loss=0.0, jitter_ms=3.5, rtt_ms=40.2),
                           downlink=LinkQuality(level=4, loss=0.021, jitter_ms=12.0, rtt_ms=40.2)),
        NetworkQualityInfo(participant_sid="PA_b", level=0, uplink=LinkQuality(level=0)),
        NetworkQualityInfo(participant_sid="PA_c"),
    )),
    TrackSwitchedOff(sid="TR_a", reason="congestion"),
    TrackSwitchedOn(sid="TR_a"),
    Data(from_sid="PA_a", from_identity="alice", topic="chat", payload="hello"),
    PlaybackStateMsg(content="/srv/film.mp4", title="Film", playing=True, position=12.5, at=1700000003.0, seq=4,
                     waiting_for=("alice",), control="everyone", on_stall="continue", duration=5400.0,
                     server_time=1700000002.6),
    PlaybackStateMsg(server_time=1.0),
    PublishConstraints(sid="TR_v", max_width=640, max_height=352, max_framerate=15, max_bitrate=300_000),
    PublishConstraints(sid="TR_v", paused=True),
]


def wire(msg: ClientMessage | ServerMessage) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(encode(msg))
    return obj


def client_error(obj: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(obj)
    return caught.value


def test_samples_cover_every_message_type() -> None:
    assert {m.TYPE for m in CLIENT_SAMPLES} == set(CLIENT_MESSAGE_TYPES)
    assert {m.TYPE for m in SERVER_SAMPLES} == set(SERVER_MESSAGE_TYPES)


@pytest.mark.parametrize("msg", CLIENT_SAMPLES, ids=lambda m: m.TYPE)
def test_client_message_round_trip(msg: ClientMessage) -> None:
    assert type(msg).from_json(msg.to_json()) == msg
    assert parse_client_message(json.loads(encode(msg))) == msg
    assert parse_client_message(decode(encode(msg))) == msg


@pytest.mark.parametrize("msg", SERVER_SAMPLES, ids=lambda m: m.TYPE)
def test_server_message_round_trip(msg: ServerMessage) -> None:
    assert type(msg).from_json(msg.to_json()) == msg
    assert parse_server_message(json.loads(encode(msg))) == msg


@pytest.mark.parametrize("value", [TRACK, MIC, ALICE, BOB, ROOM, GRANTS], ids=lambda v: type(v).__name__)
def test_value_type_round_trip(value: TrackInfo | ParticipantInfo | RoomInfo | GrantsInfo) -> None:
    assert type(value).from_json(json.loads(json.dumps(value.to_json()))) == value


def test_encode_is_compact_json_with_type_and_version() -> None:
    text = encode(Subscribe(track_sid="TR_1"))
    assert text == '{"type":"subscribe","v":1,"track_sid":"TR_1"}'
    assert wire(TrackPublished(participant_sid="PA_a", track=MIC))["cid"] is None
    assert wire(ALICE_JOINED)["participant"]["tracks"][1]["kind"] == "audio"


ALICE_JOINED = SERVER_SAMPLES[0]


def test_participant_tracks_are_a_tuple_and_a_json_array() -> None:
    assert isinstance(ParticipantInfo.from_json(ALICE.to_json()).tracks, tuple)
    assert isinstance(ALICE.to_json()["tracks"], list)


def test_offer_answer_candidate_parse_in_both_directions() -> None:
    for msg in (Offer(sdp=SDP), Answer(sdp=SDP), Candidate(candidate="")):
        assert parse_client_message(wire(msg)) == parse_server_message(wire(msg)) == msg


def test_direction_is_enforced() -> None:
    assert isinstance(client_error(wire(Pong(t1=1.0, t2=2.0))), UnknownMessageType)
    with pytest.raises(UnknownMessageType):
        parse_server_message(wire(Join(token=SECRET)))


def test_unknown_extra_fields_are_ignored() -> None:
    obj = wire(Publish(cid="c", kind="audio", source="microphone"))
    obj["simulcast"] = {"layers": [1, 2, 3]}
    assert parse_client_message(obj) == Publish(cid="c", kind="audio", source="microphone")
    joined = wire(ALICE_JOINED)
    joined["participant"]["tracks"][0]["codec"] = "vp8"
    joined["room"]["metadata"] = "x"
    assert parse_server_message(joined) == ALICE_JOINED


def test_optional_fields_take_their_defaults() -> None:
    assert parse_client_message({"type": "publish", "v": 1, "cid": "c", "kind": "audio", "source": "content"}) == (
        Publish(cid="c", kind="audio", source="content", name="", muted=False)
    )
    assert parse_client_message({"type": "ping", "v": 1}) == Ping(t0=None)
    assert parse_client_message({"type": "candidate", "v": 1, "candidate": ""}) == Candidate(candidate="")


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"type": "join", "v": 1}, "join.token"),
        ({"type": "publish", "v": 1, "cid": "c", "kind": "audio"}, "publish.source"),
        ({"type": "mute", "v": 1, "track_sid": "TR_1"}, "mute.muted"),
        ({"type": "ping"}, "message.v"),
        ({"v": 1}, "message.type"),
    ],
)
def test_missing_required_field_is_named(obj: dict[str, Any], field: str) -> None:
    error = client_error(obj)
    assert error.code == "bad_message"
    assert error.message.startswith(field + ":")


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"type": "join", "v": 1, "token": 5}, "join.token"),
        ({"type": "join", "v": 1, "token": ""}, "join.token"),
        ({"type": "offer", "v": 1, "sdp": ["v=0"]}, "offer.sdp"),
        ({"type": "publish", "v": 1, "cid": "c", "kind": "smell", "source": "camera"}, "publish.kind"),
        ({"type": "publish", "v": 1, "cid": "c", "kind": "audio", "source": "radio"}, "publish.source"),
        ({"type": "publish", "v": 1, "cid": "c", "kind": "audio", "source": "camera", "muted": 1}, "publish.muted"),
        ({"type": "publish", "v": 1, "cid": "c", "kind": "audio", "source": "camera", "name": None}, "publish.name"),
        ({"type": "mute", "v": 1, "track_sid": "TR_1", "muted": "yes"}, "mute.muted"),
        ({"type": "unpublish", "v": 1, "track_sid": "x" * 129}, "unpublish.track_sid"),
        ({"type": "subscribe", "v": 1, "track_sid": ""}, "subscribe.track_sid"),
        ({"type": "ping", "v": 1, "t0": "now"}, "ping.t0"),
        ({"type": "ping", "v": 1, "t0": True}, "ping.t0"),
        ({"type": "ping", "v": 1, "t0": 10**400}, "ping.t0"),
        ({"type": "ping", "v": 1, "t0": 1e400}, "ping.t0"),
        ({"type": "candidate", "v": 1, "candidate": "", "sdp_mline_index": -1}, "candidate.sdp_mline_index"),
        ({"type": "candidate", "v": 1, "candidate": "", "sdp_mline_index": 0.5}, "candidate.sdp_mline_index"),
        ({"type": "candidate", "v": 1, "candidate": "", "sdp_mid": 0}, "candidate.sdp_mid"),
        ({"type": "unsubscribe", "v": 1, "track_sid": "TR_\ud800"}, "unsubscribe.track_sid"),
        ({"type": "leave", "v": True}, "message.v"),
        ({"type": "leave", "v": "1"}, "message.v"),
        ({"type": 7, "v": 1}, "message.type"),
        ({"type": "dance", "v": 1}, "message.type"),
        ([1, 2], "message"),
        ("join", "message"),
    ],
)
def test_bad_field_is_named(obj: object, field: str) -> None:
    error = client_error(obj)
    assert error.code == "bad_message"
    assert error.message.startswith(field + ":"), error.message


def test_nested_errors_name_the_path() -> None:
    joined = wire(ALICE_JOINED)
    joined["participants"][1]["tracks"] = [{"sid": "TR_x", "kind": "audio", "source": "microphone", "muted": 0}]
    with pytest.raises(ProtocolError, match=r"^bad_message: joined\.participants\[1\]\.tracks\[0\]\.muted:"):
        parse_server_message(joined)
    joined = wire(ALICE_JOINED)
    joined["room"]["max_participants"] = 0
    with pytest.raises(ProtocolError, match=r"joined\.room\.max_participants: must be between"):
        parse_server_message(joined)
    joined = wire(ALICE_JOINED)
    joined["ping_interval"] = 0
    with pytest.raises(ProtocolError, match=r"joined\.ping_interval: must be greater than 0"):
        parse_server_message(joined)
    with pytest.raises(ProtocolError, match=r"^bad_message: TrackInfo: expected a JSON object"):
        TrackInfo.from_json([])


def test_other_versions_are_unsupported() -> None:
    for version in (0, 2, 99):
        error = client_error({"type": "leave", "v": version})
        assert error.code == "unsupported_version"
        assert "message.v" in error.message


def test_length_caps() -> None:
    assert parse_client_message({"type": "join", "v": 1, "token": "t" * MAX_TOKEN_BYTES}) == Join(
        token="t" * MAX_TOKEN_BYTES
    )
    assert "join.token: longer than 8192 bytes" in client_error({"type": "join", "v": 1, "token": "é" * 4097}).message
    assert parse_client_message({"type": "offer", "v": 1, "sdp": "s" * MAX_SDP_BYTES}) == Offer(sdp="s" * MAX_SDP_BYTES)
    assert client_error({"type": "offer", "v": 1, "sdp": "s" * (MAX_SDP_BYTES + 1)}).message.startswith("offer.sdp:")
    name = "名" * 64  # a name people read: tvapp.core.text.MAX_NAME_CHARS characters
    assert parse_client_message({"type": "publish", "v": 1, "cid": "c", "kind": "audio", "source": "camera",
                                 "name": name}) == Publish(cid="c", kind="audio", source="camera", name=name)  # fmt: skip
    too_long = client_error({"type": "publish", "v": 1, "cid": "c", "kind": "audio", "source": "camera",
                             "name": name + "名"})
    assert too_long.code == "invalid_name" and too_long.message == "publish.name: longer than 64 characters"


def test_errors_never_echo_the_token() -> None:
    for token in (SECRET * 200, SECRET + "\ud800"):
        error = client_error({"type": "join", "v": 1, "token": token})
        assert SECRET not in str(error) and "SECRETSIGNATURE" not in error.message
    assert SECRET not in repr(Join(token=SECRET))
    assert SECRET not in str(client_error({"type": SECRET, "v": 1}))


def test_unknown_type_is_named_only_when_it_looks_like_a_type() -> None:
    assert "'dance'" in client_error({"type": "dance", "v": 1}).message
    assert "<script>" not in client_error({"type": "<script>", "v": 1}).message


def test_decode_refuses_oversized_text_and_bad_json() -> None:
    head = '{"type":"leave","v":1,"pad":"'
    fits = head + "x" * (MAX_MESSAGE_BYTES - len(head) - 2) + '"}'
    assert len(fits.encode()) == MAX_MESSAGE_BYTES
    assert parse_client_message(decode(fits)) == Leave()
    with pytest.raises(ProtocolError, match="message_too_big"):
        decode(fits + " ")
    too_big = head + "x" * (MAX_MESSAGE_BYTES - len(head) - 50) + "é" * 40 + '"}'
    assert len(too_big) <= MAX_MESSAGE_BYTES < len(too_big.encode())
    with pytest.raises(ProtocolError) as caught:
        decode(too_big)
    assert caught.value.code == "message_too_big"
    assert decode(too_big, max_bytes=None) is not None
    for text in ("", "{", "{'type': 'leave'}", "NaN", '{"v": Infinity}', "[" * 100_000, "\ud800"):
        with pytest.raises(ProtocolError) as caught:
            decode(text, max_bytes=None)
        assert caught.value.code in ("bad_message", "message_too_big")


def test_construction_checks_the_same_rules() -> None:
    with pytest.raises(ProtocolError, match="TrackInfo.kind"):
        TrackInfo(sid="TR_1", kind="smell", source="camera")  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="ParticipantInfo.name"):
        ParticipantInfo(sid="PA_1", identity="x", name="n" * 129, joined_at=0.0)
    with pytest.raises(ProtocolError, match="ParticipantInfo.tracks"):
        ParticipantInfo(sid="PA_1", identity="x", joined_at=0.0, tracks=[TRACK])  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="Pong.t1"):
        Pong(t1=float("nan"), t2=0.0)
    with pytest.raises(ValueError):
        Error(code="", message="empty code")
    with pytest.raises(TypeError):
        Subscribe("TR_1")  # type: ignore[call-arg]


def test_messages_are_frozen() -> None:
    msg = Mute(track_sid="TR_1", muted=True)
    with pytest.raises(AttributeError):
        msg.muted = False  # type: ignore[misc]


# --- properties --------------------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
ALL_TYPES = sorted(set(CLIENT_MESSAGE_TYPES) | set(SERVER_MESSAGE_TYPES)) + ["", "JOIN", "hello"]
FIELD_NAMES = sorted(
    {name for m in CLIENT_SAMPLES + SERVER_SAMPLES for name in m.to_json()} | {"participant", "track", "room"}
)


@st.composite
def message_like(draw: st.DrawFn) -> dict[str, object]:
    """Draw a dict shaped like a message: a real or near type, a version, real field names with random values."""
    obj: dict[str, object] = dict(draw(st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6)))
    obj["type"] = draw(st.sampled_from(ALL_TYPES))
    obj["v"] = draw(st.sampled_from([1, 1, 1, 2, 0, "1", True, None, 1.0]))
    return obj


@st.composite
def mutated_sample(draw: st.DrawFn) -> dict[str, object]:
    """Draw a valid message with one field replaced by a random JSON value or removed."""
    obj = wire(draw(st.sampled_from(CLIENT_SAMPLES + SERVER_SAMPLES)))
    keys = sorted(obj)
    key = draw(st.sampled_from(keys))
    if draw(st.booleans()):
        del obj[key]
    else:
        obj[key] = draw(json_values)
    return obj


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, message_like(), mutated_sample()))
def test_parsers_raise_only_protocol_error(obj: object) -> None:
    for parse in (parse_client_message, parse_server_message):
        try:
            msg = parse(obj)
        except ProtocolError as error:
            assert error.code in ("bad_message", "unsupported_version")
            assert error.message.split(":")[0]
        else:
            assert parse(json.loads(encode(msg))) == msg


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_decode_raises_only_protocol_error(text: str) -> None:
    try:
        decode(text)
    except ProtocolError as error:
        assert error.code == "bad_message"


def test_data_payload_over_the_cap_is_data_too_big() -> None:
    err = client_error({"type": "send_data", "v": 1, "payload": "é" * (MAX_DATA_BYTES // 2 + 1)})
    assert err.code == "data_too_big"
    assert "send_data.payload" in str(err)


@pytest.mark.parametrize(
    ("to", "fragment"),
    [("bob", "expected an array"), ([""], "to[0]: must not be empty"), ([1], "to[0]: expected a string"),
     (["x"] * 101, "more than 100 items")],
)  # fmt: skip
def test_data_recipients_are_checked(to: object, fragment: str) -> None:
    err = client_error({"type": "send_data", "v": 1, "payload": "p", "to": to})
    assert err.code == "bad_message"
    assert fragment in str(err)


def test_transceiver_direction_is_a_choice() -> None:
    slot = {"mid": "0", "direction": "sideways", "track_sid": "T", "participant_sid": "P", "kind": "video"}
    with pytest.raises(ProtocolError, match="direction"):
        parse_server_message({"type": "offer", "v": 1, "sdp": SDP, "transceivers": [slot]})


def test_ice_server_credential_is_not_in_repr() -> None:
    assert "hunter2" not in repr(IceServer(urls="turn:t", username="u", credential="hunter2"))


def test_playback_state_round_trips_through_its_message() -> None:
    state = PlaybackState(content="/media/film.mp4", title="Film", playing=True, position=12.5, rate=1.0,
                          at=1700000003.0, seq=4, waiting_for=("bob",), control="everyone", on_stall="continue",
                          duration=5400.0)
    msg = PlaybackStateMsg.of(state, server_time=1700000002.5)
    assert msg.server_time == 1700000002.5
    assert msg.state() == state
    assert PlaybackStateMsg.from_json(msg.to_json()).state() == state


def test_resume_tokens_stay_out_of_repr_and_have_a_size_limit() -> None:
    joined = Joined(room=ROOM, participant=ALICE, grants=GRANTS, server_time=1.0, ping_interval=10.0,
                    idle_timeout=30.0, resume_token="RESUME-SECRET")
    assert "RESUME-SECRET" not in repr(joined)
    assert "RESUME-SECRET" not in repr(Join(token=SECRET, resume_token="RESUME-SECRET"))
    wire = {**json.loads(encode(Join(token=SECRET))), "resume_token": "r" * (MAX_RESUME_TOKEN_CHARS + 1)}
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(wire)
    assert "resume_token" in caught.value.message


def test_media_restart_generation_must_be_a_non_negative_integer() -> None:
    for bad_value in (-1, "1", 1.5, None, MAX_MEDIA_GENERATION + 1):
        with pytest.raises(ProtocolError):
            parse_client_message({"type": "media_restart", "v": 1, "generation": bad_value})


@pytest.mark.parametrize("level", [6, -1, 2.5, "5", True])
def test_a_network_quality_level_is_an_integer_from_0_to_5_or_null(level: object) -> None:
    obj = {"type": "network_quality", "v": 1, "levels": [{"participant_sid": "PA_a", "level": level}]}
    with pytest.raises(ProtocolError) as caught:
        parse_server_message(obj)
    assert caught.value.code == "bad_message" and "levels[0].level" in str(caught.value)
    obj["levels"][0]["level"] = None
    assert parse_server_message(obj) == NetworkQuality(levels=(NetworkQualityInfo(participant_sid="PA_a"),))


@pytest.mark.parametrize(("field", "value"), [
    ("width", -1), ("width", 16_385), ("height", 1.5), ("height", "360"), ("width", True), ("visible", 1),
    ("priority", "urgent"), ("priority", None), ("sid", ""),
])
def test_track_settings_are_checked_strictly(field: str, value: object) -> None:
    obj = {"type": "track_settings", "v": 1, "sid": "TR_v", "width": 640, "height": 360, field: value}
    error = client_error(obj)
    assert error.code == "bad_message" and f"track_settings.{field}" in error.message


def test_track_settings_take_the_largest_size_and_default_to_visible_standard() -> None:
    obj = {"type": "track_settings", "v": 1, "sid": "TR_v", "width": 16_384, "height": 0}
    assert parse_client_message(obj) == TrackSettings(sid="TR_v", width=16_384, height=0, visible=True,
                                                      priority="standard")


@pytest.mark.parametrize(("field", "bad_value", "good_value"), [
    ("max_width", 0, 16_384), ("max_width", 16_385, 1), ("max_height", 16_385, 16_384), ("max_framerate", 241, 240),
    ("max_framerate", 0, 1), ("max_bitrate", 0, 1), ("max_bitrate", 1_000_000_001, 1_000_000_000), ("paused", 1, True),
])
def test_publish_constraints_limits(field: str, bad_value: object, good_value: object) -> None:
    base = {"type": "publish_constraints", "v": 1, "sid": "TR_v"}
    with pytest.raises(ProtocolError) as refused:
        parse_server_message({**base, field: bad_value})
    assert f"publish_constraints.{field}" in refused.value.message
    assert getattr(parse_server_message({**base, field: good_value}), field) == good_value
    assert parse_server_message({**base, field: None if field != "paused" else False}) == PublishConstraints(sid="TR_v")

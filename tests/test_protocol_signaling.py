"""Tests for tvapp.protocol.signaling: every rule of the server table, the client side, timeouts driven by `now`."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvapp.protocol.messages import (
    CLIENT_MESSAGE_TYPES,
    MAX_MESSAGE_BYTES,
    SERVER_MESSAGE_TYPES,
    ClientMessage,
    Error,
    GrantsInfo,
    Join,
    Joined,
    Leave,
    Mute,
    Offer,
    ParticipantInfo,
    ParticipantJoined,
    Ping,
    Pong,
    ProtocolError,
    Publish,
    Removed,
    RoomCompleted,
    RoomInfo,
    ServerMessage,
    Subscribe,
    TrackInfo,
    TrackPublished,
    encode,
    parse_server_message,
)
from tvapp.protocol.signaling import (
    SERVER_RULES,
    ClientConnection,
    CloseCode,
    ConnectionState,
    ConnectionStateError,
    Input,
    ServerConnection,
)
from tvapp.testing.signaling_pair import SignalingPair

TOKEN = "header.payload.signature-TOPSECRET"
ME = ParticipantInfo(sid="PA_me", identity="me", name="Me", joined_at=100.0)
JOINED = Joined(
    room=RoomInfo(sid="RM_1", name="den", status="open", max_participants=6),
    participant=ME,
    grants=GrantsInfo(room="den", join=True, publish=True, subscribe=True, publish_data=True, host=False,
                      hidden=False),  # fmt: skip
    participants=(),
    server_time=100.0,
    ping_interval=10.0,
    idle_timeout=30.0,
)
A, J, OK, X = (ConnectionState.AWAITING_JOIN, ConnectionState.JOINING, ConnectionState.JOINED,
               ConnectionState.CLOSED)  # fmt: skip


def sent(conn: ServerConnection) -> list[ServerMessage]:
    """Drain and parse what the server queued (everything it sends must parse as a server message)."""
    return [parse_server_message(json.loads(text)) for text in conn.data_to_send()]


def errors(conn: ServerConnection) -> list[str]:
    return [m.code for m in sent(conn) if isinstance(m, Error)]


def server_in(state: ConnectionState, now: float = 0.0) -> ServerConnection:
    """Return a server connection driven into ``state`` through its public API, with its queues drained."""
    conn = ServerConnection(now)
    if state is not A:
        conn.receive_text(encode(Join(token=TOKEN)), now)
        assert conn.events_received() == [Join(token=TOKEN)]
    if state in (OK, X):
        conn.accept_join(JOINED)
    if state is X:
        conn.receive_text(encode(Leave()), now)
        conn.events_received()
    conn.data_to_send()
    assert conn.state is state
    return conn


# --- server: one test per rule ------------------------------------------------------------------------------------


def test_awaiting_join_then_valid_join_is_joining_with_the_join_delivered() -> None:
    conn = ServerConnection(0.0)
    assert conn.state is A
    conn.receive_text(encode(Join(token=TOKEN)), 1.0)
    assert conn.state is J
    assert conn.events_received() == [Join(token=TOKEN)]
    assert conn.events_received() == []
    assert conn.data_to_send() == []
    assert conn.close_code is None


@pytest.mark.parametrize(
    "text",
    [encode(Ping(t0=1.0)), encode(Leave()), encode(Subscribe(track_sid="TR_1")), "not json", "[]",
     '{"type":"join","v":1}', '{"type":"join","v":2,"token":"t"}', '{"type":"hello","v":1}'],
)  # fmt: skip
def test_awaiting_join_then_anything_else_errors_and_closes_1008(text: str) -> None:
    conn = ServerConnection(0.0)
    conn.receive_text(text, 1.0)
    assert conn.state is X
    assert conn.events_received() == []
    assert len(errors(conn)) == 1
    assert conn.close_code == 1008 and CloseCode.POLICY_VIOLATION.value == 1008
    assert conn.close_reason


def test_unsupported_version_is_reported_as_such() -> None:
    conn = ServerConnection(0.0)
    conn.receive_text('{"type":"join","v":2,"token":"t"}', 0.0)
    assert errors(conn) == ["unsupported_version"]


def test_joining_accept_join_queues_joined_and_is_joined() -> None:
    conn = server_in(J)
    conn.accept_join(JOINED)
    assert conn.state is OK
    assert sent(conn) == [JOINED]
    assert conn.close_code is None


def test_joining_reject_join_queues_the_error_and_closes_1008() -> None:
    conn = server_in(J)
    conn.reject_join("room_full", "the room is full")
    assert conn.state is X
    assert sent(conn) == [Error(code="room_full", message="the room is full")]
    assert conn.close_code == 1008


@pytest.mark.parametrize("msg", [Ping(t0=1.0), Leave(), Join(token=TOKEN), Subscribe(track_sid="TR_1")])
def test_joining_then_any_message_is_bad_message_and_stays_joining(msg: ClientMessage) -> None:
    conn = server_in(J)
    conn.receive_text(encode(msg), 1.0)
    assert conn.state is J
    assert conn.events_received() == []
    assert errors(conn) == ["bad_message"]
    assert conn.close_code is None
    conn.accept_join(JOINED)
    assert conn.state is OK


def test_joining_then_malformed_message_is_bad_message_and_stays_joining() -> None:
    conn = server_in(J)
    conn.receive_text("{", 1.0)
    assert (conn.state, errors(conn), conn.close_code) == (J, ["bad_message"], None)


@pytest.mark.parametrize(
    "msg",
    [Ping(t0=None), Offer(sdp="v=0\r\n"), Publish(cid="c1", kind="video", source="camera"), Mute(track_sid="T", muted=True)],
)  # fmt: skip
def test_joined_then_valid_message_is_delivered(msg: ClientMessage) -> None:
    conn = server_in(OK)
    conn.receive_text(encode(msg), 1.0)
    assert conn.events_received() == [msg]
    assert conn.state is OK
    assert conn.data_to_send() == []


@pytest.mark.parametrize(
    "text",
    ['{"type":"mute","v":1,"track_sid":"T"}', "{{", '"just a string"', '{"type":"dance","v":1}',
     '{"type":"ping","v":3}', '{"type":"pong","v":1,"t1":1,"t2":2}'],
)  # fmt: skip
def test_joined_then_bad_message_is_an_error_and_stays_open(text: str) -> None:
    conn = server_in(OK)
    conn.receive_text(text, 1.0)
    assert conn.events_received() == []
    assert len(errors(conn)) == 1
    assert conn.state is OK
    assert conn.close_code is None


def test_joined_then_join_again_is_already_joined() -> None:
    conn = server_in(OK)
    conn.receive_text(encode(Join(token=TOKEN)), 1.0)
    [error] = sent(conn)
    assert isinstance(error, Error)
    assert (error.code, error.message) == ("bad_message", "already joined")
    assert conn.state is OK
    assert conn.events_received() == []


def test_joined_then_leave_is_delivered_and_closes_1000() -> None:
    conn = server_in(OK)
    conn.receive_text(encode(Leave()), 1.0)
    assert conn.events_received() == [Leave()]
    assert conn.state is X
    assert conn.close_code == 1000
    assert conn.data_to_send() == []


@pytest.mark.parametrize("state", [A, J, OK])
def test_binary_data_errors_and_closes_1003_in_any_state(state: ConnectionState) -> None:
    conn = server_in(state)
    conn.receive_bytes(b'{"type":"leave","v":1}', 1.0)
    assert conn.state is X
    assert errors(conn) == ["bad_message"]
    assert conn.close_code == 1003 and CloseCode.UNSUPPORTED_DATA.value == 1003
    assert conn.events_received() == []


@pytest.mark.parametrize("state", [A, J, OK])
def test_text_over_the_limit_is_message_too_big_and_closes_1009(state: ConnectionState) -> None:
    conn = server_in(state)
    conn.receive_text(json.dumps({"type": "ping", "v": 1, "pad": "x" * MAX_MESSAGE_BYTES}), 1.0)
    assert conn.state is X
    assert errors(conn) == ["message_too_big"]
    assert conn.close_code == 1009
    assert conn.events_received() == []


@pytest.mark.parametrize("state", [A, J])
def test_join_timeout_errors_and_closes_1008(state: ConnectionState) -> None:
    conn = ServerConnection(50.0, join_timeout=5.0)
    if state is J:
        conn.receive_text(encode(Join(token=TOKEN)), 54.0)
        conn.data_to_send()
    assert conn.next_deadline() == 55.0
    conn.check_timeouts(54.999)
    assert conn.state is state and conn.data_to_send() == []
    conn.check_timeouts(55.0)
    assert conn.state is X
    assert errors(conn) == ["join_timeout"]
    assert conn.close_code == 1008
    assert not conn.idle_dropped
    assert conn.next_deadline() == math.inf


def test_join_deadline_does_not_move_with_traffic() -> None:
    conn = ServerConnection(0.0, join_timeout=10.0)
    conn.receive_text(encode(Join(token=TOKEN)), 9.0)
    conn.receive_text(encode(Ping()), 9.5)
    assert conn.next_deadline() == 10.0


def test_joined_silent_for_idle_timeout_closes_1001_without_error() -> None:
    conn = ServerConnection(0.0, idle_timeout=30.0)
    conn.receive_text(encode(Join(token=TOKEN)), 2.0)
    conn.accept_join(JOINED)
    conn.data_to_send()
    assert conn.next_deadline() == 32.0
    conn.receive_text(encode(Ping(t0=1.0)), 20.0)
    assert conn.next_deadline() == 50.0
    conn.receive_text("garbage counts as activity too", 25.0)
    conn.data_to_send()
    assert conn.next_deadline() == 55.0
    conn.check_timeouts(54.0)
    assert conn.state is OK
    conn.check_timeouts(conn.next_deadline())
    assert conn.state is X
    assert conn.data_to_send() == []
    assert (conn.close_code, conn.close_reason) == (1001, "idle timeout")
    assert conn.idle_dropped


def test_closed_ignores_everything_received() -> None:
    conn = server_in(X)
    conn.receive_text(encode(Ping()), 1.0)
    conn.receive_text("{", 1.0)
    conn.receive_bytes(b"x", 1.0)
    conn.check_timeouts(10_000.0)
    conn.close(4000, "again")
    assert conn.events_received() == [] and conn.data_to_send() == []
    assert (conn.state, conn.close_code) == (X, 1000)


def test_every_rule_in_the_table_is_exercised_by_a_test_above() -> None:
    exercised = {
        (A, Input.JOIN), (A, Input.MESSAGE), (A, Input.LEAVE), (A, Input.BAD_MESSAGE), (A, Input.BINARY),
        (A, Input.TOO_BIG), (A, Input.JOIN_TIMEOUT),
        (J, Input.JOIN), (J, Input.MESSAGE), (J, Input.LEAVE), (J, Input.BAD_MESSAGE), (J, Input.BINARY),
        (J, Input.TOO_BIG), (J, Input.ACCEPT_JOIN), (J, Input.REJECT_JOIN), (J, Input.JOIN_TIMEOUT),
        (OK, Input.JOIN), (OK, Input.MESSAGE), (OK, Input.LEAVE), (OK, Input.BAD_MESSAGE), (OK, Input.BINARY),
        (OK, Input.TOO_BIG), (OK, Input.IDLE_TIMEOUT),
    }  # fmt: skip
    assert set(SERVER_RULES) == exercised
    for rule in SERVER_RULES.values():
        assert (rule.next_state is X) == (rule.close is not None)


# --- server: owner's calls ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [A, OK, X])
def test_accept_and_reject_only_while_joining(state: ConnectionState) -> None:
    conn = server_in(state)
    with pytest.raises(ConnectionStateError):
        conn.accept_join(JOINED)
    with pytest.raises(ConnectionStateError):
        conn.reject_join("nope", "no")
    assert conn.state is state


@pytest.mark.parametrize("state", [A, J, X])
def test_send_only_when_joined(state: ConnectionState) -> None:
    conn = server_in(state)
    with pytest.raises(ConnectionStateError):
        conn.send(RoomCompleted(room_sid="RM_1"))
    assert conn.data_to_send() == []


def test_send_queues_in_order_and_refuses_joined() -> None:
    conn = server_in(OK)
    conn.send(ParticipantJoined(participant=ME))
    conn.send(RoomCompleted(room_sid="RM_1"))
    assert sent(conn) == [ParticipantJoined(participant=ME), RoomCompleted(room_sid="RM_1")]
    with pytest.raises(ConnectionStateError):
        conn.send(JOINED)


def test_pong_carries_receive_time_and_send_time() -> None:
    conn = server_in(OK)
    conn.receive_text(encode(Ping(t0=5.0)), 10.0)
    conn.receive_text(encode(Ping(t0=5.0)), 11.0)
    first, second = conn.events_received()
    assert isinstance(first, Ping) and isinstance(second, Ping)
    conn.pong(second, 11.5)
    conn.pong(first, 12.0)
    assert sent(conn) == [Pong(t0=5.0, t1=11.0, t2=11.5), Pong(t0=5.0, t1=12.0, t2=12.0)]
    conn.pong(Ping(t0=None), 13.0)
    assert sent(conn) == [Pong(t0=None, t1=13.0, t2=13.0)]


def test_pong_echoes_the_ping_id() -> None:
    conn = server_in(OK)
    conn.receive_text(encode(Ping(id="r1")), 10.0)
    [ping] = conn.events_received()
    assert isinstance(ping, Ping)
    conn.pong(ping, 10.5)
    assert sent(conn) == [Pong(t0=None, t1=10.0, t2=10.5, id="r1")]


def test_pong_after_close_is_dropped_and_before_joined_refused() -> None:
    conn = server_in(OK)
    conn.receive_text(encode(Ping(t0=1.0)), 1.0)
    [ping] = conn.events_received()
    assert isinstance(ping, Ping)
    conn.close(4001, "removed")
    conn.pong(ping, 2.0)
    assert conn.data_to_send() == []
    with pytest.raises(ConnectionStateError):
        server_in(J).pong(Ping(), 0.0)


def test_close_by_the_server_sends_the_error_first() -> None:
    conn = server_in(OK)
    conn.send(Removed(reason="removed by host"))
    conn.close(4001, "removed", Error(code="removed", message="removed by host"))
    assert sent(conn) == [Removed(reason="removed by host"), Error(code="removed", message="removed by host")]
    assert (conn.state, conn.close_code, conn.close_reason) == (X, 4001, "removed")
    assert not conn.idle_dropped


def test_close_without_error_in_any_open_state() -> None:
    for state in (A, J, OK):
        conn = server_in(state)
        conn.close(1001, "server shutting down")
        assert (conn.state, conn.close_code, conn.data_to_send()) == (X, 1001, [])


def test_close_refuses_bad_codes_and_long_reasons() -> None:
    conn = server_in(OK)
    with pytest.raises(ValueError):
        conn.close(999, "x")
    with pytest.raises(ValueError):
        conn.close(1000, "é" * 62)
    assert conn.state is OK


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ServerConnection(0.0, join_timeout=0.0)
    with pytest.raises(ValueError):
        ServerConnection(0.0, idle_timeout=-1.0)


# --- client --------------------------------------------------------------------------------------------------------


def test_client_queues_join_first() -> None:
    client = ClientConnection(TOKEN)
    assert client.state is A
    assert [json.loads(t) for t in client.data_to_send()] == [{"type": "join", "v": 1, "token": TOKEN, "auto_subscribe": True,
                                                                    "resume_token": None}]
    assert client.data_to_send() == []


def test_client_joins_and_receives_events() -> None:
    client = ClientConnection(TOKEN)
    client.receive_text(encode(JOINED), 1.0)
    assert client.state is OK
    published = TrackPublished(participant_sid="PA_x", track=TrackInfo(sid="TR_1", kind="audio", source="microphone"))
    client.receive_text(encode(published), 2.0)
    client.receive_text(encode(RoomCompleted(room_sid="RM_1")), 3.0)
    assert client.events_received() == [JOINED, published, RoomCompleted(room_sid="RM_1")]
    assert client.state is OK
    assert client.last_received == 3.0


def test_client_error_before_joined_closes() -> None:
    client = ClientConnection(TOKEN)
    client.receive_text(encode(Error(code="invalid_token", message="bad token")), 1.0)
    assert client.state is X
    assert client.events_received() == [Error(code="invalid_token", message="bad token")]
    client.receive_text(encode(JOINED), 2.0)
    assert client.state is X and client.events_received() == []


def test_client_error_after_joined_is_only_an_event() -> None:
    client = ClientConnection(TOKEN)
    client.receive_text(encode(JOINED), 1.0)
    client.receive_text(encode(Error(code="bad_message", message="x")), 2.0)
    assert client.state is OK
    assert len(client.events_received()) == 2


def test_client_removed_closes() -> None:
    client = ClientConnection(TOKEN)
    client.receive_text(encode(JOINED), 1.0)
    client.receive_text(encode(Removed(reason="bye")), 2.0)
    assert client.state is X
    assert client.events_received()[-1] == Removed(reason="bye")
    with pytest.raises(ConnectionStateError):
        client.send(Ping())


def test_client_ignores_unknown_types_from_a_newer_server() -> None:
    client = ClientConnection(TOKEN)
    client.receive_text('{"type":"reaction","v":1,"emoji":"x"}', 1.0)
    client.receive_text(encode(JOINED), 2.0)
    client.receive_text('{"type":"speakers_changed","v":1,"speakers":[]}', 3.0)
    assert client.events_received() == [JOINED]
    assert client.state is OK


@pytest.mark.parametrize(
    "text",
    ["{", '{"type":"pong","v":1,"t1":"x","t2":1}', '{"type":"joined","v":2}', encode(RoomCompleted(room_sid="R"))],
)
def test_client_raises_on_a_server_breaking_the_protocol_before_joined(text: str) -> None:
    client = ClientConnection(TOKEN)
    with pytest.raises(ProtocolError):
        client.receive_text(text, 1.0)
    assert client.state is A
    assert client.events_received() == []


def test_client_raises_on_a_second_joined() -> None:
    client = ClientConnection(TOKEN)
    client.receive_text(encode(JOINED), 1.0)
    with pytest.raises(ProtocolError):
        client.receive_text(encode(JOINED), 2.0)
    assert client.state is OK


def test_client_sends_only_when_joined_and_leave_closes() -> None:
    client = ClientConnection(TOKEN)
    client.data_to_send()
    with pytest.raises(ConnectionStateError):
        client.send(Ping())
    client.receive_text(encode(JOINED), 1.0)
    with pytest.raises(ConnectionStateError):
        client.send(Join(token=TOKEN))
    client.send(Subscribe(track_sid="TR_1"))
    client.send(Leave())
    assert client.state is X
    assert [json.loads(t)["type"] for t in client.data_to_send()] == ["subscribe", "leave"]
    with pytest.raises(ConnectionStateError):
        client.send(Ping())


# --- the pair -------------------------------------------------------------------------------------------------------


def test_pair_join_publish_ping_leave() -> None:
    pair = SignalingPair(TOKEN, now=0.0)
    assert pair.join(JOINED, now=1.0) == [JOINED]
    assert (pair.client.state, pair.server.state) == (OK, OK)

    pair.client.send(Publish(cid="cam", kind="video", source="camera"))
    pair.client.send(Ping(t0=2.0))
    server_events, _ = pair.pump(2.0)
    publish, ping = server_events
    assert isinstance(publish, Publish) and isinstance(ping, Ping)
    track = TrackInfo(sid="TR_cam", kind="video", source="camera")
    pair.server.send(TrackPublished(participant_sid="PA_me", track=track, cid=publish.cid))
    pair.server.pong(ping, 2.5)
    _, client_events = pair.pump(2.5)
    assert client_events == [TrackPublished(participant_sid="PA_me", track=track, cid="cam"),
                             Pong(t0=2.0, t1=2.0, t2=2.5)]  # fmt: skip

    pair.client.send(Leave())
    server_events, _ = pair.pump(3.0)
    assert server_events == [Leave()]
    assert (pair.client.state, pair.server.state, pair.server.close_code) == (X, X, 1000)


def test_pair_rejected_join() -> None:
    pair = SignalingPair(TOKEN)
    pair.pump(0.0)
    pair.server.reject_join("room_full", "the room is full")
    _, client_events = pair.pump(0.5)
    assert client_events == [Error(code="room_full", message="the room is full")]
    assert (pair.client.state, pair.server.state, pair.server.close_code) == (X, X, 1008)


def test_pair_errors_never_echo_the_token() -> None:
    pair = SignalingPair(TOKEN)
    pair.pump(0.0)
    pair.server.reject_join("invalid_token", "token signature does not verify")
    pair.pump(0.1)
    assert "TOPSECRET" not in "".join(pair.to_client)
    conn = ServerConnection(0.0)
    conn.receive_text('{"type":"join","v":1,"token":["' + TOKEN + '"]}', 0.0)
    assert "TOPSECRET" not in "".join(conn.data_to_send())


# --- properties -----------------------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["token", "sdp", "candidate", "sdp_mid", "sdp_mline_index", "cid", "kind", "source", "name", "muted",
          "track_sid", "t0"]  # fmt: skip
FIELD_VALUES = st.sampled_from(["audio", "video", "camera", "TR_1", "", "v=0", TOKEN, 0, 1.5, True, None])


@st.composite
def message_texts(draw: st.DrawFn) -> str:
    """Draw a JSON text shaped like a client message: a real type name, a version and known or random fields."""
    known = st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES | json_values, max_size=5)
    random = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
    obj: dict[str, object] = dict(draw(known | random))
    obj["type"] = draw(st.sampled_from(sorted(CLIENT_MESSAGE_TYPES) + sorted(SERVER_MESSAGE_TYPES) + ["nope"]))
    obj["v"] = draw(st.sampled_from([1, 1, 1, 2, "1", None]))
    return json.dumps(obj)


any_text = st.text(max_size=100) | json_values.map(json.dumps) | message_texts()


def check_valid_server(conn: ServerConnection, state_before: ConnectionState, text: str) -> None:
    """Check one received text left the server connection in a state the rules allow."""
    events = conn.events_received()
    out = sent(conn)
    assert all(type(e).TYPE in CLIENT_MESSAGE_TYPES for e in events)
    assert len(events) <= 1 and len(out) <= 1
    assert (conn.state is X) == (conn.close_code is not None)
    if state_before is X:
        assert (events, out) == ([], [])
        return
    if not events:
        assert len(out) == 1 and isinstance(out[0], Error), "bad input must queue an error"
        assert TOKEN not in encode(out[0])
    else:
        assert out == []
        assert (state_before, conn.state) in ((A, J), (OK, OK), (OK, X))
        assert conn.state is not X or isinstance(events[0], Leave)


@settings(max_examples=300, deadline=None)
@given(state=st.sampled_from([A, J, OK, X]), texts=st.lists(any_text, min_size=1, max_size=6))
def test_server_receive_text_never_raises_and_stays_valid(state: ConnectionState, texts: list[str]) -> None:
    conn = server_in(state)
    for i, text in enumerate(texts):
        before = conn.state
        conn.receive_text(text, float(i))
        check_valid_server(conn, before, text)
        if conn.state is J and i % 2:
            conn.accept_join(JOINED)
            assert sent(conn) == [JOINED]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(any_text | st.sampled_from([encode(m) for m in (JOINED, Removed(), Pong(t1=1, t2=2))]),
                      min_size=1, max_size=6))  # fmt: skip
def test_client_receive_text_raises_only_protocol_error(texts: list[str]) -> None:
    client = ClientConnection(TOKEN)
    for i, text in enumerate(texts):
        before = client.state
        try:
            client.receive_text(text, float(i))
        except ProtocolError:
            assert client.state is before
        assert all(type(e).TYPE in SERVER_MESSAGE_TYPES for e in client.events_received())
        assert client.state in (A, OK, X)


# --- broadcasts encoded once ----------------------------------------------------------------------------------------


def test_an_encoded_broadcast_is_sent_as_its_text_and_decodes_like_the_message() -> None:
    from tvapp.protocol.messages import Encoded, ParticipantLeft, encode

    msg = ParticipantLeft(participant_sid="PA_x", identity="bob", reason="left")
    encoded = Encoded.of(msg)
    assert encoded.text == encode(msg)
    pair = SignalingPair(TOKEN, now=0.0)
    pair.join(JOINED, now=1.0)
    pair.server.send(encoded)
    _, client_events = pair.pump(2.0)
    assert client_events == [msg]


def test_an_encoded_joined_is_refused_like_a_joined() -> None:
    from tvapp.protocol.messages import Encoded

    server = server_in(ConnectionState.JOINED)
    with pytest.raises(ConnectionStateError):
        server.send(Encoded.of(JOINED))


# --- the client's table ---------------------------------------------------------------------------------------------


def test_client_table_raises_only_on_received_input_and_closes_only_when_closed() -> None:
    from tvapp.protocol.signaling import CLIENT_RULES, ClientInput

    for (state, kind), rule in CLIENT_RULES.items():
        if rule.violation is not None:
            assert rule.next_state is state and not rule.deliver, (state, kind)
        assert (rule.next_state is X) == (rule.close is not None), (state, kind)
    assert not any(state is X for state, _ in CLIENT_RULES)
    assert (A, ClientInput.SEND) not in CLIENT_RULES, "nothing is sent before joined"


def test_client_close_codes_say_when_the_socket_closes() -> None:
    left = ClientConnection(TOKEN)
    assert left.close_code is None
    left.receive_text(encode(JOINED), 1.0)
    left.send(Leave())
    assert (left.close_code, left.close_reason) == (CloseCode.NORMAL, "left")
    removed = ClientConnection(TOKEN)
    removed.receive_text(encode(JOINED), 1.0)
    removed.receive_text(encode(Removed(reason="bye")), 2.0)
    assert (removed.close_code, removed.close_reason) == (CloseCode.NORMAL, "removed")
    refused = ClientConnection(TOKEN)
    refused.receive_text(encode(Error(code="invalid_token", message="bad token")), 1.0)
    assert refused.close_code == CloseCode.NORMAL and refused.closed


def test_client_refuses_a_binary_frame_and_changes_nothing() -> None:
    client = ClientConnection(TOKEN)
    with pytest.raises(ProtocolError):
        client.receive_bytes(b"\x00", 1.0)
    assert client.state is A and client.events_received() == [] and client.last_received == 1.0

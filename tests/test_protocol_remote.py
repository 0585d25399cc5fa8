"""Tests for tvapp.protocol.remote: both ends' state machines, alone and through a connection pair, and fuzzing."""

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remote_samples import (
    CREDENTIAL,
    IDLE,
    IN_ROOM,
    NEW_PHONE,
    PHONE,
    TV_SAMPLES,
    VIOLATIONS,
    any_text,
    text,
    violation_text,
)

from tvapp.protocol.remote import (
    CLIENT_RULES,
    SERVER_RULES,
    AuthRequested,
    ClientInput,
    CloseCode,
    CommandReceived,
    CommandResult,
    ConnectionStateError,
    Input,
    RemoteClientConnection,
    RemoteServerConnection,
    RemoteState,
)
from tvapp.protocol.remote_messages import (
    ALREADY_AUTHENTICATED,
    AUTH_FAILED,
    AUTH_TIMEOUT,
    BAD_MESSAGE,
    CONNECTION_CLOSED,
    NOT_AUTHENTICATED,
    Auth,
    Authed,
    Devices,
    Error,
    JoinRoom,
    LeaveRoom,
    ListDevices,
    Ok,
    RemoteProtocolError,
    RemoveParticipant,
    SetLayout,
    SetMic,
    SetVolume,
    ShowInvite,
    StatusCommand,
    encode,
    parse_phone_message,
    parse_tv_message,
)
from tvapp.testing.connection_pair import ConnectionPair
from tvapp.testing.remote_tv import FakeTv

W, C, A, X = (RemoteState.AWAITING_AUTH, RemoteState.AUTHENTICATING, RemoteState.AUTHENTICATED,
              RemoteState.CLOSED)  # fmt: skip


# --- the TV's end ------------------------------------------------------------------------------------------------


def server_in(state: RemoteState) -> RemoteServerConnection:
    conn = RemoteServerConnection(0.0)
    if state is W:
        return conn
    conn.receive_text(encode(Auth(credential=CREDENTIAL)), 0.0)
    assert conn.events_received() == [AuthRequested(CREDENTIAL)]
    if state is C:
        return conn
    if state is A:
        conn.accept_auth("DV_1", "Living room")
    else:
        conn.reject_auth()
    conn.data_to_send()
    assert conn.state is state
    return conn


def sent(conn: RemoteServerConnection) -> list[Any]:
    """Return the messages the TV's end queued since the last call."""
    return [parse_tv_message(t) for t in conn.data_to_send()]


def only_error(conn: RemoteServerConnection) -> Error:
    """Return the one error the TV's end answered with (and check the owner heard of nothing)."""
    assert conn.events_received() == []
    errors = sent(conn)
    assert len(errors) == 1 and isinstance(errors[0], Error), errors
    return errors[0]


def test_a_whole_session_on_the_tv_side() -> None:
    conn = RemoteServerConnection(0.0)
    assert (conn.state, conn.closed, conn.close_code) == (W, False, None)
    conn.receive_text(encode(Auth(credential=CREDENTIAL)), 0.5)
    assert conn.events_received() == [AuthRequested(CREDENTIAL)]
    assert conn.state is C
    conn.accept_auth("DV_1", "Living room")
    assert sent(conn) == [Authed(device_id="DV_1", tv_name="Living room")]
    assert (conn.state, conn.device_id) == (A, "DV_1")
    conn.receive_text(encode(SetVolume(id="v1", volume=0.3)), 1.0)
    events = conn.events_received()
    assert events == [CommandReceived(SetVolume(id="v1", volume=0.3))]
    command = events[0].command if isinstance(events[0], CommandReceived) else StatusCommand()
    conn.ok(command)
    assert sent(conn) == [Ok(id="v1")]
    conn.error(command, "no_audio", "no audio device")
    assert sent(conn) == [Error(id="v1", code="no_audio", message="no audio device")]
    conn.send(IN_ROOM)
    assert sent(conn) == [IN_ROOM]
    assert not conn.closed


@pytest.mark.parametrize(("name", "raw", "code", "cid"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
@pytest.mark.parametrize("state", [W, C, A], ids=lambda s: s.name)
def test_every_violation_is_answered_and_the_connection_stays(
    state: RemoteState, name: str, raw: object, code: str, cid: str | None
) -> None:
    conn = server_in(state)
    conn.receive_text(violation_text(raw), 1.0)
    error = only_error(conn)
    assert (error.code, error.id) == (code, cid)
    assert (conn.state, conn.closed, conn.close_code) == (state, False, None)


@pytest.mark.parametrize("state", [W, C], ids=lambda s: s.name)
def test_a_command_before_auth_is_not_authenticated_and_stays(state: RemoteState) -> None:
    conn = server_in(state)
    for command in (StatusCommand(id="early"), ListDevices(id="early"), SetLayout(id="early", layout="grid")):
        conn.receive_text(encode(command), 1.0)
        error = only_error(conn)
        assert (error.code, error.id) == (NOT_AUTHENTICATED, "early")
    conn.receive_text(encode(LeaveRoom()), 1.0)
    assert conn.state is state and only_error(conn).id is None


@pytest.mark.parametrize("state", [C, A], ids=lambda s: s.name)
def test_a_second_auth_is_already_authenticated_and_stays(state: RemoteState) -> None:
    conn = server_in(state)
    conn.receive_text(encode(Auth(credential="another")), 1.0)
    error = only_error(conn)
    assert error.code == ALREADY_AUTHENTICATED
    assert conn.state is state
    assert "another" not in repr(error) and CREDENTIAL not in error.message


def test_a_failed_auth_closes_the_connection() -> None:
    conn = server_in(C)
    conn.reject_auth()
    [error] = sent(conn)
    assert isinstance(error, Error) and error.code == AUTH_FAILED and error.id is None
    assert (conn.state, conn.closed, conn.close_code) == (X, True, CloseCode.POLICY_VIOLATION)
    assert conn.close_reason == AUTH_FAILED
    conn.receive_text(encode(StatusCommand()), 1.0)
    conn.receive_text(encode(Auth(credential=CREDENTIAL)), 1.0)
    conn.receive_text("{", 1.0)
    conn.receive_bytes(b"x", 1.0)
    assert conn.events_received() == [] and conn.data_to_send() == []
    with pytest.raises(ConnectionStateError):
        conn.send(IDLE)


@pytest.mark.parametrize("state", [W, C], ids=lambda s: s.name)
def test_no_auth_in_time_closes_the_connection(state: RemoteState) -> None:
    conn = server_in(state)
    assert conn.next_deadline() == 10.0
    conn.check_timeouts(9.9)
    assert conn.state is state and conn.data_to_send() == []
    conn.check_timeouts(10.0)
    [error] = sent(conn)
    assert isinstance(error, Error) and error.code == AUTH_TIMEOUT
    assert conn.closed and conn.close_code == CloseCode.POLICY_VIOLATION and conn.close_reason == AUTH_TIMEOUT


def test_an_authenticated_connection_has_no_deadline() -> None:
    conn = server_in(A)
    assert conn.next_deadline() == float("inf")
    conn.check_timeouts(1e9)
    assert conn.state is A and conn.data_to_send() == []
    with pytest.raises(ValueError):
        RemoteServerConnection(0.0, auth_timeout=0.0)


def test_the_tv_can_close_a_connection_with_its_own_reason() -> None:
    conn = server_in(A)
    forgotten = Error(code="device_forgotten", message="this phone was forgotten")
    conn.close(CloseCode.POLICY_VIOLATION, "device_forgotten", forgotten)
    assert sent(conn) == [Error(code="device_forgotten", message="this phone was forgotten")]
    assert conn.closed and conn.close_code == 1008 and conn.close_reason == "device_forgotten"
    conn.close(CloseCode.GOING_AWAY, "again", Error(code="again", message="ignored"))
    assert conn.data_to_send() == [] and conn.close_code == 1008
    shutting_down = server_in(W)
    shutting_down.close(CloseCode.GOING_AWAY, "shutting_down")
    assert shutting_down.close_code == CloseCode.GOING_AWAY and shutting_down.data_to_send() == []
    with pytest.raises(ValueError):
        server_in(A).close(999, "y")


def test_a_binary_frame_is_a_bad_message_and_stays() -> None:
    for state in (W, C, A):
        conn = server_in(state)
        conn.receive_bytes(b"\x00\x01", 1.0)
        assert only_error(conn).code == BAD_MESSAGE
        assert conn.state is state


@pytest.mark.parametrize(
    ("state", "call"),
    [
        (W, lambda c: c.accept_auth("DV_1", "TV")),
        (A, lambda c: c.accept_auth("DV_1", "TV")),
        (W, lambda c: c.reject_auth()),
        (A, lambda c: c.reject_auth()),
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


def received(client: RemoteClientConnection, msg: Any) -> list[Any]:
    """Feed one TV message (or raw text) to the phone's end; return what it handed out."""
    client.receive_text(msg if isinstance(msg, str) else encode(msg), 1.0)
    return client.events_received()


def authed_client() -> RemoteClientConnection:
    client = RemoteClientConnection(CREDENTIAL)
    assert client.data_to_send() == [encode(Auth(credential=CREDENTIAL))]
    assert received(client, Authed(device_id="DV_1", tv_name="TV")) == [Authed(device_id="DV_1", tv_name="TV")]
    return client


def test_a_phone_camera_answer_is_kept_for_its_offers_result_and_a_stop_is_handed_out() -> None:
    from remote_samples import SDP

    from tvapp.protocol.remote_messages import PhoneCameraAnswer, PhoneCameraOffer, PhoneCameraStopped

    client = authed_client()
    offer = client.send(PhoneCameraOffer(sdp=SDP))
    assert offer.id is not None
    assert received(client, PhoneCameraAnswer(id=offer.id, sdp=SDP)) == []
    [result] = received(client, Ok(id=offer.id))
    assert isinstance(result, CommandResult) and result.ok and result.sdp == SDP
    assert SDP not in repr(result), "an SDP (addresses) stays out of reprs and logs"
    stopped = PhoneCameraStopped(reason="replaced", message="Another phone is the TV's camera now.")
    assert received(client, stopped) == [stopped]


def test_commands_sent_before_authed_wait_for_it_then_go_in_order() -> None:
    client = RemoteClientConnection(CREDENTIAL)
    assert client.state is C
    first = client.send(SetLayout(layout="speaker"))
    second = client.send(ShowInvite(id="mine", visible=True))
    assert (first.id, second.id) == ("1", "mine")
    assert client.data_to_send() == [encode(Auth(credential=CREDENTIAL))]
    client.receive_text(encode(Authed(device_id="DV_1", tv_name="Living room")), 1.0)
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
    assert received(client, Ok(id=volume.id)) == [CommandResult(volume)]
    assert received(client, Devices(id=devices.id, devices=(PHONE,))) == []
    assert received(client, Ok(id=devices.id)) == [CommandResult(devices, devices=(PHONE,))]
    refusal = Error(id=remove.id, code="not_host", message="only the host can remove participants")
    [result] = received(client, refusal)
    assert isinstance(result, CommandResult) and not result.ok and result.error == refusal
    assert client.pending == {}


def test_state_pushes_and_unmatched_replies_are_handed_out() -> None:
    client = authed_client()
    assert received(client, IN_ROOM) == [IN_ROOM] and client.latest_state == IN_ROOM
    assert received(client, IDLE) == [IDLE] and client.latest_state == IDLE
    violation = Error(code=BAD_MESSAGE, message="message: not valid JSON")
    assert received(client, violation) == [violation]
    assert received(client, Ok(id="nobody")) == [Ok(id="nobody")]
    assert received(client, Devices(devices=(PHONE,))) == [Devices(devices=(PHONE,))]
    assert received(client, text({"type": "content_position", "v": 1, "t": 3})) == []


def test_a_refused_credential_closes_and_ends_waiting_commands() -> None:
    client = RemoteClientConnection(CREDENTIAL)
    waiting = client.send(StatusCommand())
    refusal = Error(code=AUTH_FAILED, message="pair again")
    assert received(client, refusal) == [refusal, CommandResult(waiting, error=refusal)]
    assert client.closed and client.data_to_send() == [] and client.pending == {}
    assert client.close_code == CloseCode.NORMAL
    assert received(client, Authed(device_id="DV_1", tv_name="TV")) == []
    with pytest.raises(ConnectionStateError):
        client.send(StatusCommand())


def test_the_tv_breaking_the_protocol_raises_and_changes_nothing() -> None:
    client = RemoteClientConnection(CREDENTIAL)
    for bad in (encode(IDLE), encode(Ok(id="1")), "{", text({"type": "state", "v": 1})):
        with pytest.raises(RemoteProtocolError):
            client.receive_text(bad, 1.0)
        assert client.state is C
    with pytest.raises(RemoteProtocolError):
        client.receive_bytes(b"\x00", 1.0)
    assert client.state is C and client.events_received() == []
    client = authed_client()
    with pytest.raises(RemoteProtocolError):
        client.receive_text(encode(Authed(device_id="DV_1", tv_name="TV")), 1.0)
    assert client.state is A


def test_closing_ends_unanswered_commands() -> None:
    client = authed_client()
    pending = client.send(JoinRoom(invite="ABCD-EFGH"))
    client.close()
    [result] = client.events_received()
    assert result.command == pending and result.error is not None and result.error.code == CONNECTION_CLOSED
    assert client.closed and client.pending == {}
    client.close()
    assert client.events_received() == [] and client.close_code == CloseCode.NORMAL


def test_a_pending_id_cannot_be_reused() -> None:
    client = authed_client()
    client.send(StatusCommand(id="1"))
    assert client.send(StatusCommand()).id == "2"  # the counter skips an id the caller took
    with pytest.raises(ValueError):
        client.send(LeaveRoom(id="1"))


def test_the_phone_table_raises_only_on_received_input_and_closes_only_when_closed() -> None:
    for (state, kind), rule in CLIENT_RULES.items():
        if rule.violation is not None:
            assert rule.next_state is state and not rule.deliver, (state, kind)
        assert (rule.next_state is X) == (rule.close is not None), (state, kind)
    assert not any(state is X for state, _ in CLIENT_RULES)
    assert (C, ClientInput.SEND) in CLIENT_RULES and (A, ClientInput.SEND) in CLIENT_RULES


# --- both ends together: a tiny TV that carries commands out ------------------------------------------------------


def pair(credential: str = CREDENTIAL) -> tuple[ConnectionPair[RemoteClientConnection, RemoteServerConnection], FakeTv]:
    server = RemoteServerConnection(0.0)
    tv = FakeTv(server, credential=CREDENTIAL, state=IDLE, devices=[PHONE, NEW_PHONE])
    return ConnectionPair(RemoteClientConnection(credential), server, serve=tv.handle), tv


def test_a_phone_drives_the_tv_through_both_machines() -> None:
    both, tv = pair()
    client, conn = both.client, both.server
    volume = client.send(SetVolume(volume=0.4))
    handed = both.pump(1.0)[1]
    assert handed[:2] == [Authed(device_id="DV_1", tv_name="Living room"), IDLE]
    quieter = dataclasses.replace(IDLE, volume=0.4)
    assert handed[2:] == [quieter, CommandResult(volume)]
    assert tv.state == quieter == client.latest_state

    again = client.send(SetVolume(volume=0.4))
    assert both.pump(2.0)[1] == [CommandResult(again)], "setting the same value again changes nothing"
    listing, removal = client.send(ListDevices()), client.send(RemoveParticipant(identity="bob"))
    results = both.pump(3.0)[1]
    assert results[0] == CommandResult(listing, devices=(PHONE, NEW_PHONE))
    assert isinstance(results[1], CommandResult) and results[1].error is not None
    assert results[1].error.code == "not_in_room" and results[1].command == removal
    assert conn.state is A and client.pending == {}


def test_a_wrong_credential_closes_both_ends() -> None:
    both, tv = pair("not-the-credential")
    waiting = both.client.send(SetLayout(layout="watch"))
    handed = both.pump(1.0)[1]
    assert [type(h) for h in handed] == [Error, CommandResult]
    assert isinstance(handed[1], CommandResult) and handed[1].command == waiting and not handed[1].ok
    assert both.server.closed and both.client.closed and tv.state == IDLE


# --- fuzzing: whatever the phone sends, the TV's end answers and never raises -----------------------------------


@settings(max_examples=400, deadline=None)
@given(state=st.sampled_from([W, C, A, X]), texts=st.lists(any_text, min_size=1, max_size=6))
def test_whatever_the_phone_sends_never_raises_out_of_receive_text(state: RemoteState, texts: list[str]) -> None:
    conn = server_in(state)
    for raw in texts:
        before = conn.state
        conn.receive_text(raw, 1.0)
        events, answers = conn.events_received(), conn.data_to_send()
        if before is X:
            assert events == [] and answers == []
            continue
        assert len(events) + len(answers) == 1
        if answers:
            assert conn.state is before and not conn.closed
            assert isinstance(parse_tv_message(answers[0]), Error)
        elif isinstance(events[0], AuthRequested):
            assert (before, conn.state) == (W, C)
        else:
            assert isinstance(events[0], CommandReceived) and before is A and conn.state is A
            assert parse_phone_message(encode(events[0].command)) == events[0].command


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(any_text | st.sampled_from([encode(m) for m in TV_SAMPLES]), min_size=1, max_size=6))
def test_the_phone_end_raises_only_protocol_errors(texts: list[str]) -> None:
    client = RemoteClientConnection(CREDENTIAL)
    client.send(StatusCommand(id="v"))
    for raw in texts:
        before = client.state
        try:
            client.receive_text(raw, 1.0)
        except RemoteProtocolError:
            assert client.state is before

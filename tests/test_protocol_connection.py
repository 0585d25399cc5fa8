"""Tests for tvapp.protocol.connection: every end of every protocol has the same sans-I/O shape and a table."""

import enum
import inspect
from typing import Any

import pytest

from tvapp.protocol import remote, signaling
from tvapp.protocol.connection import Connection, ConnectionStateError, Rule
from tvapp.protocol.messages import GrantsInfo, Joined, ParticipantInfo, Ping, Pong, RoomInfo
from tvapp.protocol.remote_messages import Authed, Ok, StatusCommand
from tvapp.testing.connection_pair import ConnectionPair

ENDS: list[tuple[type[Connection[Any, Any]], dict[Any, Rule[Any]]]] = [
    (signaling.ServerConnection, signaling.SERVER_RULES),
    (signaling.ClientConnection, signaling.CLIENT_RULES),
    (remote.RemoteServerConnection, remote.SERVER_RULES),
    (remote.RemoteClientConnection, remote.CLIENT_RULES),
]
SHAPE = ("receive_text", "receive_bytes", "events_received", "data_to_send")


@pytest.mark.parametrize(("end", "table"), ENDS, ids=lambda e: getattr(e, "__qualname__", "table"))
def test_every_end_has_the_one_shape_and_a_table(end: type[Connection[Any, Any]], table: dict[Any, Rule[Any]]) -> None:
    assert issubclass(end, Connection)
    for name in SHAPE:
        assert inspect.signature(getattr(end, name)) == inspect.signature(getattr(Connection, name)), name
        assert getattr(end, name).__doc__, name
    assert {"state", "closed"} <= {name for name, _ in inspect.getmembers(end, lambda m: isinstance(m, property))}
    assert table and all(isinstance(rule, Rule) for rule in table.values())
    states = {state for state, _ in table} | {rule.next_state for rule in table.values()}
    assert all(isinstance(state, enum.Enum) for state in states)
    assert not any(state.name == "CLOSED" for state, _ in table), "nothing leaves CLOSED"


def test_the_module_docstrings_state_the_rules() -> None:
    for module in (signaling, remote):
        assert module.__doc__ is not None
        assert "SERVER_RULES" in module.__doc__ and "CLIENT_RULES" in module.__doc__


JOINED = Joined(
    room=RoomInfo(sid="RM_1", name="den", status="open", max_participants=6),
    participant=ParticipantInfo(sid="PA_me", identity="me", joined_at=1.0),
    grants=GrantsInfo(room="den", join=True, publish=True, subscribe=True, publish_data=True, host=False,
                      hidden=False),  # fmt: skip
    server_time=1.0, ping_interval=10.0, idle_timeout=30.0,
)  # fmt: skip


def test_one_pair_drives_both_protocols() -> None:
    """The same in-memory pair moves signaling and remote control, because their ends have the same shape."""
    sig: ConnectionPair[signaling.ClientConnection, signaling.ServerConnection] = ConnectionPair(
        signaling.ClientConnection("token"), signaling.ServerConnection(0.0))
    [join], _ = sig.pump(0.0)
    assert join.token == "token"
    sig.server.accept_join(JOINED)
    assert sig.pump(0.5) == ([], [JOINED])
    sig.client.send(Ping(t0=1.0, id="p1"))
    [ping], _ = sig.pump(1.0)
    assert isinstance(ping, Ping)
    sig.server.pong(ping, 1.5)
    _, [pong] = sig.pump(1.5)
    assert isinstance(pong, Pong) and pong.id == "p1"

    rc: ConnectionPair[remote.RemoteClientConnection, remote.RemoteServerConnection] = ConnectionPair(
        remote.RemoteClientConnection("credential"), remote.RemoteServerConnection(0.0))
    status = rc.client.send(StatusCommand())
    [auth], _ = rc.pump(0.0)
    assert auth == remote.AuthRequested("credential")
    rc.server.accept_auth("DV_1", "TV")
    [command], [authed] = rc.pump(1.0)
    assert authed == Authed(device_id="DV_1", tv_name="TV") and command == remote.CommandReceived(status)
    rc.server.ok(status)
    _, [result] = rc.pump(1.0)
    assert result == remote.CommandResult(status) and rc.server.data_to_send() == []
    rc.server.send(Ok(id="unasked"))
    assert rc.pump(2.0)[1] == [Ok(id="unasked")]


def test_a_decision_out_of_turn_is_a_state_error_on_every_end() -> None:
    with pytest.raises(ConnectionStateError):
        signaling.ServerConnection(0.0).accept_join(JOINED)
    with pytest.raises(ConnectionStateError):
        signaling.ClientConnection("token").send(Ping())
    with pytest.raises(ConnectionStateError):
        remote.RemoteServerConnection(0.0).accept_auth("DV_1", "TV")
    client = remote.RemoteClientConnection("credential")
    client.close()
    with pytest.raises(ConnectionStateError):
        client.send(StatusCommand())

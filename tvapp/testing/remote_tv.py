"""A pure stand-in for the TV's side of the remote-control protocol, driving a ``RemoteServerConnection``.

It accepts one device credential, holds a ``State``, carries out volume and layout changes, lists devices and refuses
the rest the way the real TV does, so a test can run both ends of the sans-I/O connection together (see
``tvapp.testing.connection_pair``) without sockets or a TV.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tvapp.protocol.remote import AuthRequested, RemoteEvent, RemoteServerConnection
from tvapp.protocol.remote_messages import (
    Command,
    DeviceInfo,
    Devices,
    ListDevices,
    RemoveParticipant,
    SetLayout,
    SetVolume,
    State,
)


class FakeTv:
    """Pure stand-in for the TV's remote API: one device credential, a state, host-only removal."""

    def __init__(self, conn: RemoteServerConnection, *, credential: str, state: State,
                 devices: Sequence[DeviceInfo] = (), device_id: str = "DV_1") -> None:
        self.conn = conn
        self.credential = credential
        self.state = state
        self.devices = list(devices)
        self.device_id = device_id

    def handle(self, event: RemoteEvent) -> None:
        """Answer one event from the connection: authenticate, or carry out a command."""
        if isinstance(event, AuthRequested):
            if event.credential != self.credential:
                self.conn.reject_auth()
                return
            self.conn.accept_auth(self.device_id, self.state.tv_name)
            self.conn.send(self.state)
            return
        self.carry_out(event.command)

    def carry_out(self, command: Command) -> None:
        """Apply a command to the state and answer it (ok, a result, or a coded error)."""
        if isinstance(command, SetVolume):
            self.change(command, volume=command.volume)
        elif isinstance(command, SetLayout):
            self.change(command, layout=command.layout)
        elif isinstance(command, ListDevices):
            self.conn.send(Devices(id=command.id, devices=tuple(self.devices)))
            self.conn.ok(command)
        elif isinstance(command, RemoveParticipant):
            self.conn.error(command, "not_in_room", "the TV is not in a room")
        else:
            self.conn.error(command, "not_supported", f"{command.TYPE} is not supported here")

    def change(self, command: Command, **values: Any) -> None:
        """Replace state fields; send the new state when it differs; acknowledge the command."""
        new = dataclasses.replace(self.state, **values)
        if new != self.state:
            self.conn.send(new)
        self.state = new
        self.conn.ok(command)

"""What the TV's endpoints for phones need from the TV, and what they give it back.

The pairing desk keeps what pairing shows (``PairingDesk.shown()``) and tells ``Controller.show_pairing`` each time
it changes; the remote hub reads ``tv_state()`` and hands every command but status, list_devices and forget_device
to ``execute()``, which refuses with CommandRefused.
tvapp/tv/control.py implements the Controller.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from tvapp.core.errors import CodedError
from tvapp.protocol.remote_messages import Command, State


class CommandRefused(CodedError):
    """The controller refuses a command: the phone gets error{code, message} and the connection stays."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


class PairingView(NamedTuple):
    """What the TV shows while a phone pairs: the code, the QR code's URL, until when, and for whom."""

    code: str
    url: str
    expires_at: float
    requester_name: str


class Controller(Protocol):
    """The TV as the endpoints drive it (implemented by tvapp/tv/control.py)."""

    def tv_state(self) -> State:
        """Return the TV's state as of now."""
        ...

    async def execute(self, command: Command) -> None:
        """Carry out a command (every one but status, list_devices and forget_device); raise CommandRefused."""
        ...

    def show_pairing(self, view: PairingView | None) -> None:
        """Show the pairing code and QR code on the screen, or hide them (None): what the pairing desk shows now."""
        ...

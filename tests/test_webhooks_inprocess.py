"""The webhook hooks the resume state will call (participant_reconnecting/reconnected) and the emit API the
recording and composition code calls, on a real RoomManager, store writer and sender, to a real receiver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tvapp.auth.keys import KeyStore
from tvapp.client.webhooks import verify
from tvapp.config import WebhooksConfig
from tvapp.core.claims import Grants, TokenClaims
from tvapp.core.room import room_limits
from tvapp.protocol.messages import Encoded, Error, ServerMessage
from tvapp.server.rooms import RoomManager
from tvapp.server.store import Store
from tvapp.server.webhooks import Webhooks
from tvapp.server.writer import StoreWriter
from tvapp.testing.aio import run
from tvapp.testing.waiting import wait_until_async
from tvapp.testing.webhook_receiver import WebhookReceiver


class RecordingPeer:
    """A signaling peer that keeps what the room manager sends it."""

    def __init__(self) -> None:
        self.sent: list[ServerMessage | Encoded] = []
        self.closed: tuple[int, str] | None = None

    def send(self, msg: ServerMessage | Encoded) -> None:
        self.sent.append(msg)

    def close(self, code: int, reason: str, error: Error | None = None) -> None:
        self.closed = (code, reason)


def claims(room: str, identity: str) -> TokenClaims:
    now = time.time()
    return TokenClaims(issuer="AK_x", identity=identity, audience="tvapp", issued_at=now, not_before=now,
                       expires_at=now + 600, jti=f"j-{identity}", typ="access", grants=Grants(room=room, host=True))


def test_reconnect_hooks_and_the_emit_api(tmp_path: Path) -> None:
    async def scenario() -> None:
        keys = KeyStore(tmp_path)
        key = keys.ensure_key(time.time()) or keys.signing_key()
        assert key is not None
        writer = StoreWriter(tmp_path / "tvapp.db")
        await writer.start()
        reader = Store(tmp_path / "tvapp.db")
        with WebhookReceiver() as receiver:
            hooks = Webhooks(WebhooksConfig(urls=(receiver.url,), base_delay=0.05, max_delay=0.1), keys, reader,
                             writer)
            rooms = RoomManager(reader, writer, default_limits=room_limits(6, 300), ping_interval=10,
                                idle_timeout=30)
            rooms.hooks = hooks
            sender = asyncio.create_task(hooks.run())
            alice, _ = await rooms.join(claims("den", "alice"), RecordingPeer())
            rooms.participant_reconnecting(alice)
            rooms.participant_reconnected(alice)
            live = rooms.live["den"]
            recording = {"sid": "RE_1", "room_sid": live.row.sid, "type": "audio", "codec": "opus",
                         "status": "completed"}
            hooks.emit("recording_completed", live.row, recording=recording)
            with pytest.raises(ValueError):
                hooks.emit("recording_exploded", live.row)
            with pytest.raises(ValueError):
                hooks.emit("recording_failed", live.row)  # no recording object
            await wait_until_async(lambda: len(receiver.delivered()) == 5, what="five events")
            got = [verify(r.body, r.authorization, key.id, key.secret) for r in receiver.delivered()]
            assert [e.event for e in got] == ["room_started", "participant_joined", "participant_reconnecting",
                                              "participant_reconnected", "recording_completed"]
            assert got[2].participant == {"sid": alice.sid, "identity": "alice", "name": "alice",
                                          "joined_at": alice.joined_at}
            assert got[4].data["recording"] == recording
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        await writer.close()
        reader.close()

    run(scenario())

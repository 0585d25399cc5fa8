"""No secret reaches a log, even at --log-level debug: a real server and in-process SDK clients, every log captured.

A call with TURN configured (the credential travels in `joined`), chat and data payloads, an invite redeemed,
a refresh token rotated: then neither the server's output nor the clients' DEBUG log holds any of the secrets.
Also: an unexpected failure behind `internal_error` logs once per minute per message type, not once per failure.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tvapp.client.rest import RestClient
from tvapp.client.room import Room
from tvapp.core.drops import DropCounter
from tvapp.server.signal import report_failure
from tvapp.testing.server import ServerProcess

TURN_CREDENTIAL = "turn-credential-Zq81xV"
CHAT = "chat-payload-Hk27pW"
DATA = "data-payload-Rt55mN"
ENV = {"TVAPP_MEDIA_ICE_SERVERS": "turn:127.0.0.1:3478", "TVAPP_MEDIA_ICE_USERNAME": "turn-user",
       "TVAPP_MEDIA_ICE_CREDENTIAL": TURN_CREDENTIAL, "TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


def fragments(secret: str) -> list[str]:
    """Return the secret and its first and last 12 characters (frame logs show heads and tails)."""
    return [secret, secret[:12], secret[-12:]] if len(secret) > 24 else [secret]


def test_a_call_at_debug_level_logs_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [TURN_CREDENTIAL, CHAT, DATA]
    with ServerProcess(tmp_path / "server", env=ENV, log_level="debug") as srv:
        srv.http.post("/v1/rooms", json={"name": "quiet"})
        host = srv.token("quiet", "alice", host=True)
        guest = srv.token("quiet", "bob")
        secrets += [host["access_token"], host["refresh_token"], guest["access_token"], guest["refresh_token"]]
        invite = srv.http.post("/v1/rooms/quiet/invites", json={}).json()["code"]
        secrets += [invite, invite.replace("-", "")]
        sdk = RestClient(srv.url)  # what a guest's app calls
        redeemed = asyncio.run(sdk.redeem_invite(invite, "carol", name="C"))
        secrets += [redeemed.access_token, redeemed.refresh_token]
        rotated = asyncio.run(sdk.refresh_tokens(host["refresh_token"]))
        secrets += [rotated.access_token, rotated.refresh_token]

        async def call() -> None:
            alice = await Room.connect(srv.url, host["access_token"], host_addresses=["127.0.0.1"])
            bob = await Room.connect(srv.url, guest["access_token"], host_addresses=["127.0.0.1"])
            carol = await Room.connect(srv.url, redeemed.access_token, host_addresses=["127.0.0.1"])
            got: asyncio.Queue[str] = asyncio.Queue()
            bob.on("data_received", lambda event: got.put_nowait(event.payload))
            await alice.local_participant.send_data(CHAT, topic="chat")
            await carol.local_participant.send_data(DATA, to=["bob"])
            assert {await asyncio.wait_for(got.get(), 10), await asyncio.wait_for(got.get(), 10)} == {CHAT, DATA}
            for room in (alice, bob, carol):
                await room.disconnect()

        asyncio.run(call())
        server_log = "".join(srv.output)
    assert "DEBUG" in server_log and "< TEXT " in server_log, "the server did not log at debug level"
    assert "> TEXT " in caplog.text, "the clients did not log their frames at debug level"
    for secret in secrets:
        for fragment in fragments(secret):
            assert fragment not in server_log, f"{fragment!r} in the server's log"
            assert fragment not in caplog.text, f"{fragment!r} in the clients' log"


def test_an_unexpected_failure_is_logged_once_per_minute_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    counter = DropCounter(interval_s=60.0)
    caplog.set_level(logging.ERROR, logger="tvapp.server.signal")
    for i in range(1000):
        try:
            raise AssertionError("aiortc asserted")
        except AssertionError as exc:
            report_failure("Candidate", exc, now=100.0 + i * 0.01, counter=counter)
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None
    caplog.clear()
    report_failure("Candidate", AssertionError("again"), now=170.0, counter=counter)
    report_failure("Answer", AssertionError("other kind"), now=170.0, counter=counter)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["signaling: handling Candidate failed (1000 time(s) since the last report, 1001 in all)",
                        "signaling: handling Answer failed (1 time(s) since the last report, 1 in all)"]

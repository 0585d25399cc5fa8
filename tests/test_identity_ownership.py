"""Identity ownership in a room session (tvapp.core.owners), in pure form and on the real server.

Before: a guest could redeem an invite as any identity not connected right now, the host's included; once the
host dropped, the guest joined as the host and the two kept replacing each other; removing the impostor banned
the host's identity; and a 409 on redeem told a guest which hidden participants were present.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tvapp.client.signaling import JoinError, SignalClient
from tvapp.core.owners import Claim, Owner, claim_identity, redeem_conflict
from tvapp.protocol.messages import Error, Pong
from tvapp.testing.server import ServerProcess

KEY = Owner(None)
GUEST_A = Owner("fam-a")
GUEST_B = Owner("fam-b")


def test_claim_rules() -> None:
    assert claim_identity(None, GUEST_A) is Claim.TAKE
    assert claim_identity(None, KEY) is Claim.TAKE
    assert claim_identity(KEY, Owner(None, hidden=True)) is Claim.KEEP  # every key-issued token is one owner
    assert claim_identity(GUEST_A, GUEST_A) is Claim.KEEP                # the same family reconnecting
    assert claim_identity(GUEST_A, KEY) is Claim.TAKE_OVER               # the auth server outranks an invite
    assert claim_identity(KEY, GUEST_A) is Claim.TAKEN
    assert claim_identity(GUEST_A, GUEST_B) is Claim.TAKEN
    assert Owner.of(None, "fam", False) == KEY                           # a key-issued token's family is not its owner
    assert Owner.of("RM_1", "fam", False) == Owner("fam")


def test_redeem_conflict_leaves_hidden_owners_out() -> None:
    assert not redeem_conflict(None)
    assert redeem_conflict(KEY) and redeem_conflict(GUEST_A)
    assert not redeem_conflict(Owner(None, hidden=True))


def new_room(server: ServerProcess) -> str:
    name = "own-" + uuid.uuid4().hex[:8]
    server.http.post("/v1/rooms", json={"name": name}).raise_for_status()
    return name


def invite(server: ServerProcess, room: str) -> str:
    return str(server.http.post(f"/v1/rooms/{room}/invites", json={"max_uses": 100}).json()["code"])


def redeem(server: ServerProcess, code: str, identity: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/invites/{code}/redeem", json={"identity": identity}, timeout=10)


def refresh(server: ServerProcess, token: str) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/v1/tokens/refresh", json={"refresh_token": token}, timeout=10)
    return answer.json()  # type: ignore[no-any-return]


def answer(response: httpx.Response) -> tuple[int, Any]:
    body = response.json()
    return response.status_code, body["error"]["code"] if response.status_code >= 400 else body["identity"]


async def join_refused(server: ServerProcess, token: str) -> str:
    with pytest.raises(JoinError) as refused:
        await SignalClient.connect(server.url, token)
    return refused.value.code


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def test_a_guest_cannot_take_the_hosts_identity_after_the_host_dropped(server: ServerProcess) -> None:
    room = new_room(server)
    code = invite(server, room)

    async def scenario() -> None:
        host = await SignalClient.connect(server.url, server.token(room, "host", host=True)["access_token"])
        await host.close()  # the host's network drops for a moment
        assert answer(redeem(server, code, "host")) == (409, "identity_taken")
        assert answer(redeem(server, code, "friend")) == (200, "friend")
        host = await SignalClient.connect(server.url, server.token(room, "host", host=True)["access_token"])
        assert isinstance(await host.ping(), Pong)  # key-issued tokens of the identity still take its place
        await host.close()

    run(scenario())


def test_a_guest_who_took_an_identity_first_is_replaced_by_its_key_owner_for_good(server: ServerProcess) -> None:
    room = new_room(server)
    code = invite(server, room)
    impostor_pair = redeem(server, code, "host").json()  # before the host ever joined: the identity was free

    async def scenario() -> None:
        impostor = await SignalClient.connect(server.url, impostor_pair["access_token"])
        host = await SignalClient.connect(server.url, server.token(room, "host", host=True)["access_token"])
        replaced = await impostor.wait_for(Error, 5)
        assert replaced.code == "replaced"
        assert await join_refused(server, impostor_pair["access_token"]) == "identity_taken"
        assert isinstance(await host.ping(), Pong)  # no ping-pong of replacements: the host stays
        other_guest = redeem(server, code, "host")
        assert answer(other_guest) == (409, "identity_taken")
        await host.close()

    run(scenario())


def test_removing_an_impostor_does_not_ban_the_host(server: ServerProcess) -> None:
    room = new_room(server)
    code = invite(server, room)
    impostor_pair = redeem(server, code, "host").json()

    async def scenario() -> None:
        impostor = await SignalClient.connect(server.url, impostor_pair["access_token"])
        assert server.http.delete(f"/v1/rooms/{room}/participants/host").status_code == 204
        await impostor.wait_closed()
        assert answer(redeem(server, code, "host")) == (403, "removed")  # guests stay out of that identity
        host = await SignalClient.connect(server.url, server.token(room, "host", host=True)["access_token"])
        assert isinstance(await host.ping(), Pong)
        await host.close()

    run(scenario())


def test_a_guest_keeps_its_own_identity_across_reconnects_and_refreshes(server: ServerProcess) -> None:
    room = new_room(server)
    pair = redeem(server, invite(server, room), "zoe").json()

    async def scenario() -> None:
        first = await SignalClient.connect(server.url, pair["access_token"])
        await first.close()
        again = await SignalClient.connect(server.url, pair["access_token"])
        refreshed = refresh(server, pair["refresh_token"])
        third = await SignalClient.connect(server.url, refreshed["access_token"])  # same family: replaces its own
        assert (await again.wait_for(Error, 5)).code == "replaced"
        assert isinstance(await third.ping(), Pong)
        await third.close()

    run(scenario())


def test_a_redemption_answers_the_same_whether_or_not_a_hidden_participant_has_the_identity(
        server: ServerProcess) -> None:
    room = new_room(server)
    code = invite(server, room)

    async def scenario() -> None:
        monitor = await SignalClient.connect(server.url,
                                             server.token(room, "monitor", hidden=True)["access_token"])
        with_hidden = answer(redeem(server, code, "monitor"))
        await monitor.close()
        other_room = new_room(server)
        without = answer(redeem(server, invite(server, other_room), "monitor"))
        assert with_hidden == without == (200, "monitor")

    run(scenario())

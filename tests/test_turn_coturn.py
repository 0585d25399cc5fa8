"""TURN with ephemeral credentials against Debian's real coturn (tvapp.testing.coturn, `use-auth-secret`).

The credentials a real core hands out in `joined` are accepted by coturn over udp, tcp and turns (TLS); an
expired username and a forged password are refused; a relay-only SDK participant's media reaches the SFU
through coturn (its allocation count and the relay candidate prove it); the secret reaches no log.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from aioice import stun, turn

from tvapp.auth.turn import turn_credentials
from tvapp.client.events import TrackSubscribed
from tvapp.client.room import Room
from tvapp.client.sources import ToneTrack
from tvapp.protocol.messages import IceServer
from tvapp.testing.aio import runner
from tvapp.testing.coturn import Coturn
from tvapp.testing.recorder import Recorder
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async
from tvapp.tv.remote.tls import ensure_certificate

SECRET = "turn-secret-Wq73kPz0"
LOOPBACK = ["127.0.0.1"]
run = runner(deadline=90)


def server_env(coturn: Coturn, urls: list[str]) -> dict[str, str]:
    return {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_MEDIA_TURN_URLS": ",".join(urls),
            "TVAPP_MEDIA_TURN_SECRET": coturn.secret, "TVAPP_MEDIA_TURN_TTL": "600"}


async def joined_servers(srv: ServerProcess, room: str, identity: str) -> tuple[str, tuple[IceServer, ...]]:
    """Join, return (participant sid, the ICE servers of `joined`), leave."""
    pair = srv.token(room, identity, host=True)
    joined = await Room.connect(srv.url, pair["access_token"], host_addresses=LOOPBACK)
    servers = joined._session.signal.joined.ice_servers
    sid = joined.local_participant.sid
    await joined.disconnect()
    return sid, servers


async def allocate(coturn: Coturn, server: IceServer, context: ssl.SSLContext | None = None,
                   username: str | None = None, password: str | None = None) -> tuple[str, int]:
    """Make a TURN allocation with `server`'s URL and credentials; return the relayed address."""
    secure = server.urls.startswith("turns:")
    host_port = server.urls.split(":", 1)[1].split("?")[0]
    host, port = host_port.rsplit(":", 1)
    transport = server.urls.split("transport=")[1] if "transport=" in server.urls else "udp"
    kwargs: dict[str, Any] = {"ssl": context} if secure else {}
    t, _ = await turn.create_turn_endpoint(asyncio.DatagramProtocol, server_addr=(host, int(port)),
                                           username=username or server.username,
                                           password=password or server.credential, transport=transport, **kwargs)
    relayed: tuple[str, int] = t.get_extra_info("sockname")
    t.close()
    return relayed


def test_the_cores_credentials_are_accepted_over_udp_tcp_and_tls(tmp_path: Path) -> None:
    cert = ensure_certificate(tmp_path / "cert", ["localhost"], ["127.0.0.1"])
    with Coturn(secret=SECRET, tls_port=_free_tcp_port(), cert=cert.cert_path, key=cert.key_path,
                min_port=49300, max_port=49400) as coturn:
        urls = [coturn.url("udp"), coturn.url("tcp"), coturn.url("tls")]
        with ServerProcess(tmp_path / "server", env=server_env(coturn, urls)) as srv:
            name = room_name()
            srv.http.post("/v1/rooms", json={"name": name})

            async def scenario() -> None:
                sid, servers = await joined_servers(srv, name, "alice")
                assert [s.urls for s in servers] == urls
                username = servers[0].username
                assert username.split(":")[1] == sid and all(s.username == username for s in servers)
                assert SECRET not in {s.credential for s in servers}
                context = ssl.create_default_context(cafile=str(cert.cert_path))
                for server in servers:
                    relayed = await allocate(coturn, server, context)
                    assert relayed[0] == "127.0.0.1" and 49300 <= relayed[1] <= 49400
                assert coturn.allocations(sid) == 3
                sid2, again = await joined_servers(srv, name, "alice")  # a rejoin gets fresh credentials
                assert sid2 != sid and again[0].username == f"{again[0].username.split(':')[0]}:{sid2}"
                assert again[0].credential != servers[0].credential
                await allocate(coturn, again[0])
                assert coturn.allocations(sid2) == 1

            run(scenario())


def test_an_expired_username_and_a_forged_password_are_refused() -> None:
    with Coturn(secret=SECRET) as coturn:
        url = IceServer(urls=coturn.url("udp"))

        async def scenario() -> None:
            expired = turn_credentials(SECRET, "late", now=time.time() - 700, ttl=600)
            forged = turn_credentials("not-the-secret", "eve", now=time.time(), ttl=600)
            good = turn_credentials(SECRET, "fine", now=time.time(), ttl=600)
            for creds in (expired, forged):
                with pytest.raises(stun.TransactionFailed, match="401"):
                    await allocate(coturn, url, username=creds.username, password=creds.password)
            await allocate(coturn, url, username=good.username, password=good.password)

        run(scenario())
        assert coturn.allocations() == 1
        refused = {user.split(":")[1] for user, code in coturn.refusals() if code == 401}
        assert refused == {"late", "eve"}


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_a_relay_only_participant_reaches_the_sfu_through_coturn(transport: str, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    cert = ensure_certificate(tmp_path / "cert", ["localhost"], ["127.0.0.1"])
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_path))  # aioice's turns: uses the default TLS context
    # The SFU listens on 127.0.0.1: coturn must be told loopback peers are allowed (it refuses them by default).
    coturn = Coturn(secret=SECRET, allow_loopback_peers=True, min_port=49500, max_port=49600,
                    tls_port=_free_tcp_port(), cert=cert.cert_path, key=cert.key_path)
    with coturn, ServerProcess(tmp_path / "server", env=server_env(coturn, [coturn.url(transport)]),
                               log_level="debug") as srv:
            name = room_name()
            srv.http.post("/v1/rooms", json={"name": name})

            async def scenario() -> None:
                alice = await Room.connect(srv.url, srv.token(name, "alice", host=True)["access_token"],
                                           host_addresses=LOOPBACK, relay_only=True)
                bob = await Room.connect(srv.url, srv.token(name, "bob")["access_token"], host_addresses=LOOPBACK)
                bob_log = Recorder(bob)
                await alice.local_participant.publish_track(ToneTrack(440.0), name="voice")
                track = (await bob_log.wait(TrackSubscribed, timeout=20)).track
                async with asyncio.timeout(20):
                    frames = [await track.recv() for _ in range(25)]
                assert len(frames) == 25
                pc = alice._session.media.pc
                local = pc.localDescription.sdp
                candidates = [ln.split() for ln in local.splitlines() if ln.startswith("a=candidate:")]
                assert candidates and all(c[7] == "relay" for c in candidates), candidates
                ice = pc.getTransceivers()[0].sender.transport.transport
                pair = ice._connection._nominated[1]
                assert pair.local_candidate.type == "relay"
                assert coturn.allocations(alice.local_participant.sid) >= 1
                passwords.extend(s.credential for r in (alice, bob) for s in r._session.signal.joined.ice_servers)
                await alice.disconnect()
                await bob.disconnect()

            passwords: list[str] = []
            run(scenario())
            server_log = "".join(srv.output)
    assert "DEBUG" in server_log and len(passwords) == 2
    for secret in [SECRET, *passwords]:  # neither the secret nor a participant's derived password
        assert secret not in server_log and secret not in caplog.text


def _free_tcp_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_sfu_gathers_a_relay_candidate_only_when_it_uses_turn(tmp_path: Path) -> None:
    with Coturn(secret=SECRET, allow_loopback_peers=True, min_port=49700, max_port=49800) as coturn:
        for uses in (False, True):
            env = {**server_env(coturn, [coturn.url("udp")]), "TVAPP_MEDIA_SFU_USES_TURN": str(uses).lower()}
            with ServerProcess(tmp_path / f"server-{uses}", env=env) as srv:
                name = room_name()
                srv.http.post("/v1/rooms", json={"name": name})

                sdps: list[str] = []

                async def scenario(srv: ServerProcess = srv, name: str = name, sdps: list[str] = sdps) -> None:
                    alice = await Room.connect(srv.url, srv.token(name, "alice", host=True)["access_token"],
                                               host_addresses=LOOPBACK)
                    await alice.local_participant.publish_track(ToneTrack(440.0))
                    pc = alice._session.media.pc
                    offer = await wait_until_async(lambda: pc.remoteDescription, what="the SFU's offer")
                    await alice.disconnect()
                    sdps.append(offer.sdp)

                run(scenario())
            sdp = sdps[0]
            assert (" typ relay" in sdp) is uses
            assert (coturn.allocations(":sfu") >= 1) is uses

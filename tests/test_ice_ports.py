"""ICE host sockets inside [media] udp_port_range, a clear error when it is full, and announced addresses.

Real aiortc peer connections on 127.0.0.1 (in this process, through tvapp.rtc.peer) and a real server
subprocess whose SDP is read by an SDK client.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from tvapp.client import events as ev
from tvapp.client.room import Room
from tvapp.client.sources import ToneTrack
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.testing.aio import runner
from tvapp.testing.recorder import Recorder
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async

run = runner(deadline=60)


def free_range(size: int) -> tuple[int, int]:
    """Return `size` consecutive UDP ports on 127.0.0.1 that are free now."""
    for low in range(41000, 47000, size + 3):
        socks = []
        try:
            for port in range(low, low + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return low, low + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range")


@pytest.fixture
def loopback_range() -> Iterator[None]:
    internals.set_host_addresses(["127.0.0.1"])
    yield
    internals.set_port_range(None)
    internals.set_host_addresses(None)


async def offer_ports(pc: object) -> list[int]:
    """Gather (by making an offer) and return the ports of the local host candidates in the SDP."""
    pc.addTransceiver("audio")  # type: ignore[attr-defined]
    await pc.setLocalDescription(await pc.createOffer())  # type: ignore[attr-defined]
    lines = [ln for ln in pc.localDescription.sdp.splitlines() if ln.startswith("a=candidate:")]  # type: ignore[attr-defined]
    return [int(ln.split()[5]) for ln in lines if " typ host" in ln]


def test_every_host_socket_is_inside_the_range_and_a_full_range_fails_clearly(loopback_range: None) -> None:
    low, high = free_range(3)
    internals.set_port_range((low, high))

    async def scenario() -> None:
        pcs = [new_peer_connection() for _ in range(3)]
        ports = [await offer_ports(pc) for pc in pcs]
        assert all(len(p) == 1 and low <= p[0] <= high for p in ports), ports
        assert len({p[0] for p in ports}) == 3
        for pc in pcs:  # getLocalCandidates agrees with the SDP
            for transceiver in pc.getTransceivers():
                gatherer = transceiver.sender.transport.transport.iceGatherer
                assert all(low <= c.port <= high for c in gatherer.getLocalCandidates())
        fourth = new_peer_connection()
        with pytest.raises(internals.PortRangeExhausted, match=f"no free UDP port in udp_port_range {low}-{high}"):
            await asyncio.wait_for(offer_ports(fourth), 5)  # at once, not an ICE timeout
        await fourth.close()
        await pcs[0].close()  # a port is given back and can be used again
        again = new_peer_connection()
        assert (await offer_ports(again))[0] in range(low, high + 1)
        for pc in [again, *pcs[1:]]:
            await pc.close()

    run(scenario())


def test_an_address_that_cannot_be_bound_is_named_as_such_not_as_a_full_range(loopback_range: None) -> None:
    internals.set_port_range(free_range(3))
    internals.set_host_addresses(["192.0.2.77"])  # TEST-NET-1: on no interface of this machine

    async def scenario() -> None:
        pc = new_peer_connection()
        with pytest.raises(internals.HostAddressUnusable, match="could not bind an ICE host socket on 192.0.2.77: "):
            await asyncio.wait_for(offer_ports(pc), 5)
        await pc.close()

    run(scenario())


def test_without_a_range_ports_are_the_kernels_choice(loopback_range: None) -> None:
    internals.set_port_range(None)

    async def scenario() -> None:
        pc = new_peer_connection()
        assert len(await offer_ports(pc)) == 1
        await pc.close()

    run(scenario())


def test_announced_addresses_go_beside_the_host_candidate_on_the_same_port(loopback_range: None) -> None:
    async def scenario() -> None:
        pc = new_peer_connection(announced=["203.0.113.7", "2001:db8::7"])
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        lines = [ln.split() for ln in pc.localDescription.sdp.splitlines() if ln.startswith("a=candidate:")]
        host = [ln for ln in lines if ln[7] == "host"]
        announced = [ln for ln in lines if ln[4] == "203.0.113.7"]
        assert len(host) == 1 and host[0][4] == "127.0.0.1"
        assert len(announced) == 1 and announced[0][5] == host[0][5]  # same port as the host socket
        assert announced[0][7] == "srflx" and announced[0][9:12] == ["127.0.0.1", "rport", host[0][5]]
        assert not [ln for ln in lines if ln[4] == "2001:db8::7"]  # no IPv6 host socket to put it beside
        plain = new_peer_connection()  # only the connection told to announce does
        plain.addTransceiver("audio")
        await plain.setLocalDescription(await plain.createOffer())
        assert "203.0.113.7" not in plain.localDescription.sdp
        await pc.close()
        await plain.close()

    run(scenario())


def test_the_sfu_offers_its_ports_in_range_and_the_announced_address(tmp_path, loopback_range: None) -> None:
    low, top = free_range(14)
    high, client = low + 7, (low + 10, top)  # the server's range and this client's, both free
    env = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_MEDIA_UDP_PORT_RANGE": f"{low}-{high}",
           "TVAPP_MEDIA_ANNOUNCED_ADDRESSES": "198.51.100.20"}
    with ServerProcess(tmp_path / "server", env=env) as srv:
        async def scenario() -> None:
            name = room_name()
            srv.http.post("/v1/rooms", json={"name": name})
            room = await Room.connect(srv.url, srv.token(name, "alice", host=True)["access_token"],
                                      host_addresses=["127.0.0.1"], udp_port_range=client)
            await room.local_participant.publish_track(ToneTrack(440.0))
            pc = room._session.media.pc  # the SFU's SDP, as this client applied it
            sdp = (await wait_until_async(lambda: pc.remoteDescription, what="the SFU's offer")).sdp
            candidates = [ln.split() for ln in sdp.splitlines() if ln.startswith("a=candidate:")]
            host = [c for c in candidates if c[7] == "host"]
            assert host and all(c[4] == "127.0.0.1" and low <= int(c[5]) <= high for c in host), candidates
            announced = [c for c in candidates if c[4] == "198.51.100.20"]
            assert {c[5] for c in announced} == {c[5] for c in host} and all(c[7] == "srflx" for c in announced)
            await wait_until_async(lambda: pc.localDescription, what="the client's answer")
            mine = [ln.split() for ln in pc.localDescription.sdp.splitlines() if ln.startswith("a=candidate:")]
            assert mine and all(client[0] <= int(c[5]) <= client[1] for c in mine if c[7] == "host"), mine
            assert "198.51.100.20" not in pc.localDescription.sdp  # the SDK announces nothing
            await room.disconnect()

        run(scenario())


def test_a_participant_beyond_the_sfus_port_range_is_told_clearly(tmp_path, loopback_range: None) -> None:
    low, _ = free_range(1)
    env = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_MEDIA_UDP_PORT_RANGE": f"{low}-{low}"}
    with ServerProcess(tmp_path / "server", env=env) as srv:
        async def scenario() -> None:
            name = room_name()
            srv.http.post("/v1/rooms", json={"name": name})
            alice = await Room.connect(srv.url, srv.token(name, "alice", host=True)["access_token"],
                                       host_addresses=["127.0.0.1"])
            await alice.local_participant.publish_track(ToneTrack(440.0))  # the SFU's one port is alice's
            alice_pc = alice._session.media.pc
            offer = await wait_until_async(lambda: alice_pc.remoteDescription, what="the SFU's offer to alice")
            assert f" {low} typ host" in offer.sdp
            bob = await Room.connect(srv.url, srv.token(name, "bob")["access_token"], host_addresses=["127.0.0.1"])
            error = await Recorder(bob).wait(ev.Error, timeout=15)
            assert error.code == "media_failed" and "udp_port_range is full" in error.message
            await bob.disconnect()
            await alice.disconnect()

        run(scenario())
        output = "".join(srv.output)
    assert f"no free UDP port in udp_port_range {low}-{low}" in output and "Traceback" not in output

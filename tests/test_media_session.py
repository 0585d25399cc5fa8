"""A participant's media session at the SFU (tvapp.server.media_session), driven in-process.

A real `Sfu` owns a real `MediaSession` whose aiortc peer connection offers on 127.0.0.1; the participant's
signaling connection is an `Inbox` that keeps what the session sends. Awaiting the SFU's background tasks
(`settle`) makes "no offer follows" something a test can check rather than wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from tvapp.config import MediaConfig
from tvapp.core.claims import Grants, TokenClaims
from tvapp.core.room import EmptyClock
from tvapp.protocol.messages import Candidate, Error, Offer, ServerMessage, TrackInfo
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.server.live import LiveParticipant, LiveRoom
from tvapp.server.media import Sfu
from tvapp.server.media_session import (
    MAX_REFUSED_ANSWERS,
    MAX_REMOTE_CANDIDATES,
    MediaError,
    MediaSession,
)
from tvapp.server.store import RoomRow
from tvapp.testing.aio import run
from tvapp.testing.waiting import wait_until_async as wait_until

NOT_SDP = "v=0\r\nthis is not sdp\r\n"


class Inbox:
    """Stands in for the participant's signaling connection (the `Peer` protocol): keeps what is sent."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def send(self, msg: ServerMessage) -> None:
        self.messages.append(msg)

    def close(self, code: int, reason: str, error: Error | None = None) -> None:
        pass

    def offers(self) -> list[Offer]:
        return [m for m in self.messages if isinstance(m, Offer)]


@contextlib.asynccontextmanager
async def joined() -> AsyncIterator[tuple[Sfu, MediaSession, Inbox]]:
    """A room with one participant, carol, and her media session."""
    sfu = Sfu(MediaConfig(host_addresses=("127.0.0.1",)))
    live = LiveRoom(row=RoomRow(sid="RM_test", name="test", status="open", max_participants=6, empty_timeout=300,
                                created_at=0.0), empty=EmptyClock.created(0.0))
    inbox = Inbox()
    claims = TokenClaims(issuer="tvapp", identity="carol", audience="tvapp", issued_at=0.0, not_before=0.0,
                         expires_at=2e9, jti="J1", typ="access", grants=Grants(room="test"))
    carol = LiveParticipant(sid="PA_carol", identity="carol", name="carol", joined_at=0.0, claims=claims, peer=inbox)
    sfu.participant_joined(live, carol, auto_subscribe=True)
    session = sfu.session(carol)
    assert session is not None
    try:
        yield sfu, session, inbox
    finally:
        await sfu.close()
        internals.set_host_addresses(None)


async def settle(sfu: Sfu) -> None:
    """Wait until every background task of the SFU (offers being made) has finished."""
    while sfu.tasks:
        await asyncio.gather(*list(sfu.tasks), return_exceptions=True)


def publish(session: MediaSession, n: int) -> None:
    session.publish(TrackInfo(sid=f"TR_{n}", kind="audio", source="microphone"), f"c{n}")


async def real_answer(offer: Offer) -> str:
    """Return the answer a real peer connection makes to `offer`."""
    pc = new_peer_connection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def test_each_refused_answer_brings_a_new_offer_until_too_many_in_a_row_then_the_next_change_does() -> None:
    async def scenario() -> None:
        async with joined() as (sfu, session, inbox):
            publish(session, 1)
            await settle(sfu)
            assert len(inbox.offers()) == 1
            for refused in range(1, MAX_REFUSED_ANSWERS + 1):
                with pytest.raises(MediaError) as error:
                    await session.answer(NOT_SDP)
                await settle(sfu)
                assert error.value.code == "bad_answer"
                if refused < MAX_REFUSED_ANSWERS:
                    assert "a new offer follows" in error.value.message
                    assert len(inbox.offers()) == 1 + refused  # offered again at once
                else:
                    assert "no new offer comes until the session changes" in error.value.message
                    assert len(inbox.offers()) == MAX_REFUSED_ANSWERS  # the peer cannot keep the server offering
            with pytest.raises(MediaError, match="no offer"):
                await session.answer(NOT_SDP)
            publish(session, 2)  # a change: its offer describes everything, the first track too
            await settle(sfu)
            offer = inbox.offers()[-1]
            assert len(inbox.offers()) == MAX_REFUSED_ANSWERS + 1
            assert {i.cid for i in offer.transceivers} == {"c1", "c2"}
            await session.answer(await real_answer(offer))
            await settle(sfu)
            assert session.refused_in_a_row == 0 and len(inbox.offers()) == MAX_REFUSED_ANSWERS + 1
            publish(session, 3)  # an accepted answer starts the count again: a refusal is offered again
            await settle(sfu)
            with pytest.raises(MediaError, match="a new offer follows"):
                await session.answer(NOT_SDP)
            await settle(sfu)
            assert len(inbox.offers()) == MAX_REFUSED_ANSWERS + 3

    run(scenario())


def test_candidates_are_read_before_aiortc_and_capped_per_session() -> None:
    async def scenario() -> None:
        async with joined() as (sfu, session, inbox):
            publish(session, 1)
            await settle(sfu)
            answer = await real_answer(inbox.offers()[-1])
            await session.answer(answer.replace("a=end-of-candidates\r\n", ""))  # as a trickling browser answers
            mid = inbox.offers()[-1].transceivers[0].mid
            for line in ("candidate:garbage", "candidate:1 1 udp 1 evil.example 9 typ host",
                         "candidate:1 1 udp 1 127.0.0.1 9 typ host raddr"):
                with pytest.raises(MediaError) as refused:
                    await session.add_candidate(Candidate(candidate=line, sdp_mid=mid))
                assert refused.value.code == "invalid_candidate"
            await session.add_candidate(Candidate(candidate="", sdp_mid=mid))  # "no more candidates": not counted
            await session.add_candidate(Candidate(candidate="candidate:7 1 udp 2122260223 127.0.0.1 4 typ host "
                                                            "generation 0", sdp_mid=mid))
            ice = session.pc.getTransceivers()[0].receiver.transport.transport
            in_answer = len(answer.split("a=candidate:")) - 1
            assert ("127.0.0.1", 4) in [(c.ip, c.port) for c in ice.getRemoteCandidates()]
            assert len(ice.getRemoteCandidates()) == in_answer + 1
            for n in range(MAX_REMOTE_CANDIDATES - 1):  # TCP: accepted and counted, never paired (ICE is UDP here)
                await session.add_candidate(Candidate(candidate=f"candidate:{n} 1 tcp 1518280447 127.0.0.1 {n + 10} "
                                                                f"typ host tcptype passive", sdp_mid=mid))
            assert len(ice.getRemoteCandidates()) == in_answer + 1
            with pytest.raises(MediaError) as refused:
                await session.add_candidate(Candidate(candidate="candidate:9 1 udp 1 127.0.0.1 5 typ host",
                                                      sdp_mid=mid))
            assert refused.value.code == "too_many_candidates"
            assert len(ice.getRemoteCandidates()) == in_answer + 1

    run(scenario())


# --- a session whose peer connection closed before the server heard the participant leave ------------------------
# aiortc closes a peer connection by itself once its DTLS transports close (the client closed its own while leaving):
# until the leave arrives, its session is "gone" but still in the room. Found by the soak (tests/test_soak.py).


def member(sfu: Sfu, live: LiveRoom, identity: str) -> tuple[MediaSession, Inbox]:
    """Join `identity` to `live` at `sfu`; return its session and its inbox."""
    inbox = Inbox()
    claims = TokenClaims(issuer="tvapp", identity=identity, audience="tvapp", issued_at=0.0, not_before=0.0,
                         expires_at=2e9, jti=f"J_{identity}", typ="access", grants=Grants(room="test"))
    participant = LiveParticipant(sid=f"PA_{identity}", identity=identity, name=identity, joined_at=0.0,
                                  claims=claims, peer=inbox)
    sfu.participant_joined(live, participant, auto_subscribe=True)
    session = sfu.session(participant)
    assert session is not None
    return session, inbox


@contextlib.asynccontextmanager
async def trio() -> AsyncIterator[tuple[Sfu, LiveRoom, dict[str, tuple[MediaSession, Inbox]]]]:
    """A room with carol (who publishes), dave and erin."""
    sfu = Sfu(MediaConfig(host_addresses=("127.0.0.1",)))
    live = LiveRoom(row=RoomRow(sid="RM_test", name="test", status="open", max_participants=6, empty_timeout=300,
                                created_at=0.0), empty=EmptyClock.created(0.0))
    try:
        yield sfu, live, {name: member(sfu, live, name) for name in ("carol", "dave", "erin")}
    finally:
        await sfu.close()
        internals.set_host_addresses(None)


def test_a_publication_ready_while_a_subscriber_s_peer_connection_is_closed_leaves_it_out_and_nobody_else(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with trio() as (sfu, live, members):
            (carol, carol_inbox), (dave, dave_inbox), (erin, erin_inbox) = members.values()
            publish(carol, 1)
            await settle(sfu)
            await dave.pc.close()  # what aiortc does when dave's client closes its peer connection, leave unheard
            assert dave.pc.signalingState == "closed" and not dave.closed
            await carol.answer(await real_answer(carol_inbox.offers()[-1]))  # TR_1's codec known: publication_ready
            await settle(sfu)
            assert "TR_1" not in dave.subscriptions and dave_inbox.offers() == []
            assert "TR_1" in erin.subscriptions  # the others are served as ever
            assert [i.track_sid for i in erin_inbox.offers()[-1].transceivers] == ["TR_1"]
            assert not [m for m in carol_inbox.messages if isinstance(m, Error)]
            publish(carol, 2)  # carol's own negotiation goes on
            await settle(sfu)
            assert {i.cid for i in carol_inbox.offers()[-1].transceivers} == {"c1", "c2"}
            sfu.participant_left(live, dave.participant)  # the leave arrives
            await settle(sfu)

    with caplog.at_level("DEBUG"):
        run(scenario())
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


def test_a_publisher_leaving_while_its_answer_is_applied_makes_no_subscriptions(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with trio() as (sfu, live, members):
            (carol, carol_inbox), (dave, _), (erin, _) = members.values()
            publish(carol, 1)
            await settle(sfu)
            answer = await real_answer(carol_inbox.offers()[-1])
            applying, leave_heard = asyncio.Event(), asyncio.Event()
            apply = carol.pc.setRemoteDescription

            async def held(description: RTCSessionDescription) -> None:
                await apply(description)
                applying.set()
                await leave_heard.wait()  # the answer is applied; carol's leave is handled before answer() goes on

            carol.pc.setRemoteDescription = held  # type: ignore[method-assign]
            answering = asyncio.ensure_future(carol.answer(answer))
            await applying.wait()
            sfu.participant_left(live, carol.participant)
            leave_heard.set()
            await answering
            await settle(sfu)
            assert not dave.subscriptions and not erin.subscriptions  # no subscription to a track that is gone

    with caplog.at_level("DEBUG"):
        run(scenario())
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


def test_a_track_published_while_the_peer_connection_is_closed_comes_with_the_media_restart() -> None:
    async def scenario() -> None:
        async with trio() as (sfu, live, members):
            (carol, carol_inbox), _, _ = members.values()
            await carol.pc.close()
            track = TrackInfo(sid="TR_9", kind="audio", source="microphone")
            carol.participant.set_track(track)
            sfu.track_published(live, carol.participant, track, "c9")  # no exception: it waits for a fresh pc
            assert carol.publications == {} and "TR_9" in carol.unplaced
            assert sfu.restart(live, carol.participant, generation=1)
            fresh = sfu.session(carol.participant)
            assert fresh is not None and fresh is not carol and "TR_9" in fresh.publications
            await settle(sfu)
            offer = carol_inbox.offers()[-1]
            assert offer.generation == 1 and [(i.track_sid, i.cid) for i in offer.transceivers] == [("TR_9", "c9")]

    run(scenario())


def test_a_publish_the_moment_the_dtls_transport_closes_waits_for_the_media_restart(
        caplog: pytest.LogCaptureFixture) -> None:
    """The client closed its peer connection for a media_restart: the DTLS transport here is closed at once, the peer
    connection only a task later (aiortc closes it by itself). A publish in between hit a closed transport."""

    async def scenario() -> None:
        async with trio() as (sfu, live, members):
            (carol, carol_inbox), _, _ = members.values()
            carol.participant.set_track(TrackInfo(sid="TR_1", kind="audio", source="microphone"))
            publish(carol, 1)
            await settle(sfu)
            client = new_peer_connection()  # carol's client, connected for real
            await client.setRemoteDescription(RTCSessionDescription(carol_inbox.offers()[-1].sdp, "offer"))
            await client.setLocalDescription(await client.createAnswer())
            await carol.answer(client.localDescription.sdp)
            dtls: Any = carol.pc.getTransceivers()[0].receiver.transport
            await wait_until(lambda: dtls.state == "connected", 10, "carol's DTLS transport connects")
            track = TrackInfo(sid="TR_2", kind="video", source="camera")
            raised: list[BaseException] = []

            def publish_now() -> None:  # runs inside the transport's close, before aiortc's own close task
                if dtls.state == "closed" and not raised:
                    carol.participant.set_track(track)
                    try:
                        sfu.track_published(live, carol.participant, track, "c2")
                    except Exception as exc:
                        raised.append(exc)
                    raised.append(StopIteration())  # (ran)

            dtls.on("statechange", publish_now)
            await client.close()  # DTLS close_notify: the transport here closes
            await wait_until(lambda: bool(raised), 10, "carol's DTLS transport closes")
            assert [type(e) for e in raised] == [StopIteration] and carol.gone and "TR_2" in carol.unplaced
            assert sfu.restart(live, carol.participant, generation=1)
            fresh = sfu.session(carol.participant)
            assert fresh is not None and set(fresh.publications) == {"TR_1", "TR_2"}
            await settle(sfu)
            assert {(i.track_sid, i.cid) for i in carol_inbox.offers()[-1].transceivers} == {("TR_1", "c1"),
                                                                                            ("TR_2", "c2")}

    with caplog.at_level("DEBUG"):
        run(scenario())
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


def test_an_answer_for_a_peer_connection_the_client_closed_is_ignored_without_an_error() -> None:
    async def scenario() -> None:
        async with trio() as (sfu, live, members):
            (carol, carol_inbox), _, _ = members.values()
            publish(carol, 1)
            await settle(sfu)
            answer = await real_answer(carol_inbox.offers()[-1])
            await carol.pc.close()  # the client made a fresh one meanwhile: its media_restart is on its way
            await carol.answer(answer)  # no bad_answer (the client would show it as an error), no new offer
            await settle(sfu)
            assert len(carol_inbox.offers()) == 1 and not [m for m in carol_inbox.messages if isinstance(m, Error)]
            assert sfu.restart(live, carol.participant, generation=1)
            await settle(sfu)
            assert carol_inbox.offers()[-1].generation == 1

    run(scenario())


def test_answers_repeated_or_overtaken_around_a_resume_are_not_errors() -> None:
    """On a resume the offer out is sent again: the client answers both copies, and an answer it sent before the
    drop can meet a newer offer (answers name no offer). Both were refused (no_offer, bad_answer), found by the soak."""

    async def scenario() -> None:
        async with trio() as (sfu, live, members):
            (carol, carol_inbox), _, _ = members.values()
            publish(carol, 1)
            await settle(sfu)
            first = await real_answer(carol_inbox.offers()[-1])
            await carol.answer(first)
            publish(carol, 2)
            await settle(sfu)
            sfu.resumed(carol.participant)  # the link dropped: the offer out (both tracks) is sent again
            assert carol_inbox.offers()[-1] == carol_inbox.offers()[-2]
            await carol.answer(first)  # the first answer again (as if sent before the drop): stale, not refused
            assert carol.offer_out and carol_inbox.offers()[-1] == carol_inbox.offers()[-2]  # the offer once more
            second = await real_answer(carol_inbox.offers()[-1])
            await carol.answer(second)
            await carol.answer(second)  # the answer to the copy sent again: ignored
            await settle(sfu)
            assert not [m for m in carol_inbox.messages if isinstance(m, Error)] and not carol.offer_out
            publish(carol, 3)  # answered since the resume: a bad answer is refused again
            await settle(sfu)
            with pytest.raises(MediaError, match="a new offer follows"):
                await carol.answer(NOT_SDP)

    run(scenario())

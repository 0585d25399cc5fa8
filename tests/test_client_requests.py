"""The SDK's request channel (tvapp.client.requests) against a fake signaling connection: a call's answer is the pong
with its id, an error before that pong is the call's error, and the one pinger keeps the link alive."""

from __future__ import annotations

import asyncio

import pytest

from tvapp.client.clock import RoomClock
from tvapp.client.requests import RequestChannel, RequestError
from tvapp.protocol import messages as m
from tvapp.testing.aio import runner
from tvapp.testing.fake_signal import FakeSignal


class SlowClock(RoomClock):
    """A room clock that would ping only every 5 s, so the keep-alive interval decides."""

    def next_ping_in(self) -> float:
        return 5.0


run = runner(deadline=10)


def pong(ping: m.Ping) -> m.Pong:
    return m.Pong(t0=ping.t0, t1=1.0, t2=1.0, id=ping.id)


async def call_pinged(channel: RequestChannel, signal: FakeSignal, msg: m.ClientMessage) -> tuple[asyncio.Task[None],
                                                                                                    m.Ping]:
    """Start a call and return it with the ping sent behind the message."""
    before = len(signal.sent)
    call = asyncio.create_task(channel.request(msg))
    ping: m.Ping = await signal.next_sent(m.Ping, before)
    while ping.id is None:  # a clock ping from the pinger: not ours
        ping = await signal.next_sent(m.Ping, signal.sent.index(ping) + 1)
    assert signal.sent[signal.sent.index(ping) - 1] == msg  # the ping follows the call
    return call, ping


def test_a_call_ends_at_the_pong_with_its_id_and_not_at_another() -> None:
    async def scenario() -> None:
        channel, signal = RequestChannel(SlowClock(), reconnect_window=1.0), FakeSignal()
        await channel.attach(signal)  # type: ignore[arg-type]
        call, ping = await call_pinged(channel, signal, m.Subscribe(track_sid="TR_a"))
        assert ping.t0 is None and ping.id  # a call's ping is no clock sample
        assert channel.take(m.Pong(t0=1.0, t1=1.0, t2=1.0))  # a clock pong: consumed, does not end the call
        assert channel.take(m.Pong(t1=1.0, t2=1.0, id="someone-else"))
        await asyncio.sleep(0)
        assert not call.done()
        assert channel.take(pong(ping))
        await call
        await channel.detach("disconnected")

    run(scenario())


def test_an_error_before_the_pong_is_the_call_s_error_and_one_after_is_not() -> None:
    async def scenario() -> None:
        channel, signal = RequestChannel(SlowClock(), reconnect_window=1.0), FakeSignal()
        await channel.attach(signal)  # type: ignore[arg-type]
        call, ping = await call_pinged(channel, signal, m.Publish(cid="TC_1", kind="audio", source="microphone"))
        assert channel.take(m.Error(code="not_allowed", message="no publishing"))
        channel.take(pong(ping))
        with pytest.raises(RequestError) as refused:
            await call
        assert refused.value.code == "not_allowed"
        assert not channel.take(m.Error(code="replaced", message="later"))  # no call in flight: for the room
        await channel.detach("disconnected")

    run(scenario())


def test_a_drop_fails_the_call_in_flight_and_calls_after_the_end_fail_at_once() -> None:
    async def scenario() -> None:
        channel, signal = RequestChannel(SlowClock(), reconnect_window=1.0), FakeSignal()
        await channel.attach(signal)  # type: ignore[arg-type]
        call, _ = await call_pinged(channel, signal, m.Unsubscribe(track_sid="TR_a"))
        await channel.detach("disconnected")
        with pytest.raises(RequestError) as dropped:
            await call
        assert dropped.value.code == "disconnected" and channel.connection_state == "disconnected"
        with pytest.raises(ConnectionError):
            await channel.send(m.Leave())

    run(scenario())


def test_the_one_pinger_keeps_the_link_alive_within_the_server_s_ping_interval() -> None:
    async def scenario() -> None:
        clock = SlowClock()
        channel, signal = RequestChannel(clock, reconnect_window=1.0), FakeSignal(ping_interval=0.05)
        await channel.attach(signal)  # type: ignore[arg-type]
        first = await signal.next_sent(m.Ping)
        second = await signal.next_sent(m.Ping, signal.sent.index(first) + 1)
        assert first.t0 is not None and second.t0 is not None and first.id is None  # clock samples
        channel.on_pong(m.Pong(t0=second.t0, t1=second.t0 + 0.01, t2=second.t0 + 0.01), second.t0 + 0.02)
        assert clock.estimate is not None  # the pong became a clock sample
        await channel.detach("disconnected")
        count = len(signal.sent)
        await asyncio.sleep(0.15)
        assert len(signal.sent) == count  # the pinger stopped with the link

    run(scenario())


def test_an_error_answering_what_was_sent_without_waiting_does_not_fail_the_call_in_flight() -> None:
    """The link watch's media_restart can go out between a call and its ping; its refusal (media_restart_too_soon)
    then arrived before the call's pong and failed the call (a playback command, found by the soak)."""

    async def scenario() -> None:
        channel, signal = RequestChannel(SlowClock(), reconnect_window=1.0), FakeSignal()
        await channel.attach(signal)  # type: ignore[arg-type]
        call, ping = await call_pinged(channel, signal, m.Playback(action="pause"))
        for code in ("media_restart_too_soon", "bad_answer", "invalid_candidate", "media_failed"):
            assert not channel.take(m.Error(code=code, message="for the room")), code  # the room handles it
        assert channel.take(pong(ping))
        await call  # succeeded
        await channel.detach("disconnected")

    run(scenario())
